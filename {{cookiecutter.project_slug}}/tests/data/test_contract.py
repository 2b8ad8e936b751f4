"""The data contract: the shipped data holds it, and each kind of breakage is found, reported and stops training."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ModelConfig, load_config
from {{ cookiecutter.package_name }}.data import check, format_table, read_frame


def numeric(config: ModelConfig) -> str:
    return next(f.name for f in config.data.features if f.type in ("number", "integer") and f.min is not None)


def categorical(config: ModelConfig) -> str:
    return next(f.name for f in config.data.features if f.type == "category")


def _set(frame: pd.DataFrame, column: str, rows: int, value: object) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[frame.index[:rows], column] = value
    return frame


# (id, how to break the frame, the rule the violation must name)
BREAKERS: list[tuple[str, Callable[[pd.DataFrame, ModelConfig], pd.DataFrame], str]] = [
    ("missing-column", lambda df, c: df.drop(columns=[numeric(c)]), "missing column"),
    ("extra-column", lambda df, c: df.assign(surprise=1), "column not in the contract"),
    ("text-in-number", lambda df, c: _set(df, numeric(c), 3, "twelve"), "not a"),
    ("below-min", lambda df, c: _set(df, numeric(c), 2, -1.0), "below min"),
    ("unknown-category", lambda df, c: _set(df, categorical(c), 4, "enormous"), "unknown category"),
    ("null-feature", lambda df, c: _set(df, numeric(c), 5, np.nan), "null in a non-nullable column"),
    ("null-target", lambda df, c: _set(df, c.data.target, 1, np.nan), "null target"),
    ("too-few-rows", lambda df, c: df.head(c.data.min_rows - 1), "fewer than min_rows"),
{%- if cookiecutter.task == 'classification' %}
    ("one-class", lambda df, c: df.assign(**{c.data.target: df[c.data.target].iloc[0]}), "fewer than 2 classes"),
    ("rare-class", lambda df, c: _set(df, c.data.target, 2, "rare"), "class with fewer than"),
{%- else %}
    ("text-target", lambda df, c: _set(df, c.data.target, 2, "high"), "target not a number"),
{%- endif %}
]


@pytest.fixture
def config(scratch_repo: Path) -> ModelConfig:
    return load_config(scratch_repo / "model.yaml")


def test_shipped_data_holds_the_contract(config: ModelConfig) -> None:
    frame = read_frame(config)
    assert check(config, frame) == []
    assert len(frame) >= config.data.min_rows


@pytest.mark.parametrize(("breaker", "rule"), [(b, r) for _, b, r in BREAKERS], ids=[i for i, _, _ in BREAKERS])
def test_each_breakage_is_found(config: ModelConfig, breaker: Callable, rule: str) -> None:
    violations = check(config, breaker(read_frame(config), config))
    assert any(rule in v.rule for v in violations), format_table(violations)


def write_broken(config: ModelConfig, breaker: Callable) -> None:
    breaker(read_frame(config), config).to_csv(config.path(config.data.path), index=False)


@pytest.mark.parametrize(("breaker", "rule"), [(b, r) for _, b, r in BREAKERS[:4]], ids=[i for i, _, _ in BREAKERS[:4]])
def test_check_data_prints_a_table_and_exits_1(
    config: ModelConfig, breaker: Callable, rule: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_broken(config, breaker)
    assert main(["--config", str(config.root / "model.yaml"), "check-data"]) == 1
    err = capsys.readouterr().err
    assert "breaks the data contract" in err
    assert "column" in err
    assert "rule" in err
    assert rule in err
    assert not (config.root / "artifacts/data_report.json").exists()


def test_train_refuses_broken_data_and_writes_no_model(config: ModelConfig, capsys: pytest.CaptureFixture[str]) -> None:
    write_broken(config, BREAKERS[3][1])
    assert main(["--config", str(config.root / "model.yaml"), "train"]) == 1
    assert "refusing to train" in capsys.readouterr().err
    assert not (config.root / "artifacts/model").exists()


def test_null_rate_above_the_limit_is_found(scratch_repo: Path) -> None:
    spec = yaml.safe_load((scratch_repo / "model.yaml").read_text())
    feature = next(f for f in spec["data"]["features"] if f["type"] in ("number", "integer"))
    feature |= {"nullable": True, "max_null_rate": 0.01}
    (scratch_repo / "model.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    config = load_config(scratch_repo / "model.yaml")
    frame = read_frame(config)
    nulls = len(frame) // 10
    violations = check(config, _set(frame, feature["name"], nulls, np.nan))
    expected = f"null rate {nulls / len(frame):.3f} above max_null_rate 0.01"
    assert [(v.rule, v.count) for v in violations if v.column == feature["name"]] == [(expected, nulls)]
    assert check(config, _set(read_frame(config), feature["name"], 1, np.nan)) == []


def test_data_report_profiles_every_feature(config: ModelConfig) -> None:
    assert main(["--config", str(config.root / "model.yaml"), "check-data"]) == 0
    report = yaml.safe_load((config.root / "artifacts/data_report.json").read_text())
    assert set(report["features"]) == set(config.data.feature_names)
    assert report["rows"] == len(read_frame(config))
    assert len(report["data_md5"]) == 32


def test_an_unreadable_file_is_one_line(config: ModelConfig, capsys: pytest.CaptureFixture[str]) -> None:
    config.path(config.data.path).unlink()
    assert main(["--config", str(config.root / "model.yaml"), "check-data"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"model.yaml: $.data.path: {config.data.path} does not exist; expected a CSV file")
    assert len(err.splitlines()) == 1

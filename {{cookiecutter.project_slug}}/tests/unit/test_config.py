"""model.yaml: the shipped file is valid, and every kind of mistake is reported with its field path."""

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ConfigError, load_config


def test_shipped_model_yaml_is_valid(repo_root: Path) -> None:
    config = load_config(repo_root / "model.yaml")
    assert config.metadata.version == "0.1.0"
    assert config.data.target not in config.data.feature_names
    assert len(config.source_sha256) == 64
    assert all(gate.id for gate in config.evaluation.gates)


def test_config_is_immutable(repo_root: Path) -> None:
    config = load_config(repo_root / "model.yaml")
    with pytest.raises(AttributeError):
        config.model.estimator = "Other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.model.params["x"] = 1  # type: ignore[index]


def test_modeline_points_at_the_schema(repo_root: Path) -> None:
    first = (repo_root / "model.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=schemas/model.schema.json"


def first_category(spec: dict) -> int:
    return next(i for i, f in enumerate(spec["data"]["features"]) if f["type"] == "category")


def first_number(spec: dict) -> int:
    return next(i for i, f in enumerate(spec["data"]["features"]) if f["type"] in ("number", "integer"))


def other_task_estimator(spec: dict) -> str:
    if spec["model"]["framework"] == "tensorflow":
        return "RandomForestClassifier"
    return "Ridge" if spec["model"]["task"] == "classification" else "LogisticRegression"


def wrong_task_metric(spec: dict) -> str:
    return "rmse" if spec["model"]["task"] == "classification" else "roc_auc"


# (id, how to break model.yaml, the field path and words the one-line message must contain)
BROKEN: list[tuple[str, Callable[[dict], object], str, str]] = [
    ("missing-target", lambda s: s["data"].pop("target"), "$.data.target", "is missing"),
    ("unknown-top-level-key", lambda s: s.update(modle={}), "$.modle", "is not a known field"),
    ("typo-in-section", lambda s: s["model"].update(parms={}), "$.model.parms", "is not a known field"),
    ("bad-api-version", lambda s: s.update(apiVersion="v2"), "$.apiVersion", 'expected one of "modelops/v1"'),
    ("bad-version", lambda s: s["metadata"].update(version="1.0"), "$.metadata.version", 'like "1.2.0"'),
    ("bad-feature-type", lambda s: s["data"]["features"][0].update(type="float"), "$.data.features[0].type", "one of"),
    (
        "target-is-feature",
        lambda s: s["data"]["features"][0].update(name=s["data"]["target"]),
        "$.data.target",
        "is also a feature",
    ),
    (
        "duplicate-feature",
        lambda s: s["data"]["features"].append(dict(s["data"]["features"][0])),
        "].name",
        "is declared twice",
    ),
    (
        "min-above-max",
        lambda s: s["data"]["features"][first_number(s)].update(min=10, max=1),
        ".min",
        "expected min <= max",
    ),
    (
        "values-on-number",
        lambda s: s["data"]["features"][first_number(s)].update(values=["a"]),
        ".values",
        "values on category features only",
    ),
    (
        "category-without-values",
        lambda s: s["data"]["features"][first_category(s)].pop("values"),
        ".values",
        "is missing for a category feature",
    ),
    (
        "estimator-not-allowed",
        lambda s: s["model"].update(estimator=other_task_estimator(s), params={}),
        "$.model.estimator",
        "is not allowed for",
    ),
    ("import-path-estimator", lambda s: s["model"].update(estimator="os.system"), "$.model.estimator", "one of"),
    (
        "unknown-param",
        lambda s: s["model"].update(params={"n_estimatorz": 5}),
        "$.model.params.n_estimatorz",
        "is not a known field",
    ),
    (
        "wrong-task-metric",
        lambda s: s["evaluation"]["metrics"].append(wrong_task_metric(s)),
        "$.evaluation.metrics[",
        "metric; expected one of",
    ),
    (
        "gate-metric-not-computable",
        lambda s: s["evaluation"]["gates"].append({"metric": wrong_task_metric(s), "min": 0}),
        "$.evaluation.gates[",
        "cannot be computed",
    ),
    (
        "gate-two-bounds",
        lambda s: s["evaluation"]["gates"].append({"metric": s["evaluation"]["metrics"][0], "min": 0.1, "max": 0.9}),
        "$.evaluation.gates[",
        "exactly one of min, max, max_drop, min_gain",
    ),
    (
        "relative-gate-without-against",
        lambda s: s["evaluation"]["gates"].append({"metric": s["evaluation"]["metrics"][0], "max_drop": 0.1}),
        ".against",
        "against: production",
    ),
    (
        "slice-on-number",
        lambda s: s["evaluation"]["gates"].append(
            {
                "metric": s["evaluation"]["metrics"][0],
                "max": 1e9,
                "slice": s["data"]["features"][first_number(s)]["name"],
            }
        ),
        ".slice",
        "a category or boolean feature",
    ),
    (
        "slice-not-a-feature",
        lambda s: s["evaluation"].update(slices=["nope"]),
        "$.evaluation.slices[0]",
        "'nope' is not a feature",
    ),
    (
        "test-size-too-big",
        lambda s: s["data"]["split"].update(test_size=0.9),
        "$.data.split.test_size",
        "a number <= 0.5",
    ),
    ("data-file-missing", lambda s: s["data"].update(path="data/missing.csv"), "$.data.path", "does not exist"),
    (
        "override-unknown-gate",
        lambda s: s["evaluation"].update(overrides=[{"gate": "nope", "reason": "x" * 25, "approved_by": "@someone"}]),
        "$.evaluation.overrides[0].gate",
        "is no gate",
    ),
    (
        "negative-replicas",
        lambda s: s["deploy"]["staging"].update(replicas=0),
        "$.deploy.staging.replicas",
        "a number >= 1",
    ),
    ("bad-image", lambda s: s["deploy"].update(image="GHCR.io/Org/Name:latest"), "$.deploy.image", "matching"),
]


@pytest.mark.parametrize(("breaks", "path", "words"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_model_yaml_exits_2_naming_the_field(
    breaks: Callable[[dict], object], path: str, words: str, spec: dict, scratch_repo: Path, capsys
) -> None:
    breaks(spec)
    (scratch_repo / "model.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["--config", str(scratch_repo / "model.yaml"), "validate"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert any(line.startswith("model.yaml: $") and path in line and words in line for line in lines), err
    assert all("; expected " in line for line in lines), err


def test_every_problem_is_reported_at_once(spec: dict, scratch_repo: Path) -> None:
    spec["model"]["estimator"] = other_task_estimator(spec)
    spec["evaluation"]["slices"] = ["nope"]
    spec["data"]["path"] = "data/missing.csv"
    (scratch_repo / "model.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_config(scratch_repo / "model.yaml")
    paths = [p.path for p in caught.value.problems]
    assert {"$.model.estimator", "$.evaluation.slices[0]", "$.data.path"} <= set(paths)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("data: [unclosed", "not valid YAML at line 1"),
        ("- just\n- a list\n", "is a list, not a mapping"),
        ("kind: Model\nkind: Model\n", "duplicate key 'kind'"),
    ],
    ids=["yaml-syntax", "not-a-mapping", "duplicate-key"],
)
def test_unreadable_model_yaml(text: str, words: str, scratch_repo: Path, capsys) -> None:
    (scratch_repo / "model.yaml").write_text(text)
    assert main(["--config", str(scratch_repo / "model.yaml"), "validate"]) == 2
    assert words in capsys.readouterr().err


def test_libyaml_and_pure_parsers_read_model_yaml_alike(repo_root: Path) -> None:
    """The fast (libyaml) parse that every stage uses gives what the pure-Python SafeLoader gives."""
    from {{ cookiecutter.package_name }}.config import _FastUniqueKeyLoader, _UniqueKeyLoader

    assert issubclass(_FastUniqueKeyLoader, yaml.CSafeLoader), "PyYAML without libyaml: every stage parses slowly"
    raw = (repo_root / "model.yaml").read_bytes()
    assert yaml.load(raw, Loader=_FastUniqueKeyLoader) == yaml.load(raw, Loader=_UniqueKeyLoader)  # noqa: S506


def test_valid_model_yaml_prints_one_summary_line(repo_root: Path, capsys) -> None:
    assert main(["--config", str(repo_root / "model.yaml"), "validate"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert "valid: {{ cookiecutter.project_slug }} 0.1.0" in out[0]


def test_yaml_tags_are_not_executed(scratch_repo: Path, capsys) -> None:
    (scratch_repo / "model.yaml").write_text("!!python/object/apply:os.system ['touch pwned']\n")
    assert main(["--config", str(scratch_repo / "model.yaml"), "validate"]) == 2
    assert not (scratch_repo / "pwned").exists()
    assert "not valid YAML" in capsys.readouterr().err

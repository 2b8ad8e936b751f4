"""The monitor on synthetic traffic: quiet on the training distribution, and each kind of drift names its cause."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ModelConfig
from {{ cookiecutter.package_name }}.monitor import InputError, read_labels

ROWS = 600


def monitor(config: ModelConfig, profile: Path, logs: Path, out: Path, *extra: str) -> int:
    argv = ["--config", str(config.root / "model.yaml"), "monitor", "--logs", str(logs), "--out", str(out)]
    return main([*argv, "--profile", str(profile), *extra])


def report(out: Path) -> dict[str, Any]:
    return json.loads((out / "drift_report.json").read_text())


def alarms(out: Path, check: str) -> set[str | None]:
    return {a["feature"] for a in report(out)["alarms"] if a["check"] == check}


def test_training_distribution_raises_no_alarm(config, traffic, profile_path: Path, tmp_path: Path) -> None:
    frame = traffic.sample(ROWS, seed=1)
    keys = traffic.log(frame, tmp_path / "predictions.jsonl")
    labels = traffic.labels(frame, keys, tmp_path / "labels.csv")
    code = monitor(config, profile_path, tmp_path / "predictions.jsonl", tmp_path / "out", "--labels", str(labels))
    result = report(tmp_path / "out")
    assert (code, result["status"], result["alarms"]) == (0, "ok", [])
    assert result["rows"] == ROWS
    assert max(f["psi"] for f in result["features"]) < config.monitoring.psi_threshold
    assert result["live"]["rows"] == ROWS
    assert result["live"]["gates"]
    assert all(g["passed"] for g in result["live"]["gates"])
    assert "**OK:**" in (tmp_path / "out" / "drift_report.md").read_text()


def test_shifted_feature_is_named(config, traffic, profile_path: Path, tmp_path: Path, capsys) -> None:
    frame = traffic.shift(traffic.sample(ROWS, seed=2), traffic.number, by_std=1.0)
    traffic.log(frame, tmp_path / "predictions.jsonl")
    assert monitor(config, profile_path, tmp_path / "predictions.jsonl", tmp_path / "out") == 1
    assert alarms(tmp_path / "out", "psi") == {traffic.number}
    assert f"{traffic.number}: psi " in capsys.readouterr().out
    markdown = (tmp_path / "out" / "drift_report.md").read_text()
    assert f"| psi | {traffic.number} |" in markdown
    assert (tmp_path / "out" / "drift_plots" / f"{traffic.number}.png").read_bytes().startswith(b"\x89PNG")


def test_new_category_is_named(config, traffic, profile_path: Path, tmp_path: Path) -> None:
    frame = traffic.replace(traffic.sample(ROWS, seed=3), traffic.category, 0.05, "never_seen_before")
    traffic.log(frame, tmp_path / "predictions.jsonl")
    assert monitor(config, profile_path, tmp_path / "predictions.jsonl", tmp_path / "out") == 1
    assert alarms(tmp_path / "out", "unknown_rate") == {traffic.category}
    unknown = next(a for a in report(tmp_path / "out")["alarms"] if a["check"] == "unknown_rate")
    assert 0.02 < unknown["value"] < 0.09
    assert "never_seen_before" in unknown["message"]


def test_more_nulls_are_named(config, traffic, profile_path: Path, tmp_path: Path) -> None:
    frame = traffic.replace(traffic.sample(ROWS, seed=4), traffic.number, 0.2, None)
    traffic.log(frame, tmp_path / "predictions.jsonl")
    assert monitor(config, profile_path, tmp_path / "predictions.jsonl", tmp_path / "out") == 1
    assert alarms(tmp_path / "out", "null_rate_increase") == {traffic.number}


def test_label_quality_drop_fails_the_live_gates(config, traffic, profile_path: Path, tmp_path: Path) -> None:
    frame = traffic.sample(ROWS, seed=5)
    keys = traffic.log(frame, tmp_path / "predictions.jsonl")
    labels = traffic.labels(frame, keys, tmp_path / "labels.jsonl.csv", noise=0.4)
    code = monitor(config, profile_path, tmp_path / "predictions.jsonl", tmp_path / "out", "--labels", str(labels))
    result = report(tmp_path / "out")
    assert code == 1
    assert {a["check"] for a in result["alarms"]} == {"live_gate"}  # the inputs did not drift, the quality did
    failed = {g["id"] for g in result["live"]["gates"] if not g["passed"]}
    absolute = {g.id for g in config.evaluation.gates if not g.relative and not g.slice}
    assert failed & absolute
    assert {a["gate"] for a in result["alarms"]} == failed
    assert "**FAIL**" in (tmp_path / "out" / "drift_report.md").read_text()


def test_too_few_rows_are_not_judged(config, traffic, profile_path: Path, tmp_path: Path) -> None:
    frame = traffic.shift(traffic.sample(20, seed=6), traffic.number, by_std=3.0)
    traffic.log(frame, tmp_path / "predictions.jsonl")
    assert monitor(config, profile_path, tmp_path / "predictions.jsonl", tmp_path / "out") == 0
    assert report(tmp_path / "out")["status"] == "insufficient_rows"


def test_reads_a_folder_of_logs_mixed_with_server_output(config, traffic, profile_path: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    traffic.log(traffic.sample(300, seed=7), logs / "worker-1.jsonl")
    traffic.log(traffic.sample(300, seed=8), logs / "worker-2.log")
    with (logs / "worker-2.log").open("a") as handle:
        handle.write('INFO:     Uvicorn running on http://0.0.0.0:8080\n{"not": "a record"}\n')
    assert monitor(config, profile_path, logs, tmp_path / "out") == 0
    assert (report(tmp_path / "out")["rows"], report(tmp_path / "out")["skipped_lines"]) == (600, 2)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_logs", "does not exist; expected a prediction log file or a folder of them"),
        ("not_logs", "has 2 lines and no prediction record"),
        ("missing_profile", "cannot read the reference profile"),
        ("bad_profile", "is not a format-1 reference profile"),
        ("bad_labels", "lacks request_id or"),
        ("bad_label_row", "has row 'x'; expected an integer"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    config, traffic, profile_path: Path, tmp_path: Path, capsys, case: str, message: str
) -> None:
    logs, profile, extra = tmp_path / "predictions.jsonl", profile_path, []
    traffic.log(traffic.sample(10, seed=9), logs)
    if case == "missing_logs":
        logs = tmp_path / "nowhere.jsonl"
    elif case == "not_logs":
        logs.write_text("hello\nworld\n")
    elif case == "missing_profile":
        profile = tmp_path / "no-profile.json"
    elif case == "bad_profile":
        profile = tmp_path / "profile.json"
        profile.write_text('{"format": 99}')
    elif case == "bad_labels":
        (tmp_path / "labels.csv").write_text("id,label\n1,benign\n")
        extra = ["--labels", str(tmp_path / "labels.csv")]
    else:
        (tmp_path / "labels.csv").write_text(f"request_id,row,{config.data.target}\nreq-0,x,1\n")
        extra = ["--labels", str(tmp_path / "labels.csv")]
    assert monitor(config, profile, logs, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_show_settings_prints_workflow_outputs(config, capsys) -> None:
    assert main(["--config", str(config.root / "model.yaml"), "monitor", "--show-settings"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"log_location={config.monitoring.log_location}",
        f"on_alarm={config.monitoring.on_alarm}",
        f"data_dvc={config.data.path}.dvc",
    ]


def test_a_regression_label_that_is_no_number_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "labels.jsonl").write_text('{"request_id": "r", "row": 0, "label": "high"}\n')
    with pytest.raises(InputError, match=r"record 1 has progression 'high'; expected a number$"):
        read_labels(tmp_path / "labels.jsonl", "progression", numeric=True)
    (tmp_path / "labels.csv").write_text("request_id,progression\nr,151\n")
    assert read_labels(tmp_path / "labels.csv", "progression", numeric=True) == {("r", 0): 151.0}

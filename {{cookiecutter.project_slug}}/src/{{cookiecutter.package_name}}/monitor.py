"""monitor: compare logged traffic with the reference profile; with labels, check live quality against the gates.

Writes ``drift_report.md``, ``drift_report.json`` and ``drift_plots/*.png`` into ``--out`` (all or nothing).
Exit 0: no threshold crossed (or too few rows to judge); 1: past a threshold; 2: the input is wrong.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import ModelConfig
from .metrics import Scored, compute
from .profile import (
    PROFILE_FILE,
    ProfileError,
    bin_counts,
    category_counts,
    is_null,
    load_profile,
    numbers,
    psi,
)

DEFAULT_PROFILE = Path("artifacts/model") / PROFILE_FILE
REPORT_MD = "drift_report.md"
REPORT_JSON = "drift_report.json"
PLOTS_DIR = "drift_plots"
UNKNOWN = "(unknown)"
LOG_SUFFIXES = (".jsonl", ".json", ".log", ".ndjson", ".txt")


class InputError(Exception):
    """The logs, labels or profile cannot be used; the message is one line naming the file and what was expected."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logs", type=Path, help="prediction log file or folder (default: monitoring.log_location)")
    parser.add_argument("--labels", type=Path, help="ground truth as CSV or JSONL: request_id, [row,] target")
    parser.add_argument("--out", type=Path, default=Path("monitoring"), help="folder for the drift report")
    parser.add_argument("--profile", type=Path, help=f"reference profile (default: {DEFAULT_PROFILE})")
    parser.add_argument(
        "--show-settings", action="store_true", help="print the monitor's settings as KEY=VALUE lines and exit"
    )


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    if args.show_settings:
        print(settings_text(config))
        return 0
    try:
        logs = args.logs or _default_logs(config)
        profile = _load(config.path(args.profile or DEFAULT_PROFILE))
        records, skipped = read_logs(logs)
        numeric = config.model.task == "regression"
        labels = read_labels(args.labels, config.data.target, numeric) if args.labels else None
    except InputError as err:
        print(f"monitor: {err}", file=sys.stderr)
        return 2
    report = build_report(config, profile, records, labels, skipped)
    write_report(report, profile, records, args.out)
    verdict = {"alarm": "ALARM", "ok": "OK", "insufficient_rows": "NOT JUDGED"}[report["status"]]
    print(f"monitor: {verdict}: {report['rows']} rows, {len(report['alarms'])} alarms; see {args.out / REPORT_MD}")
    for alarm in report["alarms"]:
        print(f"  {alarm['message']}")
    return 1 if report["status"] == "alarm" else 0


def settings_text(config: ModelConfig) -> str:
    """For the workflow's $GITHUB_OUTPUT; values come from the schema-checked model.yaml (no whitespace)."""
    m = config.monitoring
    return "\n".join([f"log_location={m.log_location}", f"on_alarm={m.on_alarm}", f"data_dvc={config.data.path}.dvc"])


def _default_logs(config: ModelConfig) -> Path:
    location = config.monitoring.log_location
    if not location:
        raise InputError("--logs is missing and monitoring.log_location is not set; expected a log file or folder")
    if "://" in location:
        raise InputError(f"monitoring.log_location {location} is remote; download it and pass --logs PATH")
    return config.path(location)


def _load(path: Path) -> dict[str, Any]:
    try:
        return load_profile(path)
    except ProfileError as err:
        raise InputError(str(err)) from None


# ---- reading ----------------------------------------------------------------------------------------------------


def _log_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not p.name.startswith(".") and p.name.removesuffix(".gz").endswith(LOG_SUFFIXES)
        )
    raise InputError(f"--logs {path} does not exist; expected a prediction log file or a folder of them")


def _lines(path: Path) -> Iterator[str]:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            yield from handle
    except (OSError, EOFError) as err:
        raise InputError(f"--logs {path} cannot be read ({getattr(err, 'strerror', None) or err})") from None


def is_record(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("request_id"), str)
        and isinstance(value.get("features"), dict)
        and "prediction" in value
        and type(value.get("row", 0)) is int
    )


def read_logs(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Prediction records from JSON lines; other lines (a server's own log on stdout) are skipped and counted."""
    records: list[dict[str, Any]] = []
    skipped = 0
    for file in _log_files(path):
        for line in _lines(file):
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line) if line.startswith("{") else None
            except json.JSONDecodeError:
                value = None
            if is_record(value):
                records.append(value)
            else:
                skipped += 1
    if skipped and not records:
        raise InputError(
            f"--logs {path} has {skipped} lines and no prediction record; "
            "expected JSON lines with request_id, features and prediction"
        )
    return records, skipped


def read_labels(path: Path, target: str, numeric: bool = False) -> dict[tuple[str, int], Any]:
    """(request_id, row) -> label, from a CSV or JSONL file with request_id, an optional row and the target."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"--labels {path} cannot be read ({getattr(err, 'strerror', None) or err})") from None
    if path.suffix in (".jsonl", ".ndjson", ".json"):
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as err:
            raise InputError(f"--labels {path}: line {err.lineno} is not JSON; expected one object a line") from None
    else:
        rows = list(csv.DictReader(text.splitlines()))
    column = target if rows and isinstance(rows[0], dict) and target in rows[0] else "label"
    labels: dict[tuple[str, int], Any] = {}
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or "request_id" not in row or column not in row:
            raise InputError(
                f"--labels {path}: record {i} lacks request_id or {target}; expected request_id, [row,] and {target}"
            )
        try:
            key = (str(row["request_id"]), int(row.get("row") or 0))
        except (TypeError, ValueError):
            raise InputError(f"--labels {path}: record {i} has row {row.get('row')!r}; expected an integer") from None
        labels[key] = row[column]
        if numeric:
            try:
                labels[key] = float(row[column])
            except (TypeError, ValueError):
                raise InputError(
                    f"--labels {path}: record {i} has {target} {row[column]!r}; expected a number"
                ) from None
    return labels


# ---- comparing --------------------------------------------------------------------------------------------------


def build_report(
    config: ModelConfig,
    profile: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    labels: Mapping[tuple[str, int], Any] | None,
    skipped: int = 0,
) -> dict[str, Any]:
    m = config.monitoring
    rows = len(records)
    report: dict[str, Any] = {
        "model": config.metadata.name,
        "reference_model_version": profile.get("model_version"),
        "reference_rows": profile.get("rows"),
        "rows": rows,
        "skipped_lines": skipped,
        "model_versions": dict(Counter(str(r.get("model_version")) for r in records)),
        "window": _window(records),
        "thresholds": {
            "psi_threshold": m.psi_threshold,
            "prediction_psi_threshold": m.prediction_psi_threshold,
            "max_unknown_rate": m.max_unknown_rate,
            "max_null_rate_increase": m.max_null_rate_increase,
            "min_rows": m.min_rows,
        },
        "features": [],
        "prediction": None,
        "live": None,
        "alarms": [],
    }
    if rows < m.min_rows:
        report["status"] = "insufficient_rows"
        return report
    alarms: list[dict[str, Any]] = report["alarms"]
    contract = config.feature
    for name, reference in profile["features"].items():
        feature = contract.get(name)
        if feature is None or feature.pii:
            continue
        values = [r["features"].get(name) for r in records]
        result = compare_feature(reference, values, feature.values)
        result["name"] = name
        report["features"].append(result)
        alarms.extend(_feature_alarms(result, m))
    report["prediction"] = compare_predictions(profile["prediction"], records)
    if report["prediction"]["psi"] > m.prediction_psi_threshold:
        alarms.append(
            _alarm("prediction_psi", None, report["prediction"]["psi"], m.prediction_psi_threshold, "predictions")
        )
    if labels is not None:
        report["live"] = live_quality(config, profile, records, labels)
        for gate in report["live"]["gates"]:
            if gate["passed"] is False:
                alarms.append(
                    {
                        "check": "live_gate",
                        "feature": gate["slice"],
                        "gate": gate["id"],
                        "value": gate["value"],
                        "threshold": gate["bound"],
                        "message": f"live {gate['metric']}{_slice_text(gate)} = {gate['value']:.4g}, "
                        f"gate {gate['id']} needs {gate['kind']} {gate['bound']:g}",
                    }
                )
    report["status"] = "alarm" if alarms else "ok"
    return report


def _slice_text(gate: Mapping[str, Any]) -> str:
    return f" on {gate['slice']}={gate['slice_value']}" if gate.get("slice") else ""


def _window(records: Sequence[Mapping[str, Any]]) -> dict[str, str | None]:
    stamps = sorted(str(r["ts"]) for r in records if r.get("ts"))
    return {"first": stamps[0] if stamps else None, "last": stamps[-1] if stamps else None}


def _alarm(check: str, feature: str | None, value: float, threshold: float, what: str) -> dict[str, Any]:
    return {
        "check": check,
        "feature": feature,
        "value": value,
        "threshold": threshold,
        "message": f"{what}: {check.replace('_', ' ')} {value:.4g} is past {threshold:g}",
    }


def _feature_alarms(result: Mapping[str, Any], m: Any) -> Iterator[dict[str, Any]]:
    name = result["name"]
    if result["psi"] > m.psi_threshold:
        yield _alarm("psi", name, result["psi"], m.psi_threshold, name)
    if result.get("unknown_rate", 0.0) > m.max_unknown_rate:
        alarm = _alarm("unknown_rate", name, result["unknown_rate"], m.max_unknown_rate, name)
        alarm["message"] += f" (new: {', '.join(result['unknown_values'])})"
        yield alarm
    increase = result["null_rate"] - result["reference_null_rate"]
    if increase > m.max_null_rate_increase:
        yield _alarm("null_rate_increase", name, increase, m.max_null_rate_increase, name)


def compare_feature(reference: Mapping[str, Any], values: Sequence[Any], declared: Sequence[str]) -> dict[str, Any]:
    """PSI, null share and (for categories) the share of values the contract does not know."""
    rows = len(values)
    nulls = sum(1 for v in values if is_null(v))
    out: dict[str, Any] = {
        "type": reference["type"],
        "null_rate": nulls / rows if rows else 0.0,
        "reference_null_rate": reference["null_rate"],
    }
    if reference["type"] in ("number", "integer"):
        x = numbers(values)
        live = bin_counts(reference["edges"], x)
        out |= {
            "psi": psi(reference["counts"], live),
            "mean": float(x.mean()) if x.size else None,
            "reference_mean": reference["mean"],
            "edges": reference["edges"],
            "reference_counts": reference["counts"],
            "counts": live,
        }
        return out
    counts = category_counts(values)
    known = list(declared) or list(reference["counts"])
    categories = sorted(set(known) | set(reference["counts"]))
    unknown = {k: v for k, v in counts.items() if k not in set(known)}
    total = sum(counts.values())
    out |= {
        "psi": psi(
            [reference["counts"].get(c, 0) for c in categories] + [0],
            [counts.get(c, 0) for c in categories] + [sum(unknown.values())],
        ),
        "unknown_rate": sum(unknown.values()) / total if total else 0.0,
        "unknown_values": [k for k, _ in Counter(unknown).most_common(5)],
        "categories": categories,
        "reference_counts": [reference["counts"].get(c, 0) for c in categories],
        "counts": [counts.get(c, 0) for c in categories] + [sum(unknown.values())],
    }
    out["reference_counts"].append(0)
    return out


def compare_predictions(reference: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    predictions = [r.get("prediction") for r in records]
    if reference["kind"] == "number":
        result = compare_feature(reference, predictions, ())
    else:
        result = compare_feature(reference, predictions, list(reference["counts"]))
        if "probability" in reference:
            positive = reference["positive_class"]
            p = numbers((r.get("probabilities") or {}).get(positive) for r in records)
            live = bin_counts(reference["probability"]["edges"], p)
            result["probability_psi"] = psi(reference["probability"]["counts"], live)
    result["kind"] = reference["kind"]
    return result


# ---- live quality -----------------------------------------------------------------------------------------------


def live_quality(
    config: ModelConfig,
    profile: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    labels: Mapping[tuple[str, int], Any],
) -> dict[str, Any]:
    """The absolute gates of model.yaml on the logged rows that have a label (point estimates, no intervals)."""
    joined = [(r, labels[key]) for r in records if (key := (r["request_id"], int(r.get("row") or 0))) in labels]
    positive = profile["prediction"].get("positive_class")
    out: dict[str, Any] = {"rows": len(joined), "metrics": {}, "gates": []}
    if len(joined) < config.monitoring.min_rows:
        out["note"] = f"{len(joined)} labelled rows, fewer than monitoring.min_rows ({config.monitoring.min_rows})"
        return out
    out["metrics"] = {name: metric(name, joined, positive, config.model.task) for name in config.evaluation.metrics}
    for gate in config.evaluation.gates:
        if gate.relative:
            continue
        groups: dict[str | None, list[tuple[Mapping[str, Any], Any]]] = {None: joined}
        if gate.slice:
            groups = {}
            for pair in joined:
                groups.setdefault(str(pair[0]["features"].get(gate.slice)), []).append(pair)
        for value, pairs in sorted(groups.items(), key=lambda kv: str(kv[0])):
            if gate.slice and len(pairs) < (gate.min_rows or 1):
                continue
            score = metric(gate.metric, pairs, positive, config.model.task)
            passed = score >= gate.bound if gate.kind == "min" else score <= gate.bound
            out["gates"].append(
                {
                    "id": gate.id,
                    "metric": gate.metric,
                    "kind": gate.kind,
                    "bound": gate.bound,
                    "slice": gate.slice,
                    "slice_value": value,
                    "rows": len(pairs),
                    "value": score,
                    "passed": bool(passed),
                }
            )
    return out


def metric(name: str, pairs: Sequence[tuple[Mapping[str, Any], Any]], positive: str | None, task: str) -> float:
    """One evaluation metric on (record, label) pairs, computed by the evaluate stage's own functions (metrics.py)."""
    truth = [label for _, label in pairs]
    predicted = [record["prediction"] for record, _ in pairs]
    if task == "regression":
        scored = Scored(np.array(truth, dtype=float), np.array(predicted, dtype=float))
    else:
        logged = [record.get("probabilities") or {} for record, _ in pairs]
        classes = tuple(logged[0]) if logged and logged[0] else tuple(sorted({*map(str, truth), *map(str, predicted)}))
        proba = np.array([[float(p.get(c, np.nan)) for c in classes] for p in logged]) if logged[0] else None
        scored = Scored(np.array(truth, dtype=str), np.array(predicted, dtype=str), proba, classes, positive)
    value = compute(name, scored)
    return float("nan") if value is None else value


# ---- writing ----------------------------------------------------------------------------------------------------


def write_report(
    report: Mapping[str, Any], profile: Mapping[str, Any], records: Sequence[Mapping[str, Any]], out: Path
) -> None:
    """Write the report into a temporary folder beside ``out``, then move each part into place."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".drift-") as tmp:
        staging = Path(tmp)
        plots = _plots(report, staging / PLOTS_DIR)
        (staging / REPORT_JSON).write_text(json.dumps(_finite(report), indent=1, sort_keys=True) + "\n")
        (staging / REPORT_MD).write_text(render_markdown(report, plots))
        if (out / PLOTS_DIR).exists():
            shutil.rmtree(out / PLOTS_DIR)
        for name in (PLOTS_DIR, REPORT_JSON, REPORT_MD):
            (staging / name).replace(out / name)


def _finite(value: Any) -> Any:
    """NaN and infinities as null: the JSON stays standard."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _plots(report: Mapping[str, Any], folder: Path) -> list[str]:
    """One bar chart per feature and for the predictions: reference share vs live share per bin."""
    folder.mkdir()
    if report["status"] == "insufficient_rows":
        return []
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = []
    parts = [(f["name"], f) for f in report["features"]] + [("prediction", report["prediction"])]
    for name, result in parts:
        if "categories" in result:
            ticks = [*result["categories"], UNKNOWN]
        else:
            edges = result["edges"]
            ticks = [f"<= {e:.3g}" for e in edges] + [f"> {edges[-1]:.3g}" if edges else "all"]
        ref = np.asarray(result["reference_counts"], dtype=float)
        live = np.asarray(result["counts"], dtype=float)
        x = np.arange(len(ticks))
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.bar(x - 0.2, ref / max(ref.sum(), 1), width=0.4, label="reference")
        ax.bar(x + 0.2, live / max(live.sum(), 1), width=0.4, label="live")
        ax.set_xticks(x, ticks, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("share of rows")
        ax.set_title(f"{name}: PSI {result['psi']:.3f}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=80)
        plt.close(fig)
        names.append(name)
    return names


def render_markdown(report: Mapping[str, Any], plots: Sequence[str]) -> str:
    status = report["status"]
    lines = [f"# Drift report: {report['model']}", ""]
    if status == "insufficient_rows":
        lines.append(
            f"**Not judged:** {report['rows']} logged rows, fewer than `monitoring.min_rows` "
            f"({report['thresholds']['min_rows']})."
        )
    elif status == "alarm":
        lines.append(f"**ALARM:** {len(report['alarms'])} checks past their thresholds.")
    else:
        lines.append("**OK:** no check past its threshold.")
    window = report["window"]
    versions = ", ".join(f"{v} ({n} rows)" for v, n in sorted(report["model_versions"].items())) or "none"
    lines += [
        "",
        f"Traffic: {report['rows']} logged rows from {window['first']} to {window['last']}; model versions {versions}. "
        f"Reference: {report['reference_rows']} training rows of version {report['reference_model_version']}.",
        "",
    ]
    if report["alarms"]:
        lines += ["## Alarms", "", "| check | feature | value | threshold |", "|---|---|---|---|"]
        for a in report["alarms"]:
            lines.append(f"| {a['check']} | {a['feature'] or ''} | {_num(a['value'])} | {a['threshold']:g} |")
        lines.append("")
    if report["features"]:
        lines += [
            "## Features",
            "",
            "| feature | type | PSI | null share (reference -> live) | unknown share |",
            "|---|---|---|---|---|",
        ]
        for f in report["features"]:
            unknown = _num(f["unknown_rate"]) if "unknown_rate" in f else ""
            lines.append(
                f"| {f['name']} | {f['type']} | {_num(f['psi'])} | "
                f"{_num(f['reference_null_rate'])} -> {_num(f['null_rate'])} | {unknown} |"
            )
        lines.append("")
    if report["prediction"]:
        p = report["prediction"]
        extra = f"; positive-class probability PSI {_num(p['probability_psi'])}" if "probability_psi" in p else ""
        lines += ["## Predictions", "", f"PSI of the prediction distribution: {_num(p['psi'])}{extra}.", ""]
    live = report["live"]
    if live is not None:
        lines += ["## Live quality", "", f"Labelled rows: {live['rows']}.", ""]
        if live.get("note"):
            lines += [f"Not judged: {live['note']}.", ""]
        if live["metrics"]:
            lines += ["| metric | live value |", "|---|---|"]
            lines += [f"| {k} | {_num(v)} |" for k, v in live["metrics"].items()]
            lines.append("")
        if live["gates"]:
            lines += ["| gate | metric | slice | value | bound | verdict |", "|---|---|---|---|---|---|"]
            for g in live["gates"]:
                where = f"{g['slice']}={g['slice_value']}" if g["slice"] else "all"
                verdict = "pass" if g["passed"] else "**FAIL**"
                bound = f"{g['kind']} {g['bound']:g}"
                lines.append(f"| {g['id']} | {g['metric']} | {where} | {_num(g['value'])} | {bound} | {verdict} |")
            lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{n}]({PLOTS_DIR}/{n}.png)" for n in plots] + [""]
    return "\n".join(lines)


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"

"""`report`: report.md (the sticky PR comment and job summary) and model_card.md, from the stage outputs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import LOWER_IS_BETTER, ModelConfig

MARKER = "<!-- modelops-report -->"
METRICS_FILE = Path("artifacts/metrics.json")
GATE_REPORT = Path("artifacts/gate_report.json")
MODEL_DIR = Path("artifacts/model")
PLOTS_DIR = Path("artifacts/plots")
FIGURES_DIR = Path("artifacts/figures")
REPORT = Path("artifacts/report.md")
MODEL_CARD = Path("artifacts/model_card.md")
VERDICT_MARK = {"pass": "✅ pass", "fail": "❌ fail", "overridden": "⚠️ overridden", "skipped": "⏭️ skipped"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", type=Path, help="metrics.json of main, to diff against")
    parser.add_argument("--out", type=Path, default=REPORT, help="report to write")
    parser.add_argument("--card", type=Path, default=MODEL_CARD, help="model card to write")
    parser.add_argument("--figures", type=Path, default=FIGURES_DIR, help="folder for the plots as PNG")


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    from .artifact import ArtifactError, load_metadata
    from .figures import FigureError, draw, markdown

    try:
        metrics = _read_json(config.path(METRICS_FILE), "run `dvc repro` first")
        gates = (
            _read_json(config.path(GATE_REPORT), "run the gate verb first")
            if config.path(GATE_REPORT).exists()
            else None
        )
        baseline = _read_json(args.baseline, "a metrics.json") if args.baseline else None
        metadata = load_metadata(config.path(MODEL_DIR))
        classes, positive = metadata["classes"], metadata["positive_class"]
        drawn = draw(config.path(PLOTS_DIR), config.path(args.figures), classes, positive)
        charts = markdown(config.path(PLOTS_DIR), classes, positive)
    except (OSError, ValueError, ArtifactError, FigureError) as err:
        print(f"report: {err}", file=sys.stderr)
        return 1
    plots = sorted(p.name for p in drawn)
    write_text(config.path(args.out), render_report(config, metrics, gates, baseline, plots, charts))
    write_text(config.path(args.card), render_card(config, metrics, gates, metadata))
    print(f"report: wrote {args.out}, {args.card} and {len(drawn)} figures in {args.figures}")
    return 0


def _read_json(path: Path, hint: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist ({hint})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from None


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _diff(metric: str, value: Any, other: Any) -> str:
    if value is None or other is None:
        return ""
    delta = value - other
    if abs(delta) < 5e-5:
        return "±0"
    improved = (delta < 0) if metric in LOWER_IS_BETTER else (delta > 0)
    return f"{delta:+.4f} {'▲' if improved else '▼'}"


def metrics_table(
    names: Sequence[str],
    current: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    baseline: Mapping[str, Any] | None,
) -> list[str]:
    header = ["metric", "this change"]
    if champion:
        header += ["champion", "vs champion"]
    if baseline:
        header += ["main", "vs main"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        cells = [name + (" (lower is better)" if name in LOWER_IS_BETTER else ""), _num(current.get(name))]
        if champion:
            cells += [_num(champion.get(name)), _diff(name, current.get(name), champion.get(name))]
        if baseline:
            cells += [_num(baseline.get(name)), _diff(name, current.get(name), baseline.get(name))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def gate_table(gates: Mapping[str, Any] | None) -> list[str]:
    if gates is None:
        return ["Gates were not run (`python -m <package> gate`)."]
    lines = ["| verdict | gate | slice | value | bound | reason |", "|---|---|---|---|---|---|"]
    for g in gates["gates"]:
        where = f"{g['slice']}={g['slice_value']}" if g["slice"] else ""
        reason = g["reason"].replace("|", "\\|")
        value, bound = _num(g["value"]), _num(g["bound"])
        lines.append(f"| {VERDICT_MARK[g['verdict']]} | `{g['id']}` | {where} | {value} | {bound} | {reason} |")
    return lines


def render_report(
    config: ModelConfig,
    metrics: Mapping[str, Any],
    gates: Mapping[str, Any] | None,
    baseline: Mapping[str, Any] | None,
    plots: Sequence[str],
    charts: Sequence[str] = (),
) -> str:
    m = config.model
    status = "not run" if gates is None else ("passed" if gates["passed"] else "FAILED")
    champion = (gates or {}).get("champion", {})
    lines = [
        MARKER,
        f"## {config.metadata.name} {config.metadata.version}: gates {status}",
        "",
        f"{m.framework} `{m.estimator}` ({m.task}), {metrics['rows']} test rows. "
        f"Champion: {champion.get('note') or 'not looked up'}.",
        "",
        "### Metrics",
        *metrics_table(
            config.evaluation.metrics,
            metrics["metrics"],
            champion.get("metrics") or None,
            (baseline or {}).get("metrics"),
        ),
        "",
        "### Gates",
        *gate_table(gates),
    ]
    overrides = [g for g in (gates or {}).get("gates", []) if g["verdict"] == "overridden"]
    if overrides:
        lines += [
            "",
            "### Overrides",
            *(
                f"- `{g['id']}`: {g['override']['reason']} (approved by {g['override']['approved_by']})"
                for g in overrides
            ),
        ]
    if metrics.get("slices"):
        lines += ["", "### Slices", *slice_lines(config, metrics["slices"])]
    if plots or charts:
        lines += ["", "### Plots", "", *charts]
    if plots:
        names = ", ".join(f"`{p}`" for p in plots)
        lines += ["", f"As PNG in `{FIGURES_DIR}/` (also `dvc plots show`): {names}."]
    lineage = metrics.get("lineage", {})
    lines += [
        "",
        f"<sub>git {lineage.get('git_sha', 'unknown')[:12]} · data md5 {lineage.get('data_md5', '?')} · "
        f"model.yaml sha256 {lineage.get('model_yaml_sha256', '?')[:12]}</sub>",
        "",
    ]
    return "\n".join(lines)


def slice_lines(config: ModelConfig, slices: Mapping[str, Any]) -> list[str]:
    names = list(config.evaluation.metrics)
    lines: list[str] = []
    for feature, values in slices.items():
        lines += [
            "",
            f"**{feature}**",
            "",
            "| value | rows | " + " | ".join(names) + " |",
            "|" + "---|" * (len(names) + 2),
        ]
        for value, entry in values.items():
            lines.append(f"| {value} | {entry['rows']} | " + " | ".join(_num(entry.get(n)) for n in names) + " |")
    return lines


def _feature_row(f: Mapping[str, Any]) -> str:
    values = "" if f["values"] is None else ", ".join(map(str, f["values"]))
    low, high = ("" if f[k] is None else f[k] for k in ("min", "max"))
    return f"| {f['name']} | {f['type']} | {values} | {low} | {high} | {'yes' if f['pii'] else ''} |"


def render_card(
    config: ModelConfig, metrics: Mapping[str, Any], gates: Mapping[str, Any] | None, metadata: Mapping[str, Any]
) -> str:
    meta, m, lineage = config.metadata, config.model, metadata["lineage"]
    features = "\n".join(_feature_row(f) for f in metadata["features"])
    params = ", ".join(f"{k}={v}" for k, v in m.params.items()) or "defaults"
    libraries = ", ".join(f"{k} {v}" for k, v in metadata["library_versions"].items())
    lines = [
        f"# Model card: {meta.name} {meta.version}",
        "",
        meta.description,
        "",
        "## Intended use",
        "",
        meta.intended_use or "Not stated in model.yaml (metadata.intended_use).",
        "",
        "## Limitations",
        "",
        meta.limitations or "Not stated in model.yaml (metadata.limitations).",
        "",
        "## Model",
        "",
        f"- {m.framework} `{m.estimator}` ({m.task}), params: {params}",
        f"- target `{config.data.target}`"
        + (f", classes {', '.join(metadata['classes'])}" if metadata.get("classes") else ""),
        f"- owners: {', '.join(meta.owners) or 'not stated'}; license: {meta.license or 'not stated'}",
        f"- libraries: {libraries}",
        "",
        "## Data",
        "",
        f"- `{config.data.path}`, DVC md5 `{lineage['data_md5']}`; test split {config.data.split.test_size:g} "
        f"(seed {config.data.split.seed}), {metrics['rows']} test rows",
        "",
        "| feature | type | values | min | max | pii |",
        "|---|---|---|---|---|---|",
        features,
        "",
        "## Metrics (test split)",
        "",
        *metrics_table(config.evaluation.metrics, metrics["metrics"], None, None),
    ]
    if metrics.get("slices"):
        lines += ["", "### Slices", *slice_lines(config, metrics["slices"])]
    lines += ["", "## Gates", "", *gate_table(gates)]
    overrides = config.evaluation.overrides
    lines += ["", "## Overrides", ""]
    lines += [f"- `{o.gate}`: {o.reason} (approved by {o.approved_by})" for o in overrides] or ["None."]
    lines += [
        "",
        "## Lineage",
        "",
        f"- git sha: `{lineage['git_sha']}`",
        f"- data md5: `{lineage['data_md5']}`",
        f"- model.yaml sha256: `{lineage['model_yaml_sha256']}`",
        "",
    ]
    return "\n".join(lines)

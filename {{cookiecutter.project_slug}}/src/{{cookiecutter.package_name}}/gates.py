"""`gate`: decide every gate of model.yaml on the test split; write gate_report.json; exit 1 if one fails.

- absolute gates (min / max) compare the metric with the bound;
- relative gates (max_drop / min_gain, against: production) compare with the champion: the model of the latest
  release tag (v1.2.3, sorted as versions), fetched through DVC at that tag and re-scored on the CURRENT test rows;
- ``slice:`` decides the gate for every value of a categorical feature (a slice under ``min_rows`` is skipped);
- ``ci:`` makes a gate noise-aware: it is decided on the pessimistic end of a bootstrap interval (the lower end for
  min / gains, the upper end for max), paired between challenger and champion for relative gates;
- an override (evaluation.overrides) turns a failed gate into "overridden", with its reason, in the report.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import Bootstrap, Gate, ModelConfig, Override
from .lineage import release_tags
from .metrics import Scored, better, bootstrap_indices, compute, interval

GATE_REPORT = Path("artifacts/gate_report.json")
CHAMPION_DIR = Path("artifacts/champion")
MODEL_DIR = Path("artifacts/model")


@dataclass(frozen=True)
class Champion:
    """The production model's scores on the current test rows, or why there are none."""

    tag: str | None
    scored: Scored | None = None
    note: str = ""
    metrics: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    """The rows one gate decision is made on: everything, or one slice value."""

    slice: str | None
    value: str | None
    rows: np.ndarray


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=MODEL_DIR, help="the challenger's artifact folder")
    parser.add_argument("--out", type=Path, default=GATE_REPORT, help="gate report to write")
    parser.add_argument("--champion", default="auto", help="'auto' (latest v* tag), a tag, or 'none'")


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    from .artifact import ArtifactError, load_predictor
    from .data import DataError, write_json
    from .evaluate import held_out_rows, score, slice_values

    started = time.perf_counter()
    try:
        rows = held_out_rows(config)
        challenger = score(config, load_predictor(config.path(args.model)), rows)
    except (ArtifactError, DataError) as err:
        print(f"gate: {err}", file=sys.stderr)
        return 1
    champion = find_champion(config, rows, args.champion)
    print(f"gate: champion: {champion.note}", flush=True)
    slices = {name: slice_values(config, rows, name) for name in {g.slice for g in config.evaluation.gates if g.slice}}
    results = decide(
        config.evaluation.gates,
        config.evaluation.overrides,
        config.evaluation.bootstrap,
        challenger,
        champion,
        slices,
    )
    failed = [r for r in results if r["verdict"] == "fail"]
    report = {
        "passed": not failed,
        "rows": len(rows),
        "champion": {"tag": champion.tag, "note": champion.note, "metrics": dict(champion.metrics)},
        "gates": results,
    }
    write_json(config.path(args.out), report)
    print(format_results(results))
    verdict = "PASSED" if not failed else f"FAILED ({len(failed)} of {len(results)})"
    print(f"gate: {verdict} in {time.perf_counter() - started:.1f}s; report: {args.out}")
    return 1 if failed else 0


def fetch_model(root: Path, tag: str, destination: Path) -> None:
    """artifacts/model as it was at ``tag``, through DVC (the tag's dvc.lock names it; the remote holds it)."""
    shutil.rmtree(destination, ignore_errors=True)
    destination.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "dvc", "get", ".", MODEL_DIR.as_posix(), "--rev", tag, "-o", str(destination)]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"dvc get exited {result.returncode}")


def find_champion(config: ModelConfig, rows: Any, which: str = "auto") -> Champion:
    from .artifact import load_predictor
    from .evaluate import score
    from .metrics import compute_all, task_metrics

    if which == "none":
        return Champion(None, note="none requested (--champion none): relative gates pass")
    tags = release_tags(config.root) if which == "auto" else [which]
    if not tags:
        return Champion(None, note="no release tag (v*) yet: relative gates pass")
    tag = tags[-1]
    try:
        fetch_model(config.root, tag, config.path(CHAMPION_DIR))
        # Another release may have been made with other library versions; it is scored, not served.
        scored = score(config, load_predictor(config.path(CHAMPION_DIR), check_versions=False), rows)
    except Exception as err:
        return Champion(tag, note=f"{tag} could not be scored: {str(err).splitlines()[0] if str(err) else err!r}")
    metrics = compute_all(task_metrics(config.model.task), scored)
    return Champion(tag, scored, f"{tag}, re-scored on the current {len(rows)} test rows", metrics)


def groups_for(gate: Gate, total: int, slices: Mapping[str, Sequence[tuple[str, np.ndarray]]]) -> list[Group]:
    if gate.slice is None:
        return [Group(None, None, np.arange(total))]
    return [Group(gate.slice, value, index) for value, index in slices[gate.slice]]


def decide(
    gates: Sequence[Gate],
    overrides: Sequence[Override],
    boot: Bootstrap,
    challenger: Scored,
    champion: Champion,
    slices: Mapping[str, Sequence[tuple[str, np.ndarray]]],
) -> list[dict[str, Any]]:
    """One result per gate and group, in model.yaml order. Pure: arrays in, dicts out."""
    by_gate = {o.gate: o for o in overrides}
    results = []
    for gate in gates:
        for group in groups_for(gate, len(challenger), slices):
            result = decide_one(gate, group, boot, challenger, champion)
            override = by_gate.get(gate.id)
            if result["verdict"] == "fail" and override is not None:
                result["verdict"] = "overridden"
                result["override"] = {"reason": override.reason, "approved_by": override.approved_by}
                result["reason"] += f"; overridden by {override.approved_by}: {override.reason}"
            results.append(result)
    return results


def decide_one(gate: Gate, group: Group, boot: Bootstrap, challenger: Scored, champion: Champion) -> dict[str, Any]:
    mine = challenger.take(group.rows)
    result: dict[str, Any] = {
        "id": gate.id,
        "metric": gate.metric,
        "kind": gate.kind,
        "slice": group.slice,
        "slice_value": group.value,
        "rows": len(group.rows),
        "value": compute(gate.metric, mine),
        "champion_value": None,
        "bound": None,
        "ci": gate.ci,
        "interval": None,
        "description": gate.description,
        "verdict": "pass",
        "reason": "",
    }
    where = f" in {group.slice}={group.value}" if group.slice else ""
    if gate.min_rows is not None and len(group.rows) < gate.min_rows:
        verdict = "skipped" if group.slice else "fail"
        return result | {"verdict": verdict, "reason": f"{len(group.rows)} rows{where} < min_rows {gate.min_rows}"}
    if result["value"] is None:
        verdict = "skipped" if group.slice else "fail"
        return result | {"verdict": verdict, "reason": f"{gate.metric} cannot be computed on these rows{where}"}
    if gate.relative:
        return result | _relative(gate, group, boot, mine, champion, where)
    return result | _absolute(gate, boot, mine, float(result["value"]), where)


def _resampled(gate: Gate, boot: Bootstrap, *scored: Scored) -> list[list[float | None]]:
    """The metric on the same bootstrap resamples of each Scored (paired)."""
    draws = bootstrap_indices(len(scored[0]), boot.samples, boot.seed)
    return [[compute(gate.metric, s.take(rows)) for rows in draws] for s in scored]


def _absolute(gate: Gate, boot: Bootstrap, mine: Scored, value: float, where: str) -> dict[str, Any]:
    bound, is_min = gate.bound, gate.kind == "min"
    judged, span, about = value, None, f"{gate.metric} {value:.4f}"
    if gate.ci is not None:
        span = interval(_resampled(gate, boot, mine)[0], gate.ci)
        if span is not None:
            judged = span[0] if is_min else span[1]
            about += f" ({gate.ci * 100:g}% interval {span[0]:.4f}..{span[1]:.4f}, judged on {judged:.4f})"
    ok = judged >= bound if is_min else judged <= bound
    sign = (">=" if is_min else "<=") if ok else ("<" if is_min else ">")
    return {
        "bound": bound,
        "interval": span,
        "verdict": "pass" if ok else "fail",
        "reason": f"{about} {sign} {gate.kind} {bound:g}{where}",
    }


def _relative(
    gate: Gate, group: Group, boot: Bootstrap, mine: Scored, champion: Champion, where: str
) -> dict[str, Any]:
    if champion.scored is None and champion.tag is None:
        return {"verdict": "pass", "reason": f"no champion: {champion.note or 'no release yet; relative gates pass'}"}
    if champion.scored is None:  # there is a release, but it could not be scored: never pass silently
        return {"verdict": "fail", "reason": f"champion {champion.note}"}
    theirs = champion.scored.take(group.rows)
    value, champion_value = compute(gate.metric, mine), compute(gate.metric, theirs)
    if value is None or champion_value is None:
        return {"verdict": "fail", "reason": f"{gate.metric} of the champion cannot be computed{where}"}
    gain = better(gate.metric, value, champion_value)
    judged, span = gain, None
    about = f"{gate.metric} {value:.4f} vs champion {champion.tag} {champion_value:.4f} (gain {gain:+.4f}"
    if gate.ci is not None:
        mine_boot, theirs_boot = _resampled(gate, boot, mine, theirs)
        gains = [
            None if a is None or b is None else better(gate.metric, a, b)
            for a, b in zip(mine_boot, theirs_boot, strict=True)
        ]
        span = interval(gains, gate.ci)
        if span is not None:
            judged = span[0]
            about += f", {gate.ci * 100:g}% interval {span[0]:+.4f}..{span[1]:+.4f}, judged on {judged:+.4f}"
    about += ")"
    needed = -gate.bound if gate.kind == "max_drop" else gate.bound
    ok = judged >= needed
    # The bound in the metric's own units: what the challenger must reach (at the point estimate).
    lower_better = better(gate.metric, 0.0, 1.0) > 0
    bound = champion_value + needed * (-1 if lower_better else 1)
    rule = f"drop <= {gate.bound:g}" if gate.kind == "max_drop" else f"gain >= {gate.bound:g}"
    return {
        "champion_value": champion_value,
        "bound": bound,
        "interval": span,
        "verdict": "pass" if ok else "fail",
        "reason": f"{about}: {'meets' if ok else 'breaks'} {rule}{where}",
    }


def format_results(results: Sequence[Mapping[str, Any]]) -> str:
    rows = [("verdict", "gate", "reason")]
    for r in results:
        gate = r["id"] + (f" [{r['slice']}={r['slice_value']}]" if r["slice"] else "")
        rows.append((r["verdict"].upper(), gate, r["reason"]))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"  {a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows)

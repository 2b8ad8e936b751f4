"""What the declarative pipeline costs over a bare training script, measured side by side in one run.

Bakes the default sklearn repo into a temporary folder and times, interleaved, N times each:
  bare      one Python process: read the CSV, split, fit the same preprocessing + estimator, save it with skops,
            compute the same test metrics (the yardstick: what a data scientist would write by hand)
  repro     `dvc repro --force`: validate-data -> train -> evaluate, three processes
  noop      `dvc repro` with nothing to do: DVC's own start-up, hashing and lock checks
  dvc_own   `dvc repro --force` of the same dvc.yaml, params and outputs, each stage's command replaced by copying
            its outputs from a finished run: what DVC itself spends running the stages (hashing, caching, the lock)
  floor     `dvc repro --force` of a three-stage pipeline whose train stage IS the bare script and whose other two
            stages are empty Python processes (floor_noop: its no-op): the least any three-stage pipeline costs
  stages    each stage's command alone (check-data, train, evaluate), to show where the time goes
and prints medians and the ratios to the bare script. Timings on a shared machine: read the ratios.

    python benchmarks/pipeline.py [--runs 5] [--variant sklearn-classification]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "sklearn-classification": {"framework": "sklearn", "task": "classification"},
    "sklearn-regression": {"framework": "sklearn", "task": "regression"},
}

BARE = """
import sys
import numpy as np, pandas as pd, skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

classification = sys.argv[1] == "classification"
if classification:
    path, target, cat, values = "data/breast_cancer.csv", "diagnosis", "size_band", ["small", "medium", "large"]
else:
    path, target, cat, values = "data/diabetes.csv", "progression", "sex", ["1", "2"]
frame = pd.read_csv(path, dtype={cat: object, **({target: object} if classification else {})})
labels = frame[target] if classification else None
train, test = train_test_split(frame, test_size=0.2, random_state=42, stratify=labels)
numeric = [c for c in frame.columns if c not in (cat, target)]
impute = SimpleImputer(strategy="constant", fill_value="__missing__")
onehot = OneHotEncoder(categories=[values], handle_unknown="ignore", sparse_output=False)
pre = ColumnTransformer([
    ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
    ("categorical", Pipeline([("impute", impute), ("onehot", onehot)]), [cat]),
])
if classification:
    model = LogisticRegression(C=1.0, max_iter=1000, random_state=42)
else:
    model = Ridge(alpha=1.0, random_state=42)
pipe = Pipeline([("preprocess", pre), ("model", model)]).fit(train.drop(columns=[target]), train[target])
sio.dump(pipe, "bare.skops")
x, y = test.drop(columns=[target]), test[target]
if classification:
    p = pipe.predict_proba(x)
    print(accuracy_score(y, pipe.predict(x)), f1_score(y, pipe.predict(x), pos_label="malignant"),
          roc_auc_score(y == "malignant", p[:, 1]), log_loss(y, p))
else:
    print(mean_absolute_error(y, pipe.predict(x)), r2_score(y, pipe.predict(x)))
"""


def bake(out: Path, *answers: str) -> Path:
    """The template baked with the defaults (and ``answers``) into ``out``; the repo's folder. A subprocess, so that
    the post-gen hook's message does not mix with what a benchmark prints."""
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(out), str(ROOT), *answers]
    subprocess.run(command, check=True, capture_output=True)
    (repo,) = (path for path in Path(out).iterdir() if path.is_dir())
    return repo


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


FLOOR_DVC_YAML = """
stages:
  validate-data:
    cmd: python -c "open('checked', 'w')"
    deps: [{data}]
    outs: [checked]
  train:
    cmd: python bare.py {task} > scores.txt
    deps: [{data}, checked, bare.py]
    outs: [bare.skops, scores.txt]
  evaluate:
    cmd: python -c "open('metrics.json', 'w').write('{{}}')"
    deps: [scores.txt]
    metrics: [metrics.json]
"""


def copy_instead_of_running(repo: Path, stash: Path) -> None:
    """Rewrite dvc.yaml so that each stage copies its outputs from ``stash`` instead of computing them."""
    document = yaml.safe_load((repo / "dvc.yaml").read_text())
    for stage in document["stages"].values():
        outs = [o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", []) + stage.get("metrics", [])]
        stage["cmd"] = " && ".join(f"cp -r {stash / o} {o}" for o in outs)
    (repo / "dvc.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="sklearn-classification")
    args = parser.parse_args()
    task = VARIANTS[args.variant]["task"]
    with tempfile.TemporaryDirectory() as tmp:
        repo = bake(Path(tmp), *(f"{k}={v}" for k, v in VARIANTS[args.variant].items()))
        env = {
            **os.environ,
            "PYTHONPATH": str(repo / "src"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        (repo / "bare.py").write_text(BARE)
        dvc = [sys.executable, "-m", "dvc"]
        subprocess.run([*dvc, "config", "--local", "core.no_scm", "true"], cwd=repo, env=env, check=True)
        timed([*dvc, "repro"], repo, env)  # warm the file system cache and create dvc.lock
        data = yaml.safe_load((repo / "model.yaml").read_text())["data"]["path"]

        own = Path(tmp) / "dvc-own"  # the same pipeline, outputs copied from the finished run
        shutil.copytree(repo, own, symlinks=True)
        copy_instead_of_running(own, repo)
        timed([*dvc, "repro", "--force"], own, env)

        floor = Path(tmp) / "floor"
        (floor / Path(data).parent).mkdir(parents=True)
        shutil.copy(repo / data, floor / data)
        shutil.copy(repo / "bare.py", floor / "bare.py")
        (floor / "dvc.yaml").write_text(FLOOR_DVC_YAML.format(data=data, task=task))
        subprocess.run([*dvc, "init", "--no-scm", "--quiet"], cwd=floor, env=env, check=True)
        timed([*dvc, "repro"], floor, env)

        package = [sys.executable, "-m", repo.name.replace("-", "_")]
        stages = ("check-data", "train", "evaluate")
        names = ("bare", "repro", "noop", "dvc_own", "floor", "floor_noop", *stages)
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.runs):  # interleaved, so that load on the machine hits all of them alike
            times["bare"].append(timed([sys.executable, "bare.py", task], repo, env))
            times["repro"].append(timed([*dvc, "repro", "--force"], repo, env))
            times["noop"].append(timed([*dvc, "repro"], repo, env))
            times["dvc_own"].append(timed([*dvc, "repro", "--force"], own, env))
            times["floor"].append(timed([*dvc, "repro", "--force"], floor, env))
            times["floor_noop"].append(timed([*dvc, "repro"], floor, env))
            for stage in stages:  # the stage commands alone, without DVC
                times[stage].append(timed([*package, stage], repo, env))
    m = {name: statistics.median(values) for name, values in times.items()}

    def per_run(numerator: str, subtrahend: str) -> float:
        """The median over runs of each run's ratio: robust when load shifts between runs."""
        ratios = [(a - b) / c for a, b, c in zip(times[numerator], times[subtrahend], times["bare"], strict=True)]
        return round(statistics.median(ratios), 2)

    result = {
        "variant": args.variant,
        "runs": args.runs,
        "median_seconds": {k: round(v, 3) for k, v in m.items()},
        "all_seconds": {k: [round(v, 3) for v in values] for k, values in times.items()},
        # the yardstick as written: dvc repro minus DVC's start-up (its no-op run), over the bare script
        "pipeline_over_bare": round((m["repro"] - m["noop"]) / m["bare"], 2),
        # the same, minus everything DVC itself does to run these stages: what the stage commands cost under DVC
        "stage_commands_over_bare": round((m["repro"] - m["dvc_own"]) / m["bare"], 2),
        # the least a three-stage DVC pipeline can cost, its train stage being the bare script itself
        "floor_over_bare": round((m["floor"] - m["floor_noop"]) / m["bare"], 2),
        "median_of_per_run_ratios": {
            "pipeline_over_bare": per_run("repro", "noop"),
            "stage_commands_over_bare": per_run("repro", "dvc_own"),
            "floor_over_bare": per_run("floor", "floor_noop"),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""What the declarative pipeline costs over a bare training script, measured side by side in one run.

Bakes the default sklearn repo into a temporary folder and times, interleaved, N times each:
  bare      one Python process: read the CSV, split, fit the same preprocessing + estimator, save it with skops,
            compute the same test metrics (the yardstick: what a data scientist would write by hand)
  repro     `dvc repro --force`: validate-data -> train -> export, evaluate: four processes, plots included
  noop      `dvc repro` with nothing to do: DVC's own start-up, hashing and lock checks
  stages    each stage's command alone (check-data, train, export, evaluate), to show where the time goes
and prints medians and the ratio (repro - noop) / bare. Timings on a shared machine: read the ratios.

    python benchmarks/pipeline.py [--runs 5] [--variant sklearn-classification]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

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


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="sklearn-classification")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(cookiecutter(str(ROOT), no_input=True, output_dir=tmp, extra_context=VARIANTS[args.variant]))
        env = {
            **os.environ,
            "PYTHONPATH": str(repo / "src"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        (repo / "bare.py").write_text(BARE)
        dvc = [sys.executable, "-m", "dvc"]
        subprocess.run([*dvc, "config", "--local", "core.no_scm", "true"], cwd=repo, env=env, check=True)
        task = VARIANTS[args.variant]["task"]
        timed([*dvc, "repro"], repo, env)  # warm the file system cache and create dvc.lock
        package = [sys.executable, "-m", repo.name.replace("-", "_")]
        stages = ("check-data", "train", "export", "evaluate")
        times: dict[str, list[float]] = {"bare": [], "repro": [], "noop": [], **{s: [] for s in stages}}
        for _ in range(args.runs):  # interleaved, so that load on the machine hits all of them alike
            times["bare"].append(timed([sys.executable, "bare.py", task], repo, env))
            times["repro"].append(timed([*dvc, "repro", "--force"], repo, env))
            times["noop"].append(timed([*dvc, "repro"], repo, env))
            for stage in stages:  # the stage commands alone, without DVC
                times[stage].append(timed([*package, stage], repo, env))
    median = {name: statistics.median(values) for name, values in times.items()}
    ratio = (median["repro"] - median["noop"]) / median["bare"]
    result = {
        "variant": args.variant,
        "runs": args.runs,
        "median_seconds": {k: round(v, 3) for k, v in median.items()},
        "all_seconds": {k: [round(v, 3) for v in values] for k, values in times.items()},
        "pipeline_over_bare": round(ratio, 2),
        "repro_over_bare_plus_noop": round(median["repro"] / (median["bare"] + median["noop"]), 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

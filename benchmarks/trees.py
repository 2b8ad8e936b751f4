"""Tree ensembles: the exported node-array runtime against the trained scikit-learn Pipeline, side by side.

    python benchmarks/trees.py [--repeats 200]

Bakes the default (sklearn classification) repo, then for RandomForest (100 trees), GradientBoosting and
HistGradientBoosting with their defaults: fits on the train split, saves the artifact, exports the runtime (with its
parity check), and times `predict_columns` for 1 and 100 test rows through both predictors, in one process with
OMP_NUM_THREADS=1. Prints a markdown table; read the ratios, the seconds depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline import bake  # benchmarks/ is on the path when these run as scripts

ESTIMATORS = {
    "RandomForestClassifier": {"n_estimators": 100},
    "GradientBoostingClassifier": {},
    "HistGradientBoostingClassifier": {},
}

# Runs inside the baked repo's package (PYTHONPATH=src): prints one table row per estimator.
MEASURE = """
import dataclasses, json, sys, time
from pathlib import Path
from clinical_risk_model.artifact import save_artifact
from clinical_risk_model.config import load_config
from clinical_risk_model.data import read_frame, split
from clinical_risk_model.export import export
from clinical_risk_model.lineage import lineage
from clinical_risk_model.runtime import exported_predictor, native_predictor
from clinical_risk_model.train import artifact_metadata, fit_sklearn

estimators, repeats, out = json.loads(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
base = load_config(Path("model.yaml"))
frame = read_frame(base)
for name, params in estimators.items():
    config = dataclasses.replace(base, model=dataclasses.replace(base.model, estimator=name, params=params))
    train_rows, test_rows = split(config, frame)
    pipeline = fit_sklearn(config, train_rows)
    metadata = {**artifact_metadata(config, lineage(config)), "classes": [str(c) for c in pipeline.classes_]}
    save_artifact(out / name / "model", metadata=metadata, features=config.data.features, pipeline=pipeline)
    manifest = export(config, out / name / "model", out / name / "runtime")
    assert manifest["estimator"]["kind"] == "trees" and manifest["parity"]["passed"], manifest["estimator"]
    predictors = {
        "runtime": exported_predictor(out / name / "runtime", out / name / "model", "classification"),
        "pipeline": native_predictor(out / name / "model"),
    }
    x = test_rows.drop(columns=[config.data.target])
    ms = {}
    for n in (1, 100):
        columns = {c: x[c].iloc[:n].tolist() for c in x.columns}
        for kind, predictor in predictors.items():
            predictor.predict_columns(columns, n)  # warm
            calls = repeats if n == 1 else max(1, repeats // 4)
            started = time.perf_counter()
            for _ in range(calls):
                predictor.predict_columns(columns, n)
            ms[kind, n] = (time.perf_counter() - started) / calls * 1000
    print(
        f"| {name} | {manifest['estimator']['trees']} | {ms['runtime', 1]:.2f} | {ms['pipeline', 1]:.2f} | "
        f"{ms['pipeline', 1] / ms['runtime', 1]:.0f}x | {ms['runtime', 100]:.2f} | {ms['pipeline', 100]:.2f} | "
        f"{ms['pipeline', 100] / ms['runtime', 100]:.0f}x |"
    )
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="calls per 1-row measurement (a quarter for 100)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = bake(Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
        print(f"load average {os.getloadavg()[0]:.1f}; ms per predict_columns call, one process, OMP_NUM_THREADS=1\n")
        print("| estimator | trees | 1 row: runtime | Pipeline | ratio | 100 rows: runtime | Pipeline | ratio |")
        print("|---|---|---|---|---|---|---|---|")
        sys.stdout.flush()
        script = [sys.executable, "-c", MEASURE, json.dumps(ESTIMATORS), str(args.repeats), str(Path(tmp) / "out")]
        subprocess.run(script, cwd=repo, env=env, check=True)


if __name__ == "__main__":
    main()

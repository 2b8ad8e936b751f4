"""Prediction-log overhead: the generated server with serving.prediction_log.sample_rate 0 and 1.0, side by side.

    python benchmarks/prediction_log.py [--duration 10] [--rounds 3] [--connections 1] [--workers 2] [--out DIR]

Bakes the default repo, trains and exports it (benchmarks/serving.py's prepare_repo), then starts the server with
logging off and with every row logged to a file, alternating A/B for --rounds rounds of wrk with single-row POSTs,
and reports the medians and the ratios (logged / not logged). Also times PredictionLogger.log() in-process.
Timings are only comparable within one run on one machine: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving as base  # the serving benchmark's setup and wrk helpers

PACKAGE = base.PACKAGE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds (alternating, to share the machine's drift)")
    parser.add_argument("--connections", type=int, default=1, help="1: latency of one caller; 16: under load")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=base.ROOT / "build" / "bench-log")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    repo = base.prepare_repo(args.out)
    row = base.example_rows(repo, 1)
    log_file = args.out / "predictions.jsonl"
    configs = {"off": write_config(repo, 0.0, "stdout"), "on": write_config(repo, 1.0, str(log_file))}
    results: dict[str, list[dict[str, object]]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for name, config in configs.items():
            port = base.free_ports(1)[0]
            server = base.Server(
                f"sample_rate {'1.0' if name == 'on' else '0'}",
                [
                    sys.executable,
                    "-m",
                    PACKAGE,
                    "--config",
                    str(config),
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                ],
                f"http://127.0.0.1:{port}/v2/health/ready",
                f"http://127.0.0.1:{port}/predict",
                {"1": json.dumps({"instances": row})},
                env={"PYTHONPATH": str(repo / "src")},
                cwd=repo,
            )
            results[name].append(base.measure(server, args))
            print(json.dumps(results[name][-1]), file=sys.stderr)
    logged = sum(1 for _ in log_file.open()) if log_file.exists() else 0
    print(table(results, args, logged, in_process(repo)))
    return 0


def write_config(repo: Path, rate: float, destination: str) -> Path:
    text = (repo / "model.yaml").read_text()
    old = "prediction_log: {sample_rate: 0.0, destination: stdout}"
    assert old in text, "model.yaml's serving.prediction_log line changed; update the benchmark"
    path = repo / f"model-log-{'on' if rate else 'off'}.yaml"
    path.write_text(text.replace(old, f"prediction_log: {{sample_rate: {rate}, destination: {destination}}}"))
    return path


def in_process(repo: Path) -> dict[str, float]:
    """Microseconds per PredictionLogger.log() call for one 11-feature row (rate 1.0; and 0.1)."""
    code = textwrap.dedent(
        f"""
        import json, tempfile, time
        from {PACKAGE}.config import load_config
        from {PACKAGE}.prediction_log import PredictionLogger
        c = load_config("model.yaml")
        columns = {{f.name: [1.0] for f in c.data.features}}
        out = {{}}
        for rate in (1.0, 0.1):
            with tempfile.TemporaryDirectory() as tmp:
                logger = PredictionLogger(rate, tmp + "/log.jsonl", "1", c.data.feature_names, queue_size=100_000)
                with logger:
                    n = 50_000
                    start = time.perf_counter()
                    for i in range(n):
                        logger.log("r", columns, ["benign"], [{{"benign": 0.9, "malignant": 0.1}}])
                    out[str(rate)] = (time.perf_counter() - start) / n * 1e6
        print(json.dumps(out))
        """
    )
    return json.loads(base.run(sys.executable, "-c", code, cwd=repo, env={"PYTHONPATH": str(repo / "src")}))


def table(results: dict[str, list[dict[str, object]]], args: argparse.Namespace, logged: int, micro: dict) -> str:
    def median(name: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in results[name])

    lines = [
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, single-row POST /predict, "
        f"{args.workers} workers, "
        f"{args.rounds} alternating rounds, {os.cpu_count()} CPUs shared with wrk; medians",
        "",
        "| prediction log | req/s | p50 ms | p99 ms |",
        "|---|---|---|---|",
    ]
    for name, label in (("off", "off (sample_rate 0)"), ("on", "every row to a file (sample_rate 1.0)")):
        lines.append(
            f"| {label} | {median(name, '1_rps'):.0f} | {median(name, '1_p50_ms')} | {median(name, '1_p99_ms')} |"
        )
    lines += [
        f"| **ratio on/off** | {median('on', '1_rps') / median('off', '1_rps'):.3f} | "
        f"{median('on', '1_p50_ms') / median('off', '1_p50_ms'):.3f} | "
        f"{median('on', '1_p99_ms') / median('off', '1_p99_ms'):.3f} |",
        "",
        f"Rows logged during the run: {logged}. In-process cost of `PredictionLogger.log()` for one row: "
        f"{micro['1.0']:.1f} us at sample_rate 1.0, {micro['0.1']:.1f} us at 0.1.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

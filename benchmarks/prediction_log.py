"""Prediction-log overhead: the generated server with serving.prediction_log.sample_rate 0 and 1.0, side by side.

    python benchmarks/prediction_log.py [--duration 10] [--rounds 3] [--connections 1] [--workers 2] [--out DIR]

Bakes the default repo and trains it, which also exports the runtime (benchmarks/serving.py's prepare_repo), then
starts the server with logging off and with every row logged to a file, alternating A/B for --rounds rounds of wrk
with single-row POSTs, and reports the medians and the ratios (logged / not logged). Also times
PredictionLogger.log() in-process.
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
    print(table(results, args, logged, in_process(repo, configs)))
    return 0


def write_config(repo: Path, rate: float, destination: str) -> Path:
    text = (repo / "model.yaml").read_text()
    old = "prediction_log: {sample_rate: 0.0, destination: stdout}"
    assert old in text, "model.yaml's serving.prediction_log line changed; update the benchmark"
    path = repo / f"model-log-{'on' if rate else 'off'}.yaml"
    path.write_text(text.replace(old, f"prediction_log: {{sample_rate: {rate}, destination: {destination}}}"))
    return path


def in_process(repo: Path, configs: dict[str, Path]) -> dict[str, float]:
    """Microseconds per call, in one process, without the network: the /predict handler for one row with the log
    off and on (alternating blocks, median), and PredictionLogger.log() alone."""
    code = textwrap.dedent(
        f"""
        import asyncio, json, statistics, sys, tempfile, time
        from pathlib import Path
        from {PACKAGE}.config import load_config
        from {PACKAGE}.prediction_log import PredictionLogger
        from {PACKAGE}.serve import App
        configs = json.loads(sys.argv[1])
        body = {{"instances": json.loads(sys.argv[2])}}
        apps = {{}}
        for name, path in configs.items():
            app = App(load_config(path), Path("artifacts/model"), Path("artifacts/runtime"))
            app.load()
            app.prediction_log.start()
            apps[name] = app
        blocks = {{name: [] for name in apps}}

        async def block(app):
            start = time.perf_counter()
            for _ in range(2000):
                await app.predict(body, "r")
            return (time.perf_counter() - start) / 2000 * 1e6

        loop = asyncio.new_event_loop()
        for _ in range(15):
            for name, app in apps.items():
                blocks[name].append(loop.run_until_complete(block(app)))
        out = {{f"handler_{{name}}": statistics.median(times) for name, times in blocks.items()}}
        for app in apps.values():
            app.prediction_log.close()
        c = load_config("model.yaml")
        columns = {{f.name: [1.0] for f in c.data.features}}
        with tempfile.TemporaryDirectory() as tmp:
            with PredictionLogger(1.0, tmp + "/log.jsonl", "1", c.data.feature_names) as logger:
                start = time.perf_counter()
                for i in range(50_000):
                    logger.log("r", columns, ["benign"], [{{"benign": 0.9, "malignant": 0.1}}])
                out["log_call"] = (time.perf_counter() - start) / 50_000 * 1e6
        print(json.dumps(out))
        """
    )
    row = json.dumps(base.example_rows(repo, 1))
    args = (json.dumps({k: str(v) for k, v in configs.items()}), row)
    return json.loads(base.run(sys.executable, "-c", code, *args, cwd=repo, env={"PYTHONPATH": str(repo / "src")}))


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
        f"Rows logged during the run: {logged}.",
        "",
        "In one process, no network (median of 15 alternating blocks of 2,000 calls):",
        "",
        "| | us per call |",
        "|---|---|",
        f"| `/predict` handler, 1 row, log off | {micro['handler_off']:.1f} |",
        f"| `/predict` handler, 1 row, every row logged | {micro['handler_on']:.1f} |",
        f"| **ratio on/off** | {micro['handler_on'] / micro['handler_off']:.3f} |",
        f"| `PredictionLogger.log()` alone (+ its share of the writer thread) | {micro['log_call']:.1f} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""Serving benchmark: the generated server, `mlflow models serve` and a BentoML service of the same model, side by side.

    python benchmarks/serving.py [--duration 10] [--connections 16] [--workers 2] [--out build/bench]

Bakes the default (sklearn classification) repo, trains it, exports the serving runtime, saves the same fitted
Pipeline as an MLflow model and behind a BentoML service, then for each server: cold start to ready, wrk with
single-row and 100-row POSTs at N connections on loopback for a bounded time, and the RSS of its processes.
mlflow and bentoml live in their own virtualenv (--bench-venv, created on first use), never in the locks.
Prints a markdown table. Timings are only comparable within one run on one machine: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import bake  # benchmarks/ is on the path when these run as scripts

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "clinical_risk_model"
BENCH_PACKAGES = ["mlflow", "bentoml", "scikit-learn==1.9.1", "skops==0.16.0", "pandas"]


@dataclass
class Server:
    name: str
    command: list[str]
    ready_url: str
    predict_url: str
    body: dict[str, str]  # "1" / "100" -> JSON body
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for every server")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--bench-venv", type=Path, default=Path("/tmp/modelops-bench-venv"))
    parser.add_argument("--only", nargs="*", default=["generated", "mlflow", "bentoml"])
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("benchmark: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    repo = prepare_repo(args.out)
    venv_python = ensure_bench_venv(args.bench_venv)
    rows = example_rows(repo, 100)
    servers = build_servers(repo, venv_python, rows, args.workers, args.out)
    results = []
    for server in servers:
        if server.name.split(" ")[0].lower() in args.only:
            results.append(measure(server, args))
            print(json.dumps(results[-1]), file=sys.stderr)
    print(table(results, args))
    return 0


# ---- setup -----------------------------------------------------------------------------------------------------


def run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env={**os.environ, **(env or {})}, text=True, capture_output=True
    )
    if result.returncode != 0:
        raise SystemExit(f"benchmark: {' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def prepare_repo(out: Path) -> Path:
    """Bake the defaults and train (which also exports the serving runtime): the model every server serves."""
    shutil.rmtree(out / "repo", ignore_errors=True)
    repo = bake(out / "repo")
    trained = run(sys.executable, "-m", PACKAGE, "train", cwd=repo, env={"PYTHONPATH": str(repo / "src")})
    print("\n".join(line for line in trained.splitlines() if line.startswith("export:")), file=sys.stderr)
    return repo


def ensure_bench_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        run(sys.executable, "-m", "venv", venv)
        run(python, "-m", "pip", "install", "--quiet", *BENCH_PACKAGES)
    return python


def example_rows(repo: Path, count: int) -> list[dict[str, object]]:
    code = textwrap.dedent(
        f"""
        import json
        from {PACKAGE}.config import load_config
        from {PACKAGE}.export import parity_rows
        c = load_config("model.yaml")
        cols, _ = parity_rows(c, [{{"name": f.name, "type": f.type}} for f in c.data.features])
        print(json.dumps([{{k: v[i] for k, v in cols.items()}} for i in range({count})]))
        """
    )
    return json.loads(run(sys.executable, "-c", code, cwd=repo, env={"PYTHONPATH": str(repo / "src")}))


def build_servers(repo: Path, venv_python: Path, rows: list, workers: int, out: Path) -> list[Server]:
    model_file = repo / "artifacts" / "model" / "model.skops"
    mlflow_dir = out / "mlflow-model"
    shutil.rmtree(mlflow_dir, ignore_errors=True)
    save = textwrap.dedent(
        f"""
        import json, mlflow.sklearn, pandas as pd, skops.io as sio
        from mlflow.models import infer_signature
        pipe = sio.load({str(model_file)!r}, trusted=sio.get_untrusted_types(file={str(model_file)!r}))
        frame = pd.DataFrame(json.loads({json.dumps(json.dumps(rows[:5]))}))
        mlflow.sklearn.save_model(pipe, {str(mlflow_dir)!r}, signature=infer_signature(frame, pipe.predict(frame)),
                                  pyfunc_predict_fn="predict_proba", serialization_format="cloudpickle")
        """
    )
    run(venv_python, "-c", save)
    bento_dir = out / "bento"
    bento_dir.mkdir(parents=True, exist_ok=True)
    (bento_dir / "service.py").write_text(
        textwrap.dedent(
            f"""
            import bentoml, pandas as pd, skops.io as sio

            MODEL = {str(model_file)!r}

            @bentoml.service(workers={workers}, logging={{"access": {{"enabled": False}}}})
            class Classifier:
                def __init__(self) -> None:
                    self.pipe = sio.load(MODEL, trusted=sio.get_untrusted_types(file=MODEL))

                @bentoml.api
                def predict(self, instances: list[dict]) -> dict:
                    frame = pd.DataFrame(instances)
                    return {{"predictions": self.pipe.predict(frame).tolist(),
                            "probabilities": self.pipe.predict_proba(frame).tolist()}}
            """
        )
    )
    bin_dir = venv_python.parent
    ports = iter(free_ports(3))
    ours, mlf, bento = next(ports), next(ports), next(ports)
    one, hundred = rows[:1], rows[:100]
    return [
        Server(
            f"generated ({workers} workers)",
            [sys.executable, "-m", PACKAGE, "serve", "--port", str(ours), "--workers", str(workers)],
            f"http://127.0.0.1:{ours}/v2/health/ready",
            f"http://127.0.0.1:{ours}/predict",
            {"1": json.dumps({"instances": one}), "100": json.dumps({"instances": hundred})},
            env={"PYTHONPATH": str(repo / "src")},
            cwd=repo,
        ),
        Server(
            f"mlflow models serve ({workers} workers)",
            [
                str(bin_dir / "mlflow"),
                "models",
                "serve",
                "-m",
                str(mlflow_dir),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(mlf),
                "-w",
                str(workers),
            ],
            f"http://127.0.0.1:{mlf}/ping",
            f"http://127.0.0.1:{mlf}/invocations",
            {"1": json.dumps({"inputs": one}), "100": json.dumps({"inputs": hundred})},
            env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"},
        ),
        Server(
            f"BentoML ({workers} workers)",
            [str(bin_dir / "bentoml"), "serve", "service:Classifier", "--host", "127.0.0.1", "--port", str(bento)],
            f"http://127.0.0.1:{bento}/readyz",
            f"http://127.0.0.1:{bento}/predict",
            {"1": json.dumps({"instances": one}), "100": json.dumps({"instances": hundred})},
            env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1", "BENTOML_DO_NOT_TRACK": "true"},
            cwd=bento_dir,
        ),
    ]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# ---- measuring -------------------------------------------------------------------------------------------------


def measure(server: Server, args: argparse.Namespace) -> dict[str, object]:
    env = {**os.environ, **server.env}
    started = time.monotonic()
    process = subprocess.Popen(
        server.command,
        cwd=server.cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        ready = wait_ready(server.ready_url, process, 120)
        cold = time.monotonic() - started
        result: dict[str, object] = {"server": server.name, "ready_s": round(cold, 2)}
        for rows, body in server.body.items():
            check(server.predict_url, body)
            wrk = run_wrk(server.predict_url, body, args)
            result[f"{rows}_rps"] = wrk["rps"]
            result[f"{rows}_rows_per_s"] = round(wrk["rps"] * int(rows))
            result[f"{rows}_p50_ms"], result[f"{rows}_p99_ms"] = wrk["p50"], wrk["p99"]
            result[f"{rows}_errors"] = wrk["errors"]
        workers = tree_rss(process.pid)
        result["rss_total_mib"] = round(sum(workers.values()) / 2**20)
        result["rss_max_process_mib"] = round(max(workers.values()) / 2**20)
        del ready
        return result
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_ready(url: str, process: subprocess.Popen, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"benchmark: server exited {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.02)
    raise SystemExit(f"benchmark: {url} not ready in {timeout}s")


def check(url: str, body: str) -> None:
    request = urllib.request.Request(url, data=body.encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200, answer.read()


def run_wrk(url: str, body: str, args: argparse.Namespace) -> dict[str, float]:
    script = args.out / "post.lua"
    (args.out / "body.json").write_text(body)
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.body = io.open("{args.out / "body.json"}"):read("*a")\n'
    )
    output = subprocess.run(
        [
            "wrk",
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{args.duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": round(float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))),
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),
        "errors": int(errors.group(1)) if errors else 0,
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit], 2)


def tree_rss(pid: int) -> dict[int, int]:
    """RSS in bytes of a process and all its descendants."""
    out: dict[int, int] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            out[current] = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, AttributeError):
            continue
    return out


def table(results: list[dict[str, object]], args: argparse.Namespace) -> str:
    head = (
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s on loopback, "
        f"{os.cpu_count()} CPUs shared with wrk, load average {os.getloadavg()[0]:.1f} at the end\n\n"
        "| server | 1-row req/s | 1-row p50 / p99 ms | 100-row rows/s | 100-row p50 / p99 ms | ready s | RSS total / "
        "largest process MiB | non-2xx |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['server']} | {r['1_rps']:,} | {r['1_p50_ms']} / {r['1_p99_ms']} | {r['100_rows_per_s']:,} | "
        f"{r['100_p50_ms']} / {r['100_p99_ms']} | {r['ready_s']} | {r['rss_total_mib']} / {r['rss_max_process_mib']} | "
        f"{int(r['1_errors']) + int(r['100_errors'])} |"
        for r in results
    ]
    base = next((r for r in results if str(r["server"]).startswith("mlflow")), None)
    ours = next((r for r in results if str(r["server"]).startswith("generated")), None)
    ratio = ""
    if base and ours:
        ratio = (
            f"\n\ngenerated / mlflow: {ours['1_rps'] / base['1_rps']:.1f}x single-row req/s, "
            f"{ours['100_rows_per_s'] / base['100_rows_per_s']:.1f}x 100-row rows/s"
        )
    return head + "\n".join(lines) + ratio


if __name__ == "__main__":
    sys.exit(main())

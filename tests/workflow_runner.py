"""Run a GitHub workflow's jobs here, step by step, in a baked repository with a stand-in GitHub environment.

No workflow can run on GitHub from this machine, so this runs what it can exactly as written: each job's `run:`
steps in order, with `env:` and `if:` evaluated (a small subset of GitHub's expression language: contexts,
literals, == != && || !, always() success() failure() cancelled()), GITHUB_OUTPUT / GITHUB_ENV /
GITHUB_STEP_SUMMARY / GITHUB_EVENT_PATH files, step and job outputs, `continue-on-error`, job `needs:` and `if:`.
A `uses:` step runs its local equivalent (artifacts go to a folder; an image build goes to this machine's Docker
engine) or is skipped; a `make` target that needs the
network (GitHub API, registry, Sigstore, cloud) runs a given stand-in or is skipped. Every skip prints its reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# A stand-in for a `make` target or an action: returns (outcome, note, outputs), or a str: skip with this reason.
StandIn = Callable[["Runner", dict[str, str]], tuple[str, str, dict[str, str]]] | str

TOKEN = re.compile(r"\s*(?:('(?:[^']|'')*')|(&&|\|\||==|!=|!|\(|\)|,)|([A-Za-z_][A-Za-z0-9_.\-*]*)|(-?\d+(?:\.\d+)?))")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
STATUS_FUNCTIONS = ("always(", "success(", "failure(", "cancelled(")
# The local stand-in for the Dockerfile's pinned python base image (.ci/base-image.sh builds it).
BASE_IMAGE = os.environ.get("MODELOPS_BASE_IMAGE", "modelops-base:python3.11")


@dataclass
class StepResult:
    name: str
    outcome: str  # success | failure | skipped (GitHub's steps.<id>.outcome)
    conclusion: str  # as outcome, but success when continue-on-error absorbed a failure
    note: str = ""
    log: str = ""


@dataclass
class JobResult:
    job_id: str
    result: str  # success | failure | skipped
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    workspace: Path = Path()

    def step(self, name_part: str) -> StepResult:
        return next(s for s in self.steps if name_part in s.name)

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s.name}: {s.outcome} {s.note}\n{s.log}" for s in self.steps)


class Runner:
    """One workflow run: an event, a workspace, and a folder standing in for the run's artifact storage."""

    def __init__(
        self,
        workflow: Path,
        workspace: Path,
        *,
        event_name: str,
        ref: str,
        event: Mapping[str, Any],
        scratch: Path,
        artifact_store: Path,
        repository: str = "your-org/clinical-risk-model",
        secrets: Mapping[str, str] | None = None,
        stand_ins: Mapping[str, StandIn] | None = None,
        env: Mapping[str, str] | None = None,
        origin: Path | None = None,
        sha: str | None = None,
        data_from: Path | None = None,
        data_jobs: frozenset[str] = frozenset(),
    ) -> None:
        """With `origin` (a git repository standing in for GitHub), each job checks out its own clone of `sha`,
        as on a fresh runner, and the jobs in `data_jobs` get the DVC-tracked data from `data_from`, as `dvc pull`
        brings it; without `origin`, all jobs share `workspace`."""
        self.workflow = yaml.load(workflow.read_text(), Loader=yaml.BaseLoader)
        self.workspace = workspace
        self.origin = origin
        self.data_from = data_from
        self.data_jobs = data_jobs
        self.job_id = ""
        self.scratch = scratch
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.artifacts = artifact_store
        self.stand_ins = dict(stand_ins or {})
        self.base_env = dict(env or {})
        sha = sha or git(origin or workspace, "rev-parse", "HEAD")
        event_path = scratch / "event.json"
        event_path.write_text(json.dumps(event))
        self.github: dict[str, Any] = {
            "event_name": event_name,
            "event": dict(event),
            "ref": ref,
            "ref_name": ref.rsplit("/", 1)[-1],
            "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
            "sha": sha,
            "repository": repository,
            "repository_owner": repository.split("/")[0],
            "server_url": "https://github.com",
            "api_url": "https://api.github.com",
            "run_id": "1",
            "run_attempt": "1",
            "actor": "octocat",
            "workflow": self.workflow.get("name", workflow.stem),
            "token": "stand-in-token",
            "base_ref": event.get("pull_request", {}).get("base", {}).get("ref", ""),
            "head_ref": event.get("pull_request", {}).get("head", {}).get("ref", ""),
            "workspace": str(workspace),
            "event_path": str(event_path),
        }
        self.secrets = dict(secrets or {})
        self.jobs: dict[str, JobResult] = {}
        self.printed: list[str] = []

    # ---- jobs ---------------------------------------------------------------------------------------------------

    def run_all(self) -> dict[str, JobResult]:
        for job_id in self._ordered():
            self.run_job(job_id)
        return self.jobs

    def _ordered(self) -> list[str]:
        jobs = self.workflow["jobs"]
        done: list[str] = []
        while len(done) < len(jobs):
            ready = [j for j in jobs if j not in done and all(n in done for n in needs(jobs[j]))]
            assert ready, f"cycle in needs: {set(jobs) - set(done)}"
            done.append(ready[0])
        return done

    def run_job(self, job_id: str) -> JobResult:
        job = self.workflow["jobs"][job_id]
        need_results = [self.jobs[n].result for n in needs(job)]
        context = self._context(steps={})
        condition = job.get("if", "")
        status = {
            "success": all(r == "success" for r in need_results),
            "failure": any(r == "failure" for r in need_results),
        }
        if not self._condition(condition, context, status):
            result = JobResult(job_id, "skipped")
            self.jobs[job_id] = result
            self._say(f"job {job_id}: skipped (if: {condition or 'success()'})")
            return result
        summary = self.scratch / f"{job_id}.summary.md"
        summary.write_text("")
        result = JobResult(job_id, "success")
        self.job_id = job_id
        if self.origin is not None:  # a fresh runner: nothing but what checkout brings
            self.workspace = self.scratch / job_id / "workspace"
            self.github["workspace"] = str(self.workspace)
        result.workspace = self.workspace
        step_context: dict[str, dict[str, Any]] = {}
        extra_env: dict[str, str] = {}
        self._say(f"job {job_id}: running")
        for index, step in enumerate(job.get("steps", [])):
            name = step.get("name") or step.get("uses") or step.get("run", "").strip()
            context = self._context(steps=step_context)
            if not self._condition(
                step.get("if", ""),
                context,
                {"success": result.result == "success", "failure": result.result == "failure"},
            ):
                outcome = StepResult(name, "skipped", "skipped", "if: false")
            else:
                env = {
                    **self._render_map(self.workflow.get("env", {}), context),
                    **self._render_map(job.get("env", {}), context),
                    **extra_env,
                    **self._render_map(step.get("env", {}), context),
                }
                outcome, outputs, extra = self._run_step(job_id, index, step, name, env, context, summary)
                extra_env.update(extra)
                if "id" in step:
                    step_context[step["id"]] = {"outputs": outputs}
                if outcome.outcome == "failure" and step.get("continue-on-error", "false") != "true":
                    result.result = "failure"
                if outcome.outcome == "failure" and step.get("continue-on-error", "false") == "true":
                    outcome.conclusion = "success"
            if "id" in step:
                step_context.setdefault(step["id"], {"outputs": {}})
                step_context[step["id"]].update(outcome=outcome.outcome, conclusion=outcome.conclusion)
            result.steps.append(outcome)
            self._say(f"  {outcome.outcome:8} {name}{'  [' + outcome.note + ']' if outcome.note else ''}")
        context = self._context(steps=step_context)
        result.outputs = self._render_map(job.get("outputs", {}), context)
        result.summary = summary.read_text()
        self.jobs[job_id] = result
        self._say(f"job {job_id}: {result.result}")
        return result

    # ---- steps --------------------------------------------------------------------------------------------------

    def _run_step(
        self, job_id: str, index: int, step: dict, name: str, env: dict[str, str], context: dict, summary: Path
    ) -> tuple[StepResult, dict[str, str], dict[str, str]]:
        if "uses" in step:
            action = step["uses"].split("@")[0]
            inputs = self._render_map(step.get("with", {}), context)
            stand_in = self.stand_ins.get(action) or ACTIONS.get(action)
            if stand_in is None:
                return StepResult(name, "success", "success", f"SKIPPED uses: {action}: no local equivalent"), {}, {}
            if isinstance(stand_in, str):
                return StepResult(name, "success", "success", f"SKIPPED uses: {action}: {stand_in}"), {}, {}
            outcome, note, outputs = stand_in(self, inputs)
            return StepResult(name, outcome, outcome, note), outputs, {}
        command = step["run"].strip()
        target = re.fullmatch(r"make ([a-z-]+)", command)
        stand_in = self.stand_ins.get(target.group(1)) if target else None
        if isinstance(stand_in, str):
            return StepResult(name, "success", "success", f"SKIPPED make {target.group(1)}: {stand_in}"), {}, {}
        if stand_in is not None:
            outcome, note, outputs = stand_in(self, env)
            return StepResult(name, outcome, outcome, f"stand-in: {note}"), outputs, {}
        files = {kind: self.scratch / f"{job_id}.{index}.{kind}" for kind in ("output", "env")}
        for path in files.values():
            path.write_text("")
        full_env = {
            **os.environ,
            **self.base_env,
            **{f"GITHUB_{k.upper()}": str(v) for k, v in self.github.items() if isinstance(v, str)},
            "GITHUB_OUTPUT": str(files["output"]),
            "GITHUB_ENV": str(files["env"]),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_ACTIONS": "true",
            "RUNNER_TEMP": str(self.scratch),
            **env,
        }
        full_env.pop("MAKEFLAGS", None)
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=self.workspace,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        outcome = "success" if done.returncode == 0 else "failure"
        log = done.stdout + done.stderr
        return (
            StepResult(name, outcome, outcome, "" if outcome == "success" else f"exit {done.returncode}", log),
            parse_kv(files["output"].read_text()),
            parse_kv(files["env"].read_text()),
        )

    # ---- expressions --------------------------------------------------------------------------------------------

    def _context(self, steps: dict) -> dict[str, Any]:
        return {
            "github": self.github,
            "steps": steps,
            "needs": {j: {"result": r.result, "outputs": r.outputs} for j, r in self.jobs.items()},
            "secrets": self.secrets,
            "vars": {},
            "env": {},
            "matrix": {},
            "runner": {"temp": str(self.scratch), "os": "Linux"},
        }

    def _condition(self, condition: str, context: dict, status: dict[str, bool]) -> bool:
        expression = condition.strip()
        match = re.fullmatch(r"\$\{\{\s*(.*?)\s*\}\}", expression, flags=re.DOTALL)
        expression = match.group(1) if match else expression
        if not expression:
            return status["success"]
        if not any(f in expression for f in STATUS_FUNCTIONS):
            expression = f"success() && ({expression})"
        return bool(evaluate(expression, context, status))

    def _render(self, value: str, context: dict) -> str:
        return EXPRESSION.sub(lambda m: to_string(evaluate(m.group(1), context, {})), value)

    def _render_map(self, values: Mapping[str, str], context: dict) -> dict[str, str]:
        return {k: self._render(str(v), context) for k, v in (values or {}).items()}

    def _say(self, line: str) -> None:
        self.printed.append(line)
        print(line)


# ---- the expression language (the subset the workflows use) ---------------------------------------------------


def evaluate(expression: str, context: dict, status: dict[str, bool]) -> Any:
    python: list[str] = []
    position = 0
    text = expression.strip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ValueError(f"cannot read expression at {text[position:]!r} in {expression!r}")
        position = match.end()
        string, operator, name, number = match.groups()
        if string is not None:
            python.append(repr(string[1:-1].replace("''", "'")))
        elif operator is not None:
            python.append({"&&": " and ", "||": " or ", "!": " not "}.get(operator, f" {operator} "))
        elif number is not None:
            python.append(number)
        elif text[position : position + 1] == "(" or re.match(r"\s*\(", text[position:]):
            python.append(f"_{name}")
        elif name in ("true", "false", "null"):
            python.append({"true": "True", "false": "False", "null": "None"}[name])
        else:
            python.append(f"_lookup({name!r})")
    functions = {
        "_always": lambda: True,
        "_success": lambda: status.get("success", True),
        "_failure": lambda: status.get("failure", False),
        "_cancelled": lambda: False,
        "_startsWith": lambda a, b: str(a).lower().startswith(str(b).lower()),
        "_contains": lambda a, b: str(b).lower() in str(a).lower(),
        "_lookup": lambda name: lookup(context, name),
    }
    return eval("".join(python), {"__builtins__": {}}, functions)


def lookup(context: Mapping[str, Any], name: str) -> Any:
    head, *rest = name.split(".")
    if head not in context:
        raise KeyError(f"unknown context {head!r} in {name!r}")
    value: Any = context[head]
    for part in rest:
        value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return ""
    return value


def to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def needs(job: Mapping[str, Any]) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def parse_kv(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV lines: key=value, or key<<DELIMITER ... DELIMITER."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            values[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


# ---- local equivalents of the actions ---------------------------------------------------------------------------


def _upload(runner: Runner, inputs: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    target = runner.artifacts / inputs["name"]
    shutil.rmtree(target, ignore_errors=True)
    paths = [p.strip() for p in inputs["path"].splitlines() if p.strip()]
    found = 0
    for relative in paths:
        source = runner.workspace / relative
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
            found += 1
        elif source.exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / source.name)
            found += 1
    if not found and inputs.get("if-no-files-found") == "error":  # as on GitHub: an error only when nothing matched
        return "failure", f"upload-artifact: no files found for {paths}", {}
    url = f"file://{target}"
    return "success", f"artifact {inputs['name']}: {found} path(s) -> {target}", {"artifact-url": url}


def _download(runner: Runner, inputs: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    source = runner.artifacts / inputs["name"]
    if not source.is_dir():
        return "failure", f"download-artifact: no artifact {inputs['name']} in this run", {}
    destination = runner.workspace / inputs.get("path", ".")
    shutil.copytree(source, destination, dirs_exist_ok=True)
    return "success", f"artifact {inputs['name']} -> {destination}", {"download-path": str(destination)}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _build_load(runner: Runner, inputs: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    """docker/build-push-action with `load: true`: the same build (context, tags, build-args, labels) in this machine's
    Docker engine, from the local stand-in for the pinned base image (no registry here to pull it from or push to)."""
    if inputs.get("push", "false") != "false" or inputs.get("load") != "true":
        return "failure", "build-push-action: only `load: true` without push runs here (no registry)", {}
    import docker

    client = docker.from_env()
    tags = _lines(inputs["tags"])
    build_args = dict(line.split("=", 1) for line in _lines(inputs.get("build-args", "")))
    labels = dict(line.split("=", 1) for line in _lines(inputs.get("labels", "")))
    context = runner.workspace / inputs.get("context", ".")
    ca = os.environ.get("PIP_CERT")  # pip in the builder stage needs it on a TLS-intercepting network (FACTS.md)
    if ca:
        shutil.copyfile(ca, context / ".build-ca.crt")
    log: list[str] = []
    try:
        for chunk in client.api.build(
            path=str(context),
            tag=tags[0],
            buildargs={**build_args, "BASE_IMAGE": BASE_IMAGE},
            labels=labels,
            rm=True,
            forcerm=True,
            decode=True,
        ):
            log.append(chunk.get("stream", "").rstrip())
            if "error" in chunk:
                return "failure", f"docker build failed: {chunk['error']}: {' | '.join(log[-8:])}", {}
    finally:
        (context / ".build-ca.crt").unlink(missing_ok=True)
    image = client.images.get(tags[0])
    for tag in tags[1:]:
        repository, _, name = tag.rpartition(":")
        image.tag(repository, name)
    note = f"stand-in: built {', '.join(tags)} ({image.id[:19]}) in this engine, FROM {BASE_IMAGE}"
    return "success", note, {"imageid": image.id}


def _checkout(runner: Runner, inputs: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    if runner.origin is None:
        return "success", "stand-in: the workspace is the baked repository at HEAD", {}
    ref = inputs.get("ref") or runner.github["sha"]
    runner.workspace.parent.mkdir(parents=True, exist_ok=True)
    git(runner.workspace.parent, "clone", "--quiet", str(runner.origin), str(runner.workspace))
    git(runner.workspace, "checkout", "--quiet", ref)
    stand_in_venv(runner.workspace)
    pulled = []
    for dvc_file in sorted(runner.workspace.glob("data/*.dvc")):
        data = dvc_file.with_suffix("")
        if runner.data_from is not None and runner.job_id in runner.data_jobs and not data.exists():
            shutil.copy2(runner.data_from / "data" / data.name, data)
            pulled.append(data.name)
    brought = f"; {', '.join(pulled)} as `dvc pull` brings it" if pulled else ""
    return "success", f"stand-in: a fresh clone at {ref[:12]} with a stand-in .venv{brought}", {}


ACTIONS: dict[str, StandIn] = {
    "actions/checkout": _checkout,
    "actions/setup-python": lambda r, i: ("success", f"stand-in: this interpreter, {sys.executable}", {}),
    "actions/upload-artifact": _upload,
    "actions/download-artifact": _download,
    "docker/build-push-action": _build_load,
    "docker/login-action": "no registry can be reached from here",
    "anchore/sbom-action": "scans the pushed image, which exists only in the registry",
    "actions/attest": "Sigstore signing and the GitHub attestations API need the network",
    "aws-actions/configure-aws-credentials": "OIDC to AWS needs GitHub's token service",
    "google-github-actions/auth": "OIDC to Google Cloud needs GitHub's token service",
    "azure/login": "OIDC to Azure needs GitHub's token service",
}


def stand_in_venv(repo: Path) -> None:
    """A .venv whose tools are this interpreter with the repo's src on the path: `make setup` is then a no-op."""
    bin_dir = repo / ".venv" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    prefix = f'#!/bin/sh\nPYTHONPATH="{repo / "src"}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}"'
    for tool, module in {
        "python": "",
        "python3": "",
        "ruff": " -m ruff",
        "dvc": " -m dvc",
        "pytest": " -m pytest",
    }.items():
        (bin_dir / tool).write_text(f'{prefix}{module} "$@"\n')
        (bin_dir / tool).chmod(0o755)
    (repo / ".venv" / ".installed").touch()

"""The generated workflows, run here step by step (tests/workflow_runner.py), as on fresh runners.

A baked repository is pushed to a bare git repository that stands in for GitHub; every job checks out its own clone
(the data arrives as `dvc pull` would bring it), jobs pass files only through artifacts, and the promotion jobs
push their commits to that bare repository for real. ci.yml runs on a pull request and on a push to main, then
release.yml on tags: a tag on the gated commit releases and promotes its exact digest; a tag that does not match
metadata.version and a commit whose gates failed both stop the release with a clear message. ci.yml's publish job
builds the serving image in this machine's Docker engine (from the local base stand-in), smoke-tests it with
`make smoke`, and `make push-image` pushes that image to a real registry on loopback standing in for GHCR (Debian's
docker-registry). Steps that need GitHub's API, Sigstore or a cloud are skipped with the reason printed.
Without a Docker engine, the base stand-in or docker-registry the tests skip here, and fail when CI is set.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .conftest import VARIANTS, bake, docker_engine, run, tool
from .workflow_runner import BASE_IMAGE, JobResult, Runner, git, parse_kv, stand_in_venv

pytestmark = pytest.mark.slow

VARIANT = "sklearn-classification"
PACKAGE = "clinical_risk_model"
MARKER = "<!-- modelops-report -->"
UNPROMOTED = "sha256:" + "0" * 64
SKIPPED_TARGETS = {
    "setup-deploy": "the stand-in .venv already holds the deploy environment",
    "test": "the repository's own test suite runs in tests/test_generated.py (the same `make test`)",
    "promtool": "Ubuntu 24.04's package; tests/test_monitoring.py runs the target against this machine's archive",
    "pr-comment": "creates or updates the PR comment through the GitHub API",
    "data-pull": "the DVC remote is in the cloud",
    "data-push": "the DVC remote is in the cloud",
    "verify-image": "gh attestation verify needs the GitHub API and Sigstore",
    "retag": "the image lives in GHCR",
    "github-release": "creates the Release through the GitHub API",
}
# The jobs that read the data: on a cloud remote they `make data-pull`; here the bake's files stand in for it.
DATA_JOBS = frozenset({"validate", "tests", "gates"})
COMMITTER = ("-c", "user.name=t", "-c", "user.email=t@example.com")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


class Evidence:
    """What GitHub keeps between runs: each main CI run's artifacts, by commit (what `make release-evidence` finds)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def store(self, commit: str) -> Path:
        return self.root / commit

    def release_evidence(self, runner: Runner, env: dict[str, str]) -> tuple[str, str, dict[str, str]]:
        """`make release-evidence` with the GitHub API replaced by this store; the commit lookup is the target's."""
        printed = run(runner.workspace, "make", "--no-print-directory", "-n", "release-evidence", env=env).stdout
        built = re.search(r'--commit "([0-9a-f]{40})"', printed).group(1)
        moved = f"release: {env['COMMIT']} only moves deploy overlays; releasing the image of {built}. "
        note = moved if built != env["COMMIT"] else ""
        source = self.store(built) / "release-evidence"
        if not source.is_dir():
            return "failure", f"{note}release: no successful CI run on main for {built}", {}
        shutil.copytree(source, runner.workspace / "evidence", dirs_exist_ok=True)
        return "success", f"{note}evidence of main's CI run for {built[:12]}", {}


NEEDED_FOR = "the publish job's build, smoke test and push"


class Registry:
    """A real registry on loopback standing in for GHCR. `make push-image` runs for real against it: the image the
    workflow built (tagged for ghcr.io) is re-tagged for this registry first, as nothing here can reach ghcr.io."""

    MANIFESTS = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"

    def __init__(self, root: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        config = root / "registry.yml"
        config.write_text(
            f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {root / 'storage'}}}}}\n"
            f"http: {{addr: {self.host}}}\n"
        )
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"docker-registry did not answer on {self.host}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def local(self, image: str) -> str:
        return f"{self.host}/{image.split('/', 1)[1]}"

    def manifest(self, image: str, reference: str) -> tuple[str, dict]:
        """(Docker-Content-Digest, manifest) of a tag or digest of `image` (its ghcr.io name) in this registry."""
        name = image.split("/", 1)[1]
        request = urllib.request.Request(
            f"http://{self.host}/v2/{name}/manifests/{reference}", headers={"Accept": self.MANIFESTS}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers["Docker-Content-Digest"], json.loads(response.read())

    def push_image(self, runner: Runner, env: dict[str, str]) -> tuple[str, str, dict[str, str]]:
        """`make push-image`, for real, with IMAGE pointed at this registry."""
        import docker

        client = docker.from_env()
        local = self.local(env["IMAGE"])
        for tag in env["PUSH_TAGS"].split():
            client.images.get(f"{env['IMAGE']}:{tag}").tag(local, tag)
        outputs = runner.scratch / "push-image.output"
        outputs.write_text("")
        env = {**env, "IMAGE": local, "GITHUB_OUTPUT": str(outputs)}
        pushed = run(runner.workspace, "make", "--no-print-directory", "push-image", env=env, check=False)
        if pushed.returncode != 0:
            return "failure", f"make push-image exited {pushed.returncode}: {pushed.stderr[-500:]}", {}
        digest = parse_kv(outputs.read_text())["digest"]
        return "success", f"make push-image to {local} (for ghcr.io): {pushed.stdout.strip()}", {"digest": digest}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The engine, the base stand-in and a registry on loopback; the images the runs built are removed afterwards."""
    client = docker_engine(BASE_IMAGE, NEEDED_FOR)
    tool("docker-registry", ".ci/install-system.sh: apt docker-registry", NEEDED_FOR)
    registry = Registry(tmp_path_factory.mktemp("registry"))
    yield registry
    registry.stop()
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(("ghcr.io/your-org/clinical-risk-model:", registry.host)):
                client.images.remove(tag, force=True)


@dataclass
class Project:
    """A developer's clone (`work`) and the repository on "GitHub" (`github`, bare)."""

    tmp: Path
    work: Path
    github: Path
    evidence: Evidence
    registry: Registry | None = None
    runs: int = 0

    @classmethod
    def create(cls, tmp: Path, registry: Registry | None = None) -> Project:
        work = bake(tmp / "bake", **VARIANTS[VARIANT])
        git(work, "init", "--quiet", "--initial-branch=main")
        commit(work, "bake")
        github = tmp / "github.git"
        git(tmp, "clone", "--quiet", "--bare", str(work), str(github))
        return cls(tmp, work, github, Evidence(tmp / "evidence"), registry)

    def push(self, branch: str = "main") -> str:
        git(self.work, "push", "--quiet", "--force", str(self.github), f"HEAD:refs/heads/{branch}")
        return git(self.work, "rev-parse", "HEAD")

    def main(self) -> str:
        return git(self.github, "rev-parse", "main")

    def show(self, path: str, ref: str = "main") -> str:
        return git(self.github, "show", f"{ref}:{path}")

    def pinned(self, env: str) -> str:
        return yaml.safe_load(self.show(f"deploy/{env}/kustomization.yaml"))["images"][0]["digest"]

    def runner(self, workflow: str, name: str, **kwargs: object) -> Runner:
        self.runs += 1
        return Runner(
            self.work / ".github/workflows" / workflow,
            self.work,
            scratch=self.tmp / f"run-{self.runs}-{name}",
            secrets={"DEPLOY_KEY": "unused: the stand-in GitHub is a local repository"},
            env={**GIT_ENV, "DEPLOY_REMOTE": str(self.github)},
            origin=self.github,
            data_from=self.work,
            data_jobs=DATA_JOBS,
            **kwargs,  # type: ignore[arg-type]
        )

    def ci_push(self) -> dict[str, JobResult]:
        sha = self.main()
        return self.runner(
            "ci.yml",
            f"ci-push-{sha[:7]}",
            event_name="push",
            ref="refs/heads/main",
            event={"ref": "refs/heads/main", "after": sha},
            sha=sha,
            artifact_store=self.evidence.store(sha),
            stand_ins={**SKIPPED_TARGETS, "push-image": self._push_image},
        ).run_all()

    def _push_image(self, runner: Runner, env: dict[str, str]) -> tuple[str, str, dict[str, str]]:
        assert self.registry is not None, "a main push builds and pushes: create the project with the registry"
        return self.registry.push_image(runner, env)

    def ci_pull_request(self, head: str) -> dict[str, JobResult]:
        pull_request = {
            "number": 7,
            "base": {"ref": "main"},
            "head": {"ref": "feature", "sha": head, "repo": {"full_name": "your-org/clinical-risk-model"}},
        }
        return self.runner(
            "ci.yml",
            f"ci-pr-{head[:7]}",
            event_name="pull_request",
            ref="refs/pull/7/merge",
            event={"pull_request": pull_request},
            sha=head,
            artifact_store=self.tmp / "pr-artifacts",
            stand_ins=SKIPPED_TARGETS,
        ).run_all()

    def release(self, tag: str) -> dict[str, JobResult]:
        git(self.github, "tag", "--force", tag, "main")
        return self.runner(
            "release.yml",
            f"release-{tag}-{self.main()[:7]}",
            event_name="push",
            ref=f"refs/tags/{tag}",
            event={"ref": f"refs/tags/{tag}", "repository": {"default_branch": "main"}},
            sha=self.main(),
            artifact_store=self.tmp / f"release-{tag}-artifacts-{self.runs + 1}",
            stand_ins={**SKIPPED_TARGETS, "release-evidence": self.evidence.release_evidence},
        ).run_all()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, *COMMITTER, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def results(jobs: dict[str, JobResult]) -> dict[str, str]:
    return {job_id: job.result for job_id, job in jobs.items()}


def logs(jobs: dict[str, JobResult]) -> str:
    return "\n".join(f"=== {job_id}\n{job.log}" for job_id, job in jobs.items())


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> tuple[Project, dict[str, JobResult], str]:
    """A project whose main went through ci.yml on a push: (project, jobs, the commit that was built)."""
    project = Project.create(tmp_path_factory.mktemp("gated"), registry)
    built = project.main()
    return project, project.ci_push(), built


def test_ci_on_a_pull_request(tmp_path: Path) -> None:
    project = Project.create(tmp_path)
    stand_in_venv(project.work)
    run(project.work, "make", "repro")  # main has trained once and committed its metrics.json
    commit(project.work, "main: first model")
    project.push()
    spec = project.work / "model.yaml"
    spec.write_text(spec.read_text().replace("params: {C: 1.0,", "params: {C: 0.5,"))
    head = commit(project.work, "weaker regularisation")
    project.push("feature")

    jobs = project.ci_pull_request(head)
    assert results(jobs) == {
        "validate": "success",
        "tests": "success",
        "gates": "success",
        "report": "success",
        "publish": "skipped",
        "deploy-staging": "skipped",
    }, logs(jobs)
    gates = jobs["gates"]
    assert gates.summary.startswith(MARKER), "the job summary carries the report"
    assert "ci-report: diff against the metrics of origin/main" in gates.step("Report").log
    assert "| metric | this change | main | vs main |" in gates.summary
    assert json.loads((gates.workspace / "artifacts/gate_report.json").read_text())["passed"] is True
    assert (tmp_path / "pr-artifacts/pipeline-artifacts/report.md").read_text().startswith(MARKER)
    report = jobs["report"]
    assert (report.workspace / "artifacts/report.md").read_text() == gates.summary, "the comment gets the same report"
    comment = report.step("Sticky PR comment")
    assert comment.note.startswith("SKIPPED make pr-comment: creates or updates the PR comment through the GitHub API")
    assert gates.step("Gate verdict").outcome == "skipped"


def test_ci_on_main_publishes_and_deploys_to_staging(gated: tuple) -> None:
    project, jobs, built = gated
    assert results(jobs) == {
        "validate": "success",
        "tests": "success",
        "gates": "success",
        "report": "skipped",
        "publish": "success",
        "deploy-staging": "success",
    }, logs(jobs)
    publish = jobs["publish"]
    digest = publish.outputs["digest"]
    # one build into the engine, its smoke test, then the push of that very image: in this order
    order = [publish.steps.index(publish.step(n)) for n in ("Build the serving", "Smoke test", "Push the", "digest")]
    assert order == sorted(order), [s.name for s in publish.steps]
    assert all(s.outcome == "success" for s in publish.steps if s.note != "if: false"), publish.log
    smoke_log = publish.step("Smoke test").log
    assert re.search(
        r"container smoke: ghcr\.io/your-org/clinical-risk-model:sha-[0-9a-f]{40} ready [\d.]+s after start, "
        r"/predict on 8 rows from the reference profile \(artifacts/model/profile\.json\) matched in-process "
        r"predictions, clean exit on SIGTERM",
        smoke_log,
    ), smoke_log
    image_id = publish.step("Build the serving image").note.split("(")[1].split(")")[0]
    registry = project.registry
    for tag in (f"sha-{built}", "main"):
        pushed, manifest = registry.manifest("ghcr.io/your-org/clinical-risk-model", tag)
        assert pushed == digest, f"{tag} is the one pushed digest"
        assert manifest["config"]["digest"].startswith(image_id), "the registry holds the image that was smoke-tested"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert f"push-image: pushed {registry.local('ghcr.io/your-org/clinical-risk-model')}@{digest}" in (
        publish.step("Push the smoke-tested").note
    )
    provenance = json.loads((project.evidence.store(built) / "release-evidence/provenance.json").read_text())
    assert provenance["git_sha"] == built
    assert provenance["digest"] == digest
    assert provenance["verdict"] == "pass"
    assert not list((jobs["publish"].workspace / "data").glob("*.csv")), "publish pulls no data"
    assert provenance["data_md5"] == yaml.safe_load(project.show("data/breast_cancer.csv.dvc"))["outs"][0]["md5"]
    # deploy-staging pushed one commit to main: the staging overlay, nothing else
    assert git(project.github, "rev-parse", "main~1") == built
    assert git(project.github, "diff", "--name-only", "main~1", "main").splitlines() == [
        "deploy/staging/kustomization.yaml"
    ]
    assert project.pinned("staging") == digest
    assert project.pinned("production") == UNPROMOTED, "main never touches production"


def test_publish_pushes_nothing_when_the_smoke_test_fails(tmp_path: Path, registry: Registry) -> None:
    """An image that cannot serve (here: the package left out of it) fails `make smoke`: nothing is pushed, nothing
    attested or deployed, and main keeps no release evidence for that commit."""
    project = Project.create(tmp_path, registry)
    dockerfile = project.work / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace("COPY src/ src/\n", "").replace("RUN python -m compileall", "#")
    )
    sha = commit(project.work, "the image forgets the package")
    project.push()

    jobs = project.ci_push()
    assert results(jobs) == {
        "validate": "success",
        "tests": "success",
        "gates": "success",
        "report": "skipped",
        "publish": "failure",
        "deploy-staging": "skipped",
    }, logs(jobs)
    publish = jobs["publish"]
    assert publish.step("Build the serving image").outcome == "success"
    smoke = publish.step("Smoke test")
    assert smoke.outcome == "failure"
    assert "container smoke: the container exited (1) before ready" in smoke.log, smoke.log
    assert "No module named clinical_risk_model" in smoke.log, "the container's log tail says why"
    after = publish.steps[publish.steps.index(smoke) + 1 :]
    assert after, "the push and the attestations come after the smoke test"
    assert all(s.outcome == "skipped" for s in after), [(s.name, s.outcome) for s in after]
    assert publish.outputs.get("digest", "") == ""
    with pytest.raises(urllib.error.HTTPError, match="404"):
        registry.manifest("ghcr.io/your-org/clinical-risk-model", f"sha-{sha}")
    assert not (project.evidence.store(sha) / "release-evidence").exists()
    assert project.pinned("staging") == UNPROMOTED


def test_release_of_the_gated_commit_promotes_its_digest(gated: tuple) -> None:
    project, ci_jobs, built = gated
    tagged = project.main()  # the staging promotion commit: the tag lands on it, the image is that of `built`
    jobs = project.release("v0.1.0")
    assert results(jobs) == {
        "release-check": "success",
        "publish": "success",
        "promote-production": "success",
    }, logs(jobs)
    digest = ci_jobs["publish"].outputs["digest"]
    check = jobs["release-check"]
    assert check.outputs == {"version": "0.1.0", "image": "ghcr.io/your-org/clinical-risk-model", "digest": digest}
    assert f"{tagged} only moves deploy overlays; releasing the image of {built}" in check.step("evidence").note
    assert "v0.1.0 may be released (tag and gate report checked)" in check.step("gate report").log
    assert project.pinned("production") == digest
    assert git(project.github, "log", "-1", "--format=%s", "main") == f"deploy(production): v0.1.0 -> {digest}"


def test_release_stops_on_a_tag_not_matching_the_version(gated: tuple) -> None:
    project, _, _ = gated
    before = project.main()
    jobs = project.release("v0.2.0")
    assert results(jobs) == {"release-check": "failure", "publish": "skipped", "promote-production": "skipped"}
    check = jobs["release-check"]
    tag_step = check.step("tag equals")
    assert tag_step.outcome == "failure"
    assert "release-check: tag v0.2.0 does not match model.yaml metadata.version 0.1.0; expected tag v0.1.0" in (
        tag_step.log
    )
    assert all(s.outcome == "skipped" for s in check.steps[check.steps.index(tag_step) + 1 :])
    assert project.main() == before, "nothing was promoted"


def test_release_stops_on_a_commit_whose_gates_failed(tmp_path: Path) -> None:
    project = Project.create(tmp_path)
    spec = project.work / "model.yaml"
    impossible = "  gates:\n    - {metric: log_loss, max: 0.0001, description: No model gets this close}\n"
    spec.write_text(spec.read_text().replace("  gates:\n", impossible, 1))
    commit(project.work, "an impossible gate")
    sha = project.push()

    jobs = project.ci_push()
    assert results(jobs)["gates"] == "failure", logs(jobs)
    assert results(jobs)["publish"] == "skipped"
    assert results(jobs)["deploy-staging"] == "skipped"
    gates = jobs["gates"]
    assert gates.step("Gates (").outcome == "failure"
    assert gates.summary.startswith(MARKER), "a failed gate still gets its report"
    assert gates.step("Gate verdict").outcome == "failure"

    # main kept no release evidence for it: the release stops at finding it
    jobs = project.release("v0.1.0")
    assert results(jobs) == {"release-check": "failure", "publish": "skipped", "promote-production": "skipped"}
    step = jobs["release-check"].step("Find the evidence")
    assert step.outcome == "failure"
    assert f"release: no successful CI run on main for {sha}" in step.note

    # and were there evidence of that commit (its real gate report), the check itself refuses it
    evidence = project.evidence.store(sha) / "release-evidence"
    evidence.mkdir(parents=True)
    run(gates.workspace, "python", "-m", PACKAGE, "provenance", "--git-sha", sha, "--out", str(evidence / "p.json"))
    (evidence / "p.json").rename(evidence / "provenance.json")
    jobs = project.release("v0.1.0")
    assert results(jobs)["release-check"] == "failure"
    step = jobs["release-check"].step("gate report passed")
    assert step.outcome == "failure"
    assert "release-check: gates failed on this commit (log-loss-max): it cannot be released" in step.log
    assert project.pinned("production") == UNPROMOTED


def test_deploy_push_pins_the_digest_on_the_newest_main(tmp_path: Path) -> None:
    """deploy-push against the stand-in GitHub, with main moving under it: the commit lands on top."""
    project = Project.create(tmp_path)
    clone = tmp_path / "checkout"
    git(tmp_path, "clone", "--quiet", str(project.github), str(clone))
    stand_in_venv(clone)
    # someone merges to main after the checkout: the promotion must not undo or conflict with it
    (project.work / "NOTES.md").write_text("merged while CI ran\n")
    commit(project.work, "a later merge")
    moved = project.push()

    digest = "sha256:" + "e" * 64
    env = {**GIT_ENV, "ENV": "staging", "DIGEST": digest, "DEPLOY_KEY": "unused by a local remote"}
    env |= {"DEPLOY_REMOTE": str(project.github), "GITHUB_SHA": moved}
    first = run(clone, "make", "deploy-push", env=env)
    assert f"deploy-push: pushed deploy/staging -> {digest}" in first.stdout
    assert git(project.github, "rev-parse", "main~1") == moved
    assert git(project.github, "log", "-1", "--format=%s", "main") == f"deploy(staging): {moved} -> {digest}"
    assert project.pinned("staging") == digest

    again = run(clone, "make", "deploy-push", env=env)
    assert f"deploy-push: main already pins {digest} in deploy/staging" in again.stdout

    (clone / "model.yaml").write_text((clone / "model.yaml").read_text() + "\n")
    dirty = run(clone, "make", "deploy-push", env=env, check=False)
    assert dirty.returncode != 0
    assert "deploy-push: the working tree has other changes; run it in CI or from a clean clone" in dirty.stderr

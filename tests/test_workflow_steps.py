"""The generated workflows, run here step by step (tests/workflow_runner.py) in a baked, git-initialised repo.

ci.yml on a pull request and on a push to main, then release.yml on tags: a tag on the gated commit releases and
promotes its exact digest; a tag that does not match metadata.version and a commit whose gates failed both stop
the release with a clear message. Steps that need GitHub, a registry or a cloud are skipped with the reason printed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import VARIANTS, bake, run
from .workflow_runner import JobResult, Runner, git, stand_in_venv

pytestmark = pytest.mark.slow

VARIANT = "sklearn-classification"
MARKER = "<!-- modelops-report -->"
SKIPPED_TARGETS = {
    "setup-deploy": "the stand-in .venv already holds the deploy environment",
    "test": "the repository's own test suite runs in tests/test_generated.py (the same `make test`)",
    "pr-comment": "creates or updates the PR comment through the GitHub API",
    "data-pull": "the DVC remote is in the cloud",
    "data-push": "the DVC remote is in the cloud",
    "verify-image": "gh attestation verify needs the GitHub API and Sigstore",
    "retag": "the image lives in GHCR",
    "github-release": "creates the Release through the GitHub API",
    "deploy-push": "pushes to github.com with the environment's deploy key",
}
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


def make_repo(tmp_path: Path) -> Path:
    repo = bake(tmp_path / "bake", **VARIANTS[VARIANT])
    stand_in_venv(repo)
    (repo / ".gitignore").write_text((repo / ".gitignore").read_text() + "evidence/\n")
    git(repo, "init", "--quiet", "--initial-branch=main")
    commit(repo, "bake")
    return repo


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, *COMMITTER, "commit", "--quiet", "-m", message)
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")  # what a PR's base looks like after fetch-depth 0
    return git(repo, "rev-parse", "HEAD")


def ci(repo: Path, tmp: Path, evidence: Evidence, event: str) -> dict[str, JobResult]:
    sha = git(repo, "rev-parse", "HEAD")
    if event == "pull_request":
        payload = {
            "pull_request": {
                "number": 7,
                "base": {"ref": "main"},
                "head": {"ref": "feature", "repo": {"full_name": "your-org/clinical-risk-model"}},
            }
        }
        ref = "refs/pull/7/merge"
    else:
        payload, ref = {"ref": "refs/heads/main", "after": sha}, "refs/heads/main"
    runner = Runner(
        repo / ".github/workflows/ci.yml",
        repo,
        event_name=event,
        ref=ref,
        event=payload,
        scratch=tmp / f"ci-{event}-{sha[:7]}",
        artifact_store=evidence.store(sha) if event == "push" else tmp / "pr-artifacts",
        secrets={"DEPLOY_KEY": "stand-in"},
        stand_ins=SKIPPED_TARGETS,
        env=GIT_ENV,
    )
    return runner.run_all()


def release(repo: Path, tmp: Path, evidence: Evidence, tag: str) -> dict[str, JobResult]:
    git(repo, "tag", "--force", tag)
    runner = Runner(
        repo / ".github/workflows/release.yml",
        repo,
        event_name="push",
        ref=f"refs/tags/{tag}",
        event={"ref": f"refs/tags/{tag}", "repository": {"default_branch": "main"}},
        scratch=tmp / f"release-{tag}",
        artifact_store=tmp / f"release-{tag}-artifacts",
        secrets={"DEPLOY_KEY": "stand-in"},
        stand_ins={**SKIPPED_TARGETS, "release-evidence": evidence.release_evidence},
        env=GIT_ENV,
    )
    return runner.run_all()


def results(jobs: dict[str, JobResult]) -> dict[str, str]:
    return {job_id: job.result for job_id, job in jobs.items()}


def pinned(repo: Path, env: str) -> str:
    return yaml.safe_load((repo / "deploy" / env / "kustomization.yaml").read_text())["images"][0]["digest"]


@pytest.fixture(scope="module")
def main_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Evidence, dict[str, JobResult]]:
    """A baked repo whose HEAD went through ci.yml on a push to main."""
    tmp = tmp_path_factory.mktemp("gated")
    repo = make_repo(tmp)
    evidence = Evidence(tmp / "evidence")
    return repo, tmp, evidence, ci(repo, tmp, evidence, "push")


def test_ci_on_a_pull_request(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    run(repo, "make", "repro")  # main has trained once and committed its metrics.json
    commit(repo, "main: first model")
    spec = repo / "model.yaml"
    spec.write_text(spec.read_text().replace("params: {C: 1.0,", "params: {C: 0.5,"))
    git(repo, "checkout", "--quiet", "-b", "feature")
    git(repo, *COMMITTER, "commit", "--quiet", "-am", "weaker regularisation")

    jobs = ci(repo, tmp_path, Evidence(tmp_path / "evidence"), "pull_request")
    logs = "\n".join(j.log for j in jobs.values())
    assert results(jobs) == {
        "validate": "success",
        "tests": "success",
        "gates": "success",
        "report": "success",
        "publish": "skipped",
        "deploy-staging": "skipped",
    }, logs
    gates = jobs["gates"]
    assert gates.summary.startswith(MARKER), "the job summary carries the report"
    assert "ci-report: diff against the metrics of origin/main" in gates.step("Report").log
    assert "| metric | this change | main | vs main |" in gates.summary
    assert json.loads((repo / "artifacts/gate_report.json").read_text())["passed"] is True
    assert (tmp_path / "pr-artifacts/pipeline-artifacts/report.md").read_text().startswith(MARKER)
    comment = jobs["report"].step("Sticky PR comment")
    assert comment.note.startswith("SKIPPED make pr-comment: creates or updates the PR comment through the GitHub API")
    assert gates.step("Gate verdict").outcome == "skipped"


def test_ci_on_main_publishes_and_deploys_to_staging(main_repo: tuple) -> None:
    repo, _tmp, evidence, jobs = main_repo
    logs = "\n".join(j.log for j in jobs.values())
    assert results(jobs) == {
        "validate": "success",
        "tests": "success",
        "gates": "success",
        "report": "skipped",
        "publish": "success",
        "deploy-staging": "success",
    }, logs
    sha = git(repo, "rev-parse", "HEAD")
    digest = jobs["publish"].outputs["digest"]
    provenance = json.loads((evidence.store(sha) / "release-evidence/provenance.json").read_text())
    assert provenance["git_sha"] == sha
    assert provenance["digest"] == digest
    assert provenance["verdict"] == "pass"
    assert provenance["gate_report"] == json.loads((repo / "artifacts/gate_report.json").read_text())
    assert pinned(repo, "staging") == digest
    assert pinned(repo, "production") == "sha256:" + "0" * 64, "main never touches production"


def test_release_of_the_gated_commit_promotes_its_digest(main_repo: tuple) -> None:
    repo, tmp, evidence, ci_jobs = main_repo
    built = git(repo, "rev-parse", "HEAD")
    git(repo, "add", "deploy/staging/kustomization.yaml")  # what deploy-push commits; the tag lands on it
    git(repo, *COMMITTER, "commit", "--quiet", "-m", "deploy(staging): pin the digest")
    jobs = release(repo, tmp, evidence, "v0.1.0")
    logs = "\n".join(j.log for j in jobs.values())
    assert results(jobs) == {"release-check": "success", "publish": "success", "promote-production": "success"}, logs
    digest = ci_jobs["publish"].outputs["digest"]
    assert jobs["release-check"].outputs == {
        "version": "0.1.0",
        "image": "ghcr.io/your-org/clinical-risk-model",
        "digest": digest,
    }
    assert "v0.1.0 may be released (tag and gate report checked)" in jobs["release-check"].step("gate report").log
    assert f"only moves deploy overlays; releasing the image of {built}" in jobs["release-check"].step("evidence").note
    assert pinned(repo, "production") == digest


def test_release_stops_on_a_tag_not_matching_the_version(main_repo: tuple) -> None:
    repo, tmp, evidence, _ = main_repo
    jobs = release(repo, tmp, evidence, "v0.2.0")
    assert results(jobs) == {"release-check": "failure", "publish": "skipped", "promote-production": "skipped"}
    check = jobs["release-check"]
    tag_step = check.step("tag equals")
    assert tag_step.outcome == "failure"
    assert "release-check: tag v0.2.0 does not match model.yaml metadata.version 0.1.0; expected tag v0.1.0" in (
        tag_step.log
    )
    assert all(s.outcome == "skipped" for s in check.steps[check.steps.index(tag_step) + 1 :])


def test_release_stops_on_a_commit_whose_gates_failed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    spec = repo / "model.yaml"
    impossible = "  gates:\n    - {metric: log_loss, max: 0.0001, description: No model gets this close}\n"
    spec.write_text(spec.read_text().replace("  gates:\n", impossible, 1))
    sha = commit(repo, "an impossible gate")
    evidence = Evidence(tmp_path / "evidence")

    jobs = ci(repo, tmp_path, evidence, "push")
    assert results(jobs)["gates"] == "failure"
    assert results(jobs)["publish"] == "skipped"
    assert results(jobs)["deploy-staging"] == "skipped"
    gates = jobs["gates"]
    assert gates.step("Gates (").outcome == "failure"
    assert gates.summary.startswith(MARKER), "a failed gate still gets its report"
    assert gates.step("Gate verdict").outcome == "failure"

    # main kept no release evidence for it: the release stops at finding it
    jobs = release(repo, tmp_path, evidence, "v0.1.0")
    assert results(jobs) == {"release-check": "failure", "publish": "skipped", "promote-production": "skipped"}
    step = jobs["release-check"].step("Find the evidence")
    assert step.outcome == "failure"
    assert f"release: no successful CI run on main for {sha}" in step.note

    # and were there evidence of that commit (its real gate report), the check itself refuses it
    (evidence.store(sha) / "release-evidence").mkdir(parents=True)  # what publish would have kept and attested
    run(repo, "python", "-m", "clinical_risk_model", "provenance", "--out", "provenance.json")
    shutil.move(repo / "provenance.json", evidence.store(sha) / "release-evidence/provenance.json")
    jobs = release(repo, tmp_path, evidence, "v0.1.0")
    assert results(jobs)["release-check"] == "failure"
    step = jobs["release-check"].step("gate report passed")
    assert step.outcome == "failure"
    assert "release-check: gates failed on this commit (log-loss-max): it cannot be released" in step.log
    assert "it cannot be released" in step.log
    assert pinned(repo, "production") == "sha256:" + "0" * 64


def test_deploy_push_pins_the_digest_on_the_newest_main(tmp_path: Path) -> None:
    """deploy-push for real against a local bare remote, with main moving under it: the commit lands on top."""
    source = make_repo(tmp_path)
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(source), str(remote))
    clone = tmp_path / "checkout"
    git(tmp_path, "clone", "--quiet", str(remote), str(clone))
    stand_in_venv(clone)
    # someone merges to main after the checkout: the promotion must not undo or conflict with it
    (source / "NOTES.md").write_text("merged while CI ran\n")
    moved = commit(source, "a later merge")
    git(source, "push", "--quiet", str(remote), "HEAD:main")

    env = {**GIT_ENV, "ENV": "staging", "DIGEST": "sha256:" + "e" * 64, "DEPLOY_KEY": "unused by a local remote"}
    env |= {"DEPLOY_REMOTE": str(remote), "GITHUB_SHA": moved}
    first = run(clone, "make", "deploy-push", env=env)
    assert "deploy-push: pushed deploy/staging -> sha256:eeee" in first.stdout
    assert git(remote, "rev-parse", "main~1") == moved
    assert (
        git(remote, "show", "main", "--stat", "--format=%s").splitlines()[0]
        == f"deploy(staging): {moved} -> {env['DIGEST']}"
    )
    overlay = yaml.safe_load(git(remote, "show", "main:deploy/staging/kustomization.yaml"))
    assert overlay["images"][0]["digest"] == env["DIGEST"]

    again = run(clone, "make", "deploy-push", env=env)
    assert f"deploy-push: main already pins {env['DIGEST']} in deploy/staging" in again.stdout

    (clone / "model.yaml").write_text((clone / "model.yaml").read_text() + "\n")
    dirty = run(clone, "make", "deploy-push", env=env, check=False)
    assert dirty.returncode != 0
    assert "deploy-push: the working tree has other changes; run it in CI or from a clean clone" in dirty.stderr

"""Static checks of what a bake ships and of the template's own CI: linters with zero findings, plus our policy.

The linters (actionlint, zizmor, check-jsonschema, hadolint, kubernetes-validate, kubectl) come from
.ci/install-system.sh. A missing tool skips its test here with the reason, and fails it when CI is set.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, run, tool

# Every action the workflows may use, at the one commit we checked (docs/decisions.md, "Actions pinned by SHA").
# A SHA that is not here was typed by hand or came from elsewhere: the test below refuses it.
PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "actions/attest": ("1e69f48acb82d1966a394da916b4c1698aa569d6", "v4.2.2"),
    "docker/login-action": ("4907a6ddec9925e35a0a9e82d7399ccc52663121", "v4.1.0"),
    "docker/build-push-action": ("53b7df96c91f9c12dcc8a07bcb9ccacbed38856a", "v7.3.0"),
    "anchore/sbom-action": ("e22c389904149dbc22b58101806040fa8d37a610", "v0.24.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "google-github-actions/auth": ("7c6bc770dae815cd3e89ee6cdf493a5fab2cc093", "v3.0.0"),
    "azure/login": ("f5d393ae46f8fde4be8b75f32e3fc50e654ad0ca", "v3.0.1"),
}
CLOUD_AUTH = {
    "s3": "aws-actions/configure-aws-credentials",
    "gcs": "google-github-actions/auth",
    "azure": "azure/login",
}
TEMPLATE_WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
OVERLAYS = ("staging", "production")


def linter(name: str) -> str:
    return tool(name, "bash .ci/install-system.sh installs it", "every static check")


def check(*command: str, cwd: Path | None = None, stdin: str | None = None) -> str:
    """Run a linter; its findings are the assertion message."""
    result = subprocess.run(command, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def workflows(repo: Path) -> list[Path]:
    files = sorted((repo / ".github" / "workflows").glob("*.yml"))
    assert files, f"no workflows in {repo}"
    return files


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # BaseLoader: `on:` stays a string key


def steps(workflow: dict) -> Iterator[tuple[str, dict, dict]]:
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, job, step


# ---- linters on every baked variant -----------------------------------------------------------------------------


def test_actionlint(repo: Path) -> None:
    check(linter("actionlint"), *map(str, workflows(repo)))


def test_zizmor_has_no_findings(repo: Path) -> None:
    dependabot = repo / ".github/dependabot.yml"
    out = check(linter("zizmor"), "--offline", "--no-progress", str(dependabot), *map(str, workflows(repo)))
    assert "No findings to report" in out


def test_workflows_match_the_github_schema(repo: Path) -> None:
    check(linter("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, workflows(repo)))


def test_dependabot_config_matches_its_schema(repo: Path) -> None:
    check(linter("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(repo / ".github/dependabot.yml"))


def test_ruleset_requires_the_ci_job_names(repo: Path) -> None:
    ruleset = yaml.safe_load((repo / ".github/rulesets/main.json").read_text())
    rule = next(r for r in ruleset["rules"] if r["type"] == "required_status_checks")
    required = {c["context"] for c in rule["parameters"]["required_status_checks"]}
    ci = load(repo / ".github/workflows/ci.yml")
    job_names = {job.get("name", job_id) for job_id, job in ci["jobs"].items()}
    assert required == {"validate", "tests", "gates"}
    assert required <= job_names, "every required check must be the name of a ci.yml job"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_to_valid_kubernetes(repo: Path, overlay: str) -> None:
    manifests = check(linter("kubectl"), "kustomize", str(repo / "deploy" / overlay))
    check(linter("kubernetes-validate"), "--strict", "-", stdin=manifests)
    documents = [d for d in yaml.safe_load_all(manifests) if d]
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert re.fullmatch(r"ghcr\.io/[a-z0-9-]+/[a-z0-9-]+@sha256:[0-9a-f]{64}", container["image"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert {d["metadata"]["namespace"] for d in documents} == {f"{repo.name}-{overlay}"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_agrees_with_model_yaml(repo: Path, overlay: str) -> None:
    """The bake writes the bytes `promote` would write from model.yaml: model.yaml stays the source of truth."""
    spec = yaml.safe_load((repo / "model.yaml").read_text())
    package = repo.joinpath("src").iterdir().__next__().name
    result = run(repo, "python", "-m", package, "promote", "--env", overlay)
    assert "unchanged" in result.stdout
    manifests = check(linter("kubectl"), "kustomize", str(repo / "deploy" / overlay))
    documents = {d["kind"]: d for d in yaml.safe_load_all(manifests) if d}
    env = spec["deploy"][overlay]
    assert documents["Deployment"]["spec"]["replicas"] == env["replicas"]
    container = documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == spec["deploy"]["resources"]
    assert container["ports"][0]["containerPort"] == spec["serving"]["port"]
    scale = env.get("autoscaling") or {"min_replicas": env["replicas"], "max_replicas": env["replicas"]}
    assert documents["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == scale["min_replicas"]
    assert documents["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == scale["max_replicas"]


# ---- our policy, on every baked variant -------------------------------------------------------------------------


def test_every_action_is_pinned_to_a_checked_sha(repo: Path) -> None:
    for path in workflows(repo):
        for line in path.read_text().splitlines():
            match = re.search(r"uses:\s*([^@\s]+)@(\S+)(.*)", line)
            if match:
                action, ref, comment = match.groups()
                assert action in PINS, f"{path.name}: {action} is not one of the checked actions"
                sha, version = PINS[action]
                assert (ref, comment.strip()) == (sha, f"# {version}"), f"{path.name}: {line.strip()}"


def test_least_privilege_and_no_expressions_in_shell(repo: Path) -> None:
    for path in workflows(repo):
        workflow = load(path)
        assert workflow["permissions"] == {}, f"{path.name}: top-level permissions must be {{}}"
        assert "pull_request_target" not in workflow["on"], f"{path.name}: pull_request_target runs PR code"
        assert "concurrency" in workflow, f"{path.name}: no concurrency group"
        for job_id, job in workflow["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {job_id} has no permissions block"
            uses_oidc = any(
                s.get("uses", "").split("@")[0] in {*CLOUD_AUTH.values(), "actions/attest"} for s in job["steps"]
            )
            assert (job["permissions"].get("id-token") == "write") == uses_oidc, f"{path.name}: {job_id} id-token"
            text = yaml.safe_dump(job)
            if "secrets." in text:
                assert "environment" in job, f"{path.name}: {job_id} reads a secret outside an environment"
        for job_id, _job, step in steps(workflow):
            assert "${{" not in step.get("run", ""), f"{path.name}: {job_id}: expression inside run: (use env:)"
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] == "false", f"{path.name}: {job_id} checkout"


def test_run_steps_call_only_make(repo: Path) -> None:
    """The YAML stays thin: every shell step is one Makefile target, so CI can be run locally."""
    targets = set(re.findall(r"^([a-z][a-z-]*):", (repo / "Makefile").read_text(), flags=re.MULTILINE))
    for path in workflows(repo):
        for job_id, _job, step in steps(load(path)):
            if "run" in step:
                match = re.fullmatch(r"make ([a-z-]+)", step["run"].strip())
                assert match, f"{path.name}: {job_id}: {step['run']!r} is not `make <target>`"
                assert match.group(1) in targets, f"{path.name}: {job_id}: no Makefile target {match.group(1)}"


def test_cloud_auth_matches_the_dvc_remote(repo: Path, variant: str) -> None:
    from .conftest import VARIANTS

    remote = VARIANTS[variant]["dvc_remote"]
    ci = (repo / ".github/workflows/ci.yml").read_text()
    used = {kind for kind, action in CLOUD_AUTH.items() if f"uses: {action}@" in ci}
    assert used == ({remote} if remote in CLOUD_AUTH else set())
    assert ("make data-pull" in ci) == (remote != "local")
    assert "secret" not in ci.lower().replace("secrets.deploy_key", "")  # OIDC only: no stored cloud keys


# ---- the template's own workflows ------------------------------------------------------------------------------


def test_template_workflows_exist() -> None:
    assert [p.name for p in TEMPLATE_WORKFLOWS] == ["template-ci.yml"]


def test_template_workflows_actionlint() -> None:
    check(linter("actionlint"), *map(str, TEMPLATE_WORKFLOWS))


def test_template_workflows_zizmor() -> None:
    out = check(linter("zizmor"), "--offline", "--no-progress", *map(str, TEMPLATE_WORKFLOWS))
    assert "No findings to report" in out


def test_template_workflows_schema() -> None:
    check(linter("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, TEMPLATE_WORKFLOWS))


def test_template_workflows_are_pinned_and_least_privilege() -> None:
    for path in TEMPLATE_WORKFLOWS:
        workflow = load(path)
        assert workflow["permissions"] == {}
        for job_id, job, step in steps(workflow):
            assert job["permissions"] == {"contents": "read"}, job_id
            assert "${{" not in step.get("run", "")
            if "uses" in step:
                action, ref = step["uses"].split("@")
                assert ref == PINS[action][0]

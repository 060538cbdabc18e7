"""The smoke check against the running local mode, its stand-in for the clouds: all checks
pass on the real sites, and fail, with the reason and exit status, where the TLS material or
the expected placement is wrong."""

import json
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hybrid.cli import ExitCode
from serving.endpoints import Endpoint
from serving.local.pki import create_pki
from serving.local.state import LocalState, state_path
from serving.smoke.__main__ import main
from serving.smoke.checks import (
    MIN_COSINE,
    SiteTarget,
    agreement,
    run_smoke,
    wait_ready,
)
from serving.smoke.targets import local_targets

EXPECTED_CHECKS = {
    ("public", "ready"),
    ("public", "placement"),
    ("public", "text_embedding"),
    ("private", "ready"),
    ("private", "placement"),
    ("private", "text_embedding"),
    ("private", "ctr_ranker"),
    ("public/private", "agreement"),
}


def plain_rows(output: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(site, check) -> (pass|FAIL, detail), from the non-terminal rendering."""
    rows = {}
    for line in output.splitlines()[1:-1]:
        result, site, check, detail = line.split(maxsplit=3)
        rows[(site, check)] = (result, detail)
    return rows


@pytest.mark.local_stack
def test_every_check_passes_on_the_local_mode(
    local_stack: LocalState, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--local", "--state-dir", str(state_dir)]) == 0
    output = capsys.readouterr().out
    rows = plain_rows(output)
    assert set(rows) == EXPECTED_CHECKS
    assert {result for result, _ in rows.values()} == {"pass"}, output
    assert rows[("public", "placement")][1].endswith("absent: ctr_ranker")
    assert output.splitlines()[-1] == f"all {len(EXPECTED_CHECKS)} checks passed"

    assert main(["--local", "--state-dir", str(state_dir), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["exit_code"] == 0
    assert {(c["site"], c["check"]) for c in report["checks"] if c["ok"]} == EXPECTED_CHECKS
    (agreement,) = [c for c in report["checks"] if c["check"] == "agreement"]
    assert agreement["value"] >= MIN_COSINE == report["min_cosine"]


@pytest.mark.local_stack
@pytest.mark.parametrize(
    ("tls", "said"),
    [
        ("foreign client", ("not ready within 2 s", "refuses the client certificate")),
        ("plaintext", ("not ready within 2 s", "closed a plaintext connection")),
        ("foreign CA", ("refused: ", "Tls handshake failed", "certificate was not accepted")),
    ],
)
def test_the_private_check_fails_without_the_right_tls_material(
    local_stack: LocalState,
    state_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tls: str,
    said: tuple[str, ...],
) -> None:
    raw = json.loads(state_path(state_dir).read_text())
    other = create_pki(tmp_path / "other-pki").client
    if tls == "foreign client":
        raw["sites"]["private"]["tls"].update(cert=other.cert, key=other.key)
    elif tls == "foreign CA":
        raw["sites"]["private"]["tls"].update(ca=other.ca)
    else:
        raw["sites"]["private"]["tls"] = None
    folder = tmp_path / "state"
    folder.mkdir()
    state_path(folder).write_text(json.dumps(raw))

    code = main(["--local", "--state-dir", str(folder), "--timeout", "2"])
    captured = capsys.readouterr()
    rows = plain_rows(captured.out)
    failed = {key: detail for key, (result, detail) in rows.items() if result == "FAIL"}
    assert code == ExitCode.UNAVAILABLE
    assert set(failed) == {("private", "ready"), ("public/private", "agreement")}
    for words in said:
        assert words in failed[("private", "ready")]
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.local_stack
def test_the_tls_server_name_override_is_what_the_certificate_is_checked_against(
    local_stack: LocalState, state_dir: Path
) -> None:
    """Cloud addresses (an NLB hostname, a port-forward) are not in the certificate."""
    (private,) = [t for t in local_targets(state_dir) if t.site == "private"]
    named = {
        name: replace(private, endpoint=replace(private.endpoint, tls_server_name=name))
        for name in ("triton-private", "triton.private.hybrid.internal")
    }
    ready = wait_ready([named["triton.private.hybrid.internal"]], 5, lambda _: None)["private"]
    assert ready.ok is False
    assert "carries the name triton.private.hybrid.internal" in ready.detail
    ready = wait_ready([named["triton-private"]], 5, lambda _: None)["private"]
    assert ready.ok, ready.detail
    assert "TLS, server name triton-private" in ready.detail


@pytest.mark.local_stack
def test_a_site_that_does_not_match_the_expected_placement_fails(
    local_stack: LocalState, state_dir: Path
) -> None:
    targets = {target.site: target for target in local_targets(state_dir)}
    public, private = targets["public"], targets["private"]
    wrong = [
        # Pretend ctr_ranker belongs on public, and the encoder must not be on private.
        replace(
            public,
            endpoint=replace(public.endpoint, models=(*public.endpoint.models, "ctr_ranker")),
            absent=(),
        ),
        replace(private, absent=("text_embedding",)),
    ]
    report = run_smoke(wrong, timeout=10)
    failed = {(c.site, c.check): c.detail for c in report.checks if not c.ok}
    assert report.exit_code == ExitCode.FAILED
    assert set(failed) == {
        ("public", "placement"),
        ("public", "ctr_ranker"),
        ("private", "placement"),
    }
    assert (
        "ctr_ranker is placed here but not in the repository index"
        in failed[("public", "placement")]
    )
    assert "'ctr_ranker' is not found" in failed[("public", "ctr_ranker")]
    assert "text_embedding must not be on private" in failed[("private", "placement")]


def test_an_unreachable_site_is_waited_for_then_reported_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    target = SiteTarget(Endpoint("public", address, None, None, ("text_embedding",)))
    progress: list[str] = []
    report = run_smoke([target], timeout=2.0, progress=progress.append)
    (check,) = report.checks
    assert (check.check, check.ok, check.unavailable) == ("ready", False, True)
    assert f"{address} not ready within 2 s" in check.detail
    assert "Connection refused" in check.detail
    assert progress and progress[0].startswith("waiting for public (")
    assert report.exit_code == ExitCode.UNAVAILABLE


def test_sites_whose_embeddings_differ_fail_the_agreement_check() -> None:
    same = np.array([0.6, 0.8], np.float32)
    tilted = np.array([0.8, 0.6], np.float32)
    passed = agreement("public", "private", {"public": same, "private": same})
    assert (passed.site, passed.ok, passed.value) == ("public/private", True, pytest.approx(1.0))
    failed = agreement("public", "private", {"public": same, "private": tilted})
    assert not failed.ok and failed.value == pytest.approx(0.96)
    assert failed.detail.startswith(f"cosine 0.960000 < {MIN_COSINE}: the sites serve different")
    missing = agreement("public", "private", {"public": same})
    assert (missing.ok, missing.detail) == (False, "not compared: no embedding from private")

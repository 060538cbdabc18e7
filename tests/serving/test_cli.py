"""`python -m serving`: routing chosen on the command line, decisions shown with --stats."""

import json
from pathlib import Path

import pytest

from hybrid.cli import ExitCode
from serving.__main__ import main
from serving.endpoints import Endpoint
from tests.serving.test_routing import EMBEDDING_STEPS, FAST, FakeSite


@pytest.fixture
def sites(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeSite]:
    fakes = {"public": FakeSite("public"), "private": FakeSite("private")}
    monkeypatch.setattr(Endpoint, "grpc_client", lambda self: fakes[self.site])
    return fakes


@pytest.fixture
def state(tmp_path: Path) -> Path:
    entries = {
        "public": {"grpc": "127.0.0.1:1", "models": list(EMBEDDING_STEPS)},
        "private": {"grpc": "127.0.0.1:3", "models": [*EMBEDDING_STEPS, "ctr_ranker"]},
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"sites": entries}))
    return path


DEADLINE = str(FAST.attempt_timeout)
"""The fake sites accept no longer attempts."""


def stats(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    """The --stats JSON line (printed before any error message)."""
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith('{"requests"')]
    return json.loads(line)["requests"]


def test_burst_and_sensitive_requests_are_shown_with_their_reasons(
    sites: dict[str, FakeSite], state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["embed", "a", "--state", str(state), "--format", "json", "--stats"]
    assert main([*args, "--routing", "burst", "--sensitive", "--deadline", DEADLINE]) == 0
    assert stats(capsys) == [
        {"site": "private", "model": "text_embedding", "reason": "preferred", "sensitive": True,
         "requests": 1},
    ]  # fmt: skip
    sites["private"].mode = "down"
    assert main([*args, "--routing", "burst", "--sensitive", "--deadline", DEADLINE]) == 3
    assert [row["reason"] for row in stats(capsys)] == ["fail_closed"]
    assert not sites["public"].calls, "a sensitive request never reached public"
    assert main([*args, "--routing", "burst", "--deadline", DEADLINE]) == 0
    assert [(row["site"], row["reason"]) for row in stats(capsys)] == [("public", "failover")]


def test_json_output_says_which_site_answered(
    sites: dict[str, FakeSite], state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--state", str(state), "--format", "json", "--deadline", DEADLINE]
    assert main(["rank", "--user", "7", "--items", "1", "2", *args]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert ranked["sites"] == ["private"] and ranked["model"] == "ctr_ranker"
    assert main(["embed", "a", "--site", "public", *args]) == 0
    assert json.loads(capsys.readouterr().out)["sites"] == ["public"]


def test_rank_on_a_model_that_is_not_a_ranker_is_a_usage_error_naming_both(
    sites: dict[str, FakeSite], state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["rank", "--user", "1", "--items", "1", "--model", "text_embedding"]
    argv += ["--state", str(state), "--deadline", DEADLINE]
    assert main(argv) == ExitCode.USAGE
    error = " ".join(capsys.readouterr().err.split())
    assert "model 'text_embedding' is not a ranker" in error
    assert "the catalog's ranker is 'ctr_ranker'" in error
    assert main([*argv, "--format", "json"]) == ExitCode.USAGE
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == ExitCode.USAGE and "not a ranker" in document["error"]

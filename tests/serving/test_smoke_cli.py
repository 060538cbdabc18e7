"""`python -m serving.smoke`: help, rendering off and on a terminal, user mistakes in words."""

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from serving.smoke.__main__ import main, render
from serving.smoke.checks import Check, SmokeReport

LONG = "private-only model ctr_ranker " + "is in the public repository index " * 6 + "(READY)"
REPORT = SmokeReport(
    (
        Check("public", "ready", True, "a1b2.elb.amazonaws.com:8001 ready after 0.4 s (TLS)"),
        Check("public", "placement", False, LONG),
        Check("public/private", "agreement", True, "cosine 0.999990 >= 0.999", value=0.99999),
    )
)


def test_help_explains_the_checks_and_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "--private-address HOST:PORT" in text and "--outputs FILE|-" in text
    assert "cosine >= 0.999" in text
    for code in ("0  every check passed", "1  a check failed", "2  usage", "3  a site"):
        assert code in text


def test_off_a_terminal_each_check_is_one_complete_line() -> None:
    out = io.StringIO()
    render(REPORT, Console(file=out, width=80), "smoke check of stack 'dev'")
    lines = out.getvalue().splitlines()
    assert lines[0] == "smoke check of stack 'dev'"
    assert lines[2] == f"FAIL  public          placement  {LONG}"
    assert len(lines[2]) > 200, "not wrapped at 80 columns"
    assert lines[-1] == "1 of 3 checks failed"
    assert len(lines) == 5


def test_on_a_terminal_it_is_a_table_that_keeps_every_word() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system=None)
    render(REPORT, console, "smoke check of stack 'dev'")
    text = out.getvalue()
    assert "┃ site " in text and "✘ FAIL" in text and "✔ pass" in text
    cells = " ".join(line.strip("│ ").split("│")[-1].strip() for line in text.splitlines())
    assert " ".join(LONG.split()) in " ".join(cells.split())


def test_a_missing_stack_output_is_named_with_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"tritonEndpoints": {"public": "elb", "private": "10.0.0.1"}}))
    assert main(["--stack", "dev", "--outputs", str(path), "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert "caCertPem: missing" in captured.err and "Traceback" not in captured.err
    assert "pulumi stack output --json --show-secrets --stack dev" in captured.err
    report = json.loads(captured.out)
    assert report["ok"] is False and report["exit_code"] == 2
    assert "clientCertPem: missing" in report["error"]


def test_the_local_mode_must_be_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--local", "--state-dir", str(tmp_path)]) == 2
    assert "start the local mode with `make up-local`" in capsys.readouterr().err


def test_cloud_options_do_not_go_with_the_local_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--local", "--private-address", "10.0.0.1:8001"])
    assert exited.value.code == 2
    assert "--outputs and --private-address go with --stack" in capsys.readouterr().err

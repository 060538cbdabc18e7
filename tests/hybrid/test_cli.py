"""The exit codes are documented as defined; usage errors exit USAGE, as JSON on request."""

import json
import re

import pytest

from hybrid.cli import ArgumentParser, ExitCode, at_least_one, error_json, positive
from hybrid.paths import PROJECT_ROOT


def test_docs_list_exactly_the_exit_codes_the_code_defines() -> None:
    text = (PROJECT_ROOT / "docs" / "cli.md").read_text()
    rows = re.findall(r"^\| (\d+) \| ([A-Z]+): ", text, re.MULTILINE)
    assert [(int(code), name) for code, name in rows] == [(c.value, c.name) for c in ExitCode]


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="tool")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run")
    run.add_argument("--deadline", type=positive, default=1.0)
    run.add_argument("--rounds", type=at_least_one, default=1)
    run.add_argument("--format", choices=("table", "json"), default="table")
    return parser


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "--deadline", "0"], "argument --deadline: must be more than 0, not 0"),
        (["run", "--deadline", "-2"], "argument --deadline: must be more than 0, not -2"),
        (["run", "--deadline", "nan"], "argument --deadline: must be more than 0, not nan"),
        (["run", "--deadline", "soon"], "argument --deadline: 'soon' is not a number"),
        (["run", "--rounds", "0"], "argument --rounds: must be at least 1, not 0"),
        (["run", "--rounds", "1.5"], "argument --rounds: '1.5' is not a whole number"),
        (["walk"], "argument command: invalid choice: 'walk'"),
    ],
)
def test_a_usage_error_exits_usage_and_says_why(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(argv)
    assert exited.value.code == ExitCode.USAGE
    captured = capsys.readouterr()
    assert said in captured.err and captured.out == ""


@pytest.mark.parametrize("flag", [["--format", "json"], ["--format=json"]])
def test_with_format_json_a_usage_error_is_also_the_json_error(
    flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["run", *flag, "--deadline", "0"])
    assert exited.value.code == ExitCode.USAGE
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "ok": False,
        "exit_code": 2,
        "error": "tool run: argument --deadline: must be more than 0, not 0",
    }


def test_the_json_error_has_one_shape() -> None:
    assert json.loads(error_json("boom", ExitCode.UNAVAILABLE)) == {
        "ok": False,
        "exit_code": 3,
        "error": "boom",
    }

"""The README's commands work as written: each line of its ```bash and ```sh blocks is run
here exactly as written, or is in ``NOT_RUN`` with the reason it cannot be."""

import re
import subprocess

import pytest

from hybrid.paths import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()
BLOCK = re.compile(r"^( *)```(?:bash|sh)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
COMMENT = re.compile(r"\s+#\s.*$")

LOCAL_MODE = "needs the local mode running (`make up-local`, minutes); tests/serving/ run the "
NOT_RUN: dict[str, str] = {
    "make up-local": "starts two Tritons and both emulators (minutes); tests/serving/"
    "test_stack_*.py start the same stack",
    "make test": "the whole suite, CI's own command (`.ci/run`); this test is part of it",
    "make status-local": LOCAL_MODE + "same health check on a live stack",
    ".venv/bin/python -m serving embed": LOCAL_MODE + "client on a live stack",
    ".venv/bin/python -m serving rank": LOCAL_MODE + "client on a live stack",
    "curl -s http://127.0.0.1:": LOCAL_MODE + "HTTP protocol through tritonclient; its port "
    "is the one `make up-local` printed",
    "make down-local": "would stop a local mode the developer is running; tests/serving/"
    "test_stack_teardown.py covers it",
    "make bench": "a benchmark of minutes (`make bench-*` likewise)",
    "make policy-review": "evaluates every stack under mocks (minutes); tests/policy/"
    "test_review.py runs the same review of every committed stack",
    ".venv/bin/python -m policy.review --stack prod": "the review of one stack, minutes; "
    "tests/policy/test_review.py runs it (`--format md`) on every committed stack",
    "pulumi ": "needs the Pulumi CLI and a state backend or cloud account (Deploying for real)",
    "mkdir -p .local/pulumi-state": "the Pulumi state folder for the `pulumi login` after it",
    "export PULUMI_CONFIG_PASSPHRASE=": "the user's own passphrase for the Pulumi CLI",
    "gcloud ": "needs the Google Cloud CLI and a GCP project",
}
"""Command prefix -> why a test does not run it."""


def readme_commands(text: str = README) -> list[str]:
    """Each command of the shell blocks: continuation lines joined, comments dropped."""
    found = []
    for _, body in BLOCK.findall(text):
        for line in re.sub(r"\s*\\\n\s*", " ", body).splitlines():
            command = COMMENT.sub("", line).strip()
            if command and not command.startswith("#"):
                found.append(command)
    return found


def reason_not_run(command: str) -> str | None:
    reasons = [reason for prefix, reason in NOT_RUN.items() if command.startswith(prefix)]
    assert len(reasons) <= 1, f"{command!r} matches several NOT_RUN prefixes"
    return reasons[0] if reasons else None


COMMANDS = readme_commands()


def test_the_readme_has_shell_commands() -> None:
    assert len(COMMANDS) > 10 and "make help" in COMMANDS


def test_every_reason_not_to_run_still_names_a_readme_command() -> None:
    stale = [p for p in NOT_RUN if not any(c.startswith(p) for c in COMMANDS)]
    assert not stale, f"no README command starts with {stale}; drop them from NOT_RUN"


def test_the_extraction_joins_continuations_and_drops_comments() -> None:
    text = "```bash\nmake a   # comment\n# only a comment\ncurl x \\\n  -d 'y'\n```\n"
    assert readme_commands(text) == ["make a", "curl x -d 'y'"]


@pytest.mark.parametrize("command", [c for c in COMMANDS if reason_not_run(c) is None])
def test_the_command_runs_as_written(command: str) -> None:
    result = subprocess.run(
        command,
        shell=True,
        executable="/bin/bash",
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{command} printed nothing"
    assert "Traceback" not in result.stderr

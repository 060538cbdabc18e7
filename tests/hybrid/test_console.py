"""Output in a log or a pipe stays complete: wide consoles, and progress as plain lines."""

import ast
import io
import re
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn
from rich.table import Table

from hybrid.console import LOG_WIDTH, Progress, make_console
from hybrid.paths import PROJECT_ROOT

PACKAGES = ("hybrid", "modelkit", "components", "infra", "serving", "policy")


def test_a_console_that_is_no_terminal_is_wide() -> None:
    assert make_console(file=io.StringIO()).width == LOG_WIDTH
    assert make_console(file=io.StringIO(), width=90).width == 90
    terminal = make_console(file=io.StringIO(), force_terminal=True)
    assert terminal.is_terminal and terminal.width != LOG_WIDTH


def test_a_wide_table_reaches_a_pipe_whole() -> None:
    out = io.StringIO()
    table = Table("pool", "gpu")
    long_name = "private-a100-80gb-on-demand-nodes-" + "x" * 60
    table.add_row(long_name, "a100-80gb")
    make_console(file=out).print(table)
    assert any(long_name in line and "a100-80gb" in line for line in out.getvalue().splitlines())


def transfer(out: io.StringIO, interval: float, terminal: bool = False) -> list[str]:
    console = make_console(file=out, force_terminal=terminal or None)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with Progress(*columns, TransferSpeedColumn(), console=console, interval=interval) as bar:
        task = bar.add_task("upload s3://hybrid-public-models/repo/02a3e1bc7fc93be8", total=4e7)
        for _ in range(4):
            bar.advance(task, 1e7)
        bar.update(task, description="verify s3://hybrid-public-models/repo/02a3e1bc7fc93be8")
    return out.getvalue().splitlines()


def test_progress_in_a_log_is_a_plain_line_per_step() -> None:
    lines = transfer(io.StringIO(), interval=3600)
    assert [line.split()[:2] for line in lines] == [
        ["upload", "s3://hybrid-public-models/repo/02a3e1bc7fc93be8"],
        ["upload", "s3://hybrid-public-models/repo/02a3e1bc7fc93be8"],
        ["verify", "s3://hybrid-public-models/repo/02a3e1bc7fc93be8"],
    ]
    assert "0.0/40.0 MB" in lines[0] and "40.0/40.0 MB" in lines[1]
    assert not any(re.search("[━╸╺]", line) for line in lines)  # no bars


def test_progress_in_a_log_repeats_at_its_interval() -> None:
    assert len(transfer(io.StringIO(), interval=0)) == 6  # start, 4 advances, the new step


def test_progress_in_a_terminal_is_a_live_bar() -> None:
    out = io.StringIO()
    transfer(out, interval=0, terminal=True)
    assert "━" in out.getvalue()


def constructed_elsewhere(path: Path) -> list[str]:
    """Where ``path`` builds a rich Console, or imports rich's own Progress."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "rich.progress":
            found += [f"{node.lineno}: Progress" for a in node.names if a.name == "Progress"]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Console":
            found.append(f"{node.lineno}: Console()")
    return found


def test_every_console_and_progress_comes_from_the_helper() -> None:
    helper = PROJECT_ROOT / "hybrid" / "console.py"
    made_elsewhere = [
        f"{path.relative_to(PROJECT_ROOT)}:{where}"
        for package in PACKAGES
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
        if path != helper
        for where in constructed_elsewhere(path)
    ]
    assert not made_elsewhere, "use hybrid.console's make_console and Progress"

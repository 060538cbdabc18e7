"""Output that reads well in a terminal and in a log: the one place that decides how wide a
rich console is, and how progress shows where nothing can redraw a line.

A terminal gets rich's own sizing and live progress bars. Anything else (a CI log, a pipe,
a file) has no width to fit, and rich would wrap it at 80 columns, cutting table cells and
progress readings short. There the console is wide enough for every table the tools print,
and progress is a plain line per task: when it starts, when its step changes, every
``PROGRESS_INTERVAL_S`` while it runs, and when it finishes.
"""

import time
from typing import Any

import rich.progress
from rich.console import Console, RenderableType
from rich.progress import BarColumn, SpinnerColumn, Task, TaskID
from rich.table import Table
from rich.text import Text

LOG_WIDTH = 200
"""Columns of a console that is not a terminal: wider than any table the tools print."""

PROGRESS_INTERVAL_S = 10.0
"""Seconds between the progress lines of a running task in a log."""


def make_console(*, stderr: bool = False, **options: Any) -> Console:
    """A rich console on stdout (or stderr): terminal-sized, or ``LOG_WIDTH`` wide when it
    writes to anything but a terminal. ``options`` go to ``rich.console.Console``."""
    out = Console(stderr=stderr, **options)
    if "width" not in options and not out.is_terminal:
        out.width = LOG_WIDTH
    return out


class Progress(rich.progress.Progress):
    """rich's progress bars on a terminal; on anything else, periodic plain lines (the
    columns without bars and spinners), since a log cannot redraw a bar."""

    def __init__(
        self,
        *columns: str | rich.progress.ProgressColumn,
        console: Console,
        interval: float = PROGRESS_INTERVAL_S,
        disable: bool = False,
        **options: Any,
    ) -> None:
        self._lines = not disable and not console.is_terminal
        super().__init__(*columns, console=console, disable=disable or self._lines, **options)
        self._interval = interval
        self._logged: dict[TaskID, tuple[float, str, bool]] = {}
        """Task -> when its last line was printed, its description then, finished then."""

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        task_id = super().add_task(description, *args, **kwargs)
        self._log(task_id, force=True)
        return task_id

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._log(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._log(task_id)

    def _log(self, task_id: TaskID, force: bool = False) -> None:
        if not self._lines:
            return
        with self._lock:  # uploads report from several threads
            self._log_locked(task_id, force)

    def _log_locked(self, task_id: TaskID, force: bool) -> None:
        task = self._tasks[task_id]
        now = time.monotonic()
        last, description, finished = self._logged.get(task_id, (now, task.description, False))
        due = (
            force
            or task.description != description
            or (task.finished and not finished)
            or (not task.finished and now - last >= self._interval)
        )
        if not due:
            return
        self._logged[task_id] = (now, task.description, task.finished)
        row = Table.grid(padding=(0, 1))
        row.add_row(*(_cell(c, task) for c in self.columns if not isinstance(c, _LIVE_ONLY)))
        self.console.print(row)


_LIVE_ONLY = (BarColumn, SpinnerColumn)
"""Columns that mean something only while redrawn."""


def _cell(column: str | rich.progress.ProgressColumn, task: Task) -> RenderableType:
    if isinstance(column, str):  # a format string, as rich itself renders it
        return Text.from_markup(column.format(task=task))
    return column(task)

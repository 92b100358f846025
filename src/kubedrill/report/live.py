"""Progress while it runs: lines written to the terminal as they happen, past pytest's output
capture (as pytest's own live logging does), so a terminal and a CI log both show the lab
coming up, each drill's phase, what it waits for and for how long against its budget.

`LiveProgress(config)` is a `Callable[[str], None]`; with `--no-progress` it writes nothing.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

import pytest

PREFIX = "[kubedrill]"


class LiveProgress:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.enabled = not config.getoption("--no-progress", False)
        self.started = time.monotonic()
        self._pending: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"{PREFIX} {time.monotonic() - self.started:7.1f}s  {message}"
        with self._lock:
            self._pending.append(line)
        # Capture is suspended and resumed by the main thread only (pytest's capture is not
        # thread-safe): a line from a background thread waits for the next main-thread one.
        if threading.current_thread() is threading.main_thread():
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
        if lines:
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        reporter = self.config.pluginmanager.getplugin("terminalreporter")
        capture = self.config.pluginmanager.getplugin("capturemanager")
        if reporter is None:  # no terminal (e.g. -p no:terminal): stderr is all there is
            sys.stderr.write("".join(line + "\n" for line in lines))
            return
        suspended = (
            capture.global_and_fixture_disabled()
            if capture is not None
            else contextlib.nullcontext()
        )
        with suspended:
            reporter.ensure_newline()
            for line in lines:
                reporter.write_line(line)

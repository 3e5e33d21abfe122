"""One status line that a notebook updates in place (and a terminal prints).

In a notebook the line is a display that each update replaces, so the executed copy keeps the
last state only (no progress widget left at 0 % above a table that says the work is done).
"""

from __future__ import annotations

import sys


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()  # type: ignore[attr-defined]
    return ip is not None and "ZMQ" in type(ip).__name__


class Status:
    """`show(text)` replaces the previous line."""

    def __init__(self) -> None:
        self._handle = None
        self._last = ""

    def show(self, text: str) -> None:
        if text == self._last:
            return
        self._last = text
        if _in_notebook():
            from IPython.display import Pretty, display

            if self._handle is None:
                self._handle = display(Pretty(text), display_id=True)
            else:
                self._handle.update(Pretty(text))
        else:
            print(text, flush=True)

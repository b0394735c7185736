"""Progress bars that suit where they are shown: every bar in dlsp comes from `progress_bar`.

On a terminal (or in a notebook) a bar is tqdm's live bar. In a log file or a pipe, tqdm's carriage-return
redraws would pile hundreds of updates into one line; there a bar prints plain lines instead: one per step for
slow loops such as epochs (`per_step=True`), and for fast ones (files, clips) one per tenth of the total and one
at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

# Plain-line bars of fast loops print when the count passes each of these fractions of the total.
LINE_STEPS = 10


def progress_bar(iterable: Iterable[Any] | None = None, *, desc: str, unit: str, total: float | None = None,
                 disable: bool = False, per_step: bool = False, **tqdm_args: Any) -> Any:
    """A tqdm bar on a terminal, else a `LineProgress` printing plain lines to stderr (nothing when `disable`).

    Args:
        per_step: in a log, print a line at every step (epochs), not only every tenth of the total (files).
        tqdm_args: passed to tqdm (`leave`, `initial`, ...); `initial` is also honoured by `LineProgress`.

    Both kinds iterate over `iterable` and support `update`, `set_postfix`, `total`, `close` and `with`.
    """
    from tqdm.auto import tqdm

    if disable:
        return tqdm(iterable, total=total, disable=True)
    if interactive():
        return tqdm(iterable, desc=desc, unit=unit, total=total, **tqdm_args)
    return LineProgress(iterable, desc=desc, unit=unit, total=total, per_step=per_step,
                        initial=tqdm_args.get("initial", 0))


def interactive() -> bool:
    """Whether stderr shows live bars: a terminal, or a Jupyter kernel (whose stderr is not a TTY)."""
    stream = sys.stderr
    if stream is not None and hasattr(stream, "isatty") and stream.isatty():
        return True
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class LineProgress:
    """The log-file stand-in for a tqdm bar: `desc: n/total unit, key=value [elapsed]` lines on stderr."""

    def __init__(self, iterable: Iterable[Any] | None = None, *, desc: str, unit: str, total: float | None = None,
                 per_step: bool = False, initial: float = 0) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.desc, self.unit, self.total, self.per_step = iterable, desc, unit, total, per_step
        self.n = self.printed = initial
        self.postfix = ""
        self.start = time.perf_counter()
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this progress bar has no iterable; call update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        before, self.n = self.n, self.n + n
        if self.per_step or (self.total and int(LINE_STEPS * self.n / self.total)
                             > int(LINE_STEPS * before / self.total)):
            self._print()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{key}={value}" for key, value in items.items())

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.postfix = text

    def refresh(self) -> None:
        pass  # lines are printed as the count moves, never redrawn

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.per_step and self.n != self.printed:
            self._print()  # where a fast loop ended (interrupted, or between two tenths)

    def line(self) -> str:
        """The line this bar prints now."""
        from tqdm import tqdm

        count = f"{self.n:g}" + (f"/{self.total:g}" if self.total else "")
        return (f"{self.desc}: {count} {self.unit}" + (f", {self.postfix}" if self.postfix else "")
                + f" [{tqdm.format_interval(time.perf_counter() - self.start)}]")

    def _print(self) -> None:
        self.printed = self.n
        print(self.line(), file=sys.stderr, flush=True)

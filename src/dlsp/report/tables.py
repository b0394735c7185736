"""Plain-text tables for the terminal and markdown tables for READMEs and notes."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], markdown: bool = False,
                 precision: int = 3) -> str:
    """Align columns; numbers right-aligned with `precision` decimals."""
    cells = [[_text(v, precision) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return ("| " + " | ".join(parts) + " |") if markdown else "  ".join(parts).rstrip()

    rule = ("|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric,
                                                                                               strict=True)) + "|"
            if markdown else "  ".join("-" * w for w in widths))
    return "\n".join([line([str(h) for h in headers]), rule, *(line(r) for r in cells)])


def _text(value: object, precision: int) -> str:
    if isinstance(value, float):
        return f"{value:.{precision}f}"
    return str(value)

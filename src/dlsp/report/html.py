"""A self-contained HTML report: tables, images and audio players with relative links."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

from dlsp.fileio import write_text

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
audio { width: 260px; }
.example { margin: 2em 0; }
"""


class Html(str):
    """Markup that a table cell shows as it is (not escaped), e.g. a nested table."""


def table_html(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table; floats are shown with 3 decimals, `Html` cells unescaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def audio_html(label: str, relative_path: str) -> str:
    return (f"<div>{html.escape(label)}<br><audio controls preload=\"none\" "
            f"src=\"{html.escape(relative_path)}\"></audio></div>")


def image_html(relative_path: str, alt: str) -> str:
    return f"<img src=\"{html.escape(relative_path)}\" alt=\"{html.escape(alt)}\">"


def write_report(path: str | os.PathLike[str], title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """Write a page made of `(heading, html body)` sections."""
    parts = [f"<h2>{html.escape(heading)}</h2>\n{body}" for heading, body in sections]
    page = (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n" + "\n".join(parts)
            + "\n</body></html>\n")
    return write_text(path, page)


def _cell(value: object) -> str:
    if isinstance(value, Html):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))

"""What the benchmark scripts share: finding the real data they run on."""

from __future__ import annotations

import sys
from pathlib import Path


def data_folder(given: str | None) -> Path:
    """`--data` if given, else ../shared/data (or DLSP_DATA); one line on stderr and exit status 2 when it is not a
    folder."""
    from dlsp.paths import shared_data_dir

    data = Path(given) if given else shared_data_dir()
    if data is None or not data.is_dir():
        print("benchmark needs ../shared/data (or --data DIR)", file=sys.stderr)
        raise SystemExit(2)
    return data

"""Fixed hold-out sets: recordings that shipped models never hear, so benchmarks measure what ships.

A recipe names a set in `data.exclude` as `@NAME` (beside plain patterns); `benchmarks/denoise.py` builds its
cross-corpus test set from the same set, so the two cannot drift apart. Patterns are `fnmatch` patterns over
`<folder name>/<path inside the folder>` (POSIX separators), where the folder is the one given to `--clean` or
`--noise`: `speechocean762/SPEAKER0001/*` matches every file of that speaker wherever the corpus lives.

Speaker recipes name whole speaker sets in `data.val_speakers` / `data.test_speakers` the same way (`@NAME` of
`SPEAKER_SETS`), so the speakers that validate a speaker encoder are the ones the denoiser never trains on.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from dlsp.errors import DlspError

# speechocean762: 16 of its 125 speakers, the first four by ID of each gender x age group (children < 13 years),
# so the held-out voices span what the corpus has.
SPEECHOCEAN_HELD_OUT = (
    "SPEAKER0001", "SPEAKER0005", "SPEAKER0048", "SPEAKER0054",  # boys
    "SPEAKER0006", "SPEAKER0026", "SPEAKER0053", "SPEAKER0070",  # girls
    "SPEAKER0482", "SPEAKER0560", "SPEAKER0739", "SPEAKER0960",  # men
    "SPEAKER0036", "SPEAKER0135", "SPEAKER0575", "SPEAKER0594",  # women
)
# Arabic Speech Commands: the corpus's own validation speakers.
ARABIC_HELD_OUT = ("00000002", "00000007", "00000008", "00000012", "00000021", "00000025")
# FSDD: the two speakers the speaker recipes keep out of training (it has only five).
FSDD_HELD_OUT = ("nicolas", "theo")
# moodist: whole noise kinds across its groups (places, urban, transport, things, rain, animals), never heard in
# training in any form; kinds close to them (crowd, crowded bar, road, highway) stay in training, as they would
# for any model meeting a new cafe.
MOODIST_HELD_OUT = (
    "places_cafe", "places_restaurant", "places_office", "urban_busy-street", "urban_traffic",
    "transport_inside-a-train", "things_keyboard", "things_washing-machine", "rain_heavy-rain",
    "animals_dog-barking",
)
# household_street: one recording (all its slices) of each of its four kinds.
HOUSEHOLD_HELD_OUT = ("aircon_2", "dishwasher_3", "street_1", "vacuuming_2")

HOLDOUT_SETS: dict[str, tuple[str, ...]] = {
    "crosscorpus-speech": (
        *(f"speechocean762/{speaker}/*" for speaker in SPEECHOCEAN_HELD_OUT),
        *(f"arabic_commands/*/{speaker}_*" for speaker in ARABIC_HELD_OUT),
    ),
    "crosscorpus-noise": (
        *(f"moodist/{kind}.*" for kind in MOODIST_HELD_OUT),
        *(f"household_street/{recording}_*" for recording in HOUSEHOLD_HELD_OUT),
    ),
}
HOLDOUT_SETS["crosscorpus"] = HOLDOUT_SETS["crosscorpus-speech"] + HOLDOUT_SETS["crosscorpus-noise"]
# Speaker names (as the dataset indexers give them) per set, for `@NAME` in speaker recipes.
SPEAKER_SETS: dict[str, tuple[str, ...]] = {
    "speechocean762": SPEECHOCEAN_HELD_OUT,
    "arabic": ARABIC_HELD_OUT,
    "fsdd": FSDD_HELD_OUT,
}


def expand_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Plain patterns as they are, `@NAME` replaced by the patterns of that hold-out set."""
    out: list[str] = []
    for pattern in patterns:
        if pattern.startswith("@"):
            name = pattern[1:]
            if name not in HOLDOUT_SETS:
                raise DlspError(f"unknown hold-out set {pattern!r} (known: "
                                f"{', '.join('@' + n for n in sorted(HOLDOUT_SETS))})")
            out += HOLDOUT_SETS[name]
        else:
            out.append(pattern)
    return tuple(out)


def relative_name(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> str:
    """`<folder name>/<path inside folder>`, the string hold-out patterns match."""
    folder = Path(folder)
    return f"{folder.resolve().name}/{Path(path).resolve().relative_to(folder.resolve()).as_posix()}"


def is_held_out(path: str | os.PathLike[str], folder: str | os.PathLike[str], patterns: Sequence[str]) -> bool:
    """Whether `path` (a file under `folder`) matches any of the expanded `patterns`."""
    name = relative_name(path, folder)
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def split_held_out(paths: Iterable[Path], folder: str | os.PathLike[str],
                   patterns: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """`(kept, held_out)` of `paths` under `folder` by the expanded `patterns`."""
    kept, held = [], []
    for path in paths:
        (held if is_held_out(path, folder, patterns) else kept).append(path)
    return kept, held

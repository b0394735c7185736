"""`dlsp speaker identify`: who of the enrolled people is this? Rank everyone, name one or say unknown."""

from __future__ import annotations

import argparse
import math

from dlsp.cli.common import add_command, positive_int
from dlsp.cli.speaker.common import add_speaker_db_option, add_speaker_model_options

IDENTIFIED, UNKNOWN = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "identify", "rank every enrolled person against a recording and name the speaker or 'unknown'",
        "dlsp speaker identify unknown.wav --db speakers.db\n"
        "dlsp speaker identify unknown.wav --db speakers.db --top 3 --json who.json\n"
        "dlsp speaker identify unknown.wav --db speakers.db --margin 0   # 1:1 threshold, no 1:N margin",
        description="Score the recording against every enrolled person (1:N) with the model's score (AS-norm or "
                    "cosine, as verify) and list the best --top. The best person is named when their score "
                    "reaches the threshold plus a margin; otherwise the answer is 'unknown'. The threshold is "
                    "chosen for each person as in verify (--threshold, else the database's calibration, else the "
                    "model's: for the person's number of enrolled recordings when the model has thresholds by "
                    "enrolment size, and its narrowband threshold for a recording whose content stops below 5 kHz, "
                    "when it has one). The margin makes up for the N chances an impostor gets: it raises each "
                    "threshold to the score where the expected false-accept rate is the threshold's divided by N "
                    "(from the rate table of the threshold's source; 0 without one), so naming a wrong person is "
                    "about as rare as a false accept in verify. --margin sets it directly. Exit code: 0 named, "
                    "1 unknown, 2 error.",
    )
    parser.add_argument("file", metavar="FILE", help="recording to identify")
    add_speaker_db_option(parser)
    parser.add_argument("--top", type=positive_int, default=5, metavar="K", help="list the K best (default 5)")
    parser.add_argument("--threshold", type=float, help="1:1 threshold (default: the database's, else the model's)")
    parser.add_argument("--margin", type=float, help="score the best must clear the threshold by (default: the "
                                                     "1:N margin from the rate table)")
    parser.add_argument("--json", metavar="FILE", help="also write the ranking and the decision as JSON")
    add_speaker_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from dlsp.errors import DlspError
    from dlsp.fileio import write_json
    from dlsp.report.tables import format_table
    from dlsp.speaker.database import SpeakerDatabase
    from dlsp.speaker.decision import choose_threshold, identify
    from dlsp.speaker.embed import SpeakerEmbedder
    from dlsp.speaker.model_file import load_speaker_model

    if args.margin is not None and not (math.isfinite(args.margin) and args.margin >= 0):
        raise DlspError(f"--margin must be a finite score of 0 or more, got {args.margin}")
    loaded = load_speaker_model(args.model)
    with SpeakerDatabase(args.db, loaded.model_id, loaded.embedding_dim, create=False) as db:
        people = db.list()
        calibration = db.calibration()
    if not people:
        raise DlspError("nobody is enrolled yet (enroll people first with 'dlsp speaker enroll')", args.db)
    embedding, bandwidth = SpeakerEmbedder(loaded, args.device).embed_probe(args.file)
    narrowband = loaded.scorer.is_narrowband(bandwidth)
    choices = [choose_threshold(loaded.scorer, calibration, args.threshold, args.db, narrowband, person.n_files)
               for person in people]
    scores = loaded.scorer.scores(np.stack([p.embedding for p in people]), embedding)
    result = identify([p.name for p in people], scores, choices, args.margin)
    shown = min(args.top, len(result.names))
    rows = [(rank + 1, result.names[rank], float(result.scores[rank]),
             "yes" if result.scores[rank] >= result.required[rank] else "") for rank in range(shown)]
    print(format_table(("rank", "name", "score", "clears"), rows))
    top = result.choices[0]
    rule = (f"threshold {top.threshold:.3f} + margin {result.margins[0]:.3f} for {len(people)} enrolled = "
            f"{result.required[0]:.3f}")
    who = result.identified
    print(f"-> {who} (score {result.scores[0]:.3f} >= {rule})" if who else
          f"-> unknown (best {result.names[0]} {result.scores[0]:.3f} < {rule})")
    kind = "AS-norm" if loaded.scorer.kind == "asnorm" else "cosine"
    named = result.chance_impostor_named()
    print(f"{kind} scores; threshold from {top.source}" + (
        "" if named is None else f"; expected chance an impostor is named: {100 * named:.2f}%"))
    if args.json:
        write_json(args.json, {
            "file": args.file, "identified": who, "threshold": top.threshold, "margin": float(result.margins[0]),
            "required": float(result.required[0]), "threshold_source": top.source,
            "score_kind": loaded.scorer.kind, "narrowband": narrowband, "bandwidth_hz": bandwidth,
            "chance_impostor_named": named, "model_id": loaded.model_id,
            "ranking": [{"name": result.names[rank], "score": float(result.scores[rank]),
                         "required": float(result.required[rank])} for rank in range(shown)]})
    return IDENTIFIED if who else UNKNOWN

"""`dlsp speaker enroll`: add a person's recordings to the enrolment database."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from dlsp.cli.common import add_command
from dlsp.cli.speaker.common import add_speaker_db_option, add_speaker_model_options

if TYPE_CHECKING:
    from dlsp.speaker.scoring import Scorer


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "enroll", "enroll a person from recordings into an SQLite speaker database",
        "dlsp speaker enroll alice alice1.wav alice2.wav --db speakers.db\n"
        "dlsp speaker enroll alice more.wav --db speakers.db            # adds to alice's enrolment\n"
        "dlsp speaker enroll alice new1.wav new2.wav --db speakers.db --replace",
        description="Embed the recordings and store the person's mean embedding in the database (created if "
                    "missing). Enrolling a known name again adds the new recordings to the mean; --replace "
                    "starts afresh. Every file is checked before the database is touched. The database records "
                    "the model's id and embedding size and refuses any other model; concurrent enrolments are "
                    "safe. Says which of the model's thresholds verify will judge the person at (by their number "
                    "of recordings) and what validation measured there.",
    )
    parser.add_argument("name", help="the person's name")
    parser.add_argument("files", nargs="+", metavar="FILE", help="recordings of the person")
    add_speaker_db_option(parser)
    parser.add_argument("--replace", action="store_true", help="replace the person's enrolment")
    add_speaker_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.speaker.database import SpeakerDatabase, check_name
    from dlsp.speaker.embed import SpeakerEmbedder

    check_name(args.name)
    embedder = SpeakerEmbedder.from_file(args.model, args.device)
    embeddings = embedder.embed_files(args.files)
    with SpeakerDatabase(args.db, embedder.loaded.model_id, embedder.embedding_dim) as db:
        enrolled = db.enroll(args.name, embeddings, replace=args.replace)
    print(f"enrolled {enrolled.name}: {len(args.files)} file(s) added, {enrolled.n_files} in total ({args.db})")
    note = judged_at(embedder.loaded.scorer, enrolled.name, enrolled.n_files)
    if note:
        print(note)
    return 0


def judged_at(scorer: Scorer, name: str, n_files: int) -> str:
    """Which of the model's thresholds verify will judge the person at, what validation measured there, and,
    for fewer recordings than those thresholds were set on, the advice to add some ("" without a rate table)."""
    chosen = scorer.for_enrolment(n_files)
    if chosen.table is None or chosen.enrolled is None:
        return ""
    line = (f"verify judges {name} at the model's threshold for speaker models of {chosen.enrolled} recordings "
            f"(validation: {100 * chosen.table.far_at(chosen.threshold):.1f}% false accepts, "
            f"{100 * chosen.table.frr_at(chosen.threshold):.1f}% false rejects)")
    if n_files < chosen.enrolled:
        line += (f"; with {n_files} recording{'s' * (n_files > 1)} expect more false rejects: enroll "
                 f"{chosen.enrolled - n_files} more")
    return line

"""`dlsp speaker enroll`: add a person's recordings to the enrolment database."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command
from dlsp.cli.speaker.common import add_speaker_db_option, add_speaker_model_options


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
                    "safe.",
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
    return 0

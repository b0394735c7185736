"""`dlsp speaker list`, `remove` and `check`: look after the enrolment database."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command
from dlsp.cli.speaker.common import add_speaker_db_option


def register(subparsers: argparse._SubParsersAction) -> None:
    listing = add_command(subparsers, "list", "list the people enrolled in a speaker database",
                          "dlsp speaker list --db speakers.db\ndlsp speaker list --db speakers.db --json",
                          description="Everyone enrolled, with the number of recordings and when last changed, "
                                      "and the model the database belongs to.")
    add_speaker_db_option(listing)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=run_list)
    remove = add_command(subparsers, "remove", "remove a person from a speaker database",
                         "dlsp speaker remove alice --db speakers.db")
    remove.add_argument("name", help="enrolled name")
    add_speaker_db_option(remove)
    remove.set_defaults(func=run_remove)
    check = add_command(subparsers, "check", "check a speaker database for damage",
                        "dlsp speaker check --db speakers.db",
                        description="Run SQLite's integrity check and check every stored embedding. Exit 0 "
                                    "when the database is healthy, 2 (with the problems) when it is not.")
    add_speaker_db_option(check)
    check.set_defaults(func=run_check)


def run_list(args: argparse.Namespace) -> int:
    import json
    import time

    from dlsp.report.tables import format_table
    from dlsp.speaker.database import SpeakerDatabase

    with SpeakerDatabase(args.db, None, None, create=False) as db:
        people, model_id = db.list(), db.model_id
    if args.json:
        print(json.dumps({"model_id": model_id, "speakers": [
            {"name": p.name, "n_files": p.n_files, "updated": p.updated} for p in people]}))
        return 0
    rows = [(p.name, p.n_files, time.strftime("%Y-%m-%d %H:%M", time.localtime(p.updated))) for p in people]
    print(format_table(("name", "files", "updated"), rows) if rows else "nobody is enrolled")
    print(f"{len(people)} enrolled; model {model_id}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from dlsp.speaker.database import SpeakerDatabase

    with SpeakerDatabase(args.db, None, None, create=False) as db:
        db.remove(args.name)
    print(f"removed {args.name} from {args.db}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from dlsp.errors import DlspError
    from dlsp.speaker.database import check_database

    result = check_database(args.db)
    if not result.ok:
        raise DlspError(f"damaged speaker database: {'; '.join(result.problems)}", args.db)
    print(f"{args.db}: ok, {len(result.names)} enrolled")
    return 0

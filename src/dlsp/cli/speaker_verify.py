"""`dlsp speaker verify`: is this recording the enrolled person? Score and accept/reject."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command

ACCEPT, REJECT = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    from dlsp.cli.speaker import add_model_options

    parser = add_command(
        subparsers, "verify", "score a recording against an enrolled person and accept or reject it",
        "dlsp speaker verify alice unknown.wav --db speakers.db\n"
        "dlsp speaker verify alice unknown.wav --db speakers.db --threshold 0.7   # stricter\n"
        "dlsp speaker verify alice unknown.wav --db speakers.db --json result.json",
        description="Cosine similarity between the recording's embedding and the person's enrolled mean "
                    "embedding; accepted when score >= threshold. The default threshold is the model's: the "
                    "score at the equal error rate on its validation speakers (single recordings against single "
                    "recordings; enrolling several recordings raises target scores, so misses get rarer). "
                    "Exit code: 0 accepted, 1 rejected, 2 error.",
    )
    parser.add_argument("name", help="enrolled name")
    parser.add_argument("file", metavar="FILE", help="recording to verify")
    parser.add_argument("--db", required=True, metavar="FILE", help="speaker database (SQLite)")
    parser.add_argument("--threshold", type=float, help="accept when score >= this (default: the model's)")
    parser.add_argument("--json", metavar="FILE", help="also write {name, file, score, threshold, accepted}")
    add_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from dlsp.errors import DlspError
    from dlsp.fileio import write_json
    from dlsp.speaker.database import SpeakerDatabase
    from dlsp.speaker.embed import SpeakerEmbedder
    from dlsp.speaker.model_file import load_speaker_model

    if args.threshold is not None and not -1 <= args.threshold <= 1:
        raise DlspError(f"--threshold is a cosine similarity in [-1, 1], got {args.threshold}")
    loaded = load_speaker_model(args.model)
    with SpeakerDatabase(args.db, loaded.model_id, loaded.embedding_dim, create=False) as db:
        enrolled = db.get(args.name)
    embedding = SpeakerEmbedder(loaded, args.device).embed_files([args.file])[0]
    score = float(np.dot(embedding, enrolled.embedding))
    threshold = loaded.threshold if args.threshold is None else args.threshold
    accepted = score >= threshold
    print(f"{args.name}: score {score:.3f}, threshold {threshold:.3f} -> {'ACCEPT' if accepted else 'REJECT'}")
    if args.json:
        write_json(args.json, {"name": args.name, "file": args.file, "score": score, "threshold": threshold,
                               "accepted": bool(accepted), "model_id": loaded.model_id})
    return ACCEPT if accepted else REJECT

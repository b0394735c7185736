"""`dlsp speaker verify`: is this recording the enrolled person? Score and accept/reject."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from dlsp.cli.common import add_command
from dlsp.cli.speaker.common import add_speaker_db_option, add_speaker_model_options

if TYPE_CHECKING:
    from dlsp.speaker.decision import ThresholdChoice

ACCEPT, REJECT = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "verify", "score a recording against an enrolled person and accept or reject it",
        "dlsp speaker verify alice unknown.wav --db speakers.db\n"
        "dlsp speaker verify alice unknown.wav --db speakers.db --threshold 2.5   # stricter\n"
        "dlsp speaker verify alice unknown.wav --db speakers.db --json result.json",
        description="Score the recording's embedding against the person's enrolled mean embedding and accept "
                    "when score >= threshold. The score is the model's: AS-norm against the cohort of training "
                    "speakers stored in the model file (models trained with score.cohort), else the cosine "
                    "similarity. The threshold is --threshold, else the database's (set by 'dlsp speaker "
                    "calibrate' on your own recordings), else the model's, set on its validation speakers on "
                    "speaker models of a few recordings against one: for models with thresholds by enrolment "
                    "size (score.enroll_sizes), those of the smallest size at or above the person's number of "
                    "recordings, else the largest size's (the default: 3 for people enrolled with 1-3 "
                    "recordings, 5 for 4 or more); else those set on models of the recipe's score.enroll_clips "
                    "recordings. People enrolled with fewer recordings than that are rejected more often, and "
                    "the result line says when the sizes differ. A model file with a narrowband threshold (set "
                    "on validation clips low-passed to 4 kHz) applies it to a recording whose content stops "
                    "below 5 kHz, as "
                    "telephone-band audio scores impostors far higher. Prints the expected false-accept rate "
                    "at the threshold where its source measured one. A steady sound (noise, hum) is refused as "
                    "no voice. "
                    "Exit code: 0 accepted, 1 rejected, 2 error.",
    )
    parser.add_argument("name", help="enrolled name")
    parser.add_argument("file", metavar="FILE", help="recording to verify")
    add_speaker_db_option(parser)
    parser.add_argument("--threshold", type=float,
                        help="accept when score >= this (default: the database's calibration, else the model's)")
    parser.add_argument("--json", metavar="FILE", help="also write {name, file, score, threshold, accepted, "
                                                       "score_kind, threshold_source, expected_far, "
                                                       "table_enrolled_files, enrolled_files, narrowband, "
                                                       "bandwidth_hz}")
    add_speaker_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.fileio import write_json
    from dlsp.speaker.database import SpeakerDatabase
    from dlsp.speaker.decision import choose_threshold
    from dlsp.speaker.embed import SpeakerEmbedder
    from dlsp.speaker.model_file import load_speaker_model

    loaded = load_speaker_model(args.model)
    with SpeakerDatabase(args.db, loaded.model_id, loaded.embedding_dim, create=False) as db:
        enrolled = db.get(args.name)
        calibration = db.calibration()
    embedding, bandwidth = SpeakerEmbedder(loaded, args.device).embed_probe(args.file)
    narrowband = loaded.scorer.is_narrowband(bandwidth)
    choice = choose_threshold(loaded.scorer, calibration, args.threshold, args.db, narrowband, enrolled.n_files)
    score = float(loaded.scorer.scores(enrolled.embedding[None], embedding)[0])
    accepted = score >= choice.threshold
    measured_on = choice.enrolled
    note = ("" if choice.expected_far is None or measured_on in (None, enrolled.n_files) else
            f", measured on people enrolled with {measured_on} recording{'s' * (measured_on > 1)}; {args.name} "
            f"has {enrolled.n_files}")
    print(f"{args.name}: score {score:.3f}, threshold {choice.threshold:.3f} -> {'ACCEPT' if accepted else 'REJECT'}"
          f" ({describe(loaded.scorer.kind, choice)}{note})")
    if args.json:
        write_json(args.json, {"name": args.name, "file": args.file, "score": score, "threshold": choice.threshold,
                               "accepted": bool(accepted), "model_id": loaded.model_id,
                               "score_kind": loaded.scorer.kind, "threshold_source": choice.source,
                               "expected_far": choice.expected_far, "table_enrolled_files": measured_on,
                               "enrolled_files": enrolled.n_files, "narrowband": narrowband,
                               "bandwidth_hz": bandwidth})
    return ACCEPT if accepted else REJECT


def describe(kind: str, choice: ThresholdChoice) -> str:
    """`AS-norm score; threshold from ...; expected false accepts x%` for the result line."""
    far = choice.expected_far
    return (f"{'AS-norm' if kind == 'asnorm' else 'cosine'} score; threshold from {choice.source}"
            + ("" if far is None else f"; expected false-accept rate at the threshold {100 * far:.2f}%"))

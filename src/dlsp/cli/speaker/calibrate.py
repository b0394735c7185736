"""`dlsp speaker calibrate`: set a speaker database's threshold from the user's own labelled recordings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from dlsp.cli.common import add_command, positive_int
from dlsp.cli.speaker.common import add_speaker_db_option, add_speaker_model_options

if TYPE_CHECKING:
    from dlsp.speaker.database import Calibration
    from dlsp.speaker.model_file import SpeakerModel

FORMATS = ("auto", "folders", "speakers", "fsdd", "speech-commands", "librispeech", "manifest")
DEFAULT_FAR = 0.01


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "calibrate", "set a speaker database's threshold from your own labelled recordings",
        "dlsp speaker calibrate --db speakers.db --data my_speakers/ --format speakers\n"
        "dlsp speaker calibrate --db speakers.db --data my_speakers/ --far 0.001   # fewer false accepts\n"
        "dlsp speaker calibrate --db speakers.db --data my_speakers/ --enroll 3    # as verify judges 3-file people\n"
        "dlsp speaker calibrate --db speakers.db --clear                           # back to the model's",
        description="Embed every recording of --data (any layout 'dlsp data index' reads that names speakers; "
                    "refused files are skipped and counted), score every pair of recordings with the model's "
                    "score (AS-norm or cosine, as verify), and report the EER. With --enroll N the trials are "
                    "the ones verify judges instead: a speaker model averaging N recordings of one person (as "
                    "'dlsp speaker enroll' stores it; 20 random ones per person with more than N) against each "
                    "other recording; impostors come closer to such a mean than to one recording. The "
                    "threshold stored in the database is the lowest score whose false-accept rate on these "
                    "trials is at most --far (default 0.01); verify and identify on this database use it "
                    "instead of the model's (--threshold still overrides both). Prints the false-accept and "
                    "false-reject rates at it. Use recordings like the ones the database will see, of several "
                    "people (at least 1/FAR non-target trials measure the rate; with fewer the threshold rejects "
                    "every one of them).",
    )
    add_speaker_db_option(parser, "speaker database (SQLite; created if missing)")
    parser.add_argument("--data", metavar="DIR", help="folder (or manifest CSV) of speaker-labelled recordings")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="layout of --data")
    parser.add_argument("--far", type=float, default=DEFAULT_FAR, metavar="RATE",
                        help=f"false-accept rate to hold the threshold to (default {DEFAULT_FAR})")
    parser.add_argument("--enroll", type=positive_int, metavar="N",
                        help="calibrate on speaker models of N recordings against one (default: pairs of recordings)")
    parser.add_argument("--max-per-speaker", type=positive_int, metavar="N", help="at most N recordings each")
    parser.add_argument("--max-nontarget", type=positive_int, default=500_000, metavar="N",
                        help="sample this many non-target pairs when there are more (pairs only: --enroll "
                             "scores every model against every recording)")
    parser.add_argument("--clear", action="store_true", help="remove the database's calibration")
    parser.add_argument("--json", metavar="FILE", help="also write the calibration as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_speaker_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.errors import DlspError
    from dlsp.speaker.database import SpeakerDatabase
    from dlsp.speaker.model_file import load_speaker_model

    if args.clear:
        with SpeakerDatabase(args.db, None, None, create=False) as db:
            db.set_calibration(None)
        print(f"removed the calibration of {args.db}: verify and identify use the model's threshold")
        return 0
    if not args.data:
        raise DlspError("give the labelled recordings to calibrate on: --data DIR (or --clear)")
    if not 0 < args.far < 1:
        raise DlspError(f"--far is a false-accept rate strictly between 0 and 1, got {args.far}")
    from dlsp.fileio import check_writable

    check_writable(args.db)  # before every recording is embedded
    check_writable(args.json)
    loaded = load_speaker_model(args.model)
    if Path(args.db).exists():  # refuse a foreign database or another model's before embedding anything
        SpeakerDatabase(args.db, loaded.model_id, loaded.embedding_dim, create=False).close()
    calibration, notes = measure(args, loaded)
    with SpeakerDatabase(args.db, loaded.model_id, loaded.embedding_dim) as db:
        db.set_calibration(calibration)
    for note in notes:
        print(note)
    if args.json:
        from dlsp.fileio import write_json

        write_json(args.json, {k: v for k, v in calibration.__dict__.items() if k != "table"})
    return 0


def measure(args: argparse.Namespace, loaded: SpeakerModel) -> tuple[Calibration, list[str]]:
    """Embed and score the recordings; the `Calibration` and the lines to print."""
    import time

    from dlsp.metrics.verification import eer
    from dlsp.speaker.data import index_speakers
    from dlsp.speaker.database import Calibration
    from dlsp.speaker.embed import SpeakerEmbedder
    from dlsp.speaker.evaluate import build_trials, embed_items, enrolled_trials, select_items
    from dlsp.speaker.scoring import balanced_rates, rate_table, threshold_at_far

    chosen = select_items(index_speakers([args.data], args.format), "all", (), args.max_per_speaker)
    embedded = embed_items(SpeakerEmbedder(loaded, args.device), chosen, progress=not args.no_progress)
    embeddings = embedded.embeddings
    if args.enroll:
        embeddings, trials, _, _ = enrolled_trials(embeddings, embedded.speakers, ["data"] * len(embedded.speakers),
                                                   args.enroll)
        units = f"speaker models of {args.enroll} recordings against one recording"
    else:
        trials = build_trials(embedded.speakers, args.max_nontarget)
        units = "pairs of recordings"
    scorer = loaded.scorer.for_enrolment(args.enroll or 1)  # the model's thresholds for these trials
    scores = scorer.trial_scores(embeddings, trials.first, trials.second)
    rate, eer_score = eer(scores, trials.target)
    threshold = threshold_at_far(scores, trials.target, args.far)
    far, frr = (float(v[0]) for v in balanced_rates(scores, trials.target, None, [threshold]))
    model_far, model_frr = (float(v[0]) for v in balanced_rates(scores, trials.target, None, [scorer.threshold]))
    calibration = Calibration(threshold, scorer.score_id, args.far, far, frr, rate, trials.n_target,
                              trials.n_nontarget, str(Path(args.data).resolve()), time.time(),
                              rate_table(scores, trials.target, extra=[threshold]), args.enroll or 1)
    kind = "AS-norm" if scorer.kind == "asnorm" else "cosine"
    notes = [f"{len(embedded.speakers)} recordings of {len(set(embedded.speakers))} speakers: {trials.n_target} "
             f"target and {trials.n_nontarget} non-target trials, {units} ({kind} scores)"]
    if embedded.skipped:
        notes.append(f"skipped {len(embedded.skipped)} of {len(chosen)} recordings (e.g. {embedded.skipped[0][0]}: "
                     f"{embedded.skipped[0][1]})")
    notes.append(f"EER {100 * rate:.2f}% at score {eer_score:.3f}")
    if trials.n_nontarget * args.far < 1:
        notes.append(f"only {trials.n_nontarget} non-target trials: a false-accept rate of {args.far:g} cannot be "
                     "measured, so the threshold rejects every one of them (add recordings of more people)")
    notes.append(f"threshold {threshold:.3f} for false accepts <= {100 * args.far:g}%: false accepts "
                 f"{100 * far:.2f}%, false rejects {100 * frr:.2f}% (the model's threshold {scorer.threshold:.3f} "
                 f"gives {100 * model_far:.2f}% and {100 * model_frr:.2f}% here)")
    notes.append(f"stored in {args.db}: verify and identify on it use this threshold (--threshold overrides it)")
    return calibration, notes

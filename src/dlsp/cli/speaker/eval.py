"""`dlsp speaker eval`: EER and minDCF of a speaker encoder on recordings of unseen speakers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from dlsp.cli.common import add_command, positive_int
from dlsp.cli.speaker.common import add_speaker_model_options

if TYPE_CHECKING:
    import numpy as np

    from dlsp.speaker.evaluate import Trials
    from dlsp.speaker.scoring import Scorer

DEFAULT_OUT = "speaker_eval"
FORMATS = ("auto", "folders", "speakers", "fsdd", "speech-commands", "librispeech", "manifest")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "eval", "EER and minDCF of a speaker encoder on unseen speakers, with DET and t-SNE plots",
        "dlsp speaker eval --data $DLSP_DATA/speech/arabic_commands --split val\n"
        "dlsp speaker eval --data $DLSP_DATA/speech/fsdd --speakers nicolas theo --json fsdd.json\n"
        "dlsp speaker eval --model runs/speaker/best.pt --data test_speakers/ --format speakers --out eval/",
        description="Embed every selected recording (too short or silent ones are skipped and counted), build "
                    "all target trials (same speaker) and a sampled set of non-target trials (all of them when "
                    "there are at most --max-nontarget), score them by cosine similarity, and report the EER, "
                    "minDCF (p_target 0.01) and their 95%% bootstrap intervals. Writes det.png, tsne.png and "
                    "summary.json to --out; --json also writes the summary (keys eer, min_dcf, n_target, "
                    "n_nontarget, errors, ...) to FILE. `errors` (and the report) name the speaker pairs most "
                    "often confused and the speakers most often rejected at the model's cosine threshold. "
                    "`at_threshold` gives the false-accept and false-reject rates here at the threshold verify "
                    "uses for a person enrolled with one recording (these trials are pairs of recordings), beside "
                    "the false-accept rate the model's validation promised there; for a model that "
                    "scores by AS-norm, `asnorm` holds the EER and minDCF of the normalised scores. Evaluate on "
                    "speakers the model never trained on.",
    )
    parser.add_argument("--data", required=True, metavar="DIR", help="dataset folder or manifest CSV")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="layout of --data")
    parser.add_argument("--split", choices=("all", "train", "val", "test"), default="all",
                        help="use only the recordings of this split of the dataset")
    parser.add_argument("--speakers", nargs="+", default=[], metavar="NAME", help="use only these speakers")
    parser.add_argument("--max-per-speaker", type=positive_int, metavar="N", help="at most N recordings each")
    parser.add_argument("--max-nontarget", type=positive_int, default=100_000, metavar="N",
                        help="sample this many non-target trials when there are more")
    parser.add_argument("--boot", type=int, default=200, metavar="N", help="bootstrap resamples (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the trial sample and the bootstrap")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help="folder for det.png, tsne.png, "
                                                                          "summary.json")
    parser.add_argument("--json", metavar="FILE", help="also write the summary JSON to FILE")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_speaker_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.errors import DlspError
    from dlsp.fileio import check_writable, write_json
    from dlsp.speaker.data import index_speakers
    from dlsp.speaker.evaluate import (
        det_plot,
        embed_items,
        error_breakdown,
        evaluate_embeddings,
        select_items,
        tsne_plot,
    )

    if args.boot < 0:
        raise DlspError(f"--boot must be 0 or more, got {args.boot}")
    out = Path(args.out)
    check_writable(out, folder=True)  # before every recording is embedded and scored
    check_writable(args.json)
    chosen = select_items(index_speakers([args.data], args.format), args.split, args.speakers,
                          args.max_per_speaker)
    from dlsp.speaker.embed import SpeakerEmbedder

    embedder = SpeakerEmbedder.from_file(args.model, args.device)
    embedded = embed_items(embedder, chosen, progress=not args.no_progress)
    if embedded.skipped:
        print(f"skipped {len(embedded.skipped)} of {len(chosen)} recordings (e.g. {embedded.skipped[0][0]}: "
              f"{embedded.skipped[0][1]})")
    summary, scores, trials = evaluate_embeddings(embedded.embeddings, embedded.speakers, args.max_nontarget,
                                                  args.boot, args.seed)
    summary.update(model=str(args.model or "default"), model_id=embedder.loaded.model_id, data=str(args.data),
                   split=args.split, n_recordings=len(embedded.speakers), n_speakers=len(set(embedded.speakers)),
                   n_skipped=len(embedded.skipped), threshold=embedder.loaded.threshold)
    # At the cosine threshold (the scores here are cosines), so the pairs listed are the ones a deployment confuses.
    summary["errors"] = error_breakdown(scores, trials, embedded.speakers, embedder.loaded.threshold)
    summary.update(model_scoring(embedder.loaded.scorer, embedded.embeddings, trials, args.boot, args.seed))
    det_plot(out / "det.png", {f"model {Path(str(args.model)).name if args.model else 'default'}":
                               (scores, trials.target)})
    tsne_plot(out / "tsne.png", embedded.embeddings, embedded.speakers, seed=args.seed)
    write_json(out / "summary.json", summary)
    if args.json:
        write_json(args.json, summary)
    print(_report(summary))
    print(f"wrote {out / 'det.png'}, {out / 'tsne.png'}, {out / 'summary.json'}"
          + (f"; summary also in {args.json}" if args.json else ""))
    return 0


def model_scoring(scorer: Scorer, embeddings: np.ndarray, trials: Trials, n_boot: int, seed: int) -> dict:
    """`at_threshold` (rates at verify's threshold for a person enrolled with one recording, as in these pairs,
    and the validation's promise) and, for AS-norm, `asnorm`."""
    from dlsp.speaker.evaluate import summarize_scores
    from dlsp.speaker.scoring import balanced_rates

    scores = scorer.trial_scores(embeddings, trials.first, trials.second)
    scorer = scorer.for_enrolment(1)
    far, frr = (float(v[0]) for v in balanced_rates(scores, trials.target, None, [scorer.threshold]))
    out = {"at_threshold": {"score_kind": scorer.kind, "threshold": scorer.threshold, "far": far, "frr": frr,
                            "expected_far": scorer.expected_far(scorer.threshold),
                            "threshold_enrolled_files": scorer.enrolled}}
    if scorer.kind != "cosine":
        out["asnorm"] = summarize_scores(scores, trials.target, n_boot, seed)
    return out


def _report(summary: dict) -> str:
    def ci(key: str, scale: float = 1.0, unit: str = "") -> str:
        low_high = summary.get(f"{key}_ci")
        return f" (95% CI {scale * low_high[0]:.2f}-{scale * low_high[1]:.2f}{unit})" if low_high else ""

    return (f"{summary['n_recordings']} recordings of {summary['n_speakers']} speakers: {summary['n_target']} "
            f"target and {summary['n_nontarget']} non-target trials\n"
            f"EER     {100 * summary['eer']:.2f}%{ci('eer', 100, '%')} at score {summary['eer_threshold']:.3f} "
            f"(model threshold {summary['threshold']:.3f})\n"
            f"minDCF  {summary['min_dcf']:.3f}{ci('min_dcf')} (p_target {summary['p_target']})"
            + _scoring_lines(summary) + _error_lines(summary["errors"]))


def _scoring_lines(summary: dict) -> str:
    at = summary["at_threshold"]
    kind = "AS-norm" if at["score_kind"] == "asnorm" else "cosine"
    lines = []
    if "asnorm" in summary:
        lines.append(f"AS-norm EER {100 * summary['asnorm']['eer']:.2f}%, minDCF {summary['asnorm']['min_dcf']:.3f}")
    enrolled = at.get("threshold_enrolled_files")
    measured = "" if enrolled in (None, 1) else f", on speaker models of {enrolled} recordings"
    promised = "" if at["expected_far"] is None else f" (validation{measured}: {100 * at['expected_far']:.2f}%)"
    lines.append(f"at verify's threshold {at['threshold']:.3f} ({kind}): false accepts {100 * at['far']:.2f}%"
                 f"{promised}, false rejects {100 * at['frr']:.2f}%")
    return "".join("\n" + line for line in lines)


def _error_lines(errors: dict) -> str:
    pairs = [p for p in errors["confused_pairs"] if p["false_accept"] > 0]
    missed = [s for s in errors["missed_speakers"] if s["false_reject"] > 0]
    lines = []
    if pairs:
        lines.append(f"most confused at threshold {errors['threshold']:.3f}: " + "; ".join(
            f"{p['speakers'][0]} ~ {p['speakers'][1]} {100 * p['false_accept']:.1f}% accepted" for p in pairs[:3]))
    if missed:
        lines.append("most rejected: " + "; ".join(
            f"{s['speaker']} {100 * s['false_reject']:.1f}%" for s in missed[:3]))
    return "".join("\n" + line for line in lines)

"""Validating and calibrating speaker encoders: per-corpus validation EER, the cohort and the threshold.

Validation embeds each clip as inference does (trimmed; windowed when longer than `score.window_seconds`) and
scores by cosine every pair of clips of the same corpus (the dataset folder): pairs across corpora would be easy
non-targets that say nothing. `val_eer` is the mean of the corpora's own EERs, so no corpus outweighs the others
by having more clips; `val_threshold` is the one cosine score where the corpus-averaged false-accept and
false-reject rates are equal.

`calibrate_scoring` settles how the trained model scores (`ScoreSection`): with `cohort`, a cohort of
training-speaker embeddings (`cohort_per_speaker` clips of each training speaker at its own speed, at most
`max_cohort`) for AS-norm (`dlsp.speaker.scoring`); the threshold on those scores at the corpus-averaged EER of
the validation trials, or at the corpus-averaged false-accept rate `target_far`; and the false-accept /
false-reject table of the validation trials, so verify can say what its threshold means. With `enroll_clips` N
the trials are the ones verify judges: a speaker model (the mean direction of N clips of one speaker, as
`dlsp speaker enroll` stores it) against each other clip of its corpus; a model averages away some of a voice's
variation, so impostors come closer to it than to one clip, and a threshold set on single-clip pairs lets more
of them in than its table says (`benchmarks/speaker.py`: 6.5% against enrolled models where 5% was asked).

For models that see a band above 4 kHz (`dlsp.speaker.scoring.narrowband_applies`: 16 kHz yes, 8 kHz no) it
also sets the narrowband threshold (`narrowband_threshold`): the same trials with both clips low-passed at
`NARROW_CUTOFF_HZ` (4 kHz: a telephone call, enrolment and probe over the same channel), scored by the same
scorer (the cohort stays wideband, as verify's is), thresholded the same way (EER or `target_far`), with its own
table. Verify applies it to probes whose content stops below `NARROWBAND_BELOW_HZ` (5 kHz).

`target_far` is a corpus-averaged rate, so one corpus may let in more than it: with `far_over_corpora:
every` the wideband thresholds hold it in every validation corpus instead (the narrowband ones keep the average:
set on simulated telephone audio, the worst simulated corpus made them reject most of FSDD's real 8 kHz speech).

With `enroll_sizes`, both thresholds are also set on speaker models of each of those sizes
(`dlsp.speaker.scoring.EnrolmentThresholds`), so verify can judge a person enrolled with 1 recording and one
enrolled with 5 each at the target false-accept rate (`Scorer.for_enrolment`). A size no validation corpus can
measure (two speakers with more clips than the size) is left out and named in the summary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from dlsp.audio.bandwidth import band_limit
from dlsp.errors import DlspError
from dlsp.metrics.verification import eer
from dlsp.speaker.data import SpeakerClips, corpus_of
from dlsp.speaker.embed import embed_windows
from dlsp.speaker.evaluate import Trials, build_trials, enrolled_trials, score_trials
from dlsp.speaker.scoring import (
    NARROWBAND_BELOW_HZ,
    EnrolmentThresholds,
    NarrowbandThreshold,
    RateTable,
    Scorer,
    balanced_eer,
    narrowband_applies,
    rate_table,
    threshold_at_far,
)

# Validation clips are low-passed here for the narrowband threshold: the top of the telephone band (3.4 kHz) with
# room to spare, and where FSDD's 8 kHz recordings stop.
NARROW_CUTOFF_HZ = 4000.0
FAR_OVER_CORPORA = ("mean", "every")


@dataclass(frozen=True)
class ScoreSection:
    """How the model embeds and scores at test time; stored in its model file (see the module docstring)."""

    window_seconds: float = 3.0  # recordings longer than this are embedded as overlapping windows (0: whole)
    hop_seconds: float = 1.5
    cohort: bool = False  # AS-norm against a cohort of training-speaker embeddings
    cohort_per_speaker: int = 5
    max_cohort: int = 2000
    top_k: int = 100
    target_far: float | None = None  # threshold at this validation false-accept rate; null: at the EER
    enroll_clips: int = 0  # thresholds set on speaker models of this many clips vs one clip (0: clip pairs)
    # The wideband thresholds hold target_far in every validation corpus ("every") or on their mean ("mean");
    # narrowband thresholds hold it on the mean.
    far_over_corpora: str = "mean"
    # Further speaker-model sizes with thresholds of their own; verify picks by the person's number of files.
    enroll_sizes: list[int] = field(default_factory=list)


def check_score(score: ScoreSection) -> None:
    """Refuse impossible scoring settings in one line naming the setting."""
    if not (score.window_seconds >= 0 and score.hop_seconds > 0
            and (score.window_seconds == 0 or score.hop_seconds <= score.window_seconds)):
        raise DlspError(f"score.hop_seconds must be in (0, score.window_seconds] (window 0: whole recordings), "
                        f"got window {score.window_seconds}, hop {score.hop_seconds}")
    if score.top_k < 1 or score.cohort_per_speaker < 1 or score.max_cohort < 1:
        raise DlspError("score.top_k, score.cohort_per_speaker and score.max_cohort must be at least 1")
    if score.enroll_clips < 0:
        raise DlspError(f"score.enroll_clips is a number of clips (0: clip pairs), got {score.enroll_clips}")
    if any(n < 1 for n in score.enroll_sizes) or len(set(score.enroll_sizes)) < len(score.enroll_sizes):
        raise DlspError(f"score.enroll_sizes are distinct numbers of clips, each at least 1, got {score.enroll_sizes}")
    if score.far_over_corpora not in FAR_OVER_CORPORA:
        raise DlspError(f"score.far_over_corpora is one of {', '.join(FAR_OVER_CORPORA)}, got "
                        f"{score.far_over_corpora!r}")
    if score.target_far is not None and not 0 < score.target_far < 1:
        raise DlspError(f"score.target_far is a rate in (0, 1) or null, got {score.target_far}")


def embed_clips(encoder: nn.Module, clips: Sequence[np.ndarray], device: torch.device,
                score: ScoreSection | None = None, sample_rate: int = 16000) -> np.ndarray:
    """Embed trimmed clips as inference does: whole, or over `score`'s windows when given."""
    window = 0 if score is None else round(score.window_seconds * sample_rate)
    hop = 0 if score is None else round(score.hop_seconds * sample_rate)
    return embed_windows(encoder, clips, device, window, hop)


def clip_corpora(clips: SpeakerClips) -> np.ndarray:
    """The corpus (dataset folder) of each clip. Shape: `-> (clips,)` of str."""
    return np.asarray([corpus_of(clips.speakers[int(label)]) for label in clips.labels])


def corpus_trials(clips: SpeakerClips) -> tuple[Trials, np.ndarray, list[str]]:
    """Every pair of clips within each corpus, the corpus index of each trial, and the corpus names (corpora
    without two speakers, one of them with two clips, give no trials)."""
    corpora = clip_corpora(clips)
    names = sorted(set(corpora.tolist()))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for g, name in enumerate(names):
        own = np.flatnonzero(corpora == name)
        try:
            trials = build_trials(clips.labels[own], max_nontarget=None)
        except DlspError:
            continue
        parts.append((own[trials.first], own[trials.second], trials.target, np.full(trials.target.size, g)))
    if not parts:
        raise DlspError("validation needs a corpus with 2 or more speakers, one of them with 2 or more clips")
    first, second, target, groups = (np.concatenate(column) for column in zip(*parts, strict=True))
    return Trials(first, second, target), groups, names


def calibration_trials(embeddings: np.ndarray, clips: SpeakerClips, enroll_clips: int
                       ) -> tuple[np.ndarray, Trials, np.ndarray, list[str]]:
    """The trials thresholds are set on and the embeddings they index: clip pairs (`corpus_trials`) for
    `enroll_clips` 0, else speaker models of that many clips against one (`enrolled_trials`)."""
    if enroll_clips:
        return enrolled_trials(embeddings, clips.labels, clip_corpora(clips), enroll_clips)
    trials, groups, names = corpus_trials(clips)
    return embeddings, trials, groups, names


def validation_eer(encoder: nn.Module, val: SpeakerClips, device: torch.device, score: ScoreSection | None = None,
                   sample_rate: int = 16000) -> dict[str, float]:
    """Each corpus's EER (fraction) over its pairs of validation clips, their mean `val_eer`, and the cosine
    threshold of the corpus-averaged EER."""
    embeddings = embed_clips(encoder, val.audio, device, score, sample_rate)
    trials, groups, names = corpus_trials(val)
    scores = score_trials(embeddings, trials)
    record = {f"val_eer_{metric_name(names[g])}": eer(scores[groups == g], trials.target[groups == g])[0]
              for g in np.unique(groups)}
    record["val_eer"] = float(np.mean(list(record.values())))
    record["val_threshold"] = balanced_eer(scores, trials.target, groups)[1]
    return record


def cohort_clips(train: SpeakerClips, per_speaker: int, limit: int, seed: int) -> list[np.ndarray]:
    """Up to `per_speaker` clips of each training speaker at its own speed (speed copies are not real voices),
    at most `limit` in all; a fixed seeded choice."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))
    chosen = [int(i) for s, group in enumerate(train.by_speaker()) if group.size and "@" not in train.speakers[s]
              for i in rng.permutation(group)[:per_speaker]]
    if len(chosen) > limit:
        chosen = sorted(rng.choice(chosen, limit, replace=False).tolist())
    return [train.audio[i] for i in chosen]


def calibrate_scoring(encoder: nn.Module, train: SpeakerClips, val: SpeakerClips, score: ScoreSection,
                      device: torch.device, sr: int, seed: int = 0) -> tuple[Scorer, dict[str, Any]]:
    """The scoring of the trained encoder (module docstring) and a summary of it on the validation trials
    (with `narrow_*` entries when it has a narrowband threshold)."""
    cohort = None
    if score.cohort:
        clips = cohort_clips(train, score.cohort_per_speaker, score.max_cohort, seed)
        # Rounded as the model file stores it, so the threshold is set on the scores verify will compute.
        cohort = embed_clips(encoder, clips, device, score, sr).astype(np.float16).astype(np.float32)
    kind = "cosine" if cohort is None else "asnorm"
    return calibrate_thresholds(encoder, val, Scorer(kind, 0.0, cohort, score.top_k), score, device, sr)


def calibrate_thresholds(encoder: nn.Module, val: SpeakerClips, scorer: Scorer, score: ScoreSection,
                         device: torch.device, sr: int) -> tuple[Scorer, dict[str, Any]]:
    """`scorer` (its kind and cohort settled; its thresholds play no part) with the thresholds and rate tables
    of the validation trials: at their EER or `score.target_far`, the narrowband one where it applies, and those
    of `score.enroll_sizes`; and the summary `calibrate_scoring` returns. Also re-calibrates a trained model
    (`dlsp.release.recalibrate_speaker`)."""
    wide = embed_clips(encoder, val.audio, device, score, sr)
    limited = _band_limited_embeddings(encoder, val, score, device, sr) if narrowband_applies(sr) else None
    embeddings, trials, groups, names = calibration_trials(wide, val, score.enroll_clips)
    scores = scorer.trial_scores(embeddings, trials.first, trials.second)
    rate, threshold, table = settle_threshold(scores, trials.target, groups, score.target_far,
                                              score.far_over_corpora == "every")
    cosine_rate = balanced_eer(score_trials(embeddings, trials), trials.target, groups)[0]
    summary = {"score_kind": scorer.kind, "cohort_size": 0 if scorer.cohort is None else int(scorer.cohort.shape[0]),
               "enroll_clips": score.enroll_clips,
               "top_k": scorer.top_k, "score_threshold": threshold, "score_eer": rate, "cosine_eer": cosine_rate,
               "score_far": table.far_at(threshold), "score_frr": table.frr_at(threshold),
               **{f"score_eer_{metric_name(names[g])}": eer(scores[groups == g], trials.target[groups == g])[0]
                  for g in np.unique(groups)}}
    narrow = None
    if limited is not None:
        narrow, narrow_summary = _narrowband_rule(scorer, limited, val, score.enroll_clips, score)
        summary.update(narrow_summary)
    by_enrolment = []
    for n in sorted(score.enroll_sizes):
        try:
            # The size of the one threshold's trials has those thresholds already (the same seeded draws).
            entry = (EnrolmentThresholds(n, threshold, table, narrow) if n == score.enroll_clips else
                     _thresholds_at_size(scorer, wide, limited, val, n, score))
        except DlspError:  # no corpus has two speakers with more than n validation clips
            summary.setdefault("enroll_sizes_unmeasured", []).append(n)
            continue
        by_enrolment.append(entry)
        summary.update(enrolment_summary(entry))
    return Scorer(scorer.kind, threshold, scorer.cohort, scorer.top_k, table, narrow, max(1, score.enroll_clips),
                  tuple(by_enrolment)), summary


def settle_threshold(scores: np.ndarray, target: np.ndarray, groups: np.ndarray, target_far: float | None,
                     every_corpus: bool = False) -> tuple[float, float, RateTable]:
    """`(corpus-balanced EER, threshold, rate table)` of validation trial scores: the threshold at that EER, or,
    when `target_far` is set, where the false-accept rate is at most that (averaged over the corpora, or in
    every corpus); the table (corpus-averaged) includes the threshold."""
    rate, threshold = balanced_eer(scores, target, groups)
    if target_far is not None:
        threshold = threshold_at_far(scores, target, target_far, groups, every_group=every_corpus)
    return rate, threshold, rate_table(scores, target, groups, extra=[threshold])


def _thresholds_at_size(scorer: Scorer, wide: np.ndarray, limited: np.ndarray | None, val: SpeakerClips, n: int,
                        score: ScoreSection) -> EnrolmentThresholds:
    """The thresholds (wideband, and narrowband when `limited` embeddings are given) on speaker models of `n`
    validation clips against one."""
    embeddings, trials, groups, _ = calibration_trials(wide, val, n)
    scores = scorer.trial_scores(embeddings, trials.first, trials.second)
    _, threshold, table = settle_threshold(scores, trials.target, groups, score.target_far,
                                           score.far_over_corpora == "every")
    narrow = None if limited is None else _narrowband_rule(scorer, limited, val, n, score)[0]
    return EnrolmentThresholds(n, threshold, table, narrow)


def enrolment_summary(entry: EnrolmentThresholds) -> dict[str, float]:
    """`enrolled<n>_*` summary entries of one enrolment size: threshold, validation false-accept and
    false-reject rates at it, and the same of its narrowband rule."""
    out = {f"enrolled{entry.enrolled}_threshold": entry.threshold,
           f"enrolled{entry.enrolled}_far": entry.table.far_at(entry.threshold),
           f"enrolled{entry.enrolled}_frr": entry.table.frr_at(entry.threshold)}
    if entry.narrow is not None:
        out |= {f"enrolled{entry.enrolled}_narrow_threshold": entry.narrow.threshold,
                f"enrolled{entry.enrolled}_narrow_far": entry.narrow.table.far_at(entry.narrow.threshold),
                f"enrolled{entry.enrolled}_narrow_frr": entry.narrow.table.frr_at(entry.narrow.threshold)}
    return out


def narrowband_threshold(encoder: nn.Module, val: SpeakerClips, scorer: Scorer, score: ScoreSection,
                         device: torch.device, sr: int) -> NarrowbandThreshold:
    """The narrowband threshold of `scorer` (module docstring; its own threshold plays no part) on the validation
    clips (a model file's thresholds are set again by `dlsp.release.recalibrate_speaker`). Refused for models at
    too low a rate to tell narrowband probes apart."""
    limited = _band_limited_embeddings(encoder, val, score, device, sr)
    return _narrowband_rule(scorer, limited, val, score.enroll_clips, score)[0]


def _band_limited_embeddings(encoder: nn.Module, val: SpeakerClips, score: ScoreSection, device: torch.device,
                             sr: int) -> np.ndarray:
    """Embeddings of the validation clips low-passed at `NARROW_CUTOFF_HZ`; refused for models at too low a rate
    to tell narrowband probes apart."""
    if not narrowband_applies(sr):
        raise DlspError(f"a {sr} Hz model sees too little above {NARROWBAND_BELOW_HZ / 1000:g} kHz to tell "
                        "narrowband probes from wideband ones, so it takes no narrowband threshold")
    return embed_clips(encoder, [band_limit(clip, sr, NARROW_CUTOFF_HZ) for clip in val.audio], device, score, sr)


def _narrowband_rule(scorer: Scorer, limited: np.ndarray, val: SpeakerClips, enroll_clips: int,
                     score: ScoreSection) -> tuple[NarrowbandThreshold, dict[str, float]]:
    """The narrowband rule set on the band-limited validation embeddings `limited`, and its `narrow_*` summary:
    threshold, corpus-balanced EER, and the false-accept and false-reject rates at the threshold."""
    embeddings, trials, groups, _ = calibration_trials(limited, val, enroll_clips)
    scores = scorer.trial_scores(embeddings, trials.first, trials.second)
    # Always on the corpus average: held in the worst of the simulated telephone corpora, the narrowband
    # threshold rejected 73% of FSDD's real 8 kHz genuine trials (33% at the average; benchmarks/speaker.py).
    rate, threshold, table = settle_threshold(scores, trials.target, groups, score.target_far)
    summary = {"narrow_threshold": threshold, "narrow_eer": rate, "narrow_far": table.far_at(threshold),
               "narrow_frr": table.frr_at(threshold)}
    return NarrowbandThreshold(NARROWBAND_BELOW_HZ, threshold, table), summary


def metric_name(corpus: str) -> str:
    """A corpus name fit for a metric key (letters, digits, `_`, `-`, `.`; trackers refuse others)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", corpus)


def scoring_line(scoring: dict[str, Any]) -> str:
    """One line on the settled scoring for the training log."""
    cohort = (f" against a cohort of {scoring['cohort_size']} training clips (top {scoring['top_k']})"
              if scoring["cohort_size"] else "")
    trials = (f" on speaker models of {scoring['enroll_clips']} clips vs one" if scoring.get("enroll_clips") else "")
    return (f"scoring: {scoring['score_kind']}{cohort}, threshold {scoring['score_threshold']:.3f}{trials}: "
            f"false accepts {100 * scoring['score_far']:.2f}%, false rejects {100 * scoring['score_frr']:.2f}% "
            "(corpus-averaged); "
            f"validation EER at one threshold for every corpus {100 * scoring['score_eer']:.2f}% (raw cosine "
            f"{100 * scoring['cosine_eer']:.2f}%)" + narrow_line(scoring) + enrolment_line(scoring))


def enrolment_line(scoring: dict[str, Any]) -> str:
    """The part of `scoring_line` on thresholds by enrolment size (nothing when there are none)."""
    sizes = sorted(int(key[8:-10]) for key in scoring if re.fullmatch(r"enrolled\d+_threshold", key))
    parts = []
    for n in sizes:
        narrow = (f", narrowband {scoring[f'enrolled{n}_narrow_threshold']:.3f}"
                  if f"enrolled{n}_narrow_threshold" in scoring else "")
        parts.append(f"{n} clip{'s' * (n > 1)} {scoring[f'enrolled{n}_threshold']:.3f} (false accepts "
                     f"{100 * scoring[f'enrolled{n}_far']:.2f}%, false rejects {100 * scoring[f'enrolled{n}_frr']:.2f}%"
                     f"{narrow})")
    unmeasured = scoring.get("enroll_sizes_unmeasured")
    missing = (f"; no thresholds for speaker models of {', '.join(map(str, unmeasured))} clips (too few validation "
               "clips per speaker)") if unmeasured else ""
    return ("; thresholds by enrolment size: " + ", ".join(parts) if parts else "") + missing


def narrow_line(scoring: dict[str, Any]) -> str:
    """The narrowband threshold's part of `scoring_line` (nothing when the model has none)."""
    if "narrow_threshold" not in scoring:
        return ""
    return (f"; narrowband probes (content below {NARROWBAND_BELOW_HZ / 1000:g} kHz): threshold "
            f"{scoring['narrow_threshold']:.3f}: false accepts {100 * scoring['narrow_far']:.2f}%, false rejects "
            f"{100 * scoring['narrow_frr']:.2f}% (validation clips low-passed at {NARROW_CUTOFF_HZ / 1000:g} kHz; "
            f"EER {100 * scoring['narrow_eer']:.2f}%)")

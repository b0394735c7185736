"""Speaker verification evaluation: trials from labelled embeddings, EER and minDCF with bootstrap intervals,
DET curve and t-SNE plots.

Trials pair two recordings: every same-speaker pair is a target trial; different-speaker pairs are all used
when there are at most `max_nontarget` of them, otherwise a seeded random sample of that many distinct pairs.
Scores are cosine similarities.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlsp.errors import DlspError
from dlsp.metrics.verification import bootstrap_ci, det_curve, eer, min_dcf

ENROLLMENTS_PER_SPEAKER = 20  # random speaker models per speaker in enrolled trials

P_TARGET = 0.01


@dataclass
class Trials:
    """Index pairs into an embedding matrix and whether each is a target (same speaker) trial."""

    first: np.ndarray
    second: np.ndarray
    target: np.ndarray

    @property
    def n_target(self) -> int:
        return int(self.target.sum())

    @property
    def n_nontarget(self) -> int:
        return int(self.target.size - self.target.sum())


def build_trials(labels: Sequence, max_nontarget: int | None = 100_000, seed: int = 0) -> Trials:
    """All target pairs and all (or `max_nontarget` sampled) non-target pairs of items labelled `labels`."""
    labels = np.asarray(labels)
    n = labels.size
    first, second = np.triu_indices(n, k=1)
    same = labels[first] == labels[second]
    if not same.any() or same.all():
        raise DlspError(f"trials need at least two recordings of one speaker and two speakers; got {n} "
                        f"recordings of {np.unique(labels).size} speaker(s)")
    nontarget = np.flatnonzero(~same)
    if max_nontarget is not None and nontarget.size > max_nontarget:
        rng = np.random.default_rng(seed)
        nontarget = np.sort(rng.choice(nontarget, max_nontarget, replace=False))
    keep = np.concatenate([np.flatnonzero(same), nontarget])
    return Trials(first[keep], second[keep], same[keep].astype(np.int64))


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def score_trials(embeddings: np.ndarray, trials: Trials) -> np.ndarray:
    """Cosine score of every trial (embeddings are normalised here, so any scale works)."""
    unit = unit_rows(embeddings)
    return np.einsum("ij,ij->i", unit[trials.first], unit[trials.second])


def enrollment_draws(labels: Sequence, n_enroll: int, models_per_speaker: int, rng: np.random.Generator,
                     min_speakers: int = 1) -> list[tuple[Any, np.ndarray]]:
    """`(speaker, recording indices)` of each speaker model verify would meet: for each speaker (in sorted order)
    with more than `n_enroll` recordings, `models_per_speaker` random draws of `n_enroll` of them. None, and
    nothing drawn from `rng`, when fewer than `min_speakers` speakers have that many."""
    labels = np.asarray(labels)
    speakers = [s for s in np.unique(labels) if np.count_nonzero(labels == s) > n_enroll]
    if len(speakers) < min_speakers:
        return []
    draws = []
    for speaker in speakers:
        mine = np.flatnonzero(labels == speaker)
        draws.extend((speaker, rng.choice(mine, n_enroll, replace=False)) for _ in range(models_per_speaker))
    return draws


def enrolled_trials(embeddings: np.ndarray, labels: np.ndarray, corpora: Sequence[str], n_enroll: int,
                    models_per_speaker: int = ENROLLMENTS_PER_SPEAKER, seed: int = 0
                    ) -> tuple[np.ndarray, Trials, np.ndarray, list[str]]:
    """Trials as verify makes them, for recordings of speakers `labels` from `corpora` (one name per recording):
    the speaker models of `enrollment_draws` (the mean of `n_enroll` random recordings' unit embeddings), each
    against every other recording of its corpus. Returns the embeddings with the models' rows appended (trials'
    `first` index them), the trials, the corpus index of each trial and the corpus names; corpora without two
    such speakers give none."""
    labels, corpora = np.asarray(labels), np.asarray(corpora)
    names = sorted(set(corpora.tolist()))
    unit = unit_rows(embeddings)
    rng = np.random.default_rng(seed)
    models: list[np.ndarray] = []
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for g, name in enumerate(names):
        own = np.flatnonzero(corpora == name)
        for speaker, drawn in enrollment_draws(labels[own], n_enroll, models_per_speaker, rng, min_speakers=2):
            enrolled = own[drawn]
            tested = np.setdiff1d(own, enrolled)
            row = embeddings.shape[0] + len(models)
            models.append(unit[enrolled].mean(axis=0))
            parts.append((np.full(tested.size, row), tested, (labels[tested] == speaker).astype(np.int64),
                          np.full(tested.size, g)))
    if not parts:
        raise DlspError(f"speaker models of {n_enroll} recordings need 2 or more speakers of more than {n_enroll} "
                        "recordings each (in one corpus)")
    first, second, target, groups = (np.concatenate(column) for column in zip(*parts, strict=True))
    return np.concatenate([embeddings, np.stack(models).astype(embeddings.dtype)]), Trials(first, second, target), \
        groups, names


def enrollment_scores(embeddings: np.ndarray, labels: Sequence, n_enroll: int,
                      models_per_speaker: int = ENROLLMENTS_PER_SPEAKER, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """`(scores, target)` of trials as `dlsp speaker enroll` / `verify` make them (`enrolled_trials`, one corpus),
    scored by cosine; every speaker must have more than `n_enroll` recordings."""
    labels = np.asarray(labels)
    for speaker in np.unique(labels):
        count = int(np.count_nonzero(labels == speaker))
        if count <= n_enroll:
            raise DlspError(f"speaker {speaker} has {count} recordings; enrolling {n_enroll} leaves none to test")
    rows, trials, _, _ = enrolled_trials(embeddings, labels, [""] * labels.size, n_enroll, models_per_speaker, seed)
    return score_trials(rows, trials), trials.target


def summarize_scores(scores: np.ndarray, target: np.ndarray, n_boot: int = 200, seed: int = 0) -> dict:
    """EER (fraction), its threshold, minDCF (p_target 0.01) and 95% bootstrap intervals of both."""
    rate, threshold = eer(scores, target)
    dcf, _ = min_dcf(scores, target, p_target=P_TARGET)
    summary = {"eer": rate, "eer_threshold": threshold, "min_dcf": dcf, "p_target": P_TARGET,
               "n_target": int(target.sum()), "n_nontarget": int(target.size - target.sum())}
    if n_boot:
        summary["eer_ci"] = list(bootstrap_ci(eer, scores, target, n_boot=n_boot, seed=seed))
        summary["min_dcf_ci"] = list(bootstrap_ci(lambda s, t: min_dcf(s, t, p_target=P_TARGET), scores, target,
                                                  n_boot=n_boot, seed=seed))
    return summary


def evaluate_embeddings(embeddings: np.ndarray, labels: Sequence, max_nontarget: int | None = 100_000,
                        n_boot: int = 200, seed: int = 0) -> tuple[dict, np.ndarray, Trials]:
    """Trials, scores and their summary for labelled embeddings."""
    trials = build_trials(labels, max_nontarget, seed)
    scores = score_trials(embeddings, trials)
    return summarize_scores(scores, trials.target, n_boot, seed), scores, trials


def error_breakdown(scores: np.ndarray, trials: Trials, labels: Sequence, threshold: float, top: int = 5
                    ) -> dict:
    """Where the errors at `threshold` come from: the speaker pairs whose non-target trials are most often
    accepted and the speakers whose target trials are most often rejected, worst first. A pooled EER hides
    that one look-alike pair (or one speaker under two names) can cause most false accepts."""
    names, codes = np.unique(np.asarray(labels), return_inverse=True)
    accepted = (scores >= threshold).astype(np.float64)
    target = trials.target.astype(bool)
    first, second = codes[trials.first], codes[trials.second]
    # Counting by group keeps this linear in the trials however many speaker pairs there are.
    pair_ids, pair_of_trial = np.unique(np.stack([np.minimum(first, second), np.maximum(first, second)], axis=1)
                                        [~target], axis=0, return_inverse=True)
    pair_trials = np.bincount(pair_of_trial.ravel(), minlength=len(pair_ids))
    pair_accepts = np.bincount(pair_of_trial.ravel(), weights=accepted[~target], minlength=len(pair_ids))
    pairs = [{"speakers": [str(names[a]), str(names[b])], "false_accept": float(k / n), "n_trials": int(n)}
             for (a, b), k, n in zip(pair_ids, pair_accepts, pair_trials, strict=True)]
    own_trials = np.bincount(first[target], minlength=len(names))
    own_accepts = np.bincount(first[target], weights=accepted[target], minlength=len(names))
    speakers = [{"speaker": str(names[code]), "false_reject": float(1.0 - own_accepts[code] / own_trials[code]),
                 "n_trials": int(own_trials[code])} for code in np.flatnonzero(own_trials)]
    pairs.sort(key=lambda p: -p["false_accept"])
    speakers.sort(key=lambda s: -s["false_reject"])
    return {"threshold": float(threshold), "confused_pairs": pairs[:top], "missed_speakers": speakers[:top]}


def det_plot(path: str | os.PathLike[str], systems: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """DET curves (miss against false alarm, normal-deviate axes) of `{name: (scores, target)}`."""
    from scipy.stats import norm

    from dlsp.report.plots import _figure, _save

    plt, fig, axes = _figure(1, 1, (5.5, 5))
    ax = axes[0, 0]
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8])
    clip = (0.0005, 0.9)
    for name, (scores, target) in systems.items():
        p_fa, p_miss, _ = det_curve(scores, target)
        rate = eer(scores, target)[0]
        ax.plot(norm.ppf(np.clip(p_fa, *clip)), norm.ppf(np.clip(p_miss, *clip)),
                label=f"{name} (EER {100 * rate:.1f}%)")
    ax.plot(norm.ppf(clip), norm.ppf(clip), color="grey", linewidth=0.6, linestyle=":")
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(clip))
    ax.set_ylim(norm.ppf(clip))
    ax.set_xlabel("false alarm rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title("DET curve")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def tsne_plot(path: str | os.PathLike[str], embeddings: np.ndarray, speakers: Sequence[str], seed: int = 0,
              max_points: int = 2000) -> Path:
    """2-D t-SNE of the embeddings (cosine metric), one colour per speaker."""
    from sklearn.manifold import TSNE

    from dlsp.report.plots import _figure, _save

    speakers = np.asarray(speakers)
    if embeddings.shape[0] > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(embeddings.shape[0], max_points, replace=False))
        embeddings, speakers = embeddings[keep], speakers[keep]
    perplexity = float(min(30, max(2, (embeddings.shape[0] - 1) // 3)))
    points = TSNE(2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed).fit_transform(
        embeddings.astype(np.float64))
    plt, fig, axes = _figure(1, 1, (6.5, 5.5))
    ax = axes[0, 0]
    names = sorted(set(speakers.tolist()))
    cmap = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    for i, name in enumerate(names):
        chosen = speakers == name
        ax.scatter(points[chosen, 0], points[chosen, 1], s=8, color=cmap(i % cmap.N), label=name)
    ax.set_title("t-SNE of speaker embeddings")
    ax.set_xticks([])
    ax.set_yticks([])
    if len(names) <= 20:
        ax.legend(fontsize=7, markerscale=2, loc="best")
    return _save(plt, fig, path)


@dataclass
class EmbeddedSet:
    """Embeddings of a set of recordings with their speakers; `skipped` lists files refused (too short,
    silent, unreadable) with the reason."""

    embeddings: np.ndarray
    speakers: list[str]
    paths: list[str]
    skipped: list[tuple[str, str]]


def select_items(indexed: Sequence[tuple[str, object]], split: str = "all", speakers: Sequence[str] = (),
                 max_per_speaker: int | None = None) -> list[tuple[str, object]]:
    """Recordings of one split (`all`: every one) and/or of the named speakers (`name` or `dataset/name`),
    at most `max_per_speaker` each (the first by path)."""
    chosen = [(key, item) for key, item in indexed if split == "all" or item.split == split]
    if speakers:
        wanted = set(speakers)
        chosen = [(key, item) for key, item in chosen if key in wanted or key.split("/", 1)[1] in wanted]
        missing = wanted - {k for k, _ in chosen} - {k.split("/", 1)[1] for k, _ in chosen}
        if missing:
            raise DlspError(f"speakers not found{'' if split == 'all' else f' in the {split} split'}: "
                            f"{', '.join(sorted(missing))}")
    if max_per_speaker:
        counts: dict[str, int] = {}
        kept = []
        for key, item in chosen:
            counts[key] = counts.get(key, 0) + 1
            if counts[key] <= max_per_speaker:
                kept.append((key, item))
        chosen = kept
    if not chosen:
        raise DlspError(f"no recordings selected (split {split}"
                        + (f", speakers {', '.join(speakers)})" if speakers else ")"))
    return chosen


def embed_items(embedder, chosen: Sequence[tuple[str, object]], progress: bool = True) -> EmbeddedSet:
    """Embed the chosen recordings with a `SpeakerEmbedder`, skipping (and listing) refused files."""
    from dlsp.progress import progress_bar

    clips, speakers, paths, skipped = [], [], [], []
    for key, item in progress_bar(chosen, desc="embedding", unit="file", disable=not progress, leave=False):
        try:
            clips.append(embedder.load(item.path))
        except DlspError as exc:
            skipped.append((str(item.path), exc.problem))
            continue
        speakers.append(key)
        paths.append(str(item.path))
    embeddings = embedder.embed_prepared(clips) if clips else np.zeros((0, embedder.embedding_dim), np.float32)
    return EmbeddedSet(embeddings, speakers, paths, skipped)

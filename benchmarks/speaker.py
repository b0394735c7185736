"""Speaker verification benchmark: dlsp encoders vs a classical mean-MFCC baseline on unseen speakers.

Two test sets from ../shared/data, neither seen in training by the models the recipes make:
- Arabic Speech Commands, its 6 validation speakers (80 one-second clips each). The recipes train on the 18
  training speakers; these 6 also pick the best epoch and the threshold, so this set is unseen in training but
  not in model selection.
- FSDD, nicolas and theo (500 clips each, 8 kHz upsampled to 16 kHz; clips under 0.3 s are refused by every
  system alike), held out of training and of model selection entirely.

Trials: every same-speaker pair and up to --max-nontarget sampled different-speaker pairs; the same trials and
the same decoded, silence-trimmed clips for every system in one run. With --enroll N (default 3) also
enrolled-speaker trials, as `dlsp speaker enroll`/`verify` make them: a model averaging N recordings of a speaker
against every recording not used to enroll it. Systems: each dlsp model (cosine of its embeddings; a model
with test-time speed views also without them, "one view") and the baseline (cosine of per-utterance mean
MFCCs c1-c19, 20 coefficients, 25 ms / 10 ms frames, c0 dropped because it only measures loudness).
Throughput: utterances per second embedding one clip at a time on one thread (1 s Arabic clips, after
decoding). Also, per set and system, the speaker pair whose trials are accepted most often (and the EER without
it), and each speaker's median F0. Prints markdown tables; --json writes everything.

    .venv/bin/python benchmarks/speaker.py                      # shipped model + runs/speaker_*/best.pt
    .venv/bin/python benchmarks/speaker.py --model am=runs/speaker_default/best.pt --model bce=runs/speaker_bce/best.pt
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FSDD_HELD_OUT = ("nicolas", "theo")
SAMPLE_RATE = 16000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="dlsp speaker models (default: the shipped model and RUNS/speaker_*/best.pt)")
    parser.add_argument("--runs", default=str(ROOT / "runs"))
    parser.add_argument("--max-nontarget", type=int, default=100_000)
    parser.add_argument("--boot", type=int, default=200, help="bootstrap resamples for the 95%% intervals")
    parser.add_argument("--throughput-clips", type=int, default=200)
    parser.add_argument("--enroll", type=int, default=3,
                        help="also score enrolled-speaker trials: models averaging this many recordings (0: off)")
    parser.add_argument("--no-pitch", dest="pitch", action="store_false",
                        help="skip the table of each speaker's median F0")
    parser.add_argument("--json", help="write all results here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from _shared import data_folder  # benchmarks/_shared.py, beside this script

    data = data_folder(args.data)
    systems = []
    for name, path in dlsp_models(args.model, Path(args.runs)):
        system = DlspSystem(path)
        systems.append((name, system))
        if len(system.embedder.model.test_speeds) > 1:  # the same weights without test-time speed views
            systems.append((f"{name}, one view", DlspSystem(path, one_view=True)))
    training = baseline_training_clips(data)
    systems.append(("mean MFCC + cosine (baseline)", MfccBaseline(training)))
    try:
        systems.append(("Resemblyzer 0.1.4 (pretrained, peer)", ResemblyzerPeer()))
    except ImportError:
        print("Resemblyzer is not installed (make bench installs it): its rows are left out", file=sys.stderr)
    sets = {
        "Arabic SC, 6 validation speakers": load_set(data / "speech" / "arabic_commands", "val", ()),
        "FSDD, 2 held-out speakers": load_set(data / "speech" / "fsdd", "all", FSDD_HELD_OUT),
    }
    from dlsp.speaker.evaluate import build_trials, enrollment_scores, score_trials, summarize_scores

    results: dict = {"sets": {}, "throughput": {}}
    rows, pair_rows = [], []
    for set_name, (clips, speakers, refused) in sets.items():
        trials = build_trials(speakers, args.max_nontarget, seed=0)
        results["sets"][set_name] = {"n_clips": len(clips), "n_refused": refused, "systems": {}}
        for name, system in systems:
            print(f"{set_name}: {name} ...", file=sys.stderr)
            embeddings = system.embed(clips)
            scores = score_trials(embeddings, trials)
            summary = summarize_scores(scores, trials.target, args.boot)
            summary["worst_pair"] = worst_pair(scores, trials, speakers, summary["eer_threshold"])
            results["sets"][set_name]["systems"][name] = summary
            rows.append((set_name, "1 vs 1", name, *_figures(summary)))
            pair = summary["worst_pair"]
            pair_rows.append((set_name, name, " ~ ".join(s.rsplit("/", 1)[-1] for s in pair["speakers"]),
                              f"{100 * pair['false_accept']:.1f}",
                              "-" if pair["eer_without"] is None else f"{100 * pair['eer_without']:.2f}"))
            if args.enroll:
                enrolled = summarize_scores(*enrollment_scores(embeddings, speakers, args.enroll), args.boot)
                results["sets"][set_name]["systems"][f"{name}, enrolled {args.enroll}"] = enrolled
                rows.append((set_name, f"enrolled {args.enroll} vs 1", name, *_figures(enrolled)))
    arabic = sets["Arabic SC, 6 validation speakers"][0][: args.throughput_clips]
    for name, system in systems:
        results["throughput"][name] = system.throughput(arabic)
    from dlsp.report.tables import format_table

    print(format_table(("test set", "trials", "system", "EER %", "95% CI", "minDCF (0.01)", "target", "non-target"),
                       rows, markdown=True))
    if args.enroll:
        print(f"\nenrolled {args.enroll} vs 1: a speaker model averages {args.enroll} random recordings (as dlsp "
              "speaker enroll does), scored against every recording not used to enroll it; 20 models per speaker.")
    print("\nWhere the false accepts come from (1 vs 1, each system at its own EER threshold): the speaker pair "
          "accepted most often, and the EER with that pair's trials left out (a diagnosis, not a result; '-': "
          "the set has one pair).\n")
    print(format_table(("test set", "system", "most confused pair", "its trials accepted %", "EER % without it"),
                       pair_rows, markdown=True))
    if args.pitch:
        pitch = {label: speaker_pitch(data, *where) for label, where in PITCH_SETS.items()}
        results["median_f0_hz"] = pitch
        print("\nMedian F0 of each speaker (pYIN, voiced frames of the first 10 clips; Hz):\n")
        print(format_table(("speakers", "median F0 per speaker"),
                           [(label, ", ".join(f"{k.rsplit('/', 1)[-1]} {v:.0f}" for k, v in sorted(
                               values.items(), key=lambda kv: kv[1]))) for label, values in pitch.items()],
                           markdown=True))
    print()
    print(format_table(("system", "utterances/s (1 thread, 1 s clips)"),
                       [(name, f"{ups:.1f}") for name, ups in results["throughput"].items()], markdown=True))
    for set_name, (clips, _, refused) in sets.items():
        print(f"\n{set_name}: {len(clips)} clips" + (f" ({refused} refused: shorter than 0.3 s)" if refused else ""))
    if args.json:
        from dlsp.fileio import write_json

        write_json(args.json, results)
    return 0


def _figures(summary: dict) -> tuple:
    return (f"{100 * summary['eer']:.2f}", f"{100 * summary['eer_ci'][0]:.1f}-{100 * summary['eer_ci'][1]:.1f}",
            f"{summary['min_dcf']:.3f}", summary["n_target"], summary["n_nontarget"])


def dlsp_models(explicit: list[str], runs: Path) -> list[tuple[str, Path]]:
    """NAME=PATH pairs, or the shipped model and every runs/speaker_*/best.pt (runs holding the shipped weights,
    such as the run it was published from, are named after the shipped model instead of appearing twice)."""
    if explicit:
        return [(item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in explicit]
    from dlsp.errors import DlspError
    from dlsp.speaker.model_file import default_model_path, load_speaker_model

    found, shipped_id = [], None
    with contextlib.suppress(DlspError):  # no shipped model yet
        shipped = default_model_path()
        shipped_id = load_speaker_model(shipped).model_id
        found.append(("dlsp default (shipped)", shipped))
    for best in sorted(runs.glob("speaker_*/best.pt")):
        loaded = load_speaker_model(best)
        if loaded.model_id == shipped_id:
            found[0] = (f"dlsp default (shipped = {best.parent.name})", shipped)
            continue
        args = loaded.config.get("model", {}).get("args", {})
        objective = loaded.config.get("train", {}).get("objective", "?")
        found.append((f"dlsp {best.parent.name} ({objective}, {args.get('features', '?')})", best))
    return found


def baseline_training_clips(data: Path, per_speaker: int = 20) -> list[np.ndarray]:
    """Clips of the recipes' training speakers (Arabic training speakers, FSDD george/jackson/lucas) for the
    baseline's normalisation statistics."""
    arabic = load_set(data / "speech" / "arabic_commands", "train", (), per_speaker)[0]
    fsdd = load_set(data / "speech" / "fsdd", "all", ("george", "jackson", "lucas"), per_speaker)[0]
    return arabic + fsdd


def load_set(root: Path, split: str, speakers: tuple[str, ...], per_speaker: int | None = None
             ) -> tuple[list[np.ndarray], list[str], int]:
    """Decoded clips at 16 kHz (not trimmed), their speakers, and how many files were refused."""
    from dlsp.errors import DlspError
    from dlsp.speaker.audio import load_speech
    from dlsp.speaker.data import index_speakers
    from dlsp.speaker.evaluate import select_items

    chosen = select_items(index_speakers([root]), split, speakers, per_speaker)
    clips, labels, refused = [], [], 0
    for key, item in chosen:
        try:
            clips.append(load_speech(item.path, SAMPLE_RATE))
        except DlspError:
            refused += 1
            continue
        labels.append(key)
    return clips, labels, refused


def worst_pair(scores: np.ndarray, trials, speakers: list[str], threshold: float) -> dict:
    """The speaker pair whose non-target trials are accepted most often at `threshold`, and the EER of the
    remaining trials."""
    from dlsp.metrics.verification import eer
    from dlsp.speaker.evaluate import error_breakdown

    pair = error_breakdown(scores, trials, speakers, threshold, top=1)["confused_pairs"][0]
    labels = np.asarray(speakers)
    first, second = labels[trials.first], labels[trials.second]
    inside = np.isin(first, pair["speakers"]) & np.isin(second, pair["speakers"]) & (first != second)
    rest = trials.target[~inside]
    without = eer(scores[~inside], rest)[0] if 0 < rest.sum() < rest.size else None  # None: only one pair
    return {**pair, "eer_without": without}


PITCH_SETS = {
    "Arabic SC, 6 validation (test) speakers": ("arabic_commands", "val"),
    "Arabic SC, 18 training speakers": ("arabic_commands", "train"),
    "FSDD, 3 training + 2 test speakers": ("fsdd", "all"),
}


def speaker_pitch(data: Path, folder: str, split: str, clips: int = 10) -> dict[str, float]:
    """Median F0 (Hz) of each speaker's voiced frames over their first `clips` clips (pYIN, 60-400 Hz), to see
    whether the pairs confused share a voice range and how many such voices the training speakers have."""
    import librosa

    loaded, labels, _ = load_set(data / "speech" / folder, split, (), clips)
    f0s: dict[str, list[np.ndarray]] = {}
    for clip, label in zip(loaded, labels, strict=True):
        f0, voiced, _ = librosa.pyin(clip, fmin=60, fmax=400, sr=SAMPLE_RATE, frame_length=1024)
        f0s.setdefault(label, []).append(f0[voiced])
    return {label: float(np.median(np.concatenate(values))) for label, values in f0s.items()}


def clips_per_second(embed_one, clips: list[np.ndarray]) -> float:
    """Throughput of embedding the clips one at a time (after one untimed call, so that one-off set-up such as
    allocating buffers is not charged to whichever system happens to be timed first)."""
    embed_one(clips[0])
    start = time.perf_counter()
    for clip in clips:
        embed_one(clip)
    return len(clips) / (time.perf_counter() - start)


class DlspSystem:
    def __init__(self, path: Path, one_view: bool = False) -> None:
        from dlsp.speaker.embed import SpeakerEmbedder
        from dlsp.speaker.model_file import load_speaker_model

        loaded = load_speaker_model(path)
        if one_view:
            loaded.model = loaded.model.with_test_speeds([1.0])
        self.embedder = SpeakerEmbedder(loaded, device="cpu")
        if self.embedder.sample_rate != SAMPLE_RATE:
            raise SystemExit(f"{path}: benchmark clips are {SAMPLE_RATE} Hz, model wants {self.embedder.sample_rate}")

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        return self.embedder.embed_prepared([self.embedder.trim(c) for c in clips])

    def throughput(self, clips: list[np.ndarray]) -> float:
        return clips_per_second(lambda clip: self.embedder.embed_prepared([self.embedder.trim(clip)]), clips)


class MfccBaseline:
    """Per-utterance mean of MFCCs c1-c19 of the silence-trimmed clip, standardised with the mean and deviation
    of training-speaker clips (without centring, every cosine is near 1: all mean MFCC vectors share a large
    common part)."""

    def __init__(self, training_clips: list[np.ndarray]) -> None:
        vectors = np.stack([self._vector(c) for c in training_clips])
        self.mean, self.std = vectors.mean(axis=0), vectors.std(axis=0) + 1e-8

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        return (np.stack([self._vector(c) for c in clips]) - self.mean) / self.std

    def _vector(self, clip: np.ndarray) -> np.ndarray:
        from dlsp.audio.features import mfcc
        from dlsp.speaker.audio import trim_silence

        coefficients = mfcc(trim_silence(clip, SAMPLE_RATE), SAMPLE_RATE, n_mfcc=20, n_fft=400, hop_length=160,
                            n_mels=40)
        return coefficients[1:].mean(dim=-1).numpy()

    def throughput(self, clips: list[np.ndarray]) -> float:
        return clips_per_second(self._vector, clips)


class ResemblyzerPeer:
    """Resemblyzer's pretrained d-vector encoder (GE2E, 3-layer LSTM on 40 mel bands; trained by its authors on
    LibriSpeech and VoxCeleb 1 and 2, some 8,000 speakers, so not on this data), through its own
    `VoiceEncoder.embed_utterance`, on the same silence-trimmed clips. Its `preprocess_wav` volume normalisation
    is left out on purpose: it made every EER worse here (Arabic 9.3 -> 12.1 %, FSDD 12.6 -> 29.4 %)."""

    def __init__(self) -> None:
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder("cpu", verbose=False)

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        return np.stack([self._vector(c) for c in clips])

    def _vector(self, clip: np.ndarray) -> np.ndarray:
        from dlsp.speaker.audio import trim_silence

        return self.encoder.embed_utterance(trim_silence(clip, SAMPLE_RATE).astype(np.float32))

    def throughput(self, clips: list[np.ndarray]) -> float:
        return clips_per_second(self._vector, clips)


if __name__ == "__main__":
    sys.exit(main())

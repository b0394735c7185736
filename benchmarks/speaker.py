"""Speaker verification benchmark (issue 22): dlsp encoders, a pretrained peer and a classical baseline on the
held-out speakers of three corpora, scored as `dlsp speaker verify` scores them.

Test corpora (../shared/data), the fixed hold-out sets of `dlsp.data.holdout`:
- speechocean762, SPEECHOCEAN_HELD_OUT: 16 speakers (4 boys, 4 girls, 4 men, 4 women), 10 read sentences each,
  2-8 s, wideband.
- Arabic Speech Commands, ARABIC_HELD_OUT: its 6 validation speakers, 80 one-second keywords each.
- FSDD, FSDD_HELD_OUT: nicolas and theo, 500 spoken digits each, 8 kHz upsampled to 16 kHz.
None of these speakers is trained on by the recipes, but they are not all unseen in model selection: the
shipped model's recipe, recipes/speaker_wideband.yaml (`data.val_speakers: ["@speechocean762", "@arabic"]`),
picks each member's epoch and sets the thresholds on the speechocean762 and Arabic groups (the older
recipes/speaker_default.yaml on the 6 Arabic speakers), so rates there are rates on the speakers that set the
thresholds, not a blind test. FSDD is never used in training or selection: it is the blind test.

Clips: decoded once at 16 kHz; clips the decoder check refuses (under 0.3 s, or silence) are refused for every
system alike, as verify would refuse them. A dlsp model then prepares each clip exactly as `dlsp speaker
verify` prepares a file (`SpeakerEmbedder.voice`: silence trimming at the model's trim_db and the "no voice"
check for steady sounds), and embeds it with `embed_prepared` (windows of the model's window length for long
recordings). A clip any dlsp model refuses is counted per model and left out of every system's trials, so all
systems score the same trials. Resemblyzer and the baseline trim silence their own way (as before).

Scores: a dlsp model scores with the scoring its model file stores (`SpeakerModel.scorer`): AS-norm against its
cohort when the file has one, else raw cosine (files written before issue 22, and a `best.pt` of a training
that has not finished, which only gets its cohort and AS-norm threshold at the end). For an AS-norm model the
raw-cosine EER is printed too. Resemblyzer and the baseline score by cosine.

Trials:
- 1 vs 1: every same-speaker pair and up to --max-nontarget sampled different-speaker pairs.
- enrolled 3: as `dlsp speaker enroll` + `verify`: a speaker model is the normalised mean of 3 random unit
  embeddings of one speaker (20 models per speaker), scored against every recording not used to enroll it.
- probe duration: the enrolled-3 models (whole recordings) against probes cut to 0.5, 1, 2 and 5 s: the
  stretch of that length of a recording centred on its speech, embedded as verify embeds a file of that length
  (trimmed again, checked); a recording shorter than the cut (by more than 10 ms) gives no probe, and a corpus
  with fewer than 5 recordings that long says n/a; under 30 the count is shown (speechocean762 has 8 of 5 s).
Metrics: EER, minDCF (p_target 0.01); for dlsp models the false-accept and false-reject rates at the shipped
threshold (the one verify uses without --threshold or a database calibration: the AS-norm threshold when the
file stores scoring, else its cosine threshold; for a model with thresholds by enrolment size, those of the
trial's speaker-model size: 1 for 1 vs 1, 3 for enrolled 3; per trial, the model's narrowband threshold when it has one
and the trial's probe - its second clip, the single recording against an enrolled model - is narrowband, its
content stopping below the rule's limit, measured as verify measures it on the prepared clip). How many clips
are narrowband is printed below that table. For every system also the rates at the lowest threshold that
accepts at most 5% of the test trials' own impostors (set on the test trials: no threshold set elsewhere rejects
fewer at that false-accept rate), which separates what the encoder allows from how well a threshold carries over.
Throughput: utterances per second embedding 1 s Arabic clips
one at a time on one thread through the verify path (prepare + embed; after decoding; warmed up). Size: the
model file.

Prints markdown tables (rows: systems, columns: corpora, targets in the headers) and PASS/FAIL of issue 22's
targets for each dlsp model; --json writes everything.

    .venv/bin/python benchmarks/speaker.py                                  # shipped default model
    .venv/bin/python benchmarks/speaker.py --model wideband=runs/speaker_wideband/best.pt
    .venv/bin/python benchmarks/speaker.py --max-per-speaker 6 --skip-peer   # quick smoke run
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy and torch start their thread pools

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
N_ENROLL = 3
ENROLL_SIZES = (1, 3, 5, 9)  # enrolment sizes of the rates-by-enrolment table
MODELS_PER_SPEAKER = 20
DURATIONS = (0.5, 1.0, 2.0, 5.0)
CUT_TOLERANCE = 0.010  # seconds a recording may fall short of a cut length and still give that probe
MIN_PROBES, FEW_PROBES = 5, 30  # below MIN_PROBES probe recordings a duration's EER is n/a; below FEW, flagged
# Issue 22's targets.
EER_1V1_SPEECHOCEAN = 0.03
EER_ENROLLED_SPEECHOCEAN = 0.02
MAX_FAR, MAX_FRR = 0.05, 0.10
MIN_THROUGHPUT = 100.0
MAX_BYTES = 10 * 1024 * 1024


@dataclass
class Corpus:
    """Decoded clips of one test corpus with their speakers; `refused` lists clips the decoder check refused."""

    label: str
    short: str
    clips: list[np.ndarray]
    speakers: list[str]
    paths: list[str]
    refused: list[tuple[str, str]] = field(default_factory=list)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="a dlsp speaker model file to benchmark beside the shipped default (repeatable)")
    parser.add_argument("--no-default", dest="default", action="store_false",
                        help="leave out the shipped default model")
    parser.add_argument("--skip-peer", action="store_true", help="leave out Resemblyzer")
    parser.add_argument("--max-per-speaker", type=int, default=None,
                        help="at most this many clips per test speaker (quick runs; default: all)")
    parser.add_argument("--max-nontarget", type=int, default=100_000)
    parser.add_argument("--boot", type=int, default=100,
                        help="bootstrap resamples for the 95%% intervals of the main EERs (0: none)")
    parser.add_argument("--throughput-clips", type=int, default=200)
    parser.add_argument("--json", help="write all results here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from _shared import data_folder  # benchmarks/_shared.py, beside this script

    data = data_folder(args.data)
    started = time.perf_counter()
    systems = build_systems(args, data)
    corpora = load_corpora(data, args.max_per_speaker)
    results: dict = {"corpora": {}, "systems": {s.name: s.describe() for s in systems}}
    for corpus in corpora:
        print(f"{corpus.label}: {len(corpus.clips)} clips ...", file=sys.stderr)
        results["corpora"][corpus.short] = evaluate_corpus(corpus, systems, args)
    arabic = next(c for c in corpora if c.short == "arabic")
    throughput_clips = [c for c in arabic.clips if c.size >= SAMPLE_RATE - CUT_TOLERANCE * SAMPLE_RATE]
    for system in systems:
        print(f"throughput: {system.name} ...", file=sys.stderr)
        results["systems"][system.name]["throughput"] = system.throughput(throughput_clips[: args.throughput_clips])
    print(report(results, systems, corpora))
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")
    if args.json:
        from dlsp.fileio import write_json

        write_json(args.json, results)
    return 0


# ---------------------------------------------------------------------------------------------------- data


CORPORA = (  # (column label, short name, folder, held-out speakers (attribute of dlsp.data.holdout))
    ("speechocean762 (16 spk)", "speechocean762", "speechocean762", "SPEECHOCEAN_HELD_OUT"),
    ("Arabic SC (6 spk)", "arabic", "arabic_commands", "ARABIC_HELD_OUT"),
    ("FSDD (nicolas, theo)", "fsdd", "fsdd", "FSDD_HELD_OUT"),
)


def load_corpora(data: Path, max_per_speaker: int | None) -> list[Corpus]:
    from dlsp.data import holdout

    return [load_corpus(data / "speech" / folder, getattr(holdout, attr), label, short, max_per_speaker)
            for label, short, folder, attr in CORPORA]


def load_corpus(root: Path, speakers: tuple[str, ...], label: str, short: str,
                max_per_speaker: int | None = None) -> Corpus:
    """The named speakers' recordings decoded at 16 kHz (untrimmed) as verify decodes them (`load_speech`:
    refused when under 0.3 s or silent)."""
    from dlsp.errors import DlspError
    from dlsp.speaker.audio import load_speech
    from dlsp.speaker.data import index_speakers
    from dlsp.speaker.evaluate import select_items

    corpus = Corpus(label, short, [], [], [])
    for key, item in select_items(index_speakers([root]), "all", speakers, max_per_speaker):
        try:
            corpus.clips.append(load_speech(item.path, SAMPLE_RATE))
        except DlspError as exc:
            corpus.refused.append((str(item.path), exc.problem))
            continue
        corpus.speakers.append(key)
        corpus.paths.append(str(item.path))
    return corpus


def baseline_training_clips(data: Path) -> list[np.ndarray]:
    """Clips of training speakers only (Arabic training speakers and FSDD george/jackson/lucas, 20 each;
    speechocean762 outside its held-out group, 2 each) for the baseline's normalisation statistics."""
    from dlsp.data.holdout import SPEECHOCEAN_HELD_OUT
    from dlsp.errors import DlspError
    from dlsp.speaker.audio import load_speech
    from dlsp.speaker.data import index_speakers
    from dlsp.speaker.evaluate import select_items

    speech = data / "speech"
    chosen = select_items(index_speakers([speech / "arabic_commands"]), "train", (), 20)
    chosen += select_items(index_speakers([speech / "fsdd"]), "all", ("george", "jackson", "lucas"), 20)
    ocean = [(k, i) for k, i in index_speakers([speech / "speechocean762"])
             if k.split("/", 1)[1] not in SPEECHOCEAN_HELD_OUT]
    chosen += select_items(ocean, "all", (), 2)
    clips = []
    for _, item in chosen:
        try:
            clips.append(load_speech(item.path, SAMPLE_RATE))
        except DlspError:  # a refused training clip just does not count
            continue
    return clips


def cut_probe(clip: np.ndarray, seconds: float) -> np.ndarray | None:
    """The `seconds`-long stretch of `clip` centred on its speech (40 dB trimmed span), or None when the clip is
    shorter than that by more than `CUT_TOLERANCE`."""
    from dlsp.speaker.audio import speech_bounds

    n = round(seconds * SAMPLE_RATE)
    if clip.size < n - round(CUT_TOLERANCE * SAMPLE_RATE):
        return None
    start, stop = speech_bounds(clip, SAMPLE_RATE)
    begin = int(np.clip((start + stop) // 2 - n // 2, 0, max(0, clip.size - n)))
    return clip[begin:begin + n]


# ------------------------------------------------------------------------------------------------- systems


def clips_per_second(embed_one, clips: list[np.ndarray], warmup: int = 5) -> float:
    """Utterances per second embedding the clips one at a time, after `warmup` untimed calls (one-off set-up
    such as allocating buffers is not charged to whichever system happens to be timed first)."""
    for clip in clips[:warmup]:
        embed_one(clip)
    start = time.perf_counter()
    for clip in clips:
        embed_one(clip)
    return len(clips) / (time.perf_counter() - start)


class System:
    """A verification system: how it prepares a clip (may refuse with `DlspError`), embeds prepared clips,
    and scores (`scorer`); dlsp models also have the thresholds verify uses."""

    name: str
    kind: str  # "dlsp", "peer" or "baseline"
    scorer = None  # dlsp.speaker.scoring.Scorer
    threshold: float | None = None
    size_bytes: int | None = None

    def prepare(self, clip: np.ndarray, path: str | None = None) -> np.ndarray:
        return clip

    def embed(self, prepared: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def throughput(self, clips: list[np.ndarray]) -> float:
        return clips_per_second(lambda clip: self.embed([self.prepare(clip)]), clips)

    @property
    def uses_asnorm(self) -> bool:
        return self.scorer.kind == "asnorm"

    def describe(self) -> dict:
        return {"kind": self.kind, "score": self.scorer.kind, "threshold": self.threshold,
                "size_bytes": self.size_bytes}

    def narrowband(self, prepared: list[np.ndarray]) -> np.ndarray:
        """Which prepared clips are narrowband probes (none, for systems without a threshold)."""
        return np.zeros(len(prepared), dtype=bool)

    def thresholds(self, narrowband: np.ndarray, enrolled: int = 1) -> np.ndarray:
        """The threshold verify applies to each trial whose probe is `narrowband` or not, against a person
        enrolled with `enrolled` recordings."""
        return np.full(narrowband.shape, self.threshold, dtype=np.float64)


class DlspSystem(System):
    """A dlsp model file, used as `dlsp speaker verify` uses it."""

    kind = "dlsp"

    def __init__(self, name: str, path: Path) -> None:
        from dlsp.speaker.embed import SpeakerEmbedder
        from dlsp.speaker.model_file import load_speaker_model

        self.name, self.path = name, Path(path)
        self.loaded = load_speaker_model(self.path)
        self.embedder = SpeakerEmbedder(self.loaded, device="cpu")
        if self.embedder.sample_rate != SAMPLE_RATE:
            raise SystemExit(f"{path}: benchmark clips are {SAMPLE_RATE} Hz, model wants {self.embedder.sample_rate}")
        self.scorer = self.loaded.scorer
        self.threshold = float(self.scorer.threshold)
        self.size_bytes = self.path.stat().st_size

    def prepare(self, clip: np.ndarray, path: str | None = None) -> np.ndarray:
        # What verify does to a decoded file: the decoder's checks (again: harmless for whole clips, needed for
        # cut probes), silence trimming and the "no voice" check.
        return self.embedder.prepare(clip, SAMPLE_RATE, path)

    def embed(self, prepared: list[np.ndarray]) -> np.ndarray:
        return self.embedder.embed_prepared(prepared)

    def narrowband(self, prepared: list[np.ndarray]) -> np.ndarray:
        # Measured as verify measures a probe. Without a narrowband rule the default limit still counts them.
        from dlsp.speaker.scoring import NARROWBAND_BELOW_HZ

        below = NARROWBAND_BELOW_HZ if self.scorer.narrow is None else self.scorer.narrow.below_hz
        return np.array([self.embedder.bandwidth(clip) < below for clip in prepared], dtype=bool)

    def thresholds(self, narrowband: np.ndarray, enrolled: int = 1) -> np.ndarray:
        scorer = self.scorer.for_enrolment(enrolled)
        if scorer.narrow is None:
            return np.full(narrowband.shape, scorer.threshold, dtype=np.float64)
        return np.where(narrowband, scorer.narrow.threshold, scorer.threshold)

    def describe(self) -> dict:
        table, narrow = self.scorer.table, self.scorer.narrow
        return {**super().describe(), "path": str(self.path), "model_id": self.loaded.model_id,
                "enrolled": self.scorer.enrolled,
                "by_enrolment": {str(e.enrolled): {"threshold": e.threshold,
                                                   "narrow_threshold": None if e.narrow is None else e.narrow.threshold}
                                 for e in self.scorer.by_enrolment},
                "narrow": None if narrow is None else {
                    "below_hz": narrow.below_hz, "threshold": narrow.threshold,
                    "validation_far_at_threshold": None if narrow.table is None else narrow.table.far_at(
                        narrow.threshold),
                    "validation_frr_at_threshold": None if narrow.table is None else narrow.table.frr_at(
                        narrow.threshold)},
                "cosine_threshold": self.loaded.threshold, "val_eer": self.loaded.val_eer,
                "cohort_size": None if self.scorer.cohort is None else int(self.scorer.cohort.shape[0]),
                "top_k": self.scorer.top_k if self.uses_asnorm else None,
                "validation_far_at_threshold": None if table is None else table.far_at(self.threshold),
                "validation_frr_at_threshold": None if table is None else table.frr_at(self.threshold),
                "window_seconds": self.loaded.window_seconds, "hop_seconds": self.loaded.hop_seconds}


class MfccBaseline(System):
    """Per-utterance mean of MFCCs c1-c19 of the silence-trimmed clip (25 ms / 10 ms frames, 40 mel bands; c0
    dropped: it only measures loudness), standardised with the mean and deviation over training-speaker clips
    (without centring every cosine is near 1: all mean MFCC vectors share a large common part), scored by
    cosine."""

    kind = "baseline"
    name = "mean MFCC + cosine (baseline)"

    def __init__(self, training_clips: list[np.ndarray]) -> None:
        from dlsp.speaker.scoring import Scorer

        self.scorer = Scorer("cosine", 0.0)
        vectors = np.stack([self._vector(c) for c in training_clips])
        self.mean, self.std = vectors.mean(axis=0), vectors.std(axis=0) + 1e-8

    def embed(self, prepared: list[np.ndarray]) -> np.ndarray:
        return (np.stack([self._vector(c) for c in prepared]) - self.mean) / self.std

    def _vector(self, clip: np.ndarray) -> np.ndarray:
        from dlsp.audio.features import mfcc
        from dlsp.speaker.audio import trim_silence

        coefficients = mfcc(trim_silence(clip, SAMPLE_RATE), SAMPLE_RATE, n_mfcc=20, n_fft=400, hop_length=160,
                            n_mels=40)
        return coefficients[1:].mean(dim=-1).numpy()


class ResemblyzerPeer(System):
    """Resemblyzer's pretrained d-vector encoder (GE2E, 3-layer LSTM on 40 mel bands; trained by its authors on
    LibriSpeech and VoxCeleb 1 and 2, some 8,000 speakers, so not on this data), through its own
    `VoiceEncoder.embed_utterance`, on the silence-trimmed clips, scored by cosine. Its `preprocess_wav` volume
    normalisation is left out on purpose: it made every EER worse here (Arabic 9.3 -> 12.1 %, FSDD 12.6 ->
    29.4 %)."""

    kind = "peer"
    name = "Resemblyzer 0.1.4 (pretrained, peer)"

    def __init__(self) -> None:
        import resemblyzer
        from resemblyzer import VoiceEncoder

        from dlsp.speaker.scoring import Scorer

        self.encoder = VoiceEncoder("cpu", verbose=False)
        self.scorer = Scorer("cosine", 0.0)
        weights = Path(resemblyzer.__file__).parent / "pretrained.pt"
        self.size_bytes = weights.stat().st_size if weights.exists() else None

    def embed(self, prepared: list[np.ndarray]) -> np.ndarray:
        from dlsp.speaker.audio import trim_silence

        return np.stack([self.encoder.embed_utterance(trim_silence(c, SAMPLE_RATE).astype(np.float32))
                         for c in prepared])


def build_systems(args: argparse.Namespace, data: Path) -> list[System]:
    from dlsp.errors import DlspError
    from dlsp.paths import PRETRAINED_DIR

    systems: list[System] = []
    if args.default:
        shipped = PRETRAINED_DIR / "speaker.pt"
        if shipped.exists():
            systems.append(DlspSystem("dlsp default (shipped)", shipped))
        else:
            print(f"no shipped speaker model at {shipped}: its rows are left out", file=sys.stderr)
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser_error(f"--model wants NAME=PATH, got {item!r}")
        try:
            systems.append(DlspSystem(f"dlsp {name}", Path(path)))
        except DlspError as exc:
            parser_error(f"--model {item}: {exc}")
    if not args.skip_peer:
        try:
            systems.append(ResemblyzerPeer())
        except ImportError:
            print("Resemblyzer is not installed (make bench installs it): its rows are left out", file=sys.stderr)
    systems.append(MfccBaseline(baseline_training_clips(data)))
    return systems


def parser_error(message: str) -> None:
    print(f"speaker.py: {message}", file=sys.stderr)
    raise SystemExit(2)


# ----------------------------------------------------------------------------------------------- scoring


def enrollment_plan(speakers: list[str], n_enroll: int = N_ENROLL, per_speaker: int = MODELS_PER_SPEAKER,
                    seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """`(speaker, enrolled clip indices)` of every speaker model: the draws `dlsp speaker eval` and calibration
    make (`dlsp.speaker.evaluate.enrollment_draws`); speakers with too few clips to leave a probe are skipped."""
    from dlsp.speaker.evaluate import enrollment_draws

    return enrollment_draws(speakers, n_enroll, per_speaker, np.random.default_rng(seed))


def enrolled_scores(scorer, embeddings: np.ndarray, speakers: list[str], plan: list[tuple[str, np.ndarray]],
                    probes: np.ndarray | None = None, probe_of: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """`(scores, target)` of every speaker model of `plan` (the normalised mean of its enrolled unit
    embeddings, as the enrolment database stores it) against every probe cut from a recording it did not
    enroll. `probes` `(P, D)` and `probe_of` `(P,)` (the recording each probe comes from) default to the whole
    recordings. Scored by `scorer.trial_scores`, i.e. as verify scores a probe against an enrolled person."""
    from dlsp.speaker.scoring import unit

    if probes is None:
        probes, probe_of = embeddings, np.arange(len(speakers))
    labels = np.asarray(speakers)
    whole = unit(embeddings)
    models = unit(np.stack([whole[enrolled].mean(axis=0) for _, enrolled in plan]))
    rows = np.concatenate([models, unit(probes)])
    first, second = plan_trials(plan, probe_of)
    target = (labels[probe_of[second]] == np.asarray([speaker for speaker, _ in plan])[first]).astype(np.int64)
    return scorer.trial_scores(rows, first, len(plan) + second), target


def plan_trials(plan: list[tuple[str, np.ndarray]], probe_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(model, probe)` indices of the trials of `enrolled_scores`, in its order: every speaker model of `plan`
    against every probe whose recording (`probe_of`) it did not enroll."""
    first, second = [], []
    for k, (_, enrolled) in enumerate(plan):
        tested = np.flatnonzero(~np.isin(probe_of, enrolled))
        first.append(np.full(tested.size, k))
        second.append(tested)
    return np.concatenate(first), np.concatenate(second)


def enrolment_rates(system, embeddings: np.ndarray, speakers: list[str], narrow: np.ndarray) -> dict:
    """False-accept / false-reject rates at the threshold verify uses, for speaker models of each of
    `ENROLL_SIZES` recordings (20 random models per speaker, as `enrollment_plan`); None where no speaker has
    a recording left to test."""
    rates = {}
    for n in ENROLL_SIZES:
        plan = enrollment_plan(speakers, n_enroll=n)
        if not plan:
            rates[str(n)] = None
            continue
        scores, target = enrolled_scores(system.scorer, embeddings, speakers, plan)
        probe_narrow = narrow[plan_trials(plan, np.arange(len(speakers)))[1]]
        rates[str(n)] = None if target.all() or not target.any() else rates_at(
            scores, target, system.thresholds(probe_narrow, n), probe_narrow)
    return rates


def summary(scores: np.ndarray, target: np.ndarray, boot: int = 0) -> dict | None:
    """EER, minDCF (p_target 0.01), counts and (with `boot`) 95% intervals; None without both kinds of trial."""
    from dlsp.speaker.evaluate import summarize_scores

    if not both_kinds(target):
        return None
    return summarize_scores(scores, target, boot)


def both_kinds(target: np.ndarray) -> bool:
    """Whether the trials hold genuine and impostor ones (rates need both)."""
    return bool(target.any() and not target.all())


def rates_at(scores: np.ndarray, target: np.ndarray, threshold: float | np.ndarray,
             narrowband: np.ndarray | None = None) -> dict:
    """False-accept and false-reject rates accepting score >= threshold (one for all trials or one per trial),
    with the number of trials whose probe is `narrowband` (a flag per trial)."""
    from dlsp.speaker.scoring import balanced_rates

    # score >= threshold exactly when score - threshold >= 0 (IEEE subtraction is exact in sign).
    far, frr = balanced_rates(scores - threshold, target, None, [0.0])
    return {"far": float(far[0]), "frr": float(frr[0]), "n_target": int(target.sum()),
            "n_nontarget": int(target.size - target.sum()),
            "n_narrowband_probe_trials": 0 if narrowband is None else int(narrowband.sum())}


def oracle_rates(scores: np.ndarray, target: np.ndarray, far: float = MAX_FAR) -> dict | None:
    """The rates at the lowest threshold that accepts at most `far` of these very trials' impostors: set on the
    test trials themselves, so no threshold set elsewhere can do better; what the encoder allows, apart from how
    well its threshold carries over. None without both kinds of trial."""
    from dlsp.speaker.scoring import threshold_at_far

    if not both_kinds(target):
        return None
    return rates_at(scores, target, threshold_at_far(scores, target, far))


def evaluate_corpus(corpus: Corpus, systems: list[System], args: argparse.Namespace) -> dict:
    """Every system's results on one corpus (same clips, same trials)."""
    from dlsp.errors import DlspError
    from dlsp.speaker.evaluate import build_trials, error_breakdown
    from dlsp.speaker.scoring import Scorer

    cosine = Scorer("cosine", 0.0)
    # Prepare every clip for every system; a clip any system refuses leaves every system's trials.
    prepared, refused = {}, {}
    keep = np.ones(len(corpus.clips), dtype=bool)
    for system in systems:
        prepared[system.name], refused[system.name] = [], []
        for i, (clip, path) in enumerate(zip(corpus.clips, corpus.paths, strict=True)):
            try:
                prepared[system.name].append(system.prepare(clip, path))
            except DlspError as exc:
                prepared[system.name].append(None)
                refused[system.name].append((path, exc.problem))
                keep[i] = False
    index = np.flatnonzero(keep)
    speakers = [corpus.speakers[i] for i in index]
    out: dict = {"label": corpus.label, "n_files": len(corpus.clips) + len(corpus.refused),
                 "n_refused_decoding": len(corpus.refused), "refused_decoding_example": corpus.refused[:1],
                 "n_clips": int(index.size), "n_speakers": len(set(speakers)),
                 "refused_by_system": {k: len(v) for k, v in refused.items()},
                 "refused_examples": {k: v[:2] for k, v in refused.items() if v}, "systems": {}, "probes": {}}
    if len(set(speakers)) < 2:
        print(f"{corpus.label}: fewer than two speakers left; skipped", file=sys.stderr)
        return out
    trials = build_trials(speakers, args.max_nontarget, seed=0)
    plan = enrollment_plan(speakers)
    # Probes cut to each duration, prepared by every system (a cut any system refuses is left out).
    cuts: dict[float, tuple[np.ndarray, dict[str, list[np.ndarray]]]] = {}
    for seconds in DURATIONS:
        sources, per_system = [], {s.name: [] for s in systems}
        for j, i in enumerate(index):
            cut = cut_probe(corpus.clips[i], seconds)
            if cut is None:
                continue
            try:
                ready = {s.name: s.prepare(cut, corpus.paths[i]) for s in systems}
            except DlspError:
                continue
            sources.append(j)
            for name, clip in ready.items():
                per_system[name].append(clip)
        cuts[seconds] = (np.asarray(sources, dtype=np.int64), per_system)
        out["probes"][str(seconds)] = len(sources)
    for system in systems:
        print(f"  {system.name} ...", file=sys.stderr)
        embeddings = system.embed([prepared[system.name][i] for i in index])
        result: dict = {}
        scores = system.scorer.trial_scores(embeddings, trials.first, trials.second)
        result["1v1"] = summary(scores, trials.target, args.boot)
        result["1v1_oracle"] = oracle_rates(scores, trials.target)
        if system.uses_asnorm:
            result["1v1_cosine"] = summary(cosine.trial_scores(embeddings, trials.first, trials.second),
                                           trials.target)
        if system.threshold is not None:
            # verify's threshold for each trial: the narrowband one when its probe (second clip) is narrowband.
            narrow = system.narrowband([prepared[system.name][i] for i in index])
            result["narrowband_clips"] = int(narrow.sum())
            probe_narrow = narrow[trials.second]
            thresholds = system.thresholds(probe_narrow, 1)  # one recording against one
            result["1v1_at_threshold"] = rates_at(scores, trials.target, thresholds, probe_narrow)
            # The breakdown of score - threshold at 0 is the breakdown at each trial's own threshold.
            errors = error_breakdown(scores - thresholds, trials, speakers, 0.0, top=1)
            result["1v1_errors"] = {**errors, "threshold": float(system.thresholds(np.zeros(1, bool), 1)[0])}
        if plan:
            enrolled, target = enrolled_scores(system.scorer, embeddings, speakers, plan)
            result["enrolled"] = summary(enrolled, target, args.boot)
            result["enrolled_oracle"] = oracle_rates(enrolled, target)
            if system.uses_asnorm:
                result["enrolled_cosine"] = summary(*enrolled_scores(cosine, embeddings, speakers, plan))
            if system.threshold is not None:
                enrolled_narrow = narrow[plan_trials(plan, np.arange(len(speakers)))[1]]
                result["enrolled_at_threshold"] = rates_at(
                    enrolled, target, system.thresholds(enrolled_narrow, N_ENROLL), enrolled_narrow)
                result["by_enrolment"] = enrolment_rates(system, embeddings, speakers, narrow)
            for seconds, (sources, per_system) in cuts.items():
                if sources.size == 0:
                    result[f"probe_{seconds}"] = None
                    continue
                probes = system.embed(per_system[system.name])
                result[f"probe_{seconds}"] = summary(*enrolled_scores(system.scorer, embeddings, speakers, plan,
                                                                      probes, sources))
        out["systems"][system.name] = result
    return out


# ------------------------------------------------------------------------------------------------ report


def pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}"


def eer_cell(result: dict | None) -> str:
    if result is None:
        return "n/a"
    ci = result.get("eer_ci")
    return pct(result["eer"]) + (f" ({pct(ci[0], 1)}-{pct(ci[1], 1)})" if ci else "")


def probe_cell(result: dict | None, n_probes: int) -> str:
    if result is None or n_probes < MIN_PROBES:
        return "n/a" if n_probes == 0 else f"n/a [n={n_probes}]"
    return eer_cell(result) + (f" [n={n_probes}]" if n_probes < FEW_PROBES else "")


def row_name(system: System) -> str:
    """A system's row: dlsp models say which score they use (the others score by cosine)."""
    if system.kind != "dlsp":
        return system.name
    return f"{system.name}: {'AS-norm' if system.uses_asnorm else 'cosine'}"


def report(results: dict, systems: list[System], corpora: list[Corpus]) -> str:
    from dlsp.report.tables import format_table
    from dlsp.speaker.scoring import NARROWBAND_BELOW_HZ

    shorts = [c.short for c in corpora if results["corpora"][c.short]["systems"]]
    labels = [results["corpora"][s]["label"] for s in shorts]
    get = {(s.name, c): results["corpora"][c]["systems"][s.name] for s in systems for c in shorts}
    dlsp = [s for s in systems if s.kind == "dlsp"]
    lines = ["Speaker verification on held-out speakers (issue 22). Scores: each dlsp model's own scoring "
             "(AS-norm when its file has a cohort, else cosine); Resemblyzer and the baseline: cosine. "
             "Percentages; 95% bootstrap intervals in brackets (trials resampled as if independent, so too "
             "narrow).", "",
             "Corpora (speakers never trained on): speechocean762 = SPEECHOCEAN_HELD_OUT, 16 speakers (4 boys, "
             "4 girls, 4 men, 4 women) x 10 read sentences of 2-8 s; Arabic SC = the 6 validation speakers of "
             "Arabic Speech Commands, 1 s keywords; FSDD = nicolas and theo, spoken digits at 8 kHz upsampled to "
             "16 kHz. The shipped model's recipe selects its epochs and sets its thresholds on the "
             "speechocean762 and Arabic groups (rates there are measured on the speakers that set them); FSDD is "
             "never used in training or selection.", ""]
    for s in systems:
        info = results["systems"][s.name]
        if s.kind == "dlsp":
            how = (f"AS-norm against a cohort of {info['cohort_size']} training-speaker embeddings "
                   f"(top {info['top_k']})" if s.uses_asnorm else "raw cosine (the model file stores no cohort)")
            lines.append(f"- {s.name}: {s.path} ({info['size_bytes'] / 2**20:.2f} MB, model id {info['model_id']}), "
                         f"scores by {how}; verify accepts score >= {s.threshold:.3f}; cosine threshold "
                         f"{info['cosine_threshold']:.3f}; validation EER {pct(info['val_eer'])} %; windows "
                         f"{info['window_seconds']:g} s every {info['hop_seconds']:g} s.")
        else:
            lines.append(f"- {s.name}: cosine.")
    lines.append("")

    def table(title: str, headers: list[str], rows: list[list]) -> None:
        lines.extend([f"### {title}", "", format_table(headers, rows, markdown=True), ""])

    def eer_rows(key: str) -> list[list]:
        rows = []
        for s in systems:
            rows.append([row_name(s), *(eer_cell(get[s.name, c].get(key)) for c in shorts)])
            if s.uses_asnorm:
                rows.append([f"{s.name}: raw cosine", *(eer_cell(get[s.name, c].get(f"{key}_cosine"))
                                                        for c in shorts)])
        return rows

    table("EER %, 1 vs 1 (targets: <= 3 % on speechocean762; <= Resemblyzer's on Arabic)",
          ["system", *labels], eer_rows("1v1"))
    table(f"EER %, enrolled {N_ENROLL} vs 1 (target: <= 2 % on speechocean762)", ["system", *labels],
          eer_rows("enrolled"))
    dcf_rows = []
    for s in systems:
        for suffix, name in (("", row_name(s)), *((("_cosine", f"{s.name}: raw cosine"),) if s.uses_asnorm
                                                   else ())):
            cells = []
            for c in shorts:
                for key in ("1v1", "enrolled"):
                    r = get[s.name, c].get(key + suffix)
                    cells.append("n/a" if r is None else f"{r['min_dcf']:.3f}")
            dcf_rows.append([name, *cells])
    table("minDCF (p_target 0.01), 1 vs 1 and enrolled 3", ["system", *(f"{lab}, {k}" for lab in labels
                                                                       for k in ("1v1", "enr. 3"))], dcf_rows)
    rate_rows = []
    for s in dlsp:
        # The thresholds of the 1 vs 1 and enrolled-3 columns, by the size they were set on (once when both
        # columns pick the same size); None: the model's one threshold.
        picked: dict = {}
        for chosen in (s.scorer.for_enrolment(n) for n in (1, N_ENROLL)) if s.scorer.by_enrolment else ():
            picked.setdefault(chosen.enrolled, chosen)
        rules, promises = [], []
        for n, scorer in (picked or {None: s.scorer}).items():
            said = "" if n is None else f"set on models of {n}: "
            narrow = scorer.narrow
            rules.append(f"{said}{scorer.kind} >= {scorer.threshold:.3f}"
                         + ("" if narrow is None else f", narrowband >= {narrow.threshold:.3f}"))
            if scorer.table is not None:
                promises.append(f"{said}{pct(scorer.table.far_at(scorer.threshold))} / "
                                f"{pct(scorer.table.frr_at(scorer.threshold))}"
                                + ("" if narrow is None or narrow.table is None else
                                   f", narrowband {pct(narrow.table.far_at(narrow.threshold))} / "
                                   f"{pct(narrow.table.frr_at(narrow.threshold))}"))
        cells = ["; ".join(rules), "; ".join(promises) or "-"]
        for c in shorts:
            for key in ("1v1_at_threshold", "enrolled_at_threshold"):
                r = get[s.name, c].get(key)
                cells.append("n/a" if r is None else f"{pct(r['far'])} / {pct(r['frr'])}")
        rate_rows.append([s.name, *cells])
    table(f"FAR % / FRR % at the shipped threshold (target on every corpus: FAR <= {pct(MAX_FAR, 0)} %, "
          f"FRR <= {pct(MAX_FRR, 0)} %)", ["system", "verify accepts", "validation table says",
                                          *(f"{lab}, {k}" for lab in labels for k in ("1v1", "enr. 3"))],
          rate_rows)
    table(f"FAR % / FRR % at the lowest threshold accepting at most {pct(MAX_FAR, 0)} % of these trials' impostors "
          f"(set on the test trials themselves: any threshold holding FAR <= {pct(MAX_FAR, 0)} % here rejects at "
          f"least this many, so above {pct(MAX_FRR, 0)} % the FRR target is beyond the encoder, not its "
          "calibration)", ["system", *(f"{lab}, {k}" for lab in labels for k in ("1v1", "enr. 3"))],
          [[row_name(s), *("n/a" if (r := get[s.name, c].get(key)) is None else f"{pct(r['far'])} / {pct(r['frr'])}"
                           for c in shorts for key in ("1v1_oracle", "enrolled_oracle"))] for s in systems])
    size_rows = []
    for s in dlsp:
        for c, lab in zip(shorts, labels, strict=True):
            by_size = get[s.name, c].get("by_enrolment") or {}
            size_rows.append([s.name, lab, *("n/a" if by_size.get(str(n)) is None else
                                             f"{pct(by_size[str(n)]['far'], 1)} / {pct(by_size[str(n)]['frr'], 1)}"
                                             for n in ENROLL_SIZES)])
    table("FAR % / FRR % at the shipped threshold by enrolment size (speaker models of n recordings against one; "
          "verify's threshold for that size: from the model's thresholds by enrolment size, score.enroll_sizes, "
          "where it has them, else the one set on models of score.enroll_clips)",
          ["system", "corpus", *(f"enrolled {n}" for n in ENROLL_SIZES)], size_rows)
    narrow_counts = []
    for s in dlsp:
        narrow = results["systems"][s.name]["narrow"]
        counts_of = ", ".join(f"{results['corpora'][c]['label']} {get[s.name, c].get('narrowband_clips', 0)} of "
                              f"{results['corpora'][c]['n_clips']}" for c in shorts)
        how = (f"below {narrow['below_hz'] / 1000:g} kHz, judged at the narrowband threshold" if narrow else
               f"below {NARROWBAND_BELOW_HZ / 1000:g} kHz; the file has no narrowband threshold")
        narrow_counts.append(f"{s.name}: {counts_of} ({how})")
    if narrow_counts:
        lines.extend(["Narrowband clips (the probe of a trial is its second clip, the recording scored against an "
                      "enrolled model): " + "; ".join(narrow_counts) + ".", ""])
    counts = "; ".join(f"{results['corpora'][c]['label']}: " + ", ".join(
        f"{d:g} s {results['corpora'][c]['probes'][str(d)]}" for d in DURATIONS) for c in shorts)
    table(f"EER % by probe duration, enrolled {N_ENROLL} (whole recordings) vs 1 probe cut to that length",
          ["system", *(f"{lab}, {d:g} s" for lab in labels for d in DURATIONS)],
          [[row_name(s), *(probe_cell(get[s.name, c].get(f"probe_{d}"), results["corpora"][c]["probes"][str(d)])
                           for c in shorts for d in DURATIONS)] for s in systems])
    lines.extend([f"Probe recordings per duration: {counts}. n/a: fewer than {MIN_PROBES} recordings that long; "
                  f"[n=..]: fewer than {FEW_PROBES}, so the EER rests on a handful of probes.", ""])
    speed_rows = []
    for s in systems:
        info = results["systems"][s.name]
        size = info.get("size_bytes")
        speed_rows.append([s.name, f"{info['throughput']:.1f}",
                           "-" if size is None else f"{size / 2**20:.2f}"])
    table(f"Speed and size (targets: >= {MIN_THROUGHPUT:.0f} utt/s, <= {MAX_BYTES / 2**20:.0f} MB)",
          ["system", "utterances/s (1 thread, 1 s clips)", "model file MB"], speed_rows)
    refusal_rows = [["decoder check (all systems: under 0.3 s or silence)",
                     *(f"{results['corpora'][c]['n_refused_decoding']} / {results['corpora'][c]['n_files']}"
                       for c in shorts)]]
    refusal_rows += [[f"{s.name}: no voice", *(f"{results['corpora'][c]['refused_by_system'][s.name]}"
                                                for c in shorts)] for s in dlsp]
    refusal_rows.append(["clips scored (every system)", *(
        f"{results['corpora'][c]['n_clips']} of {results['corpora'][c]['n_speakers']} speakers" for c in shorts)])
    table("Refused clips (refused by any system: left out for all)", ["", *labels], refusal_rows)
    diag_rows = []
    for s in dlsp:
        for c, lab in zip(shorts, labels, strict=True):
            errors = get[s.name, c].get("1v1_errors")
            if not errors:
                continue
            pair, missed = errors["confused_pairs"][0], errors["missed_speakers"][0]
            diag_rows.append([s.name, lab, " ~ ".join(n.rsplit("/", 1)[-1] for n in pair["speakers"]),
                              pct(pair["false_accept"], 1), missed["speaker"].rsplit("/", 1)[-1],
                              pct(missed["false_reject"], 1)])
    if diag_rows:
        table("Where the errors at the shipped threshold come from (1 vs 1; a diagnosis, not a result)",
              ["system", "corpus", "pair accepted most", "its trials accepted %", "speaker rejected most",
               "its trials rejected %"], diag_rows)
    # A corpus whose speakers have too few recordings for enrolled-3 models (a --max-per-speaker run) has none.
    trial_counts = "; ".join(
        f"{results['corpora'][c]['label']}: 1v1 {r['n_target']} target / {r['n_nontarget']} non-target, " + (
            f"enrolled {e['n_target']} / {e['n_nontarget']}" if (e := get[systems[0].name, c].get("enrolled"))
            else "no enrolled trials")
        for c in shorts if (r := get[systems[0].name, c]["1v1"]))
    lines.extend([f"Trials: {trial_counts}.", ""])
    lines.extend(verdicts(results, dlsp, systems, shorts))
    return "\n".join(lines)


def verdicts(results: dict, dlsp: list[System], systems: list[System], shorts: list[str]) -> list[str]:
    """PASS/FAIL of issue 22's targets for each dlsp model."""
    corpora = results["corpora"]
    peer = next((s for s in systems if s.kind == "peer"), None)

    def eer_of(name: str, corpus: str, key: str) -> float | None:
        if corpus not in shorts:
            return None
        r = corpora[corpus]["systems"][name].get(key)
        return None if r is None else r["eer"]

    def verdict(ok: bool | None) -> str:
        return "n/a " if ok is None else ("PASS" if ok else "FAIL")

    lines = ["### Issue 22 targets", ""]
    for s in dlsp:
        checks = []
        value = eer_of(s.name, "speechocean762", "1v1")
        checks.append((None if value is None else value <= EER_1V1_SPEECHOCEAN,
                       f"EER 1v1 speechocean762 {pct(value)} % <= 3 %"))
        value, peer_value = eer_of(s.name, "arabic", "1v1"), None if peer is None else eer_of(peer.name,
                                                                                              "arabic", "1v1")
        checks.append((None if value is None or peer_value is None else value <= peer_value,
                       f"EER 1v1 Arabic {pct(value)} % <= Resemblyzer's {pct(peer_value)} %"))
        value = eer_of(s.name, "speechocean762", "enrolled")
        checks.append((None if value is None else value <= EER_ENROLLED_SPEECHOCEAN,
                       f"EER enrolled {N_ENROLL} speechocean762 {pct(value)} % <= 2 %"))
        for c in shorts:
            for kind, tag in (("1v1", "1v1"), ("enrolled", f"enrolled {N_ENROLL}")):
                r = corpora[c]["systems"][s.name].get(f"{kind}_at_threshold")
                ok = None if r is None else r["far"] <= MAX_FAR and r["frr"] <= MAX_FRR
                best = corpora[c]["systems"][s.name].get(f"{kind}_oracle")
                checks.append((ok, f"at the shipped threshold, {corpora[c]['label']}, {tag}: FAR "
                                   f"{pct(None if r is None else r['far'])} % <= 5 %, FRR "
                                   f"{pct(None if r is None else r['frr'])} % <= 10 %"
                                   + ("" if best is None else f" (any threshold at FAR <= 5 % on these trials: "
                                                              f"FRR >= {pct(best['frr'])} %)")))
        info = results["systems"][s.name]
        checks.append((info["throughput"] >= MIN_THROUGHPUT, f"{info['throughput']:.0f} utt/s >= 100"))
        checks.append((info["size_bytes"] <= MAX_BYTES, f"model file {info['size_bytes'] / 2**20:.2f} MB <= 10 MB"))
        lines.append(f"{s.name} ({s.path}, scoring {s.scorer.kind}):")
        lines.extend(f"  {verdict(ok)}  {text}" for ok, text in checks)
    return lines


if __name__ == "__main__":
    sys.exit(main())

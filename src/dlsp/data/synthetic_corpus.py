"""dlsp's default data on disk: a deterministic synthetic speech and noise corpus, made here and never downloaded.

Speech comes from `dlsp.audio.synthetic`, noise from `dlsp.audio.noises`. Every file of `make_synthetic_corpus`
draws from its own generator derived from the seed with `numpy.random.SeedSequence`, so a file is the same
whatever else is generated, and the same seed gives byte-identical files.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np

from dlsp.audio.noises import NOISE_KINDS, synth_noise
from dlsp.audio.synthetic import MIN_SAMPLE_RATE, SyntheticSpeaker, make_speakers, synth_utterance
from dlsp.errors import DlspError

README_NAME = "README.txt"
README_TITLE = "dlsp synthetic corpus"
# Seed streams of the files; make_speakers (dlsp.audio.synthetic) draws from stream 2.
_SPEECH_STREAM, _NOISE_STREAM = 0, 1


def make_synthetic_corpus(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    n_speakers: int = 8,
    utterances_per_speaker: int = 12,
    utterance_seconds: tuple[float, float] = (1.5, 3.0),
    noise_files_per_kind: int = 2,
    noise_seconds: float = 8.0,
    sample_rate: int = 16000,
    progress: bool = True,
) -> Path:
    """Write the synthetic corpus: `OUT/speech/<speaker>/<speaker>_<nnn>.wav`, `OUT/noise/<kind>_<nn>.wav` and
    `OUT/README.txt` (16-bit PCM wav, mono).

    Each file draws from its own generator, spawned from `seed` by its speaker and number (or noise kind and
    number), so the same seed gives byte-identical files in any order. `out_dir` must be new, empty, or an
    earlier synthetic corpus, which is overwritten (its files that the new corpus lacks are removed).
    Everything is checked before anything is written.

    Returns:
        `out_dir` as a Path.
    """
    from dlsp.audio.io import save_audio
    from dlsp.fileio import ensure_dir, write_text
    from dlsp.progress import progress_bar

    out = Path(out_dir)
    _check_corpus_args(seed, n_speakers, utterances_per_speaker, utterance_seconds, noise_files_per_kind,
                       noise_seconds, sample_rate)
    _check_target(out)
    speakers = make_speakers(n_speakers, seed)
    jobs = _corpus_jobs(speakers, seed, utterances_per_speaker, utterance_seconds, noise_files_per_kind,
                        noise_seconds)
    ensure_dir(out)
    # The README goes first: it marks the folder as ours, so a re-run after an interruption may overwrite it.
    settings = {"seed": seed, "utterances": utterances_per_speaker, "noise_files": noise_files_per_kind,
                "utterance_seconds": tuple(utterance_seconds), "noise_seconds": noise_seconds,
                "sample_rate": sample_rate}
    write_text(out / README_NAME, _readme(speakers, jobs, settings))
    for relative, source, seconds, rng in progress_bar(jobs, desc="synthesizing", unit="file", disable=not progress,
                                                       file=sys.stderr, leave=False):
        audio = (synth_utterance(source, seconds, sample_rate, rng) if isinstance(source, SyntheticSpeaker)
                 else synth_noise(source, seconds, sample_rate, rng))
        save_audio(out / relative, audio, sample_rate, subtype="PCM_16", on_clip="error")
    _remove_stale(out, {relative for relative, *_ in jobs})
    return out


def is_synthetic_corpus(path: str | os.PathLike[str]) -> bool:
    """True when `path` is a folder holding a README written by `make_synthetic_corpus`."""
    readme = Path(path) / README_NAME
    try:
        with open(readme, encoding="utf-8") as handle:
            return handle.readline(200).strip() == README_TITLE
    except (OSError, UnicodeDecodeError):
        return False


def _check_corpus_args(seed: int, n_speakers: int, utterances: int, utterance_seconds: tuple[float, float],
                       noise_files: int, noise_seconds: float, sample_rate: int) -> None:
    problems = [
        (seed < 0, f"seed must be a non-negative integer, got {seed}"),
        (n_speakers < 1, f"need at least one speaker, got {n_speakers}"),
        (utterances < 1, f"need at least one utterance per speaker, got {utterances}"),
        (not 0 < utterance_seconds[0] <= utterance_seconds[1] < 3600,
         f"utterance seconds must be 0 < low <= high, got {utterance_seconds[0]}-{utterance_seconds[1]}"),
        (noise_files < 0, f"noise files per kind must be 0 or more, got {noise_files}"),
        (not 0 < noise_seconds < 3600, f"noise seconds must be positive and under 3600, got {noise_seconds}"),
        (not MIN_SAMPLE_RATE <= sample_rate <= 192000,
         f"sample rate must be {MIN_SAMPLE_RATE}-192000 Hz, got {sample_rate}"),
    ]
    for failed, message in problems:
        if failed:
            raise DlspError(message)


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DlspError("exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()) and not is_synthetic_corpus(out):
        raise DlspError("folder is not empty and is not a synthetic corpus from 'dlsp data synth'; "
                        "choose a new or empty folder", out)


def _corpus_jobs(speakers: list[SyntheticSpeaker], seed: int, utterances: int,
                 utterance_seconds: tuple[float, float], noise_files: int,
                 noise_seconds: float) -> list[tuple]:
    """`(relative path, speaker or noise kind, seconds, generator)` for every file, the generator already used
    for the duration only."""
    jobs = []
    width = max(3, len(str(utterances - 1)))
    for s, speaker in enumerate(speakers):
        for u in range(utterances):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SPEECH_STREAM, s, u)))
            seconds = round(float(rng.uniform(*utterance_seconds)), 3)
            jobs.append((f"speech/{speaker.name}/{speaker.name}_{u:0{width}d}.wav", speaker, seconds, rng))
    width = max(2, len(str(noise_files - 1)))
    for k, kind in enumerate(NOISE_KINDS):
        for u in range(noise_files):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_NOISE_STREAM, k, u)))
            jobs.append((f"noise/{kind}_{u:0{width}d}.wav", kind, float(noise_seconds), rng))
    return jobs


def _readme(speakers: list[SyntheticSpeaker], jobs: list[tuple], settings: dict) -> str:
    from dlsp import __version__

    speech_minutes = sum(job[2] for job in jobs if isinstance(job[1], SyntheticSpeaker)) / 60
    noise_count = settings["noise_files"] * len(NOISE_KINDS)
    low, high = settings["utterance_seconds"]
    command = (f"dlsp data synth --out DIR --seed {settings['seed']} --speakers {len(speakers)} "
               f"--utterances {settings['utterances']} --sr {settings['sample_rate']} "
               f"--noise-seconds {settings['noise_seconds']:g}")
    lines = [
        README_TITLE,
        "",
        f"Made by `dlsp data synth --seed {settings['seed']}` (dlsp {__version__}). Every file was",
        "synthesized by dlsp itself (dlsp.audio.synthetic); nothing here was recorded or downloaded.",
        "The same settings reproduce byte-identical files:",
        f"    {command}",
        *([] if (low, high, settings["noise_files"]) == (1.5, 3.0, 2) else
          [f"    (and in Python utterance_seconds=({low:g}, {high:g}), "
           f"noise_files_per_kind={settings['noise_files']})"]),
        "",
        f"All files: mono, {settings['sample_rate']} Hz, 16-bit PCM wav.",
        "",
        f"speech/<speaker>/<speaker>_<nnn>.wav: {len(speakers)} speakers x {settings['utterances']} "
        f"utterances of {low:g}-{high:g} s ({speech_minutes:.1f} minutes).",
        "  Source-filter speech: a Rosenberg glottal pulse train with a declining, accented pitch contour,",
        "  jitter and shimmer; fricatives, plosive bursts, nasals and pauses; five formants moving between",
        "  vowel targets; about 4-5 syllables per second. Each speaker folder is one voice:",
        "    name    f0 range (Hz)   formant scale   breathiness   syllables/s",
        *(f"    {s.name:<7} {s.f0_low:>5.1f}-{s.f0_high:<8.1f} {s.formant_scale:>10.3f} "
          f"{s.breathiness:>13.3f} {s.rate:>13.2f}" for s in speakers),
        "",
        f"noise/<kind>_<nn>.wav: {noise_count} files, {settings['noise_files']} of each kind, "
        f"{settings['noise_seconds']:g} s each ({noise_count * settings['noise_seconds'] / 60:.1f} minutes),",
        "  RMS -26..-20 dBFS. white; pink (1/f); brown (1/f^2, leaky integrator); hum (50 or 60 Hz mains",
        "  and harmonics, drifting); babble (4-8 synthetic talkers who are not among the speakers above);",
        "  machine (steady tones, an engine's harmonic series with a slower beat, broadband noise); clicks",
        "  (impulsive clicks and crackle on a quiet background).",
    ]
    return "\n".join(lines) + "\n"


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Delete files of an earlier synthetic corpus in `out` that this one did not write, and empty folders."""
    from dlsp.fileio import TEMP_PREFIX

    kinds = "|".join(NOISE_KINDS)
    ours = re.compile(rf"^(speech/(spk\d+)/\2_\d+\.wav|noise/({kinds})_\d+\.wav)$")
    for path in [*out.glob("speech/*/*"), *out.glob("noise/*")]:
        relative = path.relative_to(out).as_posix()
        stale = relative not in keep and (ours.match(relative) or path.name.startswith(TEMP_PREFIX))
        if stale and path.is_file():
            path.unlink()
    for folder in [*out.glob("speech/*"), out / "speech", out / "noise"]:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()

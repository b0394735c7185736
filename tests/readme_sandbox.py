"""A tiny synthetic data tree and working folder in which README.md's example commands can run as written.

`build_data(root)` lays out what `$DLSP_DATA` holds in the README's examples, in each corpus's real layout but a
few hundred short files in all; `build_workdir(cwd)` writes the files the examples name relative to the working
folder (`speech/`, `noise/`, `recordings/`, `alice_1.wav`, `clip.wav`...). Everything is synthetic and seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlsp.audio.io import save_audio
from dlsp.audio.noises import synth_noise
from dlsp.audio.synthetic import make_speakers, synth_utterance
from dlsp.data.image_files import write_idx
from dlsp.data.index import ARABIC_TRAIN_SPEAKERS, ARABIC_VAL_SPEAKERS
from dlsp.data.synthetic_corpus import make_synthetic_corpus

FSDD_SPEAKERS = ("jackson", "nicolas", "theo")
FSDD_TAKES = 8  # takes 0-4 are FSDD's official test split, 5-7 train
ARABIC_KEYWORDS = ("backward", "forward", "yes")
ARABIC_TAKES = 2
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _save(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    save_audio(path, audio, sample_rate, subtype="PCM_16", on_clip="error")


def build_fsdd(folder: Path) -> None:
    """`<digit>_<speaker>_<take>.wav` at 8 kHz, 0.4 s each; a digit is a fixed seeded utterance per speaker."""
    speakers = make_speakers(len(FSDD_SPEAKERS), seed=3)
    for speaker, voice in zip(FSDD_SPEAKERS, speakers, strict=True):
        for digit in range(10):
            for take in range(FSDD_TAKES):
                # The digit fixes the utterance plan (same seed), the take adds a little noise: learnable classes.
                audio = synth_utterance(voice, 0.4, 8000, rng=digit)
                audio += np.random.default_rng(take).standard_normal(audio.size).astype(np.float32) * 1e-3
                _save(folder / f"{digit}_{speaker}_{take}.wav", audio, 8000)


def build_arabic_commands(folder: Path) -> None:
    """`<keyword>/<speaker id>_NO_<take>.wav` at 16 kHz: the six official validation speakers and three train ones."""
    ids = sorted(ARABIC_VAL_SPEAKERS) + sorted(ARABIC_TRAIN_SPEAKERS)[:3]
    voices = make_speakers(len(ids), seed=5)
    for speaker, voice in zip(ids, voices, strict=True):
        for k, keyword in enumerate(ARABIC_KEYWORDS):
            for take in range(1, ARABIC_TAKES + 1):
                audio = synth_utterance(voice, 1.0, 16000, rng=100 * k + take)
                _save(folder / keyword / f"{speaker}_NO_{take}.wav", audio, 16000)


def _class_images(rng: np.random.Generator, n: int, side: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` uint8 images (n, side, side) of `classes` fixed random templates plus noise, and their labels."""
    templates = rng.random((classes, side, side))
    labels = np.arange(n) % classes
    images = 0.7 * templates[labels] + 0.3 * rng.random((n, side, side))
    return (images * 255).astype(np.uint8), labels.astype(np.uint8)


def build_mnist(folder: Path, n_train: int = 300, n_test: int = 100) -> None:
    """MNIST's four gzipped IDX files with `n_train` and `n_test` 28 x 28 images."""
    rng = np.random.default_rng(7)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images, labels = _class_images(rng, n, 28, 10)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)


def build_cifar10(folder: Path, n_train: int = 12, n_test: int = 4) -> None:
    """`train/<class>/*.jpg` and `test/<class>/*.jpg`, 32 x 32 RGB."""
    from PIL import Image

    rng = np.random.default_rng(11)
    templates = rng.random((len(CIFAR_CLASSES), 32, 32, 3))
    for split, n in (("train", n_train), ("test", n_test)):
        for c, name in enumerate(CIFAR_CLASSES):
            (folder / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                image = (0.7 * templates[c] + 0.3 * rng.random((32, 32, 3))) * 255
                Image.fromarray(image.astype(np.uint8)).save(folder / split / name / f"{i:04d}.jpg", quality=90)


def build_data(root: Path) -> Path:
    """The `$DLSP_DATA` tree of the README's examples under `root`; returns `root`."""
    build_fsdd(root / "speech" / "fsdd")
    build_arabic_commands(root / "speech" / "arabic_commands")
    build_mnist(root / "images" / "mnist")
    build_cifar10(root / "images" / "cifar10")
    return root


def build_workdir(cwd: Path) -> Path:
    """The files the README's examples name relative to the working folder; returns `cwd`."""
    corpus = cwd / "_corpus"
    make_synthetic_corpus(corpus, seed=0, n_speakers=4, utterances_per_speaker=4, utterance_seconds=(2.0, 3.0),
                          noise_files_per_kind=1, noise_seconds=6.0, progress=False)
    (corpus / "speech").rename(cwd / "speech")
    (corpus / "noise").rename(cwd / "noise")
    voices = make_speakers(3, seed=9)
    for i in range(2):
        speech = synth_utterance(voices[1], 3.0, 16000, rng=40 + i)
        noise = synth_noise("pink", 3.0, 16000, rng=50 + i)
        _save(cwd / "recordings" / f"take_{i}.wav", 0.7 * speech + 0.1 * noise, 16000)
    _save(cwd / "alice_1.wav", synth_utterance(voices[0], 2.0, 16000, rng=1), 16000)
    _save(cwd / "alice_2.wav", synth_utterance(voices[0], 2.0, 16000, rng=2), 16000)
    _save(cwd / "unknown.wav", synth_utterance(voices[2], 2.0, 16000, rng=3), 16000)
    _save(cwd / "clip.wav", synth_utterance(make_speakers(3, seed=3)[0], 0.4, 8000, rng=4), 8000)
    return cwd

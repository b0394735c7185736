"""Embedding recordings with a speaker encoder: any file in, one unit-length vector per recording out.

Files are decoded, downmixed and resampled to the model's rate, checked (at least 0.3 s, not silence), trimmed
of leading and trailing silence as in training, and embedded whole (the GRU takes any length). Clips of equal
length are embedded in one batch; otherwise one at a time, so a clip's embedding never depends on its
neighbours.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from dlsp.device import resolve_device
from dlsp.speaker.audio import check_speech, load_speech, trim_silence
from dlsp.speaker.model_file import SpeakerModel, load_speaker_model

BATCH = 64


class SpeakerEmbedder:
    """A speaker encoder ready to embed audio on a device."""

    def __init__(self, loaded: SpeakerModel, device: str = "auto") -> None:
        self.loaded = loaded
        self.device = resolve_device(device)
        self.model = loaded.model.to(self.device).eval()
        self.sample_rate = loaded.sample_rate

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None = None, device: str = "auto") -> SpeakerEmbedder:
        """Load a model file (`None`: the default encoder shipped with dlsp)."""
        return cls(load_speaker_model(path), device)

    @property
    def embedding_dim(self) -> int:
        return self.loaded.embedding_dim

    def prepare(self, audio: np.ndarray, sample_rate: int, path: str | os.PathLike[str] | None = None
                ) -> np.ndarray:
        """Mono audio at the model's rate, checked and trimmed, ready for `embed_prepared`."""
        from dlsp.audio.io import resample, to_mono

        audio = resample(to_mono(np.asarray(audio, dtype=np.float32)), sample_rate, self.sample_rate)
        check_speech(audio, self.sample_rate, path)
        return self.trim(audio)

    def trim(self, audio: np.ndarray) -> np.ndarray:
        trimmed = trim_silence(audio, self.sample_rate, self.loaded.trim_db)
        if trimmed.size < self.model.min_samples:  # keep enough for one STFT frame
            return audio
        return trimmed

    def load(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Decode, check and trim one file."""
        return self.trim(load_speech(path, self.sample_rate))

    @torch.no_grad()
    def embed_prepared(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings `(N, dim)` of clips already at the model's rate and trimmed."""
        out = np.empty((len(clips), self.embedding_dim), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        for i, clip in enumerate(clips):
            groups.setdefault(int(clip.shape[-1]), []).append(i)
        for indices in groups.values():
            for start in range(0, len(indices), BATCH):
                chosen = indices[start:start + BATCH]
                batch = torch.from_numpy(np.stack([clips[i] for i in chosen])).to(self.device)
                out[chosen] = self.model(batch).cpu().numpy()
        return out

    def embed_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Embedding `(dim,)` of one recording at any rate (mono or `(channels, time)`)."""
        return self.embed_prepared([self.prepare(audio, sample_rate)])[0]

    def embed_files(self, paths: Sequence[str | os.PathLike[str]], progress: bool = False) -> np.ndarray:
        """Embeddings `(N, dim)` of audio files, in order. Any bad file stops with its name."""
        from tqdm.auto import tqdm

        clips = [self.load(p) for p in tqdm(paths, desc="loading", unit="file", disable=not progress, leave=False)]
        return self.embed_prepared(clips)


def cosine_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching rows of `a` and `b` `(N, dim)`; rows need not be unit length."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=-1)

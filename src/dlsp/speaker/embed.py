"""Embedding recordings with a speaker encoder: any file in, one unit-length vector per recording out.

Files are decoded, downmixed and resampled to the model's rate, checked (at least 0.3 s, not silence), trimmed
of leading and trailing silence as in training, and checked to vary in level like speech (not a steady noise or
hum; `dlsp.speaker.audio.check_voice`). A recording up to the model's window (3 s unless the model file says
otherwise) is embedded whole; a longer one as windows of that length every hop (1.5 s), the last window ending
at the recording's end, and its embedding is the mean of the window embeddings scaled to unit length. The
windows keep a long recording as close to what the model trained on (crops of 1-4 s) as a short one, and
averaging many views of a voice steadies its embedding. Pieces of equal length are embedded in one batch;
otherwise one at a time, so a clip's embedding never depends on its neighbours (beyond float rounding).

A probe's effective bandwidth (`bandwidth`, `load_probe`, `embed_probe`), which picks a model's narrowband threshold
(`dlsp.speaker.scoring`), is measured on exactly the audio that is embedded: at the model's rate, after silence
trimming, so the pauses around the voice (room hiss, a different channel) do not decide it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from dlsp.device import resolve_device
from dlsp.speaker.audio import check_speech, check_voice, load_speech, trim_silence
from dlsp.speaker.model_file import SpeakerModel, load_speaker_model

BATCH = 64


class SpeakerEmbedder:
    """A speaker encoder ready to embed audio on a device."""

    def __init__(self, loaded: SpeakerModel, device: str = "auto") -> None:
        self.loaded = loaded
        self.device = resolve_device(device)
        self.model = loaded.model.to(self.device).eval()
        self.sample_rate = loaded.sample_rate
        self.window = round(loaded.window_seconds * loaded.sample_rate)
        self.hop = round(loaded.hop_seconds * loaded.sample_rate)

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
        return self.voice(audio, path)

    def voice(self, audio: np.ndarray, path: str | os.PathLike[str] | None = None) -> np.ndarray:
        """Trimmed audio, refused (naming `path`) when it is a steady sound rather than a voice."""
        trimmed = self.trim(audio)
        check_voice(trimmed, self.sample_rate, path)
        return trimmed

    def trim(self, audio: np.ndarray) -> np.ndarray:
        trimmed = trim_silence(audio, self.sample_rate, self.loaded.trim_db)
        if trimmed.size < self.model.min_samples:  # keep enough for one STFT frame
            return audio
        return trimmed

    def load(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Decode, check and trim one file."""
        return self.voice(load_speech(path, self.sample_rate), path)

    def bandwidth(self, prepared: np.ndarray) -> float:
        """Effective bandwidth in Hz of a prepared clip (`dlsp.audio.bandwidth.effective_bandwidth`)."""
        from dlsp.audio.bandwidth import effective_bandwidth

        return effective_bandwidth(prepared, self.sample_rate)

    def load_probe(self, path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
        """One file decoded, checked and trimmed as `load` does (embed it with `embed_prepared`, which is what
        `embed_files` does), and its effective bandwidth in Hz."""
        clip = self.load(path)
        return clip, self.bandwidth(clip)

    def embed_probe(self, path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
        """The embedding `(dim,)` of one file, as `embed_files` gives it, and its effective bandwidth in Hz (which
        picks the model's threshold: `Scorer.threshold_for`)."""
        clip, bandwidth = self.load_probe(path)
        return self.embed_prepared([clip])[0], bandwidth

    def embed_prepared(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings `(N, dim)` of clips already at the model's rate and trimmed (windowed when long)."""
        return embed_windows(self.model, clips, self.device, self.window, self.hop)

    def embed_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Embedding `(dim,)` of one recording at any rate (mono or `(channels, time)`)."""
        return self.embed_prepared([self.prepare(audio, sample_rate)])[0]

    def embed_files(self, paths: Sequence[str | os.PathLike[str]], progress: bool = False) -> np.ndarray:
        """Embeddings `(N, dim)` of audio files, in order. Any bad file stops with its name."""
        from dlsp.progress import progress_bar

        files = progress_bar(paths, desc="loading", unit="file", disable=not progress, leave=False)
        clips = [self.load(p) for p in files]
        return self.embed_prepared(clips)


def window_spans(length: int, window: int, hop: int) -> list[tuple[int, int]]:
    """`(start, stop)` of the windows a recording of `length` samples is embedded over: the whole recording
    when it fits one window (or `window` is 0), else windows every `hop`, plus one ending at the end."""
    if window <= 0 or length <= window:
        return [(0, length)]
    starts = list(range(0, length - window + 1, max(1, hop)))
    if starts[-1] + window < length:
        starts.append(length - window)
    return [(start, start + window) for start in starts]


@torch.no_grad()
def embed_windows(model: torch.nn.Module, clips: Sequence[np.ndarray], device: torch.device, window: int = 0,
                  hop: int = 0) -> np.ndarray:
    """Unit embeddings `(N, dim)` of clips `(time,)`: each the normalised mean of its windows' embeddings
    (`window_spans`; `window` 0: whole clips). Pieces shorter than the model's shortest input are repeated to
    fill it; pieces of equal length share batches of `BATCH`."""
    model.eval()
    minimum = int(model.min_samples)
    pieces, owner = [], []
    for i, clip in enumerate(clips):
        clip = np.asarray(clip, dtype=np.float32)
        if clip.size < minimum:
            clip = np.tile(clip, -(-minimum // max(1, clip.size)))
        for start, stop in window_spans(clip.shape[-1], window, hop):
            pieces.append(clip[start:stop])
            owner.append(i)
    rows = np.empty((len(pieces), int(model.embedding_dim)), dtype=np.float32)
    groups: dict[int, list[int]] = {}
    for i, piece in enumerate(pieces):
        groups.setdefault(int(piece.shape[-1]), []).append(i)
    for indices in groups.values():
        for start in range(0, len(indices), BATCH):
            chosen = indices[start:start + BATCH]
            batch = torch.from_numpy(np.stack([pieces[i] for i in chosen])).to(device)
            rows[chosen] = model(batch).cpu().numpy()
    owner_array = np.asarray(owner, dtype=np.int64)
    out = np.empty((len(clips), rows.shape[1]), dtype=np.float32)
    for i in range(len(clips)):
        own = rows[owner_array == i]
        out[i] = own[0] if len(own) == 1 else _unit(own.mean(axis=0))
    return out


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def cosine_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching rows of `a` and `b` `(N, dim)`; rows need not be unit length."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=-1)

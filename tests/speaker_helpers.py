"""A tiny speaker encoder overfit on three synthetic speakers, shared by the speaker CLI tests."""

from __future__ import annotations

import numpy as np
import torch

from dlsp.audio.synthetic import make_speakers, synth_utterance
from dlsp.models.speaker import SpeakerEncoder
from dlsp.speaker.data import SegmentSampler, SpeakerClips, SpeakerDataConfig
from dlsp.speaker.objectives import AmSoftmaxLoss, EncoderWithLoss
from dlsp.speaker.train import make_step
from dlsp.train.loop import fit

SR = 8000
N_SPEAKERS, TAKES = 3, 6


def overfit_encoder() -> tuple[SpeakerEncoder, list, list[np.ndarray], np.ndarray]:
    """`(encoder, speakers, audio, labels)`: `TAKES` 0.8 s utterances at `SR` of each of `N_SPEAKERS` synthetic
    voices (speaker-major order), and an encoder trained on them until it separates them."""
    torch.set_num_threads(1)  # module fixtures run before conftest's per-test thread limit
    speakers = make_speakers(N_SPEAKERS, seed=8)
    audio = [synth_utterance(s, 0.8, SR, rng=1000 * i + j) for i, s in enumerate(speakers) for j in range(TAKES)]
    labels = np.repeat(np.arange(N_SPEAKERS), TAKES)
    clips = SpeakerClips(audio, labels, [s.name for s in speakers])
    torch.manual_seed(0)
    encoder = SpeakerEncoder(sample_rate=SR, features="logmel", n_mels=20, n_fft=256, hop_length=128, hidden=24,
                             embedding_dim=8)
    sampler = SegmentSampler(clips, SpeakerDataConfig(sample_rate=SR, segment_seconds=0.5))
    encoder.fit_normalizer(torch.from_numpy(np.stack([sampler.cut(i, np.random.default_rng(i)) for i in range(9)])))
    wrapped = EncoderWithLoss(encoder, AmSoftmaxLoss(N_SPEAKERS, 8, scale=10.0, margin=0.2))
    fit(wrapped, make_step("amsoftmax", torch.device("cpu")), torch.optim.Adam(wrapped.parameters(), 1e-2),
        lambda e: sampler.class_batches(0, e, 64, 16), epochs=20, progress=False)
    return encoder, speakers, audio, labels

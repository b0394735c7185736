"""Training batches: every training segment once per epoch, reproducible, augmented only when asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlsp.classify.toy import toy_clip, write_toy_dataset
from dlsp.classify.train import BatchMaker, ClassifyConfig, load_data
from dlsp.config import apply_overrides
from dlsp.errors import DlspError

SMALL = ["features.n_fft=256", "features.hop_length=128", "features.n_mels=40", "data.split=clip"]


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    write_toy_dataset(root / "clips", per_class=5)
    rng = np.random.default_rng(0)
    noise_dir = root / "noise"
    noise_dir.mkdir()
    from dlsp.audio.io import save_audio

    save_audio(noise_dir / "hum.wav", toy_clip("tone", 3.0, 8000, rng), 8000)
    return root


def _batches(data, config, epoch, batch_size=4):
    maker = BatchMaker(data, config, torch.zeros(13, 1))
    return list(maker(epoch, batch_size))


def test_each_epoch_sees_every_training_segment_once_in_a_reproducible_order(toy_root):
    config = apply_overrides(ClassifyConfig(), SMALL)
    data = load_data(config, toy_root / "clips", cache_dir=None, progress=False)
    first, again, other = (_batches(data, config, epoch) for epoch in (0, 0, 1))
    x = torch.cat([b[0] for b in first])
    assert len(x) == len(data.sets["train"])
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(x, torch.cat([b[0] for b in other]))
    # Without augmentation the batches are exactly the cached training features, reordered.
    train_x, _ = data.sets["train"].segments()
    assert torch.equal(torch.sort(x.reshape(len(x), -1), dim=0).values,
                       torch.sort(train_x.reshape(len(x), -1), dim=0).values)


def test_noise_augmentation_mixes_noise_into_training_clips(toy_root):
    plain = apply_overrides(ClassifyConfig(), SMALL)
    noisy = apply_overrides(plain, [f"augment.noise_dir={toy_root / 'noise'}", "augment.noise_prob=1.0",
                                    "augment.snr=0:0"])
    data = load_data(noisy, toy_root / "clips", cache_dir=None, progress=False)
    assert data.waveforms is not None and data.waveforms.shape == (len(data.sets["train"]), 8000)
    clean_x = torch.cat([b[0] for b in _batches(data, plain, 0)])
    noisy_x = torch.cat([b[0] for b in _batches(data, noisy, 0)])
    assert clean_x.shape == noisy_x.shape
    # At 0 dB every clip changes clearly (tens of dB on some coefficients), but stays the same shape of data.
    assert (noisy_x - clean_x).abs().amax(dim=(1, 2)).min() > 1.0


def test_noise_augmentation_needs_a_noise_folder(toy_root):
    config = apply_overrides(ClassifyConfig(), [*SMALL, f"augment.noise_dir={toy_root / 'absent'}"])
    data = load_data(config, toy_root / "clips", cache_dir=None, progress=False)
    with pytest.raises(DlspError, match="noise folder does not exist"):
        BatchMaker(data, config, torch.zeros(13, 1))

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


def test_resumed_run_that_never_improves_returns_the_best_epochs_weights(toy_root, tmp_path):
    """After a resume, the epoch in memory may be a later, worse one: the returned model (and the test scores in
    results.json) must come from best.pt."""
    from dlsp.classify.train import train_run
    from dlsp.train.checkpoint import load_checkpoint

    config = apply_overrides(ClassifyConfig(), [*SMALL, "model.name=mlp", "train.epochs=2", "train.patience=null",
                                                "train.device=cpu", "data.test_fraction=0.25"])
    data = load_data(config, toy_root / "clips", progress=False)
    out = tmp_path / "run"
    train_run(config, data, out, progress=False, log=lambda *a: None)
    best_before = load_checkpoint(out / "best.pt")["state_dict"]
    # Wreck the weights the run resumes from, so the resumed epochs cannot beat the best one on validation.
    state = torch.load(out / "last.pt", weights_only=True)
    torch.manual_seed(0)
    state["model"] = {k: v + 30 * torch.randn_like(v) if v.is_floating_point() else v
                      for k, v in state["model"].items()}
    torch.save(state, out / "last.pt")
    more = apply_overrides(config, ["train.epochs=4"])
    with pytest.warns(UserWarning, match=r"train\.epochs 2 -> 4"):
        model, result, _ = train_run(more, data, out, resume=True, progress=False, log=lambda *a: None)
    assert result.best_epoch < 2
    best = load_checkpoint(out / "best.pt")["state_dict"]
    assert all(torch.equal(best[k], best_before[k]) for k in best)
    state = model.state_dict()
    assert all(torch.equal(state[k].cpu(), best[k]) for k in best)


def test_a_learning_rate_given_on_resuming_takes_effect(toy_root, tmp_path):
    from dlsp.classify.train import train_run

    config = apply_overrides(ClassifyConfig(), [*SMALL, "model.name=mlp", "train.epochs=1", "train.patience=null",
                                                "train.device=cpu", "data.test_fraction=0.25"])
    data = load_data(config, toy_root / "clips", progress=False)
    out = tmp_path / "run"
    train_run(config, data, out, progress=False, log=lambda *a: None)
    before = torch.load(out / "last.pt", weights_only=True)["model"]
    with pytest.warns(UserWarning, match=r"train\.lr 0\.0001 -> 0\.0; train\.epochs 1 -> 2"):
        train_run(apply_overrides(config, ["train.epochs=2", "train.lr=0.0"]), data, out, resume=True,
                  progress=False, log=lambda *a: None)
    after = torch.load(out / "last.pt", weights_only=True)
    # lr 0 from the config: the resumed epoch moves no weight (last.pt's own rate used to come back with its state).
    assert after["optimizer"]["param_groups"][0]["lr"] == 0.0
    assert all(torch.equal(after["model"][k], before[k]) for k in before)

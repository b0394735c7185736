"""dlsp.models.speaker: the bidirectional-GRU speaker encoder."""

from __future__ import annotations

import pytest
import torch

from dlsp.models.speaker import SpeakerEncoder

TINY = dict(n_fft=256, hop_length=128, hidden=16, embedding_dim=8)


@pytest.mark.parametrize("features,pooling", [("stft", "attention"), ("stft", "mean"), ("logmel", "attention")])
def test_embeddings_are_unit_norm_and_deterministic(features, pooling):
    torch.manual_seed(0)
    model = SpeakerEncoder(features=features, pooling=pooling, n_mels=20, **TINY).eval()
    wave = torch.randn(3, 4000)
    with torch.no_grad():
        first, second = model(wave), model(wave)
    assert first.shape == (3, 8)
    torch.testing.assert_close(first.norm(dim=1), torch.ones(3), atol=1e-5, rtol=0)
    assert torch.equal(first, second)


def test_default_is_the_studies_architecture():
    model = SpeakerEncoder()
    assert model.gru.input_size == 513 and model.gru.hidden_size == 256 and model.gru.bidirectional
    assert (model.projection.in_features, model.projection.out_features) == (512, 256)
    assert sum(p.numel() for p in model.parameters()) * 4 < 10 * 2**20  # fits the 10 MB budget


def test_embedding_ignores_recording_gain():
    torch.manual_seed(1)
    model = SpeakerEncoder(**TINY).eval()
    wave = torch.randn(1, 4000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(model(wave), model(wave * 8.0), atol=1e-4, rtol=0)


def test_batch_items_do_not_depend_on_each_other():
    torch.manual_seed(2)
    model = SpeakerEncoder(**TINY).eval()
    waves = torch.randn(4, 3000)
    with torch.no_grad():
        together = model(waves)
        alone = torch.cat([model(w[None]) for w in waves])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_normalizer_fits_standardised_features():
    torch.manual_seed(3)
    model = SpeakerEncoder(**TINY)
    waves = torch.randn(8, 4000) * torch.linspace(0.01, 1, 4000)
    model.fit_normalizer(waves)
    feats = (model.log_features(waves) - model.feature_mean) / model.feature_std
    torch.testing.assert_close(feats.reshape(-1, model.n_inputs).mean(0), torch.zeros(model.n_inputs), atol=1e-4,
                               rtol=0)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="features"):
        SpeakerEncoder(features="mfcc")
    with pytest.raises(ValueError, match="pooling"):
        SpeakerEncoder(pooling="max")


def test_masks_apply_in_training_only():
    torch.manual_seed(4)
    model = SpeakerEncoder(freq_mask=40, time_mask=10, **TINY)
    wave = torch.randn(2, 4000)
    model.eval()
    with torch.no_grad():
        plain = model.frame_outputs(wave)
        assert torch.equal(plain, model.frame_outputs(wave))
        model.train()
        assert not torch.equal(plain, model.frame_outputs(wave))

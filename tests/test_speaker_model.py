"""dlsp.models.speaker: the bidirectional-GRU speaker encoder, its TDNN backbone and ensembles."""

from __future__ import annotations

import math

import pytest
import torch

from dlsp.models.speaker import SpeakerEncoder, change_speed, conv_frontend, conv_output_bands

TINY = dict(n_fft=256, hop_length=128, hidden=16, embedding_dim=8)


@pytest.mark.parametrize("features,pooling", [("stft", "attention"), ("stft", "mean"), ("logmel", "attention"),
                                              ("stft", "stats"), ("logmel", "attention_stats")])
def test_embeddings_are_unit_norm_and_deterministic(features, pooling):
    torch.manual_seed(0)
    model = SpeakerEncoder(features=features, pooling=pooling, n_mels=20, **TINY).eval()
    wave = torch.randn(3, 4000)
    with torch.no_grad():
        first, second = model(wave), model(wave)
    assert first.shape == (3, 8)
    torch.testing.assert_close(first.norm(dim=1), torch.ones(3), atol=1e-5, rtol=0)
    assert torch.equal(first, second)


@pytest.mark.parametrize("bands", [20, 21, 64])
def test_conv_frontend_feeds_the_gru_a_quarter_of_the_bands_per_channel(bands):
    torch.manual_seed(1)
    model = SpeakerEncoder(features="logmel", n_mels=bands, frontend="conv", conv_channels=4, **TINY).eval()
    assert model.gru.input_size == 4 * conv_output_bands(bands) == 4 * math.ceil(bands / 4)
    with torch.no_grad():
        embedding = model(torch.randn(2, 4000))
    assert embedding.shape == (2, 8)
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2), atol=1e-5, rtol=0)


def test_conv_frontend_sees_a_spectral_shape_alike_in_any_band():
    # Shifting the input by 4 bands (the front end's stride) shifts its output maps by one band, away from the edges.
    torch.manual_seed(2)
    frontend = conv_frontend(4).eval()
    shape = torch.zeros(1, 1, 10, 48)
    shape[..., 12:18] = torch.randn(10, 6)
    with torch.no_grad():
        out, moved = frontend(shape), frontend(shape.roll(8, dims=-1))
    torch.testing.assert_close(moved[..., 4:10], out[..., 2:8], atol=1e-6, rtol=0)
    assert out[..., 2:8].abs().sum() > 0


def test_unknown_frontend_is_refused():
    with pytest.raises(ValueError, match="frontend"):
        SpeakerEncoder(frontend="resnet")


@pytest.mark.parametrize("frontend", ["none", "conv"])
def test_tdnn_backbone_embeds_unit_vectors_of_any_length_and_keeps_frames(frontend):
    from dlsp.models.speaker import MODELS, TdnnSpeakerEncoder

    torch.manual_seed(5)
    model = MODELS["tdnn"](features="logmel", n_mels=20, frontend=frontend, conv_channels=4, tdnn_channels=16,
                           **TINY).eval()
    assert isinstance(model, TdnnSpeakerEncoder) and not hasattr(model, "gru")
    assert model.get_model_args()["backbone"] == "tdnn"
    with torch.no_grad():
        for samples in (300, 4000, 9999):  # from one STFT frame up
            wave = torch.randn(2, samples)
            frames = model.frame_outputs(wave)
            assert frames.shape == (2, samples // TINY["hop_length"] + 1, 2 * TINY["hidden"])
            torch.testing.assert_close(model(wave).norm(dim=1), torch.ones(2), atol=1e-5, rtol=0)


class NoExcitation(torch.nn.Module):
    def forward(self, squeezed: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(squeezed)


def test_tdnn_res2_splits_widen_the_receptive_field_split_by_split():
    from dlsp.models.speaker import RES2_SCALE, SeRes2Block

    torch.manual_seed(6)
    width = 4
    block = SeRes2Block(width * RES2_SCALE, dilation=2).eval()
    block.squeeze = NoExcitation()  # squeeze-excitation averages over all time; look at the convolutions
    block.outer = torch.nn.Identity()
    x = torch.zeros(1, width * RES2_SCALE, 61)
    x[..., 30] = 1.0  # one impulse in every channel
    with torch.no_grad():
        change = (block(x) - x - block(torch.zeros_like(x)))[0].abs() > 1e-6  # (channels, frames)
    # Split i (after the pass-through split 0) has i dilated width-3 convolutions behind it: it reaches at most
    # 2 * i frames either side of the impulse; the last reaches further than the first.
    reach = []
    for i in range(1, RES2_SCALE):
        frames = change[i * width:(i + 1) * width].any(dim=0).nonzero().flatten()
        assert frames.numel() and frames.min() >= 30 - 2 * i and frames.max() <= 30 + 2 * i
        reach.append(int((frames - 30).abs().max()))
    assert reach[0] <= 2 < reach[-1]


def test_tdnn_model_file_round_trip(tmp_path):
    from dlsp.models.speaker import MODELS
    from dlsp.train.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint

    torch.manual_seed(8)
    model = MODELS["tdnn"](tdnn_channels=16, **TINY).eval()
    path = save_checkpoint(tmp_path / "t.pt", model, "tdnn")
    again = build_from_checkpoint(load_checkpoint(path), MODELS, path).eval()
    wave = torch.randn(1, 4000)
    with torch.no_grad():
        torch.testing.assert_close(again(wave), model(wave))


def test_default_is_the_studies_architecture():
    model = SpeakerEncoder()
    assert model.gru.input_size == 513 and model.gru.hidden_size == 256 and model.gru.bidirectional
    assert (model.projection.in_features, model.projection.out_features) == (512, 256)
    assert sum(p.numel() for p in model.parameters()) * 4 < 10 * 2**20  # fits the 10 MB budget


def test_stats_pooling_reads_mean_and_deviation_of_the_frames():
    torch.manual_seed(5)
    model = SpeakerEncoder(pooling="stats", **TINY).eval()
    assert model.projection.in_features == 4 * 16
    wave = torch.randn(2, 4000)
    with torch.no_grad():
        outputs = model.frame_outputs(wave)
        pooled = torch.cat([outputs.mean(dim=1), outputs.std(dim=1, unbiased=False)], dim=-1)
        expected = torch.nn.functional.normalize(model.projection(pooled), dim=-1)
        torch.testing.assert_close(model(wave), expected, atol=1e-5, rtol=0)


def test_attentive_stats_pooling_trains_through_constant_frames():
    model = SpeakerEncoder(pooling="attention_stats", **TINY)
    model(torch.zeros(2, 4000)).sum().backward()  # every frame alike: zero deviation, finite gradient
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_speed_views_concatenate_so_cosines_average_and_apply_in_eval_only():
    torch.manual_seed(6)
    speeds = [0.9, 1.0, 1.1]
    model = SpeakerEncoder(test_speeds=speeds, **TINY)
    assert model.view_dim == 8 and model.embedding_dim == 24
    assert model.min_samples == math.ceil(129 * 1.1)
    a, b = torch.randn(1, 4000), torch.randn(1, 4000)
    assert model(a).shape == (1, 8)  # training: one view, what the objectives see
    model.eval()
    with torch.no_grad():
        ea, eb = model(a), model(b)
        per_view = [(model.embed_view(change_speed(a, s)) * model.embed_view(change_speed(b, s))).sum()
                    for s in speeds]
    assert ea.shape == (1, 24)
    torch.testing.assert_close(ea.norm(dim=1), torch.ones(1), atol=1e-5, rtol=0)
    torch.testing.assert_close((ea * eb).sum(), torch.stack(per_view).mean(), atol=1e-5, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(ea[:, 8:16], model.embed_view(a) / math.sqrt(3))  # the 1.0 view is unchanged
    for bad in ([3.0], [], [1.0] * 17):
        with pytest.raises(ValueError, match="test_speeds"):
            SpeakerEncoder(test_speeds=bad)


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_change_speed_scales_a_tones_frequency_and_length(speed):
    sr = 16000
    t = torch.arange(sr) / sr
    tone = torch.sin(2 * math.pi * 440 * t) * torch.hann_window(sr)
    faster = change_speed(tone[None], speed)[0]
    assert faster.shape[0] == round(sr / speed)
    peak = torch.fft.rfft(faster).abs().argmax().item() * sr / faster.shape[0]
    assert peak == pytest.approx(440 * speed, abs=2)
    assert faster.abs().max().item() == pytest.approx(1.0, abs=0.02)  # level kept
    assert change_speed(tone[None], 1.0) is not None and torch.equal(change_speed(tone[None], 1.0)[0], tone)


def test_f_max_keeps_the_log_mel_bands_below_it():
    torch.manual_seed(7)
    model = SpeakerEncoder(features="logmel", n_mels=20, f_max=3000.0, **TINY).eval()
    bins_hz = torch.arange(129) * 8000 / 256
    assert model.mel_bank[:, bins_hz > 3000].abs().max() == 0 and model.mel_bank[:, bins_hz < 3000].sum() > 0
    spectrum = torch.fft.rfft(torch.randn(1, 4000))
    freqs = torch.fft.rfftfreq(4000, 1 / 8000)
    low = torch.fft.irfft(spectrum * (freqs < 2500), n=4000)
    high = torch.fft.irfft(spectrum * (freqs > 3600), n=4000) * 0.1
    with torch.no_grad():  # content above f_max changes nothing
        torch.testing.assert_close(model(low), model(low + high), atol=1e-4, rtol=0)
    for bad in ({"f_max": 9000.0}, {"f_max": 0.0}, {"features": "stft", "f_max": 3000.0}):
        with pytest.raises(ValueError, match="f_max"):
            SpeakerEncoder(**{**dict(features="logmel", n_mels=20, **TINY), **bad})


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
    with pytest.raises(ValueError, match="backbone"):
        SpeakerEncoder(backbone="lstm")
    with pytest.raises(ValueError, match="tdnn_channels"):
        SpeakerEncoder(backbone="tdnn", tdnn_channels=12)


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


def test_an_ensemble_puts_its_members_side_by_side_so_cosines_average(tmp_path):
    from dlsp.models.speaker import MODELS, SpeakerEnsemble
    from dlsp.train.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint

    torch.manual_seed(7)
    first = SpeakerEncoder(**TINY).eval()
    second = SpeakerEncoder(test_speeds=[0.9, 1.1], **{**TINY, "embedding_dim": 4}).eval()
    ensemble = SpeakerEnsemble.of([first, second])
    assert ensemble.embedding_dim == 8 + 8 and ensemble.min_samples == second.min_samples
    a, b = torch.randn(2, 4000), torch.randn(2, 4000)
    with torch.no_grad():
        ea, eb = ensemble(a), ensemble(b)
        members = [(m(a), m(b)) for m in (first, second)]
    torch.testing.assert_close(ea[:, :8], members[0][0] / math.sqrt(2))
    torch.testing.assert_close(ea.norm(dim=1), torch.ones(2), atol=1e-5, rtol=0)
    mean_cosine = sum((x * y).sum(dim=1) for x, y in members) / 2
    torch.testing.assert_close((ea * eb).sum(dim=1), mean_cosine, atol=1e-5, rtol=0)
    # A checkpoint rebuilds it from plain data (the members' arguments) with the same weights.
    path = save_checkpoint(tmp_path / "e.pt", ensemble, "ensemble", half=True)
    again = build_from_checkpoint(load_checkpoint(path), MODELS, path)
    assert isinstance(again, SpeakerEnsemble) and again.get_model_args() == ensemble.get_model_args()
    with torch.no_grad():
        torch.testing.assert_close(again(a), ensemble(a), atol=2e-3, rtol=0)  # float16 weights
    with pytest.raises(ValueError, match="one sample rate"):
        SpeakerEnsemble([{**TINY}, {**TINY, "sample_rate": 8000}])
    with pytest.raises(ValueError, match="1 to 8 members"):
        SpeakerEnsemble([])

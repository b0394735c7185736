"""Speaker encoder: a bidirectional GRU over spectral frames pooled into an L2-normalised embedding.

The original studies' architecture: STFT magnitude frames (n_fft 1024 -> 513 bins) into a bidirectional GRU
(256 units each way), the 512-wide outputs pooled over time, then a linear layer 512 -> 256 and L2
normalisation, so cosine similarity is a dot product. Options: log-mel input instead of the 513 bins, and mean
or attentive pooling (a learned softmax weight per frame, which lets the model ignore silence), each also as
statistics pooling ("stats", "attention_stats": the weighted mean and standard deviation of the outputs side
by side, Okabe et al. 2018, so the projection reads 1024 values), since how a voice varies over an utterance
is itself a speaker trait.

Convolutional front end (`frontend="conv"`): a few 3x3 convolutions over the (time, feature) plane before the
GRU, two of them halving the feature axis, so the GRU reads `conv_channels` maps of a quarter of the bands: local
spectral shapes (formant and harmonic patterns) that do not depend on exactly which band they fall in, as the
convolutional stems of ResNet and ECAPA speaker encoders give them. The GRU stays the sequence model.

TDNN backbone (`backbone="tdnn"`, model name "tdnn"): in place of the GRU, a small ECAPA-TDNN (Desplanques et
al. 2020) reads the frames: a width-5 convolution, three SE-Res2 blocks (Res2Net splits of dilated width-3
convolutions, squeeze-excitation over time, residual) at dilations 2, 3 and 4, and the three blocks' outputs
concatenated and mixed by a 1x1 convolution to `2 * hidden` channels, so pooling and projection are the GRU's.
Its receptive field is fixed (some 0.3 s) where the GRU's is the whole utterance, and it runs in parallel over
time where the GRU steps frame by frame. With the shipped recipe it did worse than the GRU on every held-out
corpus (EER 6.5 / 12.1 / 26.3% on speechocean762 / Arabic / FSDD against 5.8 / 8.2 / 24.3%; README), so it is an
option, not the default.

Test-time speed views (`test_speeds`, eval mode only): the recording is also embedded played slightly faster
and slower (speed perturbation made those other voices training speakers) and the unit embeddings of the views
are concatenated and scaled by 1 / sqrt(views), so the cosine of two such embeddings is the mean of the
per-view cosines: an ensemble over nuisance a single view cannot average out, at the cost of one pass per view.
Measured: it helped wideband speech and hurt 8 kHz speech (recipes/speaker_speed_views.yaml), so it is an option.

Ensembles (`SpeakerEnsemble`): encoders trained apart (another seed) make partly different mistakes; their
unit embeddings side by side, scaled by 1 / sqrt(members) like the speed views, give a unit embedding whose
cosine is the mean of the members' cosines. Two seeds of the shipped recipe: EER 6.11 and 4.86% on
speechocean762's held-out speakers, 8.52 and 8.75% on the Arabic ones, 25.6 and 26.4% on FSDD; the pair 4.86,
7.57 and 24.8% (raw cosine; `dlsp.release.ensemble_speakers` builds a model file of one).

The model takes waveforms, so a checkpoint carries the whole front end: the STFT, log compression, a per-clip
level normalisation (subtracting the clip's mean log-magnitude makes embeddings independent of recording gain)
and a per-feature standardisation whose statistics are buffers fitted on training data (`fit_normalizer`).

Shape: `(batch, samples) -> (batch, embedding_dim)`, rows of unit L2 norm (`embedding_dim` = views x the
`embedding_dim` argument).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

FEATURES = ("stft", "logmel")
POOLINGS = ("mean", "attention", "stats", "attention_stats")
FRONTENDS = ("none", "conv")
BACKBONES = ("gru", "tdnn")
TDNN_DILATIONS = (2, 3, 4)
RES2_SCALE = 8  # Res2Net splits per block
SE_BOTTLENECK = 128
STD_FLOOR = 1e-4
LOG_EPS = 1e-5
MAX_VIEWS = 16


class SpeakerEncoder(nn.Module):
    """Bidirectional GRU speaker encoder (see the module docstring).

    Args:
        sample_rate: rate the model expects (callers resample to it).
        features: "stft" (log magnitude, n_fft // 2 + 1 inputs) or "logmel" (`n_mels` log-mel bands).
        n_fft, hop_length: STFT settings (Hann window).
        n_mels: bands of the log-mel input.
        f_max: highest frequency of the log-mel bands (None: half the rate). Bands that stop short of the
            rate's limit do not depend on how much energy a recording (or a slowed speed view, whose top is
            empty) still holds there, as resampled inputs otherwise do.
        hidden: GRU units per direction.
        layers: stacked GRU layers.
        embedding_dim: size of the embedding.
        pooling: "mean", "attention", "stats" or "attention_stats" (mean and deviation).
        dropout: dropout on the pooled vector (training only).
        freq_mask, time_mask: in training mode only, zero one random band of up to `freq_mask` features and
            one random span of up to `time_mask` frames of the standardised input (SpecAugment), a
            regulariser for small speaker sets.
        test_speeds: speeds of the views embedded in eval mode (see the module docstring); `[1.0]`: one.
        frontend: "none" (features straight into the GRU) or "conv" (see the module docstring).
        conv_channels: channels of the convolutional front end.
        backbone: "gru" (the bidirectional GRU) or "tdnn" (see the module docstring; `layers` is then unused).
        tdnn_channels: channels of the TDNN blocks (a multiple of 8, the Res2 splits).
    """

    def __init__(self, sample_rate: int = 16000, features: str = "stft", n_fft: int = 1024, hop_length: int = 256,
                 n_mels: int = 64, f_max: float | None = None, hidden: int = 256, layers: int = 1,
                 embedding_dim: int = 256, pooling: str = "attention", dropout: float = 0.0, freq_mask: int = 0,
                 time_mask: int = 0, test_speeds: Sequence[float] = (1.0,), frontend: str = "none",
                 conv_channels: int = 32, backbone: str = "gru", tdnn_channels: int = 256) -> None:
        super().__init__()
        test_speeds = [float(speed) for speed in test_speeds]
        if not 1 <= len(test_speeds) <= MAX_VIEWS or any(not 0.5 <= speed <= 2.0 for speed in test_speeds):
            raise ValueError(f"test_speeds must be 1 to {MAX_VIEWS} speeds in [0.5, 2], got {test_speeds}")
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if frontend not in FRONTENDS:
            raise ValueError(f"frontend must be one of {FRONTENDS}, got {frontend!r}")
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
        if tdnn_channels < RES2_SCALE or tdnn_channels % RES2_SCALE:
            raise ValueError(f"tdnn_channels must be a positive multiple of {RES2_SCALE}, got {tdnn_channels}")
        if f_max is not None and (features != "logmel" or not 0 < f_max <= sample_rate / 2):
            raise ValueError(f"f_max must be in (0, {sample_rate / 2:g}] Hz and needs logmel features, got {f_max}")
        self.args = dict(sample_rate=sample_rate, features=features, n_fft=n_fft, hop_length=hop_length,
                         n_mels=n_mels, f_max=f_max, hidden=hidden, layers=layers, embedding_dim=embedding_dim,
                         pooling=pooling, dropout=dropout, freq_mask=freq_mask, time_mask=time_mask,
                         test_speeds=test_speeds, frontend=frontend, conv_channels=conv_channels)
        if backbone != "gru":  # files written before the option existed keep loading with the same arguments
            self.args.update(backbone=backbone, tdnn_channels=tdnn_channels)
        self.test_speeds = test_speeds
        self.freq_mask, self.time_mask = freq_mask, time_mask
        self.sample_rate, self.features, self.n_fft, self.hop_length = sample_rate, features, n_fft, hop_length
        self.pooling = pooling
        self.n_inputs = n_fft // 2 + 1 if features == "stft" else n_mels
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        if features == "logmel":
            from dlsp.audio.features import mel_filterbank

            self.register_buffer("mel_bank", mel_filterbank(sample_rate, n_fft, n_mels, fmax=f_max), persistent=False)
        self.register_buffer("feature_mean", torch.zeros(self.n_inputs))
        self.register_buffer("feature_std", torch.ones(self.n_inputs))
        self.frontend = conv_frontend(conv_channels) if frontend == "conv" else None
        backbone_inputs = conv_channels * conv_output_bands(self.n_inputs) if frontend == "conv" else self.n_inputs
        self.backbone = backbone
        if backbone == "gru":
            self.gru = nn.GRU(backbone_inputs, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        else:
            self.tdnn = Tdnn(backbone_inputs, tdnn_channels, 2 * hidden)
        self.attention = nn.Linear(2 * hidden, 1) if pooling.startswith("attention") else None
        self.with_std = pooling.endswith("stats")
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear((4 if self.with_std else 2) * hidden, embedding_dim)

    def get_model_args(self) -> dict[str, Any]:
        return dict(self.args)

    def with_test_speeds(self, speeds: Sequence[float]) -> SpeakerEncoder:
        """The same weights embedding other test-time views (a new module, in eval mode)."""
        twin = SpeakerEncoder(**{**self.args, "test_speeds": list(speeds)})
        twin.load_state_dict(self.state_dict())
        return twin.eval()

    @property
    def view_dim(self) -> int:
        """Size of one view's embedding (what training objectives see)."""
        return int(self.args["embedding_dim"])

    @property
    def embedding_dim(self) -> int:
        """Size of the embedding the model returns in eval mode."""
        return self.view_dim * len(self.test_speeds)

    @property
    def min_samples(self) -> int:
        """Shortest input the front end accepts (one STFT frame's worth in the fastest view)."""
        return math.ceil((self.n_fft // 2 + 1) * max(self.test_speeds))

    def log_features(self, wave: torch.Tensor) -> torch.Tensor:
        """Level-normalised log spectral features before standardisation. Shape: `(B, S) -> (B, T, F)`."""
        spec = torch.stft(wave, self.n_fft, self.hop_length, window=self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (B, freq, T)
        if self.features == "logmel":
            power = torch.matmul(self.mel_bank, power)
        logs = 0.5 * torch.log(power + LOG_EPS**2)  # log magnitude
        logs = logs - logs.mean(dim=(1, 2), keepdim=True)  # gain invariance
        return logs.transpose(1, 2)

    @torch.no_grad()
    def fit_normalizer(self, waves: torch.Tensor) -> None:
        """Set the per-feature mean and deviation from training waveforms `(B, S)`."""
        feats = self.log_features(waves.to(self.feature_mean.device)).reshape(-1, self.n_inputs)
        self.feature_mean.copy_(feats.mean(dim=0))
        self.feature_std.copy_(feats.std(dim=0).clamp_min(1e-3))

    def frame_outputs(self, wave: torch.Tensor) -> torch.Tensor:
        """Backbone outputs per frame. Shape: `(B, S) -> (B, T, 2 * hidden)`."""
        feats = (self.log_features(wave) - self.feature_mean) / self.feature_std
        if self.training and (self.freq_mask or self.time_mask):
            feats = _mask(_mask(feats, self.freq_mask, dim=2), self.time_mask, dim=1)
        if self.frontend is not None:
            maps = self.frontend(feats.unsqueeze(1))  # (B, C, T, F / 4)
            feats = maps.permute(0, 2, 1, 3).flatten(2)
        if self.backbone == "tdnn":
            return self.tdnn(feats.transpose(1, 2)).transpose(1, 2)
        return self.gru(feats)[0]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self.training or self.test_speeds == [1.0]:
            return self.embed_view(wave)
        views = [self.embed_view(change_speed(wave, speed)) for speed in self.test_speeds]
        return torch.cat(views, dim=-1) / math.sqrt(len(views))

    def embed_view(self, wave: torch.Tensor) -> torch.Tensor:
        """The unit embedding of the recording as it is. Shape: `(B, S) -> (B, view_dim)`."""
        outputs = self.frame_outputs(wave)
        if self.attention is not None:
            weights = torch.softmax(self.attention(outputs), dim=1)  # (B, T, 1)
        else:
            weights = torch.full_like(outputs[..., :1], 1.0 / outputs.shape[1])
        pooled = (weights * outputs).sum(dim=1)
        if self.with_std:
            variance = (weights * outputs.square()).sum(dim=1) - pooled.square()
            # The floor keeps the gradient of the square root finite on constant outputs.
            pooled = torch.cat([pooled, variance.clamp_min(STD_FLOOR).sqrt()], dim=-1)
        embedding = self.projection(self.dropout(pooled))
        return nn.functional.normalize(embedding, dim=-1)


class Tdnn(nn.Module):
    """The ECAPA-TDNN trunk of the module docstring. Shape: `(B, inputs, T) -> (B, outputs, T)`."""

    def __init__(self, inputs: int, channels: int, outputs: int) -> None:
        super().__init__()
        self.stem = conv_bn(inputs, channels, 5)
        self.blocks = nn.ModuleList([SeRes2Block(channels, dilation) for dilation in TDNN_DILATIONS])
        self.mix = conv_bn(len(TDNN_DILATIONS) * channels, outputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return self.mix(torch.cat(outputs, dim=1))  # every block's view, as ECAPA's multi-layer aggregation


class SeRes2Block(nn.Module):
    """1x1 convolution, Res2Net splits (each split's dilated convolution also reads the previous split's output,
    so the receptive fields grow across splits), 1x1 convolution, squeeze-excitation, residual."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        width = channels // RES2_SCALE
        self.inner = conv_bn(channels, channels, 1)
        self.splits = nn.ModuleList([conv_bn(width, width, 3, dilation) for _ in range(RES2_SCALE - 1)])
        self.outer = conv_bn(channels, channels, 1)
        self.squeeze = nn.Sequential(nn.Linear(channels, SE_BOTTLENECK), nn.ReLU(),
                                     nn.Linear(SE_BOTTLENECK, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.chunk(self.inner(x), RES2_SCALE, dim=1)
        out, previous = [parts[0]], None
        for conv, part in zip(self.splits, parts[1:], strict=True):
            previous = conv(part if previous is None else part + previous)
            out.append(previous)
        y = self.outer(torch.cat(out, dim=1))
        return x + y * self.squeeze(y.mean(dim=2)).unsqueeze(2)


def conv_bn(inputs: int, outputs: int, kernel: int, dilation: int = 1) -> nn.Sequential:
    """A 1-D convolution over time keeping the length, ReLU, batch norm. Shape: `(B, inputs, T) -> (B, outputs, T)`."""
    return nn.Sequential(nn.Conv1d(inputs, outputs, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2),
                         nn.ReLU(), nn.BatchNorm1d(outputs))


def conv_frontend(channels: int) -> nn.Sequential:
    """Three 3x3 convolution blocks over `(B, 1, T, F)`; the last two halve F. Shape: `-> (B, C, T, ceil(F / 4))`."""
    def block(inputs: int, stride: tuple[int, int]) -> list[nn.Module]:
        return [nn.Conv2d(inputs, channels, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(channels),
                nn.ReLU()]

    return nn.Sequential(*block(1, (1, 1)), *block(channels, (1, 2)), *block(channels, (1, 2)))


def conv_output_bands(bands: int) -> int:
    """Features per channel after `conv_frontend` (two stride-2 convolutions with padding 1)."""
    for _ in range(2):
        bands = (bands - 1) // 2 + 1
    return bands


def change_speed(wave: torch.Tensor, speed: float) -> torch.Tensor:
    """`wave` `(B, S)` played `speed` times faster (every frequency times `speed`, `round(S / speed)` samples),
    by resampling in the frequency domain: the spectrum is cut (or zero-padded) to the new length, an ideal
    low-pass. Speed 1 returns `wave` itself. The tensor twin of `dlsp.audio.augment.change_speed` (soxr, NumPy),
    so the views run inside the model, on its device, batched."""
    if speed == 1.0:
        return wave
    n = wave.shape[-1]
    m = max(1, round(n / speed))
    spectrum = torch.fft.rfft(wave, dim=-1)
    bins = m // 2 + 1
    if bins <= spectrum.shape[-1]:
        spectrum = spectrum[..., :bins]
    else:
        spectrum = torch.nn.functional.pad(spectrum, (0, bins - spectrum.shape[-1]))
    return torch.fft.irfft(spectrum, n=m, dim=-1) * (m / n)


def _mask(feats: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """Zero a random span of up to `width` positions along `dim` of each item. Shape: `(B, T, F)` kept."""
    if width <= 0:
        return feats
    size = feats.shape[dim]
    widths = torch.randint(0, width + 1, (feats.shape[0], 1), device=feats.device)
    starts = (torch.rand(feats.shape[0], 1, device=feats.device) * (size - widths + 1)).long()
    positions = torch.arange(size, device=feats.device)[None]
    keep = ~((positions >= starts) & (positions < starts + widths))  # (B, size)
    return feats * (keep[:, None, :] if dim == 2 else keep[:, :, None]).to(feats.dtype)


MAX_MEMBERS = 8


class SpeakerEnsemble(nn.Module):
    """Speaker encoders embedding the same recording, their unit embeddings side by side over sqrt(members)
    (module docstring). `members`: each one's `SpeakerEncoder` arguments; every member takes the same rate.

    Shape: `(batch, samples) -> (batch, sum of the members' embedding_dim)`, rows of unit L2 norm.
    """

    def __init__(self, members: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        if not 1 <= len(members) <= MAX_MEMBERS or not all(isinstance(m, dict) for m in members):
            raise ValueError(f"an ensemble has 1 to {MAX_MEMBERS} members, each a mapping of encoder arguments")
        self.members = nn.ModuleList(SpeakerEncoder(**args) for args in members)
        rates = {int(m.sample_rate) for m in self.members}
        if len(rates) != 1:
            raise ValueError(f"ensemble members must take one sample rate, got {sorted(rates)}")
        self.sample_rate = rates.pop()

    @classmethod
    def of(cls, encoders: Sequence[SpeakerEncoder]) -> SpeakerEnsemble:
        """An ensemble holding copies of trained `encoders` (eval mode)."""
        ensemble = cls([encoder.get_model_args() for encoder in encoders])
        for member, encoder in zip(ensemble.members, encoders, strict=True):
            member.load_state_dict(encoder.state_dict())
        return ensemble.eval()

    def get_model_args(self) -> dict[str, Any]:
        return {"members": [member.get_model_args() for member in self.members]}

    @property
    def embedding_dim(self) -> int:
        return sum(member.embedding_dim for member in self.members)

    @property
    def min_samples(self) -> int:
        return max(member.min_samples for member in self.members)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        embeddings = [member(wave) for member in self.members]
        return torch.cat(embeddings, dim=-1) / math.sqrt(len(embeddings))


class TdnnSpeakerEncoder(SpeakerEncoder):
    """`SpeakerEncoder` with the TDNN backbone (model name "tdnn"; the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**kwargs, "backbone": "tdnn"})


MODELS: dict[str, type[nn.Module]] = {"gru": SpeakerEncoder, "tdnn": TdnnSpeakerEncoder, "ensemble": SpeakerEnsemble}

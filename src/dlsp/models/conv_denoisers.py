"""Convolutional spectral denoisers: a per-frame 1-D CNN along frequency, a 2-D CNN and a U-Net on spectrograms.

Same contract as every denoiser (`dlsp.models.denoiser_base`): noisy magnitude `(batch, freq, frames)` in, clean
estimate of the same shape out; `get_model_args()`, `receptive_field`, `time_multiple`, `causal` and a `normalizer`.
Convolutions pad with zeros in the normalised domain: symmetric in frequency, symmetric in time or only before
the frame (causal). Nothing is normalised over time, so chunked inference with margins of at least the receptive
field (and, for the U-Net, chunk starts on multiples of `time_multiple`) reproduces the unchunked output (up to
float rounding: matrix products of other sizes may sum in another order).

Parameter counts are for n_freqs=513 with the default arguments; real-time factors (RTF) are single-thread
forward times of 10 s of 16 kHz audio divided by 10 s, at n_fft 1024 / hop 512 (313 frames) and n_fft 512 /
hop 128 (1251 frames of 257 bins), best of 5 on the 2-core development machine (other jobs running).
Registered as `cnn1d`, `cnn2d` and `unet` in `dlsp.models.denoisers.MODELS`.
"""

from __future__ import annotations

import torch
from torch import nn

from dlsp.models.denoiser_base import (
    ACTIVATIONS,
    SpectralDenoiser,
    SpectralNormalizer,
    apply_head,
    check_head,
    context_frames,
    time_padding,
)


class Cnn1dDenoiser(SpectralDenoiser):
    """The original studies' 1-D CNN along frequency, applied to each frame on its own.

    Conv1d(channels[0]) -> ELU -> MaxPool(pool) -> Conv1d(channels[1]) -> ELU -> MaxPool(pool) -> Flatten ->
    Dense(n_freqs), then the output head (ReLU for `output="magnitude"`, as in the studies), He-normal
    initialisation. The studies used 128 and 256 channels: at 513 bins that is 17 M parameters (68 MB), almost all
    in the dense layer, so the default here is channels (8, 16) with kernel 5 (1.05 M parameters, 4.2 MB, RTF
    0.0035 at hop 512, 0.005 at hop 128); pass `channels=(128, 256)` for the study's size. With
    `context > 0` the 2 * context + 1 neighbouring frames (context + 1 past frames when causal) are stacked as
    input channels; otherwise the model is frame-local.

    Shape: `(batch, freq, frames) -> (batch, freq, frames)`.
    """

    def __init__(
        self,
        n_freqs: int = 513,
        channels: tuple[int, ...] | list[int] = (8, 16),
        kernel_size: int = 5,
        pool: int = 2,
        context: int = 0,
        causal: bool = False,
        activation: str = "elu",
        output: str = "mask",
        mask_max: float = 1.0,
    ) -> None:
        super().__init__()
        check_head(output, mask_max, activation)
        if not channels or kernel_size < 1 or kernel_size % 2 == 0 or pool < 1 or context < 0:
            raise ValueError("cnn1d needs channels, an odd kernel_size, pool >= 1 and context >= 0")
        self.args = dict(n_freqs=n_freqs, channels=list(channels), kernel_size=kernel_size, pool=pool,
                         context=context, causal=causal, activation=activation, output=output,
                         mask_max=float(mask_max))
        self.n_freqs, self.context, self.causal, self.output = n_freqs, context, causal, output
        self._receptive_field = (context, 0 if causal else context)
        self.mask_max = float(mask_max)
        self.normalizer = SpectralNormalizer(n_freqs)
        self.window = context + 1 if causal else 2 * context + 1
        layers: list[nn.Module] = []
        width, length = self.window, n_freqs
        for size in channels:
            layers += [nn.Conv1d(width, size, kernel_size, padding=kernel_size // 2), ACTIVATIONS[activation](),
                       nn.MaxPool1d(pool)]
            width, length = size, length // pool
        if length < 1:
            raise ValueError(f"cnn1d pools {n_freqs} bins away: use fewer channel stages or a smaller pool")
        self.features = nn.Sequential(*layers)
        self.dense = nn.Linear(width * length, n_freqs)
        for module in self.modules():
            if isinstance(module, nn.Conv1d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        batch, n_freqs, n_frames = magnitude.shape
        frames = context_frames(self.normalizer(magnitude), self.context, self.causal)  # (B, T, window * F)
        frames = frames.reshape(batch * n_frames, self.window, n_freqs)
        raw = self.dense(self.features(frames).flatten(1))  # (B * T, F)
        return apply_head(raw.reshape(batch, n_frames, n_freqs).transpose(1, 2), magnitude, self.output,
                          self.mask_max)


class TimeConv2d(nn.Module):
    """Conv2d over `(freq, time)` that keeps both sizes: zero padding symmetric in frequency, and symmetric or
    before the frame (causal) in time; dilation in time only.

    Shape: `(batch, in_channels, freq, frames) -> (batch, out_channels, freq, frames)`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int] | list[int],
                 time_dilation: int = 1, causal: bool = False) -> None:
        super().__init__()
        freq_kernel, time_kernel = kernel_size
        if freq_kernel < 1 or freq_kernel % 2 == 0:
            raise ValueError(f"frequency kernel sizes must be odd and positive, got {freq_kernel}")
        before, after = time_padding(time_kernel, time_dilation, causal)
        # Symmetric padding inside the convolution avoids copying the input; causal padding needs the copy.
        self.time_pad = (before, after) if causal else None
        self.conv = nn.Conv2d(in_channels, out_channels, (freq_kernel, time_kernel),
                              padding=(freq_kernel // 2, 0 if causal else before), dilation=(1, time_dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x if self.time_pad is None else nn.functional.pad(x, self.time_pad))


def _conv_layer(in_channels: int, out_channels: int, kernel_size: tuple[int, int] | list[int], time_dilation: int,
                causal: bool, batch_norm: bool, activation: str) -> list[nn.Module]:
    layers: list[nn.Module] = [TimeConv2d(in_channels, out_channels, kernel_size, time_dilation, causal)]
    if batch_norm:  # in eval mode a fixed per-channel affine map: no dependence on other frames
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(ACTIVATIONS[activation]())
    return layers


class Cnn2dDenoiser(SpectralDenoiser):
    """2-D CNN on the spectrogram (one input channel, freq x time): same-size convolutions, then a 1x1 output
    convolution to the mask (or magnitude).

    Time dilations widen the temporal context cheaply: the defaults (channels 16, 32, 32, 16, kernel 3x3,
    time dilations 1, 2, 4, 8, leaky ReLU) see 15 frames on each side (30 past frames when causal) with 18.7k
    parameters (0.07 MB). The cost is in the convolutions over every bin (9.5 M multiply-adds per frame at 513
    bins): RTF 0.015 at hop 512 and 0.03 at hop 128 (causal: 0.016 and 0.04). `batch_norm=True` adds BatchNorm2d
    after each convolution (a fixed affine map in eval mode).

    Shape: `(batch, freq, frames) -> (batch, freq, frames)`.
    """

    def __init__(
        self,
        n_freqs: int = 513,
        channels: tuple[int, ...] | list[int] = (16, 32, 32, 16),
        kernel_size: tuple[int, int] | list[int] = (3, 3),
        dilations: tuple[int, ...] | list[int] = (1, 2, 4, 8),
        causal: bool = False,
        batch_norm: bool = False,
        activation: str = "leaky_relu",
        output: str = "mask",
        mask_max: float = 1.0,
    ) -> None:
        super().__init__()
        check_head(output, mask_max, activation)
        if not channels or len(dilations) != len(channels) or min(dilations) < 1:
            raise ValueError("cnn2d needs one time dilation (>= 1) per channel stage")
        self.args = dict(n_freqs=n_freqs, channels=list(channels), kernel_size=list(kernel_size),
                         dilations=list(dilations), causal=causal, batch_norm=batch_norm, activation=activation,
                         output=output, mask_max=float(mask_max))
        self.n_freqs, self.causal, self.output, self.mask_max = n_freqs, causal, output, float(mask_max)
        self.normalizer = SpectralNormalizer(n_freqs)
        layers: list[nn.Module] = []
        width = 1
        for size, dilation in zip(channels, dilations, strict=True):
            layers += _conv_layer(width, size, kernel_size, dilation, causal, batch_norm, activation)
            width = size
        layers.append(nn.Conv2d(width, 1, 1))
        self.net = nn.Sequential(*layers)
        _prefer_channels_last(self)
        past = sum(time_padding(kernel_size[1], d, causal)[0] for d in dilations)
        future = sum(time_padding(kernel_size[1], d, causal)[1] for d in dilations)
        self._receptive_field = (past, future)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        raw = self.net(self.normalizer(magnitude)[:, None])[:, 0]  # (B, F, T)
        return apply_head(raw, magnitude, self.output, self.mask_max)


class UNetDenoiser(SpectralDenoiser):
    """U-Net on the spectrogram: `depth` levels that halve frequency and time (2x2 max-pooling), a bottleneck,
    and a decoder that doubles them back (2x2 transposed convolution) and concatenates the encoder's skip.

    Each level has `convs_per_level` same-size convolutions with `base_channels * 2**level` channels (capped at
    `max_channels`). Frequency and time are zero-padded internally to multiples of `2**depth` and cropped back,
    so any size works; chunks must start on multiples of `time_multiple = 2**depth` to meet the same pooling grid.
    `causal=True` pads every convolution in time before the frame only and delays each upsampled map by one frame
    of its level, so output frame t never sees input frames after t.

    Defaults (depth 3, base 16, kernel 3x3, two convs per level, leaky ReLU): 482k parameters (1.9 MB),
    receptive field 51 frames each side (102 past when causal), RTF 0.021 at hop 512 and 0.044 at hop 128
    (causal: 0.028 and 0.061). `depth=4, base_channels=8` has as many parameters (486k), twice the receptive
    field and half the cost (RTF 0.010 and 0.020).

    Shape: `(batch, freq, frames) -> (batch, freq, frames)`.
    """

    def __init__(
        self,
        n_freqs: int = 513,
        depth: int = 3,
        base_channels: int = 16,
        max_channels: int = 256,
        kernel_size: tuple[int, int] | list[int] = (3, 3),
        convs_per_level: int = 2,
        causal: bool = False,
        batch_norm: bool = False,
        activation: str = "leaky_relu",
        output: str = "mask",
        mask_max: float = 1.0,
    ) -> None:
        super().__init__()
        check_head(output, mask_max, activation)
        if depth < 1 or base_channels < 1 or convs_per_level < 1:
            raise ValueError("unet needs depth >= 1, base_channels >= 1 and convs_per_level >= 1")
        self.args = dict(n_freqs=n_freqs, depth=depth, base_channels=base_channels, max_channels=max_channels,
                         kernel_size=list(kernel_size), convs_per_level=convs_per_level, causal=causal,
                         batch_norm=batch_norm, activation=activation, output=output, mask_max=float(mask_max))
        self.n_freqs, self.depth, self.causal = n_freqs, depth, causal
        self.output, self.mask_max = output, float(mask_max)
        self.normalizer = SpectralNormalizer(n_freqs)
        widths = [min(base_channels * 2**level, max_channels) for level in range(depth + 1)]

        def block(in_channels: int, out_channels: int) -> nn.Sequential:
            layers: list[nn.Module] = []
            for index in range(convs_per_level):
                layers += _conv_layer(in_channels if index == 0 else out_channels, out_channels, kernel_size, 1,
                                      causal, batch_norm, activation)
            return nn.Sequential(*layers)

        self.encoders = nn.ModuleList(block(1 if level == 0 else widths[level - 1], widths[level])
                                      for level in range(depth))
        self.bottleneck = block(widths[depth - 1], widths[depth])
        self.upsamplers = nn.ModuleList(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2)
                                        for level in range(depth))
        self.decoders = nn.ModuleList(block(2 * widths[level], widths[level]) for level in range(depth))
        self.head = nn.Conv2d(widths[0], 1, 1)
        self._receptive_field = unet_receptive_field(depth, kernel_size[1], convs_per_level, causal)
        _prefer_channels_last(self)

    @property
    def time_multiple(self) -> int:
        """Chunks must start at multiples of `2**depth` frames (the pooling grid)."""
        return 2**self.depth

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        _, n_freqs, n_frames = magnitude.shape
        multiple = 2**self.depth
        x = self.normalizer(magnitude)[:, None]
        # Pad after the last bin and frame: the pooling grid stays anchored at bin 0 and frame 0.
        x = nn.functional.pad(x, (0, -n_frames % multiple, 0, -n_freqs % multiple))
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for level in reversed(range(self.depth)):
            x = self.upsamplers[level](x)
            if self.causal:  # frame 2j would otherwise see deeper unit j, which also covers frame 2j + 1
                x = nn.functional.pad(x, (1, -1))
            x = self.decoders[level](torch.cat([skips[level], x], dim=1))
        raw = self.head(x)[:, 0, :n_freqs, :n_frames]
        return apply_head(raw, magnitude, self.output, self.mask_max)


def _prefer_channels_last(model: nn.Module) -> None:
    """Store 2-D convolution weights channels-last, so that oneDNN (and cuDNN) run channels-last kernels: about
    1.6x faster on one CPU thread here. `load_state_dict` and `.to(device)` keep the layout."""
    model.to(memory_format=torch.channels_last)


def unet_receptive_field(depth: int, time_kernel: int, convs_per_level: int, causal: bool) -> tuple[int, int]:
    """Upper bound on the U-Net's `(past, future)` frames, following the longest path (down and back up).

    A unit at level l covers 2**l frames; a convolution there reaches `pad * 2**l` frames further each way;
    pooling keeps the reach (the pooled unit covers exactly its inputs); an upsampled unit reads the deeper unit
    that covers it, one level-l unit further back or ahead, or (causal, delayed by one unit) up to two units back.
    """
    before, after = time_padding(time_kernel, 1, causal)
    past = future = 0
    for level in range(depth + 1):  # encoder levels, then the bottleneck
        past += convs_per_level * before * 2**level
        future += convs_per_level * after * 2**level
    for level in range(depth):  # upsampling into each level, then its decoder convolutions
        past += (2 ** (level + 1) if causal else 2**level) + convs_per_level * before * 2**level
        future += (0 if causal else 2**level) + convs_per_level * after * 2**level
    return past, future

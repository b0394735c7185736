"""A recurrent spectral denoiser: a causal GRU over STFT frames that carries its state through a stream.

Same contract as every denoiser (`dlsp.models.denoiser_base`) for training and offline use (noisy magnitude
`(batch, freq, frames)` in, estimate of the same shape out), plus `stateful = True` and `forward_stateful`, which
the chunked/streaming engine (`dlsp.denoise.streaming`) uses instead of past margins: a recurrent model sees the
whole past, so its receptive field is unbounded and chunks are joined by handing the GRU state from one chunk to
the next. Because a GRU is run frame by frame either way, the chunked output equals the offline one (within float
rounding).

`lookahead` frames of the future are stacked into each frame's input (as RNNoise-style denoisers do with a few
milliseconds of delay), costing `lookahead * hop` samples of latency. A trained model grows to more lookahead
without losing what it learnt (`grow_from`): the new future frames' input weights start at zero, so the grown model
starts out computing exactly what the smaller one did, and fine-tuning only has to learn to use the future.

Registered as `gru` in `dlsp.models.denoisers.MODELS`.
"""

from __future__ import annotations

import torch
from torch import nn

from dlsp.models.denoiser_base import SpectralDenoiser, SpectralNormalizer, apply_head, bounded_mask, check_head


class GruDenoiser(SpectralDenoiser):
    """Normalised log-magnitude frames -> (stack `lookahead` future frames) -> Linear(project) -> GRU(hidden) x
    `layers` -> Linear(n_freqs) -> output head.

    Every frame sees only itself, the past (through the GRU state) and `lookahead` future frames. `project` is the
    width of the input projection (default: `hidden`). Parameters at n_freqs=257 with the defaults (hidden 256,
    2 layers): 0.92 M (3.7 MB).

    Shape: `(batch, freq, frames) -> (batch, freq, frames)`; state `(layers, batch, hidden)`.
    """

    stateful = True

    def __init__(
        self,
        n_freqs: int = 513,
        hidden: int = 256,
        layers: int = 2,
        lookahead: int = 0,
        output: str = "mask",
        dropout: float = 0.0,
        mask_max: float = 1.0,
        project: int | None = None,
    ) -> None:
        super().__init__()
        check_head(output, mask_max)
        if hidden < 1 or layers < 1 or lookahead < 0 or (project is not None and project < 1):
            raise ValueError(f"need hidden >= 1, layers >= 1, lookahead >= 0, project >= 1; got {hidden}, {layers}, "
                             f"{lookahead}, {project}")
        self.args = dict(n_freqs=n_freqs, hidden=hidden, layers=layers, lookahead=lookahead, output=output,
                         dropout=dropout, mask_max=float(mask_max), project=project)
        self.n_freqs, self.hidden, self.layers, self.lookahead = n_freqs, hidden, layers, lookahead
        self.output, self.mask_max, self.causal = output, float(mask_max), lookahead == 0
        # No past margin is needed (the state carries the past); `lookahead` future frames are.
        self._receptive_field = (0, lookahead)
        width = hidden if project is None else project
        self.normalizer = SpectralNormalizer(n_freqs)
        self.project = nn.Sequential(nn.Linear(n_freqs * (lookahead + 1), width), nn.LayerNorm(width), nn.ELU())
        self.gru = nn.GRU(width, hidden, num_layers=layers, batch_first=True,
                          dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, n_freqs)

    @torch.no_grad()
    def grow_from(self, smaller: nn.Module) -> None:
        """Take the weights of a trained `GruDenoiser` that differs from this one only in having less lookahead
        and/or a smaller GRU `hidden` size (function-preserving growth, as in Net2Net): every weight is kept, the
        input weights of the extra future frames are zero, and the extra GRU units keep their random input and
        recurrent weights but start with zero weights *to* the old units and the output, so this model's output
        equals `smaller`'s until training changes it. ValueError if `smaller` differs in anything else."""
        if not isinstance(smaller, GruDenoiser):
            raise ValueError(f"can only grow from a gru denoiser, not {type(smaller).__name__}")
        fixed = ("n_freqs", "layers", "output", "dropout", "mask_max")
        same = all(self.args[key] == smaller.args[key] for key in fixed)
        if (not same or smaller.lookahead > self.lookahead or smaller.hidden > self.hidden
                or self.project[0].out_features != smaller.project[0].out_features):
            raise ValueError(f"can only grow a gru denoiser to more lookahead or a larger hidden size with the same "
                             f"other arguments; have {smaller.args}, want {self.args}")
        old_hidden, hidden = smaller.hidden, self.hidden
        mine = self.state_dict()
        for name, old in smaller.state_dict().items():
            new = mine[name]
            if name == "project.0.weight":
                new.zero_()
                new[:, :old.shape[1]] = old  # frame t's input comes first, then t + 1, t + 2, ...
            elif name.startswith("gru."):
                # Rows are the gates (r, z, n) of each unit, `hidden` rows per gate; columns of the recurrent
                # and upper-layer input weights are units of the layer below or of this layer.
                units_in = name.startswith("gru.weight_hh") or (name.startswith("gru.weight_ih")
                                                                 and not name.endswith("_l0"))
                for gate in range(3):
                    rows = slice(gate * hidden, gate * hidden + old_hidden)
                    old_rows = old[gate * old_hidden:(gate + 1) * old_hidden]
                    if units_in:
                        new[rows, old_hidden:] = 0.0  # the new units do not reach the old ones yet
                        new[rows, :old_hidden] = old_rows
                    else:  # biases, and the first layer's input weights (columns: the projection)
                        new[rows] = old_rows
            elif name == "head.weight":
                new.zero_()
                new[:, :old_hidden] = old
            else:
                new.copy_(old)
        self.load_state_dict(mine)

    def initial_state(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        """The state at a stream's start (zeros). Shape: `-> (layers, batch, hidden)`."""
        return torch.zeros(self.layers, batch, self.hidden, device=device)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Denoise a whole signal from the initial state; the end is padded by repeating the last frame."""
        padded = nn.functional.pad(magnitude, (0, self.lookahead), mode="replicate") if self.lookahead else magnitude
        estimate, _ = self.forward_stateful(padded, self.initial_state(magnitude.shape[0], magnitude.device))
        return estimate

    def forward_stateful(self, magnitude: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Denoise frames `0 .. T - lookahead - 1` of `magnitude` (the last `lookahead` frames are only seen as
        future) starting from `state`; return the estimate and the state after the last output frame.

        Shape: `(batch, freq, T)`, `(layers, batch, hidden)` -> `(batch, freq, T - lookahead)`,
        `(layers, batch, hidden)`.
        """
        features = self.normalizer(magnitude).transpose(1, 2)  # (B, T, F)
        frames = features.shape[1] - self.lookahead
        if self.lookahead:
            # Frame t's input: frames t .. t + lookahead, concatenated.
            features = torch.cat([features[:, shift:shift + frames] for shift in range(self.lookahead + 1)], dim=-1)
        hidden, state = self.gru(self.project(features), state)
        raw = self.head(hidden).transpose(1, 2)  # (B, F, frames)
        return apply_head(raw, magnitude[..., :frames], self.output, self.mask_max), state


class DeepFilterGru(GruDenoiser):
    """A `GruDenoiser` that also sees and filters the complex spectrum of the low band (deep filtering, as in
    DeepFilterNet): the magnitude mask of every bin keeps the noisy phase, which caps what any mask can reach; in
    the lowest `df_bins` bins, where voiced speech has its resolved harmonics, the output adds a short complex
    filter over the current and `df_order - 1` past noisy frames, `Y(t, f) = m X(t, f) + sum_k c_k X(t - k, f)`,
    so the model can correct phase and use the harmonics' predictable phase advance from frame to frame.

    Input and output are the spectrum as real numbers, real parts then imaginary parts stacked along frequency:
    `(batch, 2 * freq, frames)` (`takes_spectrum = True`; real tensors keep the ONNX export and the engines
    unchanged). The network's extra input is each low bin's phase advance over one hop as a unit phasor (the
    instantaneous-frequency cue), which a small branch of its own combines with the GRU's output into the
    coefficients (`tanh`-bounded); the GRU and the mask are the `gru` model's. The filter needs the past
    `df_order - 1` noisy frames: the state carries them packed into extra rows after the GRU's, so a stream
    still hands one tensor from chunk to chunk. The coefficient layer starts at zero, so a trained `gru` grows
    into this model computing exactly what it did (`grow_from`). Needs `lookahead` 0 and the `mask` head.

    Registered as `gru_df`. Shape: `(batch, 2 * freq, frames) -> (batch, 2 * freq, frames)`; state
    `(layers + extra, batch, hidden)`.
    """

    takes_spectrum = True

    def __init__(self, n_freqs: int = 513, hidden: int = 256, layers: int = 2, lookahead: int = 0,
                 output: str = "mask", dropout: float = 0.0, mask_max: float = 1.0, project: int | None = None,
                 df_bins: int = 48, df_order: int = 3) -> None:
        super().__init__(n_freqs, hidden, layers, lookahead, output, dropout, mask_max, project)
        if lookahead != 0 or output != "mask":
            raise ValueError(f"deep filtering needs lookahead 0 and the mask head, got {lookahead}, {output!r}")
        if not 1 <= df_bins <= n_freqs or df_order < 2:
            raise ValueError(f"need 1 <= df_bins <= n_freqs ({n_freqs}) and df_order >= 2, got {df_bins}, "
                             f"{df_order}")
        self.args.update(df_bins=df_bins, df_order=df_order)
        self.df_bins, self.df_order = df_bins, df_order
        # The filter's own branch: the GRU's output and the low band's phase advance -> coefficients. Kept apart
        # from the GRU's input so that learning the filter cannot disturb the mask a grown model starts from.
        self.df_hidden = nn.Sequential(nn.Linear(hidden + 2 * df_bins, hidden), nn.ELU())
        self.df_head = nn.Linear(hidden, 2 * df_order * df_bins)
        nn.init.zeros_(self.df_head.weight)
        nn.init.zeros_(self.df_head.bias)
        self._history = 2 * df_bins * (df_order - 1)  # past frames' real and imaginary parts, per stream
        self._extra_rows = -(-self._history // hidden)

    @torch.no_grad()
    def grow_from(self, smaller: nn.Module) -> None:
        """Take every weight of a trained `gru` (`GruDenoiser`) with the same arguments and lookahead 0; the deep
        filter starts at zero, so this model computes what `smaller` did until training changes it."""
        if type(smaller) is not GruDenoiser:
            raise ValueError(f"deep filtering grows from a gru denoiser, not {type(smaller).__name__}")
        mine = {key: value for key, value in self.args.items() if key not in ("df_bins", "df_order")}
        if smaller.args != mine:
            raise ValueError(f"can only add deep filtering to a gru denoiser with the same arguments; have "
                             f"{smaller.args}, want {mine}")
        missing, unexpected = self.load_state_dict(smaller.state_dict(), strict=False)
        if unexpected or any(not key.startswith(("df_hidden.", "df_head.")) for key in missing):
            raise ValueError(f"unexpected weights when growing: missing {missing}, unexpected {unexpected}")
        self.df_head.weight.zero_()
        self.df_head.bias.zero_()

    def initial_state(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        """Zeros: the GRU's state, then the packed past frames. Shape: `-> (layers + extra, batch, hidden)`."""
        return torch.zeros(self.layers + self._extra_rows, batch, self.hidden, device=device)

    def _unpack(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """GRU state `(layers, B, hidden)` and past frames `(B, 2, df_bins, df_order - 1)`."""
        rows = state[self.layers:].transpose(0, 1).reshape(state.shape[1], -1)[:, :self._history]
        past = rows.reshape(state.shape[1], 2, self.df_bins, self.df_order - 1)
        return state[:self.layers], past

    def _pack(self, gru_state: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        flat = past.reshape(past.shape[0], -1)
        flat = nn.functional.pad(flat, (0, self._extra_rows * self.hidden - self._history))
        rows = flat.reshape(past.shape[0], self._extra_rows, self.hidden).transpose(0, 1)
        return torch.cat([gru_state, rows], dim=0)

    def forward_stateful(self, spectrum: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Denoise the frames of `spectrum` (real parts, then imaginary parts along frequency) starting from
        `state`; return the estimate in the same layout and the state after the last frame.

        Shape: `(batch, 2 * freq, T)`, `(layers + extra, batch, hidden)` -> `(batch, 2 * freq, T)`, same state.
        """
        n, bins, order = self.n_freqs, self.df_bins, self.df_order
        real, imag = spectrum[:, :n], spectrum[:, n:]
        gru_state, past = self._unpack(state)
        frames = real.shape[-1]
        low = torch.cat([past, torch.stack([real[:, :bins], imag[:, :bins]], dim=1)], dim=-1)  # (B, 2, D, k-1+T)
        now, before = low[..., order - 1:], low[..., order - 2:-1]
        # Phase advance over one hop: now * conj(before), as a unit phasor (zero where either frame is silent).
        advance_re = now[:, 0] * before[:, 0] + now[:, 1] * before[:, 1]
        advance_im = now[:, 1] * before[:, 0] - now[:, 0] * before[:, 1]
        length = torch.sqrt(advance_re.square() + advance_im.square() + 1e-20)
        phase = torch.cat([advance_re / length, advance_im / length], dim=1).transpose(1, 2)  # (B, T, 2D)
        magnitude = torch.sqrt(real.square() + imag.square())
        features = self.normalizer(magnitude).transpose(1, 2)  # (B, T, F)
        hidden, gru_state = self.gru(self.project(features), gru_state)
        mask = bounded_mask(self.head(hidden), self.mask_max).transpose(1, 2)  # (B, F, T)
        coefficients = torch.tanh(self.df_head(self.df_hidden(torch.cat([hidden, phase], dim=-1))))  # (B, T, 2kD)
        coefficients = coefficients.reshape(spectrum.shape[0], frames, 2, order, bins).permute(0, 2, 3, 4, 1)
        filtered_re = torch.zeros_like(now[:, 0])
        filtered_im = torch.zeros_like(now[:, 0])
        for k in range(order):  # frame t - k
            x = low[..., order - 1 - k:order - 1 - k + frames]
            c_re, c_im = coefficients[:, 0, k], coefficients[:, 1, k]
            filtered_re = filtered_re + c_re * x[:, 0] - c_im * x[:, 1]
            filtered_im = filtered_im + c_re * x[:, 1] + c_im * x[:, 0]
        pad = (0, 0, 0, n - bins)
        out_re = mask * real + nn.functional.pad(filtered_re, pad)
        out_im = mask * imag + nn.functional.pad(filtered_im, pad)
        return torch.cat([out_re, out_im], dim=1), self._pack(gru_state, low[..., -(order - 1):])

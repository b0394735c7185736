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

from dlsp.models.denoiser_base import SpectralDenoiser, SpectralNormalizer, apply_head, check_head


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

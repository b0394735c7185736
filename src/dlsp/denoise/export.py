"""ONNX export of denoiser networks, and running them with onnxruntime.

Only the network goes to ONNX: magnitude `(batch, freq, frames)` in, estimate out, with batch and frames dynamic.
The STFT, overlap-add, resampling and mixing stay in torch (`dlsp.denoise.enhance`), so an ONNX model runs through
the same chunked and streaming engine. The file describes itself: its `metadata_props` hold the sample rate, the
STFT settings, the model name and arguments, the receptive field and time multiple (as JSON), so
`Denoiser.from_file("model.onnx")` needs nothing else. Exporting needs `onnx` and `onnxscript`, running needs
`onnxruntime` (a dependency of dlsp; export needs `pip install 'dlsp[onnx]'`).

The dynamo exporter (`torch.onnx.export(dynamo=True)`) is tried first; its smallest opset is 18, so that is the
default. If it fails (or cannot reach the requested opset) the TorchScript exporter is tried.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from dlsp.audio.stft import StftConfig
from dlsp.denoise.model_file import DenoiserModel
from dlsp.errors import DlspError
from dlsp.fileio import atomic_path, json_safe
from dlsp.models.denoiser_base import takes_spectrum
from dlsp.train.checkpoint import weights_id

FORMAT = "dlsp-denoiser-onnx/1"
DEFAULT_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "magnitude", "estimate"
STATE_NAME, STATE_OUTPUT_NAME = "state", "next_state"  # recurrent networks only
# The exported graph must reproduce the network this closely on a length it was not traced with.
EXPORT_TOLERANCE = 1e-4
_NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch.fx", "onnxscript", "onnx_ir")


class OnnxNetwork(nn.Module):
    """An exported denoiser network run by onnxruntime, with the torch network's interface.

    Tensors go to numpy on the CPU and come back on the input's device.

    Shape: `(batch, freq, frames) -> (batch, freq, frames)`.
    """

    is_onnx = True

    def __init__(self, session: Any, receptive_field: tuple[int, int], time_multiple: int, causal: bool,
                 model_args: dict[str, Any], state_shape: tuple[int, int] | None = None,
                 weights_id: str | None = None, takes_spectrum: bool = False) -> None:
        super().__init__()
        self.takes_spectrum = bool(takes_spectrum)  # real and imaginary parts in and out, as the torch network
        self.session = session
        self.weights_id = weights_id  # the torch network's `weights_id`, when the file records it
        self.input_name = session.get_inputs()[0].name
        self._receptive_field = (int(receptive_field[0]), int(receptive_field[1]))
        self._time_multiple = int(time_multiple)
        self.causal = bool(causal)
        self.args = dict(model_args)
        # A recurrent network's graph takes and returns its state: `(layers, hidden)` of `(layers, batch, hidden)`.
        self.state_shape = None if state_shape is None else (int(state_shape[0]), int(state_shape[1]))
        self.stateful = self.state_shape is not None

    @property
    def receptive_field(self) -> tuple[int, int]:
        return self._receptive_field

    @property
    def time_multiple(self) -> int:
        return self._time_multiple

    def get_model_args(self) -> dict[str, Any]:
        return dict(self.args)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        if self.stateful:
            lookahead = self._receptive_field[1]
            padded = nn.functional.pad(magnitude, (0, lookahead), mode="replicate") if lookahead else magnitude
            return self.forward_stateful(padded, self.initial_state(magnitude.shape[0], magnitude.device))[0]
        estimate = self.session.run(None, {self.input_name: _numpy(magnitude)})[0]
        return torch.from_numpy(estimate).to(magnitude.device)

    def initial_state(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        layers, hidden = self.state_shape
        return torch.zeros(layers, batch, hidden, device=device)

    def forward_stateful(self, magnitude: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As the recurrent torch network's `forward_stateful`."""
        estimate, new_state = self.session.run(None, {INPUT_NAME: _numpy(magnitude), STATE_NAME: _numpy(state)})
        return torch.from_numpy(estimate).to(magnitude.device), torch.from_numpy(new_state).to(state.device)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().to("cpu", torch.float32).numpy())


class _StatefulGraph(nn.Module):
    """What a recurrent network exports as: `(magnitude, state) -> (estimate, state)`."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, magnitude: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.network.forward_stateful(magnitude, state)


def export_onnx(model: DenoiserModel, path: str | os.PathLike[str], opset: int = DEFAULT_OPSET) -> Path:
    """Write the network of `model` as a self-describing ONNX file (atomically).

    Raises `DlspError` when the packages are missing or neither exporter handles the network.
    """
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise DlspError("ONNX model files must end in .onnx", path)
    onnx = _require("onnx")
    proto = _export_proto(model, opset)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return path


def load_onnx_denoiser(path: str | os.PathLike[str], threads: int | None = None) -> DenoiserModel:
    """Load an ONNX file written by `export_onnx` into a `DenoiserModel` whose network runs in onnxruntime."""
    path = Path(path)
    if not path.is_file():
        raise DlspError("model file does not exist" if not path.exists() else "is not a file", path)
    ort = _require("onnxruntime")
    try:
        session = _session(ort, str(path), threads)
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
        raise DlspError(f"not a readable ONNX model ({_first_line(exc)})", path) from None
    return _denoiser_model(session, session.get_modelmeta().custom_metadata_map, path)


def onnx_denoiser_model(model: DenoiserModel, threads: int | None = None) -> DenoiserModel:
    """Export `model`'s network in memory and return a copy that runs it with onnxruntime."""
    ort = _require("onnxruntime")
    proto = _export_proto(model, DEFAULT_OPSET)
    session = _session(ort, proto.SerializeToString(), threads)
    return _denoiser_model(session, session.get_modelmeta().custom_metadata_map, model.path)


def companion_onnx(model: DenoiserModel, threads: int | None = None) -> DenoiserModel | None:
    """The ONNX export beside `model`'s file (`model.pt` -> `model.onnx`) as an onnxruntime model, if it holds
    exactly these weights (its `dlsp.weights_id` matches) and onnxruntime is installed; otherwise `None`.

    This is how the default denoiser runs with onnxruntime on the CPU: its export ships beside it.
    """
    if model.path is None or getattr(model.model, "is_onnx", False):
        return None
    sibling = Path(model.path).with_suffix(".onnx")
    if not sibling.is_file() or importlib.util.find_spec("onnxruntime") is None:
        return None
    try:
        exported = load_onnx_denoiser(sibling, threads)
    except DlspError:
        return None  # a damaged or foreign file beside the model: the torch engine still works
    same = (exported.model.weights_id == weights_id(model.model) and exported.name == model.name
            and exported.sample_rate == model.sample_rate and exported.stft == model.stft
            and exported.model.get_model_args() == json_safe(model.model.get_model_args()))
    return exported if same else None


def onnx_metadata(model: DenoiserModel) -> dict[str, str]:
    """The `metadata_props` an exported file carries: strings, JSON for structured values."""
    from dlsp import __version__

    network = model.model
    return {
        "dlsp.format": FORMAT,
        "dlsp.version": __version__,
        "dlsp.model": model.name,
        "dlsp.model_args": json.dumps(json_safe(network.get_model_args())),
        "dlsp.sample_rate": str(int(model.sample_rate)),
        "dlsp.stft": json.dumps(asdict(model.stft)),
        "dlsp.receptive_field": json.dumps([int(v) for v in network.receptive_field]),
        "dlsp.time_multiple": str(int(network.time_multiple)),
        "dlsp.causal": json.dumps(bool(getattr(network, "causal", network.receptive_field[1] == 0))),
        "dlsp.state_shape": json.dumps(_state_shape(network)),
        "dlsp.takes_spectrum": json.dumps(takes_spectrum(network)),
        "dlsp.config": json.dumps(json_safe(model.config or {})),
        "dlsp.weights_id": weights_id(network),
    }


def _state_shape(network: nn.Module) -> list[int] | None:
    """`[layers, hidden]` of a recurrent network's state, `None` for a stateless one."""
    if not getattr(network, "stateful", False):
        return None
    return [int(v) for v in network.initial_state(1).shape[::2]]


def _denoiser_model(session: Any, metadata: dict[str, str], path: Path | None) -> DenoiserModel:
    if metadata.get("dlsp.format") != FORMAT:
        raise DlspError("not a dlsp denoiser ONNX file (no dlsp metadata; write one with 'dlsp denoise export')",
                        path)
    try:
        network = OnnxNetwork(session, tuple(json.loads(metadata["dlsp.receptive_field"])),
                              int(metadata["dlsp.time_multiple"]), json.loads(metadata["dlsp.causal"]),
                              json.loads(metadata["dlsp.model_args"]),
                              json.loads(metadata.get("dlsp.state_shape", "null")),
                              metadata.get("dlsp.weights_id"),
                              json.loads(metadata.get("dlsp.takes_spectrum", "false")))
        return DenoiserModel(network, metadata["dlsp.model"], int(metadata["dlsp.sample_rate"]),
                             StftConfig(**json.loads(metadata["dlsp.stft"])), json.loads(metadata["dlsp.config"]),
                             path)
    except (KeyError, ValueError, TypeError) as exc:
        raise DlspError(f"damaged dlsp metadata in ONNX file ({_first_line(exc)})", path) from None


def _export_proto(model: DenoiserModel, opset: int) -> Any:
    """The network as an ONNX ModelProto with metadata, checked against torch on an untraced length."""
    onnx = _require("onnx")
    if getattr(model.model, "is_onnx", False):
        raise DlspError("the model is already an ONNX model", model.path)
    network = copy.deepcopy(model.model).to("cpu").eval()
    n_freqs = model.stft.n_freqs * (2 if takes_spectrum(network) else 1)  # the network's input rows
    frames = max(37, 3 * int(network.time_multiple) + 5)
    example = torch.rand(2, n_freqs, frames, generator=torch.Generator().manual_seed(0))
    errors = []
    for exporter in (_export_dynamo, _export_torchscript):
        try:
            with _quiet():
                proto = exporter(network, example, opset)
        except Exception as exc:  # the exporters fail in many ways; each reason is reported below
            errors.append(f"{exporter.__name__.removeprefix('_export_')}: {_first_line(exc)}")
            continue
        version = next((op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")), None)
        if version != opset:
            errors.append(f"{exporter.__name__.removeprefix('_export_')}: produced opset {version}")
            continue
        try:  # an exporter can also be silently wrong (dynamo on gru_df's packed state): check before keeping it
            _check_export(network, proto, n_freqs, frames + 7, model)
        except DlspError as exc:
            errors.append(f"{exporter.__name__.removeprefix('_export_')}: {exc.problem}")
            continue
        break
    else:
        raise DlspError(f"cannot export denoiser {model.name!r} to ONNX opset {opset} ({'; '.join(errors)})",
                        model.path)
    _store_exact_halves(proto)
    existing = {prop.key: prop.value for prop in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**existing, **onnx_metadata(model)})
    shown = "real and imaginary parts" if takes_spectrum(network) else "magnitude"
    proto.doc_string = f"dlsp denoiser {model.name!r} at {model.sample_rate} Hz: STFT {shown} in, estimate out"
    return proto


def _store_exact_halves(proto: Any) -> None:
    """Store each large float32 weight that float16 holds exactly (a model saved with `half=True`) as float16,
    cast back to float32 in the graph: half the file, the same numbers (onnxruntime folds the casts when it
    loads the model, so inference costs nothing more)."""
    onnx = _require("onnx")
    from onnx import TensorProto, numpy_helper

    casts = []
    for initializer in list(proto.graph.initializer):
        if initializer.data_type != TensorProto.FLOAT or int(np.prod(initializer.dims)) < 1024:
            continue
        values = numpy_helper.to_array(initializer)
        halves = values.astype(np.float16)
        if not np.array_equal(halves.astype(np.float32), values):
            continue
        stored = numpy_helper.from_array(halves, f"{initializer.name}__float16")
        proto.graph.initializer.remove(initializer)
        proto.graph.initializer.append(stored)
        casts.append(onnx.helper.make_node("Cast", [stored.name], [initializer.name], to=TensorProto.FLOAT))
    for cast in reversed(casts):
        proto.graph.node.insert(0, cast)


def _export_dynamo(network: nn.Module, example: torch.Tensor, opset: int) -> Any:
    graph, inputs, input_names, output_names = _graph(network, example)
    dims = torch.export.Dim.AUTO
    shapes = ({0: dims, 2: dims}, {1: dims})[:len(inputs)]
    program = torch.onnx.export(graph, inputs, dynamo=True, input_names=input_names, output_names=output_names,
                                dynamic_shapes=shapes, opset_version=opset, verbose=False)
    return program.model_proto


def _export_torchscript(network: nn.Module, example: torch.Tensor, opset: int) -> Any:
    onnx = _require("onnx")
    graph, inputs, input_names, output_names = _graph(network, example)
    buffer = io.BytesIO()
    axes = {0: "batch", 2: "frames"}
    dynamic = {INPUT_NAME: axes, OUTPUT_NAME: axes, STATE_NAME: {1: "batch"}, STATE_OUTPUT_NAME: {1: "batch"}}
    torch.onnx.export(graph, inputs, buffer, dynamo=False, input_names=input_names, output_names=output_names,
                      dynamic_axes={name: dynamic[name] for name in (*input_names, *output_names)},
                      opset_version=opset, verbose=False)
    return onnx.load_from_string(buffer.getvalue())


def _graph(network: nn.Module, example: torch.Tensor) -> tuple[nn.Module, tuple[torch.Tensor, ...], list[str],
                                                                  list[str]]:
    """The module to trace, its example inputs and the graph's input and output names."""
    if getattr(network, "stateful", False):
        return (_StatefulGraph(network), (example, network.initial_state(example.shape[0])),
                [INPUT_NAME, STATE_NAME], [OUTPUT_NAME, STATE_OUTPUT_NAME])
    return network, (example,), [INPUT_NAME], [OUTPUT_NAME]


def _check_export(network: nn.Module, proto: Any, n_freqs: int, frames: int, model: DenoiserModel) -> None:
    """Refuse an export that does not reproduce the network (e.g. a length baked in while tracing)."""
    ort = _require("onnxruntime")
    exported = OnnxNetwork(_session(ort, proto.SerializeToString(), 1), network.receptive_field,
                           network.time_multiple, True, {}, _state_shape(network),
                           takes_spectrum=takes_spectrum(network))
    magnitude = torch.rand(1, n_freqs, frames, generator=torch.Generator().manual_seed(1))
    try:
        with torch.inference_mode():
            expected = network(magnitude).numpy()
            got = exported(magnitude).numpy()
        difference = float(np.max(np.abs(expected - got)))
    except Exception as exc:  # onnxruntime's own exception types
        raise DlspError(f"exported ONNX graph for {model.name!r} fails on {frames} frames ({_first_line(exc)})",
                        model.path) from None
    if not difference <= EXPORT_TOLERANCE:
        raise DlspError(f"exported ONNX graph for {model.name!r} differs from torch by {difference:.2e}",
                        model.path)


def _session(ort: ModuleType, model: str | bytes, threads: int | None) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 0 if threads is None else int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' warnings, log lines and prints (they describe internals, not user problems).

    The TorchScript exporter prints the whole graph from C++ when it fails, so file descriptors 1 and 2 are
    pointed at /dev/null too, not just `sys.stdout` and `sys.stderr`.
    """
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    sink = io.StringIO()
    with contextlib.ExitStack() as stack:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):  # not backed by a descriptor
                stream.flush()
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                saved = os.dup(fd)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, fd)
                os.close(devnull)
                stack.callback(_restore_fd, fd, saved)
        for logger in loggers:
            stack.callback(logger.setLevel, logger.level)
            logger.setLevel(logging.CRITICAL)
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        stack.enter_context(contextlib.redirect_stdout(sink))
        stack.enter_context(contextlib.redirect_stderr(sink))
        yield


def _restore_fd(fd: int, saved: int) -> None:
    os.dup2(saved, fd)
    os.close(saved)


def _require(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise DlspError(f"ONNX support needs the {name} package: pip install 'dlsp[onnx]'") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]

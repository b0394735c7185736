"""Fuzz targets for every loader of user files, shared by `tests/test_fuzz_loaders.py` and `benchmarks/fuzz.py`.

A target turns arbitrary bytes into a file (or a folder holding one) and runs the loaders that read it. The
contract under test: a loader either returns or raises `DlspError`; any other exception, a hang or a huge
allocation on bad input is a bug in the loader. Each target also writes a seed corpus of valid files (made here,
nothing downloads) that fuzzers mutate, and `mutate` is the byte-level mutator both engines share.

Structured targets (`checkpoint_payload`) decode their bytes with `plain_value` into plain data first, so the
fuzzer reaches the checks behind `torch.load` instead of stopping at the zip container.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SEED_SAMPLE_RATE = 8000


@dataclass(frozen=True)
class Target:
    """A loader under fuzz: `run(data, workdir)` loads `data`; `seeds(workdir)` returns valid inputs."""

    name: str
    run: Callable[[bytes, Path], None]
    seeds: Callable[[Path], list[bytes]]


# ---------------------------------------------------------------- mutation


# Values that break size arithmetic: zero, sign bits, all ones, and a 10^12 count.
INTERESTING_U32 = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                   10**12 & 0xFFFFFFFF)


def mutate(seed: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    """Apply byte-level operations `(kind, position, value)` to `seed` (positions wrap around its length).

    Kinds: 0 flip a bit, 1 set a byte, 2 write an interesting 32-bit value (either endianness), 3 truncate,
    4 insert bytes, 5 delete a run, 6 duplicate a run. Deterministic, so a failing input reproduces from its ops.
    """
    data = bytearray(seed)
    for kind, position, value in ops:
        if not data:
            data += bytes([value & 0xFF])
            continue
        pos = position % len(data)
        kind %= 7
        if kind == 0:
            data[pos] ^= 1 << (value % 8)
        elif kind == 1:
            data[pos] = value & 0xFF
        elif kind == 2:
            word = INTERESTING_U32[value % len(INTERESTING_U32)]
            data[pos:pos + 4] = struct.pack("<I" if value & 0x100 else ">I", word)
        elif kind == 3:
            del data[pos:]
        elif kind == 4:
            data[pos:pos] = bytes((value + i * 37) & 0xFF for i in range(1 + value % 16))
        elif kind == 5:
            del data[pos:pos + 1 + value % 64]
        else:
            run = data[pos:pos + 1 + value % 64]
            data[pos:pos] = run
    return bytes(data)


def plain_value(data: bytes, depth: int = 0) -> Any:
    """Decode bytes into plain data (None, bools, ints incl. huge and negative ones, floats incl. NaN, strings,
    lists, dicts, small tensors) so a byte fuzzer can drive structured inputs."""
    return _Decoder(data).value(depth)


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        value = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return value

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n].ljust(n, b"\0")
        self.pos += n
        return chunk

    def value(self, depth: int = 0) -> Any:
        import torch

        kind = self.byte() % (10 if depth < 3 else 7)
        if kind == 0:
            return None
        if kind == 1:
            return bool(self.byte() & 1)
        if kind == 2:
            return self.byte() - 128
        if kind == 3:
            return int.from_bytes(self.take(8), "little", signed=True) >> (self.byte() % 64)
        if kind == 4:
            return struct.unpack("<d", self.take(8))[0]
        if kind == 5:
            return self.take(self.byte() % 24).decode("utf-8", "replace")
        if kind == 6:
            return [1.0, 0.0, float("nan"), float("inf"), -1.0, 1e30][self.byte() % 6]
        if kind == 7:
            return [self.value(depth + 1) for _ in range(self.byte() % 4)]
        if kind == 8:
            return {str(self.value(depth + 1)): self.value(depth + 1) for _ in range(self.byte() % 4)}
        shape = tuple(self.byte() % 5 for _ in range(self.byte() % 3))
        return torch.zeros(shape, dtype=(torch.float32, torch.int64, torch.uint8)[self.byte() % 3])


# ---------------------------------------------------------------- seed files


def _tone(frames: int = 400, channels: int = 1) -> np.ndarray:
    t = np.arange(frames) / SEED_SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.stack([tone * (c + 1) / channels for c in range(channels)], axis=1)  # (time, channels)


def _audio_bytes(fmt: str, subtype: str, channels: int = 1, frames: int = 400) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, _tone(frames, channels), SEED_SAMPLE_RATE, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _image_bytes(fmt: str, mode: str) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    shape = (6, 5) if mode in ("L", "1", "P") else (6, 5, len(mode))
    image = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode="L" if len(shape) == 2 else mode)
    if mode in ("1", "P"):
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def idx_bytes(array: np.ndarray, compress: bool) -> bytes:
    """An IDX file's bytes (as `dlsp.data.image_files.write_idx` writes them)."""
    import gzip

    from dlsp.data.image_files import IDX_CODES, IDX_DTYPES

    code = IDX_CODES[array.dtype.newbyteorder("=").str]
    payload = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
               + array.astype(IDX_DTYPES[code]).tobytes())
    return gzip.compress(payload, mtime=0) if compress else payload


def cifar_batch_bytes(n: int = 3, protocol: int = 2, seed: int = 0) -> bytes:
    """A CIFAR-10 python batch pickle of `n` random images (bytes keys, as the Python 2 originals have)."""
    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"fuzz batch", b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"a.png"] * n}
    return pickle.dumps(batch, protocol=protocol)


def cifar_meta_bytes() -> bytes:
    return pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)], b"num_vis": 3072}, protocol=2)


def tiny_checkpoints(folder: Path) -> dict[str, Path]:
    """Small valid model files of each kind (denoiser, speaker encoder, image classifier) in `folder`."""
    from dlsp.audio.stft import StftConfig
    from dlsp.denoise.model_file import save_denoiser
    from dlsp.models.linear_denoisers import LinearDenoiser
    from dlsp.models.speaker import SpeakerEncoder
    from dlsp.models.vision import MLPClassifier
    from dlsp.speaker.model_file import save_speaker_model
    from dlsp.vision.model_file import save_classifier

    folder.mkdir(parents=True, exist_ok=True)
    stft = StftConfig(n_fft=16, hop_length=8)
    return {
        "denoise": save_denoiser(folder / "denoise.pt", LinearDenoiser(n_freqs=9, hidden=(4,)), "linear",
                                 sample_rate=SEED_SAMPLE_RATE, stft=stft),
        "speaker": save_speaker_model(folder / "speaker.pt",
                                      SpeakerEncoder(SEED_SAMPLE_RATE, n_fft=16, hop_length=8, hidden=3,
                                                     embedding_dim=4),
                                      "gru", sample_rate=SEED_SAMPLE_RATE, threshold=0.5, trim_db=40.0),
        "vision": save_classifier(folder / "vision.pt", MLPClassifier((1, 2, 2), 3, hidden=(3,)), "mlp",
                                  ("a", "b", "c")),
    }


def _speaker_db(path: Path) -> Path:
    from dlsp.speaker.database import SpeakerDatabase

    path.parent.mkdir(parents=True, exist_ok=True)
    with SpeakerDatabase(path, "fuzzmodel", 4) as db:
        db.enroll("alice", np.eye(4, dtype=np.float32)[:2])
        db.enroll("bob", np.eye(4, dtype=np.float32)[2:])
    return path


# ---------------------------------------------------------------- targets


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _load_audio_file(path: Path) -> None:
    from dlsp.audio.io import audio_info, load_audio

    audio_info(path)
    load_audio(path, mono=False, allow_silent=True)


def _audio_target(name: str, suffix: str, seeds: list[tuple[str, str, int]]) -> Target:
    def run(data: bytes, work: Path) -> None:
        _load_audio_file(_write(work / f"input{suffix}", data))

    def make_seeds(work: Path) -> list[bytes]:
        return [_audio_bytes(fmt, subtype, channels) for fmt, subtype, channels in seeds]

    return Target(name, run, make_seeds)


def _run_idx(data: bytes, work: Path) -> None:
    from dlsp.data.image_files import read_idx

    read_idx(_write(work / "train-images-idx3-ubyte", data))


def _idx_seeds(work: Path) -> list[bytes]:
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    return [idx_bytes(images, False), idx_bytes(images, True), idx_bytes(np.arange(4, dtype=np.int32), False),
            idx_bytes(np.linspace(0, 1, 6).reshape(2, 3), True)]


def _cifar_folder(work: Path, batch: bytes, test: bytes, meta: bytes) -> Path:
    folder = work / "cifar-10-batches-py"
    _write(folder / "data_batch_1", batch)
    _write(folder / "test_batch", test)
    _write(folder / "batches.meta", meta)
    return folder


def _run_cifar(data: bytes, work: Path) -> None:
    from dlsp.data.image_files import load_cifar_batches, read_cifar_batch

    read_cifar_batch(_write(work / "data_batch_9", data))
    load_cifar_batches(_cifar_folder(work, data, cifar_batch_bytes(2, seed=1), cifar_meta_bytes()))


def _run_cifar_meta(data: bytes, work: Path) -> None:
    from dlsp.data.image_files import load_cifar_batches

    load_cifar_batches(_cifar_folder(work, cifar_batch_bytes(2), cifar_batch_bytes(2, seed=1), data))


def _cifar_seeds(work: Path) -> list[bytes]:
    return [cifar_batch_bytes(3, protocol) for protocol in (2, 4, 5)]


def _run_images(data: bytes, work: Path) -> None:
    from dlsp.data.image_files import load_image_folder

    root = work / "images"
    _write(root / "train" / "a" / "0.png", data)
    _write(root / "test" / "a" / "0.png", data)
    load_image_folder(root)


def _image_seeds(work: Path) -> list[bytes]:
    return [_image_bytes("PNG", "L"), _image_bytes("PNG", "RGB"), _image_bytes("PNG", "RGBA"),
            _image_bytes("PNG", "P"), _image_bytes("JPEG", "RGB"), _image_bytes("GIF", "L"),
            _image_bytes("BMP", "1"), _image_bytes("TIFF", "RGB")]


MANIFEST_SEEDS = (
    b"path,label,speaker,split\na.wav,yes,s1,train\nsub/b.wav,no,s2,test\n",
    b"name,clean,noisy,snr_db,sample_rate,split,speaker,duration\n"
    b"b,a.wav,sub/b.wav,5.0,8000,train,s1,0.05\n",
)


def _run_manifest(data: bytes, work: Path) -> None:
    from dlsp.data.index import index_dataset

    root = work / "dataset"
    tone = _audio_bytes("WAV", "PCM_16")
    _write(root / "a.wav", tone)
    _write(root / "sub" / "b.wav", tone)
    _write(root / "manifest.csv", data)
    index_dataset(root)


def _run_recipe(data: bytes, work: Path) -> None:
    from dlsp.config import load_config
    from dlsp.denoise.train import DenoiseConfig

    load_config(DenoiseConfig, _write(work / "recipe.yaml", data))


def _recipe_seeds(work: Path) -> list[bytes]:
    import yaml

    from dlsp.config import to_dict
    from dlsp.denoise.train import DenoiseConfig

    full = yaml.safe_dump(to_dict(DenoiseConfig()), sort_keys=False).encode()
    return [full, b"model:\n  name: linear\n  args: {hidden: [64]}\ntrain:\n  lr: 1e-3\n  epochs: 2\n",
            b"task: denoise\ntune:\n  train.lr: [1e-4, 1e-2]\n"]


def _load_model_file(path: Path, speaker_fields: bool = False) -> None:
    """Run every model-file loader on `path` (each refuses the other kinds, so all run on every input).

    The speaker encoder is rebuilt through `build_from_checkpoint` directly; `speaker_fields` also runs
    `load_speaker_model`, whose own field parsing is fuzzed by the `speaker_model` target.
    """
    from dlsp.denoise.model_file import load_denoiser
    from dlsp.errors import DlspError
    from dlsp.models.speaker import MODELS as SPEAKER_MODELS
    from dlsp.speaker.model_file import load_speaker_model
    from dlsp.train.checkpoint import build_from_checkpoint, load_checkpoint
    from dlsp.vision.model_file import load_classifier

    def speaker(path: Path) -> None:
        payload = load_checkpoint(path)
        if payload.get("task") == "speaker":
            build_from_checkpoint(payload, SPEAKER_MODELS, path)

    for loader in (load_denoiser, load_classifier, load_speaker_model if speaker_fields else speaker):
        with contextlib.suppress(DlspError):
            loader(path)


def _run_checkpoint(data: bytes, work: Path) -> None:
    _load_model_file(_write(work / "model.pt", data))


def _checkpoint_seeds(work: Path) -> list[bytes]:
    return [path.read_bytes() for path in tiny_checkpoints(work / "seeds").values()]


def _payload_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a checkpoint payload (dicts only), deepest last."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _payload_paths(item, (*prefix, key))
    return paths


def _payload_target(name: str, speaker_fields: bool) -> Target:
    """Byte 0 picks a seed model file; each following (path byte, op byte, value...) edits its payload."""

    def run(data: bytes, work: Path) -> None:
        import torch

        seeds = _payload_seeds(work)
        payload = seeds[1] if speaker_fields else seeds[(data[0] if data else 0) % len(seeds)]
        decoder = _Decoder(data[1:])
        for _ in range(3):
            if decoder.pos >= len(decoder.data):
                break
            paths = _payload_paths(payload)
            key_path = paths[decoder.byte() % len(paths)]
            parent = payload
            for key in key_path[:-1]:
                parent = parent[key]
            if decoder.byte() % 4 == 0:
                del parent[key_path[-1]]
            else:
                parent[key_path[-1]] = decoder.value()
        path = work / "payload.pt"
        torch.save(payload, path)
        _load_model_file(path, speaker_fields)

    return Target(name, run, _payload_byte_seeds)


_PAYLOAD_CACHE: dict[Path, list[dict]] = {}


def _payload_seeds(work: Path) -> list[dict]:
    # The seed payloads are rebuilt per call from cached bytes (edits must not leak between inputs).
    import torch

    key = work.parent
    if key not in _PAYLOAD_CACHE:
        _PAYLOAD_CACHE[key] = [path.read_bytes() for path in tiny_checkpoints(work / "payload-seeds").values()]
    return [torch.load(io.BytesIO(blob), weights_only=True) for blob in _PAYLOAD_CACHE[key]]


def _payload_byte_seeds(work: Path) -> list[bytes]:
    return [bytes([0]), bytes([1]), bytes([2]), bytes([0, 3, 1, 3]), bytes([2, 5, 1, 2, 0x80])]


def _run_speaker_db(data: bytes, work: Path) -> None:
    # Read-only use: open without a model, list and look up (what `dlsp speaker list` and `verify` do).
    from dlsp.errors import DlspError
    from dlsp.speaker.database import SpeakerDatabase

    with SpeakerDatabase(_write(work / "speakers.db", data), None, None, create=False) as db:
        db.list()
        for name in ("alice", "nobody"):
            with contextlib.suppress(DlspError):
                db.get(name)


def _speaker_db_seeds(work: Path) -> list[bytes]:
    return [_speaker_db(work / "seed.db").read_bytes()]


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        _audio_target("wav", ".wav", [("WAV", "PCM_16", 1), ("WAV", "FLOAT", 2), ("WAV", "PCM_U8", 1),
                                      ("RF64", "PCM_24", 1)]),
        _audio_target("flac", ".flac", [("FLAC", "PCM_16", 1), ("FLAC", "PCM_24", 2)]),
        _audio_target("ogg", ".ogg", [("OGG", "VORBIS", 1)]),
        _audio_target("aiff", ".aiff", [("AIFF", "PCM_16", 1), ("AU", "PCM_16", 2)]),
        Target("idx", _run_idx, _idx_seeds),
        Target("cifar", _run_cifar, _cifar_seeds),
        Target("cifar_meta", _run_cifar_meta, lambda work: [cifar_meta_bytes()]),
        Target("images", _run_images, _image_seeds),
        Target("manifest", _run_manifest, lambda work: list(MANIFEST_SEEDS)),
        Target("recipe", _run_recipe, _recipe_seeds),
        Target("checkpoint", _run_checkpoint, _checkpoint_seeds),
        _payload_target("checkpoint_payload", speaker_fields=False),
        _payload_target("speaker_model", speaker_fields=True),
        Target("speaker_db", _run_speaker_db, _speaker_db_seeds),
    )
}


def input_strategy(seeds: list[bytes]):
    """A hypothesis strategy of fuzz inputs: seeds, mutated seeds (mostly) and raw bytes.

    Imported lazily: hypothesis is a dev dependency, not one of dlsp's.
    """
    from hypothesis import strategies as st

    ops = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1 << 20), st.integers(0, 1 << 16)),
                   min_size=1, max_size=8)
    return st.one_of(st.builds(mutate, st.sampled_from(seeds), ops), st.sampled_from(seeds),
                     st.binary(max_size=512))

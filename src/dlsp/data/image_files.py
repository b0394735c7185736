"""Image datasets from files: MNIST IDX, CIFAR-10 python batches and image-folder layouts.

Every reader checks a file before trusting it: IDX headers are validated (magic number, dimensions, exact
payload size) before any array is allocated; CIFAR batch pickles go through a restricted unpickler that only
rebuilds numpy arrays, lists, dicts, numbers and strings, so a pickle carrying a payload is refused and the
payload never runs; image folders must hold decodable images of one size. Nothing downloads.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dlsp.data.images import ImageSplit
from dlsp.errors import DlspError
from dlsp.fileio import atomic_path

# IDX type codes (third magic byte) -> big-endian numpy dtype.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_CODES = {np.dtype(v).newbyteorder("=").str: k for k, v in IDX_DTYPES.items()}
MAX_IDX_BYTES = 4 * 1024**3  # refuse absurd headers instead of trying to allocate them
# Deflate expands at most 1032:1, so a gzipped IDX file cannot hold more than this many bytes per stored byte.
MAX_DEFLATE_RATIO = 1032
# Refuse images whose header claims more pixels than this before decoding (4096 x 4096); lab images are tiny.
MAX_IMAGE_PIXELS = 1 << 24
GZIP_MAGIC = b"\x1f\x8b"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
CIFAR_SIDE = 32


# ---------------------------------------------------------------- IDX (MNIST)

def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzipped or raw, detected from its first bytes) into a native-endian array.

    The header is checked first (two zero bytes, a known type code, 1-4 dimensions) and the payload must be
    exactly the size the dimensions announce, so a wrong or truncated file is an error, not garbage.
    """
    path = Path(path)
    if not path.is_file():
        raise DlspError("IDX file does not exist" if not path.exists() else "IDX path is not a file", path)
    with open(path, "rb") as raw:
        gz = raw.read(2) == GZIP_MAGIC
    # The payload can be no larger than the file allows, so a header claiming more is refused before reading.
    limit = path.stat().st_size * (MAX_DEFLATE_RATIO if gz else 1)
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as handle:
            return _read_idx_stream(handle, path, limit)
    except (OSError, EOFError, zlib.error) as exc:
        raise DlspError(f"not a readable IDX file ({exc})", path) from None


def _read_idx_stream(handle: io.BufferedIOBase, path: Path, limit: int) -> np.ndarray:
    magic = handle.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES or not 1 <= magic[3] <= 4:
        raise DlspError(f"not an IDX file (bad magic number {magic.hex() or 'empty'})", path)
    ndim = magic[3]
    header = handle.read(4 * ndim)
    if len(header) < 4 * ndim:
        raise DlspError("truncated IDX header", path)
    shape = tuple(int(d) for d in np.frombuffer(header, dtype=">u4"))
    dtype = np.dtype(IDX_DTYPES[magic[2]])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a product of four u32 must not overflow
    # An empty array with absurd other dimensions (0 x 2^32 x 2^32) is no dataset either, and numpy refuses it.
    if max(expected, math.prod(max(d, 1) for d in shape) * dtype.itemsize) > MAX_IDX_BYTES:
        raise DlspError(f"IDX header announces {expected:,} bytes of data (shape {shape}); refusing", path)
    if expected > limit:
        raise DlspError(f"IDX header announces {expected:,} bytes of data (shape {shape}), more than the "
                        f"{path.stat().st_size:,}-byte file can hold", path)
    data = handle.read(expected)
    if len(data) != expected:
        raise DlspError(f"truncated IDX data: {len(data):,} of {expected:,} bytes for shape {shape}", path)
    if handle.read(1):
        raise DlspError(f"IDX file has data beyond the {expected:,} bytes its header announces", path)
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray, compress: bool | None = None) -> Path:
    """Write `array` as an IDX file (gzipped when `compress`, default: when the name ends in .gz)."""
    array = np.asarray(array)
    code = IDX_CODES.get(array.dtype.newbyteorder("=").str)
    if code is None or not 1 <= array.ndim <= 4:
        raise DlspError(f"IDX cannot hold a {array.ndim}-d {array.dtype} array")
    payload = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
               + array.astype(IDX_DTYPES[code]).tobytes())
    path = Path(path)
    compress = path.suffix == ".gz" if compress is None else compress
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    return path


def load_mnist(folder: str | os.PathLike[str]) -> dict[str, ImageSplit]:
    """MNIST-style IDX files in `folder` (`train-images-idx3-ubyte[.gz]` etc.) as `train` and `test` splits.

    Shape: `images` `(n, 1, 28, 28)` float32 in [0, 1], `labels` `(n,)` int64.
    """
    folder = Path(folder)
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find_idx(folder, f"{prefix}-images", "idx3"))
        labels = read_idx(_find_idx(folder, f"{prefix}-labels", "idx1"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DlspError(f"MNIST {split} files disagree: images {images.shape}, labels {labels.shape}", folder)
        if len(labels) and (labels.min() < 0 or labels.max() > 9):
            raise DlspError(f"MNIST {split} labels outside 0-9", folder)
        scaled = (images.astype(np.float32) / 255.0)[:, None]
        splits[split] = ImageSplit(scaled, labels.astype(np.int64), tuple(str(d) for d in range(10)))
    return splits


def _find_idx(folder: Path, stem: str, kind: str) -> Path:
    for name in (f"{stem}-{kind}-ubyte", f"{stem}.{kind}-ubyte"):
        for suffix in ("", ".gz"):
            if (folder / (name + suffix)).is_file():
                return folder / (name + suffix)
    raise DlspError(f"no {stem}-{kind}-ubyte[.gz] file", folder)


def is_mnist_folder(folder: str | os.PathLike[str]) -> bool:
    folder = Path(folder)
    return any(folder.glob("train-images*idx3-ubyte*"))


# ---------------------------------------------------------------- CIFAR-10 python batches

class RestrictedUnpickler(pickle._Unpickler):
    """Unpickles plain data only: numpy arrays (non-object dtypes), lists, dicts, tuples, numbers, strings.

    Any other global (os.system, builtins.eval, a class's reduce hook...) is refused in `find_class`, which
    pickle calls before it could call the object, so a malicious payload never runs.

    It is pickle's pure-Python unpickler on purpose: the C one sizes its memo table by the largest memo index
    a file names, so a 130-byte pickle with `LONG_BINPUT 1476487198` makes it zero 23 GB (found by fuzzing);
    the Python one keeps the memo in a dict. Speed is no concern for a few CIFAR batches.
    """

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)

    def _load_bytearray8(self) -> None:
        # pickle's own BYTEARRAY8 allocates the length the file claims before reading it: a 9 KB pickle made it
        # allocate 4 GB (found by fuzzing). Nothing in the file can be longer than the file.
        (length,) = struct.unpack("<Q", self.read(8))
        if length > self.max_bytes:
            raise pickle.UnpicklingError(f"BYTEARRAY8 of {length} bytes in a {self.max_bytes}-byte pickle")
        self.append(bytearray(self.read(length)))

    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8

    def __init__(self, file: Any, *, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.max_bytes = max_bytes

    def find_class(self, module: str, name: str) -> Any:
        allowed = _allowed_globals().get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if name == "_reconstruct":
            return self._bounded_reconstruct(allowed)
        return allowed

    def _bounded_reconstruct(self, reconstruct: Any) -> Any:
        # `_reconstruct(ndarray, shape, dtype)` allocates `shape` before `__setstate__` checks the data against
        # it: a 9 KB pickle naming a huge shape made it allocate 4 GB (found by fuzzing). An array's data must
        # be in the file, so no array can be larger than the pickle itself.
        def bounded(cls: Any, shape: Any, dtype: Any) -> Any:
            try:
                count = math.prod(int(n) for n in (shape if isinstance(shape, tuple | list) else (shape,)))
            except (TypeError, ValueError):
                raise pickle.UnpicklingError(f"bad array shape {shape!r}") from None
            if count < 0 or count > self.max_bytes:
                raise pickle.UnpicklingError(f"array of {count} elements cannot fit in a {self.max_bytes}-byte file")
            return reconstruct(cls, shape, dtype)

        return bounded


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The only callables a CIFAR pickle may name: numpy's array/dtype rebuilders and bytes decoding.

    Resolved here (not imported by name) so that old `numpy.core` names map to numpy 2's `numpy._core`.
    """
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): _latin1_encode}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # numpy pickles rebuild array buffers with _codecs.encode(text, "latin1"); any other codec is refused so
    # a pickle cannot pick one (unknown names, compressors) to fail in unexpected ways or burn time.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def restricted_load(data: bytes) -> Any:
    """Load plain data from pickle bytes (Python 2 byte strings stay bytes); refuses anything else.

    Raises `pickle.UnpicklingError` for every malformed or refused pickle: the unpickler can call nothing but
    numpy's rebuilders, so whatever else fails (bad opcodes, absurd lengths, wrong rebuild arguments) is just
    a broken file and gets one exception type.
    """
    try:
        value = RestrictedUnpickler(io.BytesIO(data), max_bytes=len(data), encoding="bytes").load()
    except pickle.UnpicklingError:
        raise
    except Exception as exc:
        raise pickle.UnpicklingError(f"{type(exc).__name__}: {exc}") from None
    _check_plain(value)
    return value


def _check_plain(value: Any, depth: int = 0) -> None:
    # The unpickler already limits globals; this also refuses object arrays (which could hide anything).
    if depth > 20:
        raise pickle.UnpicklingError("nesting too deep")
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise pickle.UnpicklingError("object arrays are not plain data")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, depth + 1)
            _check_plain(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_plain(item, depth + 1)
    elif not isinstance(value, str | bytes | int | float | bool | type(None)):
        raise pickle.UnpicklingError(f"unexpected {type(value).__name__}")


def read_cifar_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: images `(n, 3, 32, 32)` uint8 and labels `(n,)` int64."""
    path = Path(path)
    if not path.is_file():
        raise DlspError("CIFAR batch file does not exist", path)
    try:
        batch = restricted_load(path.read_bytes())
    except pickle.UnpicklingError as exc:
        raise DlspError(f"refused CIFAR batch: not plain data ({str(exc)[:120]})", path) from None
    if not isinstance(batch, dict):
        raise DlspError("CIFAR batch is not a dict", path)
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels", batch.get("fine_labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * CIFAR_SIDE**2:
        raise DlspError("CIFAR batch 'data' must be a uint8 array (n, 3072)", path)
    if not isinstance(labels, list | np.ndarray) or len(labels) != len(data):
        raise DlspError("CIFAR batch 'labels' must be a list as long as 'data'", path)
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DlspError("CIFAR batch 'labels' must be integers", path) from None
    if labels.ndim != 1:
        raise DlspError("CIFAR batch 'labels' must be a flat list of integers", path)
    return data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE), labels


def load_cifar_batches(folder: str | os.PathLike[str]) -> dict[str, ImageSplit]:
    """`cifar-10-batches-py` (data_batch_1..5, test_batch, batches.meta) as `train` and `test` splits."""
    folder = Path(folder)
    train_files = sorted(folder.glob("data_batch_*"))
    if not train_files or not (folder / "test_batch").is_file():
        raise DlspError("not a CIFAR-10 python batch folder (needs data_batch_* and test_batch)", folder)
    classes = tuple(f"class_{i}" for i in range(10))
    if (folder / "batches.meta").is_file():
        classes = _cifar_classes(folder / "batches.meta")
    splits = {}
    for split, files in (("train", train_files), ("test", [folder / "test_batch"])):
        parts = [read_cifar_batch(f) for f in files]
        images = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
        labels = np.concatenate([p[1] for p in parts])
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DlspError(f"CIFAR {split} labels outside 0-{len(classes) - 1}", folder)
        splits[split] = ImageSplit(images, labels, classes)
    return splits


def _cifar_classes(path: Path) -> tuple[str, ...]:
    """Class names from `batches.meta`: a dict whose `label_names` is a list of (byte) strings."""
    try:
        meta = restricted_load(path.read_bytes())
    except pickle.UnpicklingError as exc:
        raise DlspError(f"refused batches.meta: not plain data ({str(exc)[:120]})", path) from None
    names = meta.get(b"label_names", meta.get("label_names")) if isinstance(meta, dict) else None
    if not isinstance(names, list | tuple) or not names or not all(isinstance(n, str | bytes) for n in names):
        raise DlspError("batches.meta has no 'label_names' list of strings", path)
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names)


def is_cifar_batch_folder(folder: str | os.PathLike[str]) -> bool:
    folder = Path(folder)
    return (folder / "test_batch").is_file() or (folder / "cifar-10-batches-py" / "test_batch").is_file()


# ---------------------------------------------------------------- image folders

def load_image_folder(root: str | os.PathLike[str], per_class: dict[str, int | None] | None = None,
                      seed: int = 0) -> dict[str, ImageSplit]:
    """An image-folder layout `root/<split>/<class>/*.jpg` (splits `train`, `test`, optionally `val`).

    `per_class` caps the images read per class for each split (a seeded random subset), to keep large sets
    affordable. Every image must decode and all must share one size and mode; classes are the sorted folder
    names of `train`. Shape: `images` `(n, channels, height, width)` float32 in [0, 1].
    """
    root = Path(root)
    if not (root / "train").is_dir():
        raise DlspError("not an image-folder layout (expected train/<class>/ images)", root)
    classes = tuple(sorted(p.name for p in (root / "train").iterdir() if p.is_dir()))
    if not classes:
        raise DlspError("no class folders in train/", root)
    splits = {}
    for split in ("train", "val", "test"):
        if not (root / split).is_dir():
            continue
        cap = (per_class or {}).get(split)
        files, labels = _list_images(root / split, classes, cap, seed)
        splits[split] = ImageSplit(_decode_images(files), np.asarray(labels, dtype=np.int64), classes)
    if "test" not in splits:
        raise DlspError("no test/<class>/ images", root)
    return splits


def _list_images(folder: Path, classes: tuple[str, ...], cap: int | None, seed: int) -> tuple[list[Path], list[int]]:
    extra = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in classes)
    if extra:
        raise DlspError(f"class folders not in train/: {', '.join(extra)}", folder)
    files: list[Path] = []
    labels: list[int] = []
    rng = np.random.default_rng(seed)
    for index, name in enumerate(classes):
        entries = sorted(p for p in (folder / name).iterdir() if p.is_file() and not p.name.startswith("."))
        if cap is not None and len(entries) > cap:
            entries = [entries[i] for i in sorted(rng.choice(len(entries), cap, replace=False))]
        files += entries
        labels += [index] * len(entries)
    if not files:
        raise DlspError("no images", folder)
    return files, labels


def _decode_images(files: list[Path]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    decode_errors = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)

    first: tuple[tuple[int, int], str] | None = None
    out: np.ndarray | None = None
    for index, path in enumerate(files):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise DlspError("not an image file (unknown extension)", path)
        try:
            with Image.open(path) as image:
                # Pillow's own bomb limit only warns below 2 x 89M pixels; ours refuses from the header alone.
                if image.size[0] * image.size[1] > MAX_IMAGE_PIXELS:
                    raise DlspError(f"image header claims {image.size[0]}x{image.size[1]} pixels, more than "
                                    f"{MAX_IMAGE_PIXELS:,}; refusing to decode", path)
                image.load()
                shape = (image.size, image.mode)
                array = np.asarray(image)
        except decode_errors as exc:
            raise DlspError(f"cannot decode image ({str(exc)[:100]})", path) from None
        if first is None:
            first = shape
            channels = 1 if array.ndim == 2 else array.shape[2]
            out = np.empty((len(files), channels, array.shape[0], array.shape[1]), dtype=np.float32)
        elif shape != first:
            raise DlspError(f"image is {shape[0][0]}x{shape[0][1]} {shape[1]}, but the first image "
                            f"({files[0].name}) is {first[0][0]}x{first[0][1]} {first[1]}; all must match", path)
        out[index] = (array[None] if array.ndim == 2 else array.transpose(2, 0, 1)) / 255.0
    assert out is not None
    return out

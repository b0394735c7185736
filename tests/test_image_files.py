"""dlsp.data.image_files: IDX, CIFAR-10 batches (restricted unpickler) and image folders, including bad input."""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pytest

from dlsp.data.image_files import (
    load_cifar_batches,
    load_image_folder,
    load_mnist,
    read_cifar_batch,
    read_idx,
    restricted_load,
    write_idx,
)
from dlsp.errors import DlspError


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip_raw_and_gz(tmp_path, rng, name, dtype):
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, array)


def test_idx_gz_detected_by_content_not_name(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"  # gzipped data without .gz
    write_idx(path, np.arange(7, dtype=np.uint8), compress=True)
    np.testing.assert_array_equal(read_idx(path), np.arange(7))


def _raw_idx(shape, payload: bytes, code: int = 0x08) -> bytes:
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, dtype=">u4").tobytes() + payload


@pytest.mark.parametrize(("data", "message"), [
    (b"\x00\x00\x08", "bad magic"),
    (b"\x01\x00\x08\x01" + b"\x00" * 8, "bad magic"),
    (b"\x00\x00\x07\x01" + b"\x00" * 8, "bad magic"),  # unknown type code
    (b"\x00\x00\x08\x00", "bad magic"),  # zero dimensions
    (b"\x00\x00\x08\x02\x00\x00", "truncated IDX header"),
    (_raw_idx((2, 3), b"\x00" * 5), "truncated IDX data: 5 of 6"),
    (_raw_idx((2, 3), b"\x00" * 7), "beyond the 6 bytes"),
    (_raw_idx((60000, 60000, 60000), b""), "refusing"),  # absurd header: refused before allocating
])
def test_idx_bad_files_are_clear_errors(tmp_path, data, message):
    for path, content in ((tmp_path / "x-idx", data), (tmp_path / "x-idx.gz", gzip.compress(data))):
        path.write_bytes(content)
        with pytest.raises(DlspError, match=message):
            read_idx(path)


def test_idx_corrupt_gzip_and_missing(tmp_path):
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"garbage" * 5)
    with pytest.raises(DlspError, match="not a readable IDX"):
        read_idx(tmp_path / "bad.gz")
    with pytest.raises(DlspError, match="does not exist"):
        read_idx(tmp_path / "missing")


def _write_mnist(folder, rng, n_train=12, n_test=5, gz=True):
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n).astype(np.uint8))


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_folder(tmp_path, rng, gz):
    _write_mnist(tmp_path, rng, gz=gz)
    splits = load_mnist(tmp_path)
    assert splits["train"].images.shape == (12, 1, 28, 28) and len(splits["test"]) == 5
    assert splits["train"].images.dtype == np.float32 and 0 <= splits["train"].images.min() <= 1
    expected = read_idx(tmp_path / f"train-images-idx3-ubyte{'.gz' if gz else ''}")
    np.testing.assert_allclose(splits["train"].images[:, 0] * 255, expected, atol=1e-3)


def test_load_mnist_mismatched_counts(tmp_path, rng):
    _write_mnist(tmp_path, rng)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DlspError, match="disagree"):
        load_mnist(tmp_path)


# ------------------------------------------------------------------ CIFAR batches

def _cifar_batch(rng, n, protocol=2):
    batch = {b"batch_label": b"training batch", b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
    return pickle.dumps(batch, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batches_load(tmp_path, rng, protocol):
    for i in range(1, 3):
        (tmp_path / f"data_batch_{i}").write_bytes(_cifar_batch(rng, 4, protocol))
    (tmp_path / "test_batch").write_bytes(_cifar_batch(rng, 3, protocol))
    names = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                  "truck")]
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))
    splits = load_cifar_batches(tmp_path)
    assert splits["train"].images.shape == (8, 3, 32, 32) and len(splits["test"]) == 3
    assert splits["train"].classes[0] == "airplane"
    raw, labels = read_cifar_batch(tmp_path / "test_batch")
    np.testing.assert_allclose(splits["test"].images * 255, raw, atol=1e-3)
    assert labels.dtype == np.int64


class _Payload:
    """A pickle that calls os.system (touching a marker file) when loaded by an unrestricted unpickler."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_payload_and_it_never_runs(tmp_path, rng):
    marker = tmp_path / "payload-ran"
    evil = pickle.dumps({b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2],
                         b"x": _Payload(marker)}, protocol=2)
    (tmp_path / "data_batch_1").write_bytes(evil)
    (tmp_path / "test_batch").write_bytes(evil)
    with pytest.raises(DlspError, match=r"refused CIFAR batch.*(posix|os)\.system"):
        load_cifar_batches(tmp_path)
    assert not marker.exists()
    # Sanity: the same bytes do run the payload when unpickled without restriction (so the test can fail).
    pickle.loads(evil)
    assert marker.exists()


@pytest.mark.parametrize("value", [
    {"f": eval},  # a builtin by reference
    {"a": np.array([object()], dtype=object)},  # object arrays could hide anything
    {"s": {1, 2}},
])
def test_restricted_load_refuses_anything_but_plain_data(value):
    with pytest.raises(pickle.UnpicklingError):
        restricted_load(pickle.dumps(value, protocol=2))


def test_cifar_batch_with_wrong_contents(tmp_path):
    (tmp_path / "b").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(DlspError, match="uint8 array"):
        read_cifar_batch(tmp_path / "b")
    (tmp_path / "c").write_bytes(b"not a pickle at all")
    with pytest.raises(DlspError, match="refused CIFAR batch"):
        read_cifar_batch(tmp_path / "c")


# ------------------------------------------------------------------ image folders

def _write_images(root, rng, size=(6, 5), per_class=3, classes=("cat", "dog"), ext="png"):
    from PIL import Image

    for split in ("train", "test"):
        for name in classes:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.{ext}")


def test_image_folder_loads_pixels_exactly(tmp_path, rng):
    from PIL import Image

    _write_images(tmp_path, rng)
    splits = load_image_folder(tmp_path)
    assert splits["train"].images.shape == (6, 3, 5, 6) and splits["train"].classes == ("cat", "dog")
    np.testing.assert_array_equal(splits["train"].labels, [0, 0, 0, 1, 1, 1])
    first = np.asarray(Image.open(tmp_path / "train" / "cat" / "0.png")).transpose(2, 0, 1)
    np.testing.assert_allclose(splits["train"].images[0] * 255, first, atol=1e-3)


def test_image_folder_cap_per_class(tmp_path, rng):
    _write_images(tmp_path, rng, per_class=4, ext="jpg")
    splits = load_image_folder(tmp_path, {"train": 2, "test": None})
    assert np.bincount(splits["train"].labels).tolist() == [2, 2] and len(splits["test"]) == 8


def test_image_folder_non_image_is_an_error(tmp_path, rng):
    _write_images(tmp_path, rng)
    (tmp_path / "train" / "cat" / "notes.png").write_text("I am not a PNG")
    with pytest.raises(DlspError, match="cannot decode image"):
        load_image_folder(tmp_path)


def test_image_folder_inconsistent_sizes_is_an_error(tmp_path, rng):
    from PIL import Image

    _write_images(tmp_path, rng)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "train" / "dog" / "big.png")
    with pytest.raises(DlspError, match="all must match"):
        load_image_folder(tmp_path)


def test_image_folder_unknown_extension_and_layout(tmp_path, rng):
    _write_images(tmp_path, rng)
    (tmp_path / "train" / "cat" / "readme.txt").write_text("hello")
    with pytest.raises(DlspError, match="not an image file"):
        load_image_folder(tmp_path)
    with pytest.raises(DlspError, match="not an image-folder layout"):
        load_image_folder(tmp_path / "train")


@pytest.mark.shared_data
def test_real_mnist_and_cifar_folders(shared_data):
    mnist = shared_data / "images" / "mnist"
    labels = read_idx(mnist / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10_000,) and set(np.unique(labels)) == set(range(10))
    splits = load_image_folder(shared_data / "images" / "cifar10", {"train": 2, "test": 1})
    assert splits["train"].images.shape == (20, 3, 32, 32) and len(splits["test"]) == 10
    assert "airplane" in splits["train"].classes

"""Files built to attack dlsp are refused with `DlspError`, and their payload never runs.

The payload of every pickle here would create a marker file when unpickled by a trusting loader; each test
checks the refusal and that the marker is absent. Also: YAML python tags, and manifest paths escaping the
dataset root (refused unless explicitly allowed), in the library and through the CLI.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from dlsp.errors import DlspError


class MarkerPayload:
    """Unpickling this calls `Path.touch(marker)`: proof of code execution if the marker appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


def evil_checkpoint(path: Path, marker: Path, legacy: bool = False) -> Path:
    """A dlsp-looking checkpoint whose payload field carries the code-execution object."""
    from dlsp.train.checkpoint import FORMAT

    payload = {"format": FORMAT, "task": "denoise", "model": "linear", "model_args": {},
               "state_dict": {}, "sample_rate": 16000, "stft": {}, "evil": MarkerPayload(marker)}
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_checkpoint_with_code_payload_is_refused(tmp_path: Path, marker: Path, legacy: bool) -> None:
    from dlsp.denoise.model_file import load_denoiser
    from dlsp.train.checkpoint import load_checkpoint
    from dlsp.vision.model_file import load_classifier

    path = evil_checkpoint(tmp_path / "evil.pt", marker, legacy)
    for loader in (load_checkpoint, load_denoiser, load_classifier):
        with pytest.raises(DlspError, match="refused to load: not a plain-data checkpoint") as info:
            loader(path)
        assert info.value.path == str(path)
    assert not marker.exists()


def test_plain_pickle_posing_as_checkpoint_is_refused(tmp_path: Path, marker: Path) -> None:
    from dlsp.train.checkpoint import load_checkpoint

    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"format": "dlsp-checkpoint/1", "x": MarkerPayload(marker)}))
    with pytest.raises(DlspError):
        load_checkpoint(path)
    assert not marker.exists()


def test_checkpoint_payload_refused_through_the_cli(tmp_path: Path, marker: Path) -> None:
    path = evil_checkpoint(tmp_path / "evil.pt", marker)
    audio = tmp_path / "in.wav"
    sf.write(audio, 0.3 * np.sin(np.arange(4000) / 5.0), 16000)
    proc = subprocess.run([sys.executable, "-m", "dlsp", "denoise", "run", "--model", str(path), str(audio),
                           "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "evil.pt" in lines[0] and "refused" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists()


def evil_cifar_batch(marker: Path) -> bytes:
    return pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [MarkerPayload(marker)]}, protocol=2)


def test_cifar_batch_with_code_payload_is_refused(tmp_path: Path, marker: Path) -> None:
    from dlsp.data.image_files import read_cifar_batch

    path = tmp_path / "data_batch_1"
    path.write_bytes(evil_cifar_batch(marker))
    with pytest.raises(DlspError, match="refused CIFAR batch: not plain data"):
        read_cifar_batch(path)
    assert not marker.exists()


def test_cifar_folder_with_code_payload_in_meta_or_batch_is_refused(tmp_path: Path, marker: Path) -> None:
    from dlsp.data.image_files import load_cifar_batches
    from fuzz_targets import cifar_batch_bytes, cifar_meta_bytes

    evil_meta = pickle.dumps({b"label_names": [MarkerPayload(marker)]}, protocol=2)
    for meta, batch in ((evil_meta, cifar_batch_bytes()), (cifar_meta_bytes(), evil_cifar_batch(marker))):
        folder = tmp_path / f"cifar-{len(meta)}"
        folder.mkdir()
        (folder / "batches.meta").write_bytes(meta)
        (folder / "data_batch_1").write_bytes(batch)
        (folder / "test_batch").write_bytes(cifar_batch_bytes())
        with pytest.raises(DlspError, match="refused"):
            load_cifar_batches(folder)
    assert not marker.exists()


def test_cifar_pickle_cannot_choose_a_codec(tmp_path: Path) -> None:
    # numpy pickles use _codecs.encode(text, "latin1"); the allow-list entry accepts that codec only.
    import codecs

    from dlsp.data.image_files import read_cifar_batch

    class Encode:
        def __reduce__(self):
            return codecs.encode, ("eJzLSM3JyQcABiwCFQ==", "base64")

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Encode()}, protocol=2))
    with pytest.raises(DlspError, match=r"refused _codecs\.encode"):
        read_cifar_batch(path)


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system", "!!python/object/new:pathlib.Path.touch"])
def test_recipe_with_python_tags_cannot_run_code(tmp_path: Path, marker: Path, tag: str) -> None:
    from dlsp.config import load_config, load_recipe
    from dlsp.denoise.train import DenoiseConfig

    recipe = tmp_path / "evil.yaml"
    recipe.write_text(f"train:\n  lr: {tag} ['touch {marker}']\n")
    for load in (load_recipe, lambda path: load_config(DenoiseConfig, path)):
        with pytest.raises(DlspError, match="not a valid YAML recipe") as info:
            load(recipe)
        assert str(info.value).count("\n") == 0 and "evil.yaml" in str(info.value)
    assert not marker.exists()


# ---------------------------------------------------------------- manifest paths escaping the dataset root


@pytest.fixture
def escaping_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """root/ with a manifest listing ../outside.wav, and outside.wav beside root."""
    tone = 0.3 * np.sin(np.arange(800) / 5.0)
    root = tmp_path / "root"
    root.mkdir()
    sf.write(root / "inside.wav", tone, 8000)
    outside = tmp_path / "outside.wav"
    sf.write(outside, tone, 8000)
    return root, outside


@pytest.mark.parametrize("listed", ["../outside.wav", "sub/../../outside.wav", "ABSOLUTE"])
def test_manifest_path_escaping_the_root_is_refused_unless_allowed(escaping_dataset, listed: str) -> None:
    from dlsp.data.index import index_dataset, read_manifest

    root, outside = escaping_dataset
    listed = str(outside) if listed == "ABSOLUTE" else listed
    (root / "manifest.csv").write_text(f"path,label\ninside.wav,a\n{listed},b\n")
    for load in (lambda: read_manifest(root / "manifest.csv"), lambda: index_dataset(root)):
        with pytest.raises(DlspError, match=r"line 3: .*(refused|leaves)"):
            load()
    items = read_manifest(root / "manifest.csv", allow_outside=True)
    assert outside in [item.path for item in items]


def test_pairs_manifest_escaping_the_root_is_refused_unless_allowed(escaping_dataset) -> None:
    from dlsp.data.pairs import index_pairs

    root, outside = escaping_dataset
    (root / "manifest.csv").write_text(f"clean,noisy\n{outside},inside.wav\n")
    with pytest.raises(DlspError, match="absolute path"):
        index_pairs(root)
    assert index_pairs(root, allow_outside=True)[0].clean == outside


def test_manifest_escape_through_the_cli(escaping_dataset, cli) -> None:
    root, _ = escaping_dataset
    (root / "manifest.csv").write_text("path,label\ninside.wav,a\n../outside.wav,b\n")
    code, _, err = cli("data", "index", str(root))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--allow-outside" in err
    code, out, _ = cli("data", "index", str(root), "--allow-outside")
    assert code == 0 and "2" in out

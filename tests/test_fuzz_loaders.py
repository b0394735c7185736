"""Every loader of user files, fuzzed: mutated valid files and arbitrary bytes either load or raise `DlspError`.

Never another exception, never a hang (hypothesis deadline), never a huge allocation (tracemalloc peak per
input). Inputs come from `tests/fuzz_targets.py` (seed corpus made here, byte-level mutations); runs are
derandomized so the default suite is deterministic. `benchmarks/fuzz.py` runs the same targets for minutes.
Also: headers claiming 10^12 samples or items are refused before anything of that size is allocated.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import tracemalloc
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from dlsp.errors import DlspError
from fuzz_targets import TARGETS, Target, input_strategy

# Generous for first-use imports and caches (about 70 MiB for the first checkpoint a process loads), far below
# what the bombs found so far allocate (GBs).
PEAK_LIMIT_BYTES = 256 * 2**20
# Fewer examples for the slow targets (model construction, SQLite) keep the file under a minute on 2 cores.
EXAMPLES = {"checkpoint": 25, "checkpoint_payload": 25, "speaker_model": 20, "speaker_db": 20, "images": 30}
DEFAULT_EXAMPLES = 40
# Targets with a known open bug (expected to fail until fixed); none at present.
KNOWN_OPEN: dict[str, str] = {}


def run_bounded(target: Target, data: bytes, work: Path) -> None:
    """Run one input in a fresh folder: `DlspError` is fine, anything else propagates; memory is bounded."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tracemalloc.start()
    try:
        target.run(data, work)
    except DlspError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < PEAK_LIMIT_BYTES, f"{target.name}: peak {peak / 2**20:.0f} MiB on a {len(data)}-byte input"


def target_params() -> list:
    return [pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_OPEN[name], strict=False))
            if name in KNOWN_OPEN else name for name in TARGETS]


@pytest.fixture(scope="module")
def seed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("seeds")


@pytest.mark.parametrize("name", list(TARGETS))
def test_seed_corpus_is_valid(name: str, seed_root: Path) -> None:
    # The seeds must load cleanly, or the fuzzer would only be mutating files that fail anyway.
    target = TARGETS[name]
    for index, seed in enumerate(target.seeds(seed_root / name)):
        work = seed_root / f"{name}-load-{index}"
        work.mkdir()
        target.run(seed, work)


@pytest.mark.parametrize("name", target_params())
def test_loader_gives_dlsp_error_or_loads(name: str, seed_root: Path) -> None:
    target = TARGETS[name]
    seeds = target.seeds(seed_root / f"{name}-fuzz-seeds")
    work = seed_root / f"{name}-fuzz"

    # The deadline catches hangs, not slowness: a loaded CI machine has taken 12 s for one checkpoint input.
    @settings(max_examples=EXAMPLES.get(name, DEFAULT_EXAMPLES), deadline=timedelta(seconds=60),
              derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(input_strategy(seeds))
    def check(data: bytes) -> None:
        run_bounded(target, data, work)

    check()


# ---------------------------------------------------------------- headers claiming absurd sizes


def idx_header(shape: tuple[int, ...], type_code: int = 0x08) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_header_claiming_10_to_the_12_items_is_refused_before_allocating(tmp_path: Path,
                                                                            compress: bool) -> None:
    from dlsp.data.image_files import read_idx

    data = idx_header((10**6, 1000, 1000)) + bytes(64)  # 10^12 bytes announced, 64 present
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if compress else data)
    tracemalloc.start()
    try:
        with pytest.raises(DlspError, match="IDX header announces"):
            read_idx(path)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 2**20


def test_idx_header_within_limits_but_beyond_the_file_is_refused(tmp_path: Path) -> None:
    # 1 GiB is under the absolute cap, but a 100-byte file cannot hold it: refused without reading.
    from dlsp.data.image_files import read_idx

    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(idx_header((1024, 1024, 1024)) + bytes(84))
    with pytest.raises(DlspError, match="more than the 100-byte file can hold"):
        read_idx(path)


def test_idx_dimension_product_overflowing_int64_is_refused(tmp_path: Path) -> None:
    # Four dimensions of 2^32-1 overflow a numpy int64 product (found by fuzzing: a negative read length).
    from dlsp.data.image_files import read_idx

    path = tmp_path / "x-idx4-ubyte"
    path.write_bytes(idx_header((0xFFFFFFFF,) * 4, 0x0E) + bytes(16))
    with pytest.raises(DlspError, match="IDX header announces"):
        read_idx(path)


def flac_claiming(frames: int) -> bytes:
    """A valid 400-frame FLAC whose STREAMINFO says it holds `frames` frames."""
    import numpy as np
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(np.arange(400) / 5.0), 8000, format="FLAC", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    field = 8 + 10  # "fLaC", block header, then min/max block and frame sizes
    bits = int.from_bytes(data[field:field + 8], "big")
    data[field:field + 8] = ((bits & ~((1 << 36) - 1)) | frames).to_bytes(8, "big")
    return bytes(data)


def rf64_claiming(frames: int) -> bytes:
    """A valid 400-frame RF64 file whose ds64 chunk says it holds `frames` 16-bit frames."""
    import numpy as np
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(np.arange(400) / 5.0), 8000, format="RF64", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    ds64 = data.index(b"ds64")
    struct.pack_into("<QQQ", data, ds64 + 8, 2 * frames + 100, 2 * frames, frames)
    return bytes(data)


AUDIO_CLAIMS = {
    "flac-2^29-frames.flac": lambda: flac_claiming(1 << 29),  # under MAX_SAMPLES: needs the stream check
    "flac-2^35-frames.flac": lambda: flac_claiming(1 << 35),
    "rf64-10^12-frames.wav": lambda: rf64_claiming(10**12),
    "wav-4GiB-data-chunk.wav": lambda: _wav_claiming_data_bytes(0xFFFFFFF0),
}


def _wav_claiming_data_bytes(size: int) -> bytes:
    header = b"RIFF" + struct.pack("<I", min(36 + size, 0xFFFFFFFF)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    return header + fmt + b"data" + struct.pack("<I", size) + bytes(800)


@pytest.mark.parametrize("name", list(AUDIO_CLAIMS))
def test_audio_header_claiming_huge_length_allocates_nothing_of_that_size(tmp_path: Path, name: str) -> None:
    # In a child process with its address space capped at 1 GiB over start-up: trusting any of these headers
    # means a multi-GiB buffer, which the cap turns into a MemoryError (and the test fails).
    path = tmp_path / name
    path.write_bytes(AUDIO_CLAIMS[name]())
    script = textwrap.dedent(f"""
        import resource, sys, tracemalloc
        from dlsp.audio.io import load_audio
        from dlsp.errors import DlspError
        with open("/proc/self/status") as status:
            vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, resource.RLIM_INFINITY))
        tracemalloc.start()
        try:
            audio, rate = load_audio({str(path)!r}, allow_silent=True)
            outcome = f"loaded {{audio.shape}}"
        except DlspError as exc:
            outcome = f"refused: {{exc.problem}}"
        peak = tracemalloc.get_traced_memory()[1]
        print(outcome)
        print(peak)
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    outcome, peak = proc.stdout.strip().splitlines()
    assert int(peak) < 16 * 2**20, f"{name}: {outcome}, peak {int(peak) / 2**20:.0f} MiB"
    # Either refused, or (when libsndfile itself recounts from the file size) just the 400 real frames.
    assert outcome.startswith("refused") or outcome == "loaded (400,)", outcome


def test_audio_with_truthful_long_header_still_loads(tmp_path: Path) -> None:
    # The stream check must not refuse honest files longer than the trusted size (2^20 samples).
    import numpy as np
    import soundfile as sf

    from dlsp.audio.io import load_audio

    frames = (1 << 20) + 123
    audio = (0.2 * np.sin(np.arange(frames) / 7.0)).astype(np.float32)
    sf.write(tmp_path / "long.flac", audio, 16000, subtype="PCM_16")
    loaded, rate = load_audio(tmp_path / "long.flac")
    assert rate == 16000 and loaded.shape == (frames,)
    assert np.max(np.abs(loaded - audio)) < 1e-3


def test_image_header_claiming_a_billion_pixels_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    from dlsp.data.image_files import load_image_folder

    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, 40000, 40000)  # IHDR width and height (CRC now wrong: never decoded)
    for split in ("train", "test"):
        (tmp_path / split / "a").mkdir(parents=True)
        (tmp_path / split / "a" / "0.png").write_bytes(bytes(data))
    with pytest.raises(DlspError, match=r"0\.png"):
        load_image_folder(tmp_path)


def test_recipe_alias_bomb_and_cycle_are_refused(tmp_path: Path) -> None:
    from dlsp.config import load_config
    from dlsp.denoise.train import DenoiseConfig

    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    bomb = tmp_path / "bomb.yaml"  # 10^8 values once expanded, in nine lines
    bomb.write_text("model:\n  args:\n" + "".join(f"    {line}\n" for line in levels))
    with pytest.raises(DlspError, match="expands to more than"):
        load_config(DenoiseConfig, bomb)
    cycle = tmp_path / "cycle.yaml"
    cycle.write_text("model: &m {args: {x: *m}}\n")
    with pytest.raises(DlspError, match="nests deeper"):
        load_config(DenoiseConfig, cycle)


# ---------------------------------------------------------------- regressions of bugs the fuzzing found


def test_speaker_model_file_with_text_threshold_is_a_dlsp_error(tmp_path: Path) -> None:
    import torch

    from dlsp.speaker.model_file import load_speaker_model
    from fuzz_targets import tiny_checkpoints

    path = tiny_checkpoints(tmp_path)["speaker"]
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "threshold": "abc"}, path)
    with pytest.raises(DlspError):
        load_speaker_model(path)


def test_speaker_database_with_a_corrupt_page_is_a_dlsp_error(tmp_path: Path) -> None:
    from dlsp.speaker.database import SpeakerDatabase
    from fuzz_targets import _speaker_db

    path = _speaker_db(tmp_path / "speakers.db")
    data = bytearray(path.read_bytes())
    data[3 * 4096:3 * 4096 + 100] = b"\xff" * 100  # the speakers table's page
    path.write_bytes(bytes(data))
    with pytest.raises(DlspError), SpeakerDatabase(path, None, None, create=False) as db:
        db.list()


def test_cifar_pickle_with_a_huge_memo_index_is_refused_in_little_memory(tmp_path: Path) -> None:
    # Found by fuzzing: the C unpickler zeroes a memo table as large as the biggest LONG_BINPUT index (23 GB
    # for this 20-byte file). In a child with a 1 GiB address-space margin, so a regression cannot exhaust RAM.
    path = tmp_path / "batches.meta"
    path.write_bytes(b"\x80\x02}r" + struct.pack("<I", 1476487198) + b"(X\x01\x00\x00\x00a\x02")
    script = textwrap.dedent(f"""
        import resource
        from dlsp.errors import DlspError
        with open("/proc/self/status") as status:
            vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, resource.RLIM_INFINITY))
        from dlsp.data.image_files import _cifar_classes
        try:
            _cifar_classes(__import__("pathlib").Path({str(path)!r}))
        except DlspError as exc:
            print("refused:", exc.problem)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("refused: refused batches.meta"), proc.stderr


def test_pickle_length_claims_cannot_allocate_more_than_the_file_holds() -> None:
    import pickle

    from dlsp.data.image_files import restricted_load

    # BYTEARRAY8 claiming 4 GB (pickle's own unpickler allocates the claim before reading; found by fuzzing).
    bomb = b"\x80\x05\x96" + struct.pack("<Q", 2**32) + b"xx."
    tracemalloc.start()
    try:
        with pytest.raises(pickle.UnpicklingError, match="BYTEARRAY8"):
            restricted_load(bomb)
        # numpy's _reconstruct with a shape of 10^9 elements allocates it before the data is checked.
        shape_bomb = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ\x00\xca\x9a;\x85"
                      b"C\x01b\x87R.")
        with pytest.raises(pickle.UnpicklingError, match="cannot fit"):
            restricted_load(shape_bomb)
        assert tracemalloc.get_traced_memory()[1] < 16 * 2**20
    finally:
        tracemalloc.stop()
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(restricted_load(pickle.dumps({b"data": array}, protocol=2))[b"data"], array)


def test_denoiser_file_with_tensors_as_stft_settings_is_a_dlsp_error(tmp_path: Path) -> None:
    import torch

    from dlsp.denoise.model_file import load_denoiser
    from fuzz_targets import tiny_checkpoints

    path = tiny_checkpoints(tmp_path)["denoise"]
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "stft": {**payload["stft"], "hop_length": torch.zeros(0)}}, path)
    with pytest.raises(DlspError, match="bad STFT settings"):
        load_denoiser(path)

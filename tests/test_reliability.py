"""Reliability of the command line under kill -9, full disks, read-only folders and concurrent runs.

Each test runs the real `dlsp` in child processes through the helpers of `benchmarks/reliability.py`, which runs
the same checks many times at random kill moments; here each runs once, at a moment chosen to hit the work.
"""

from __future__ import annotations

import ctypes
import importlib.util
import multiprocessing
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from dlsp.data.synthetic_corpus import make_synthetic_corpus
from dlsp.fileio import TEMP_PREFIX, is_stale_temp, remove_stale_temp_files
from dlsp.speaker.database import SpeakerDatabase, check_database

_SPEC = importlib.util.spec_from_file_location("dlsp_reliability_benchmark",
                                               Path(__file__).resolve().parents[1] / "benchmarks" / "reliability.py")
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench  # dataclasses look their module up while the file executes
_SPEC.loader.exec_module(bench)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("audio") / "in"
    bench.make_audio_folder(folder, 20, seconds=3.0)
    return folder


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> list[Path]:
    return bench.speaker_files(tmp_path_factory.mktemp("voices"), 4)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------------------------------------ kill -9


def test_kill_during_denoise_run_leaves_only_complete_outputs_and_skip_existing_finishes(tmp_path, audio_dir):
    trial = bench.denoise_kill_trial(tmp_path, audio_dir, min_outputs=3)
    assert trial.note != "finished before the kill", "the run ended before it could be killed"
    assert trial.problems == [] and trial.lost == 0


def test_stale_temp_files_of_dead_writers_go_and_live_ones_stay(tmp_path, tone, cli):
    tone("in/a.wav")
    out = tmp_path / "out" / "sub"
    out.mkdir(parents=True)
    dead = out / f"{TEMP_PREFIX}{_dead_pid()}-x1.wav"
    live = out / f"{TEMP_PREFIX}{os.getpid()}-x2.wav"  # a concurrent run still writing
    foreign = out / f"{TEMP_PREFIX}oldstyle.wav"  # an unknown writer, recent: kept for a day
    for path in (dead, live, foreign):
        path.write_bytes(b"RIFF")
    assert is_stale_temp(dead) and not is_stale_temp(live) and not is_stale_temp(foreign)
    code, _, err = cli("denoise", "run", tmp_path / "in", "-o", tmp_path / "out")
    assert code == 0 and "removed 1 temporary file" in err
    assert not dead.exists() and live.exists() and foreign.exists()
    os.utime(foreign, (1, 1))
    assert remove_stale_temp_files(tmp_path / "out") == 1 and not foreign.exists()
    assert oct((tmp_path / "out" / "a.wav").stat().st_mode & 0o777) != "0o600"  # not mkstemp's private mode


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_synthetic_corpus(tmp_path_factory.mktemp("synth") / "c", seed=5, n_speakers=5,
                                 utterances_per_speaker=3, noise_files_per_kind=3, noise_seconds=3.0,
                                 progress=False)


def test_kill_during_training_leaves_loadable_files_and_resume_completes(tmp_path, corpus):
    trial = bench.train_kill_trial(tmp_path, corpus, epochs=6, min_epochs=2)
    assert trial.note.startswith("killed after"), trial.note
    assert trial.problems == [] and trial.lost == 0


def _enroll_and_die_at(path: Path, statement: str) -> None:
    """In a forked child: enroll alice with two more embeddings, SIGKILLed as `statement` starts to run."""
    db = SpeakerDatabase(path, "model-x", 4)

    def trace(sql: str) -> None:
        # Die the way kill -9 kills: no cleanup, no rollback.
        if sql.strip().upper().startswith(statement):
            os.kill(os.getpid(), signal.SIGKILL)

    db.connection.set_trace_callback(trace)
    db.enroll("alice", np.ones((2, 4), np.float32))
    db.close()


def _in_child(target, *args) -> int:
    # fork, not spawn: the child needs no fresh interpreter (and no second torch import) to run SQLite.
    child = multiprocessing.get_context("fork").Process(target=target, args=args)
    child.start()
    child.join(60)
    return child.exitcode


@pytest.mark.parametrize(("statement", "expected_files"), [("INSERT", 1), ("COMMIT", 1), ("NOTHING", 3)])
def test_kill_during_enrollment_keeps_the_old_or_the_new_state(tmp_path, statement, expected_files):
    path = tmp_path / "speakers.db"
    with SpeakerDatabase(path, "model-x", 4) as db:
        db.enroll("alice", np.array([[1, 0, 0, 0]], np.float32))
        db.enroll("bob", np.array([[0, 1, 0, 0]], np.float32))
    assert _in_child(_enroll_and_die_at, path, statement) == (-signal.SIGKILL if statement != "NOTHING" else 0)
    result = check_database(path)
    assert result.ok, result.problems
    assert result.names == ["alice", "bob"]
    with SpeakerDatabase(path, "model-x", 4) as db:
        alice = db.get("alice")
    assert alice.n_files == expected_files
    expected = [1, 0, 0, 0] if expected_files == 1 else np.array([3, 2, 2, 2]) / np.sqrt(21)
    np.testing.assert_allclose(alice.embedding, expected, rtol=1e-6)


def test_check_database_reports_damage_and_the_cli_exits_2(tmp_path, cli):
    path = tmp_path / "speakers.db"
    with SpeakerDatabase(path, "model-x", 4) as db:
        db.enroll("alice", np.ones((1, 4), np.float32))
    assert cli("speaker", "check", "--db", path)[:2] == (0, f"{path}: ok, 1 enrolled\n")
    with SpeakerDatabase(path, "model-x", 4) as db:
        db.connection.execute("UPDATE speakers SET embedding = ? WHERE name = 'alice'",
                              (np.ones(3, np.float32).tobytes(),))
    assert check_database(path).problems == ["'alice': embedding has 3 values, expected 4"]
    code, _, err = cli("speaker", "check", "--db", path)
    assert code == 2 and "damaged speaker database" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------------------------ disk and permissions


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return apply


def _without_root_file_powers() -> None:
    # Root ignores file permissions through CAP_DAC_OVERRIDE; drop it (and DAC_READ_SEARCH) from the bounding
    # set so the program started next runs with ordinary permission checks.
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _assert_one_line_error(done, *needles: str) -> None:
    assert done.code == 2, (done.code, done.err)
    lines = done.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlsp: error: "), done.err
    assert "Traceback" not in done.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _visible_and_temp(folder: Path) -> tuple[list[str], list[str]]:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    return (sorted(p.relative_to(folder).as_posix() for p in files if not p.name.startswith(".")),
            sorted(p.name for p in files if p.name.startswith(TEMP_PREFIX)))


def test_full_disk_and_read_only_folder_stop_with_one_line_and_leave_nothing_partial(tmp_path, audio_dir):
    # Both children at once: each mostly waits for torch to import.
    full_out, ro_root = tmp_path / "full", Path(tempfile.mkdtemp(prefix="dlsp-ro-"))
    try:
        ro_out = ro_root / "out"
        (ro_out / "sub").mkdir(parents=True)
        ro_root.chmod(0o755)
        (ro_out / "sub").chmod(0o555)  # the subfolder's outputs cannot be written, the top level's can
        drop = _without_root_file_powers if os.geteuid() == 0 else None
        full = bench.start(bench.dlsp_command("denoise", "run", audio_dir, "-o", full_out),
                           tmp_path / "logs" / "full", _file_size_limit(20_000))
        try:
            ro = bench.start(bench.dlsp_command("denoise", "run", audio_dir, "-o", ro_out), tmp_path / "logs" / "ro",
                             drop)
        except (OSError, subprocess.SubprocessError) as exc:
            ro = None
            skip_reason = f"cannot drop root's permission override here ({exc})"
        done_full = bench.finish(full)
        _assert_one_line_error(done_full, str(full_out / "clip_00.wav"), "file too large",
                               "stopped after denoising 0 of 20 files")
        assert _visible_and_temp(full_out) == ([], [])
        if ro is None:
            pytest.skip(skip_reason)
        done_ro = bench.finish(ro)
        top_level = sorted(p.name for p in audio_dir.glob("*.wav"))  # written before the first file of sub/
        _assert_one_line_error(done_ro, str(ro_out / "sub"), "not writable",
                               f"stopped after denoising {len(top_level)} of 20 files")
        visible, temps = _visible_and_temp(ro_out)
        assert visible == top_level and temps == []
        assert bench.output_problems(audio_dir, ro_out) == []
    finally:
        (ro_root / "out" / "sub").chmod(0o755)
        shutil.rmtree(ro_root, ignore_errors=True)


def test_small_full_file_system_stops_with_one_line_and_keeps_finished_outputs(tmp_path, audio_dir, cli):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=240k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip() or made.returncode})")
    try:
        code, _, err = cli("denoise", "run", audio_dir, "-o", mount / "out")
        assert code == 2 and err.count("\n") == 1 and "no space left on device" in err, err
        visible, temps = _visible_and_temp(mount / "out")
        assert temps == [] and 1 <= len(visible) < 20
        assert f"stopped after denoising {len(visible)} of 20 files" in err
        assert bench.output_problems(audio_dir, mount / "out") == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# ------------------------------------------------------------------------------------------------ load


def test_four_concurrent_denoise_runs_on_one_folder(tmp_path, audio_dir):
    trial = bench.concurrent_denoise(tmp_path, audio_dir, processes=4)
    assert trial.problems == []


def _enroll_many(path: Path, name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(10):  # several transactions each, so the writers really interleave
        with SpeakerDatabase(path, "model-x", 4) as db:
            db.enroll(name, rng.random((1, 4), np.float32) + 0.1)


def test_four_concurrent_enrolling_processes_on_a_new_database(tmp_path):
    # Four writers create and fill one database at once (two of them the same name): nothing may be lost.
    path = tmp_path / "shared.db"
    children = [multiprocessing.get_context("fork").Process(target=_enroll_many, args=(path, name, seed))
                for seed, name in enumerate(("alice", "bob", "alice", "carol"))]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    result = check_database(path)
    assert result.ok and result.names == ["alice", "bob", "carol"]
    with SpeakerDatabase(path, "model-x", 4) as db:
        assert {p.name: p.n_files for p in db.list()} == {"alice": 20, "bob": 10, "carol": 10}


@pytest.mark.slow  # four speaker encoders loading at once: about 30 s on 2 busy cores
def test_four_concurrent_enroll_commands_on_one_database(tmp_path, voices):
    trial = bench.concurrent_enroll(tmp_path, voices, ("alice", "bob", "alice", "carol"))
    assert trial.problems == [] and trial.lost == 0

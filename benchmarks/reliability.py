"""Reliability benchmark: kill -9 at random moments, concurrent writers, bounded memory, and the fuzzers.

Run: `.venv/bin/python benchmarks/reliability.py [--quick] [--json FILE]` (about 50 minutes on 2 cores, half of
it fuzzing; `--quick` about 8). Every check runs the real `dlsp` command line in child processes on synthetic
data made in a temporary folder, and counts failures (a broken promise: a damaged or half-written file, a
left-over temporary file, an error exit, a finished output redone) and lost files (finished work that did not
survive). Both must be 0.

- denoise kill -9: `dlsp denoise run` over a folder is killed at a random moment; every output that exists must
  be complete and identical to an uninterrupted run's, and `--skip-existing` must finish the rest without
  touching the finished files.
- train kill -9: `dlsp denoise train` of a tiny recipe is killed at a random moment; best.pt, last.pt,
  metrics.jsonl and config.yaml must load, and `--resume` must finish the run with every epoch logged once.
- enroll kill -9: `dlsp speaker enroll` adding two files to a person is killed at a random moment; the database
  must pass `check_database` (SQLite integrity check included) and hold the old or the new enrolment.
- concurrent: 4 `dlsp denoise run --skip-existing` on one input and output folder, and 4 `dlsp speaker enroll`
  on one database (two of them the same name), all at once.
- memory: peak RSS of `dlsp denoise run` on a 2-hour 16 kHz file (10 minutes with `--quick`), from the child's
  own rusage, must stay under 1 GB.
- fuzz: `benchmarks/fuzz.py --json` (file loaders fed damaged inputs; 10 s per target with `--quick`) when it
  exists: its rows (target, inputs tried, crashes + hangs) are included.

The tests in `tests/test_reliability.py` and `tests/test_bounded_memory.py` run
single trials of these functions.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from dlsp.fileio import TEMP_PREFIX

HERE = Path(__file__).resolve().parent
MEMORY_LIMIT_MB = 1024.0
TINY_TRAIN = ["model.args={hidden: [32], context: 1, output: mask}", "stft.n_fft=256", "stft.hop_length=128",
              "data.segment_seconds=0.5", "data.segments_per_epoch=32", "data.val_segments=16",
              "train.batch_size=8", "train.device=cpu", "train.patience=null"]


@dataclass
class Row:
    """One line of the result table."""

    check: str
    trials: int
    failures: int
    lost: int
    note: str = ""


@dataclass
class Finished:
    """A child process that ended: exit code, output and its own peak resident memory."""

    code: int
    out: str
    err: str
    max_rss_mb: float


@dataclass
class Trial:
    """What one trial found wrong (empty lists: all promises kept)."""

    problems: list[str] = field(default_factory=list)
    lost: int = 0
    note: str = ""


# ---------------------------------------------------------------------------------------------------- processes


def dlsp_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "dlsp", *(str(a) for a in args)]


def child_env() -> dict[str, str]:
    # One thread per child: the benchmark runs several at once on a small machine.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def start(args: Sequence[str], logs: Path, preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen:
    """Start a child with stdout and stderr going to `logs`.out/.err (pipes could fill and stall it)."""
    logs.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{logs}.out", "wb") as out, open(f"{logs}.err", "wb") as err:
        proc = subprocess.Popen(list(args), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=child_env(),
                                preexec_fn=preexec_fn)
    proc.logs = logs  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen, timeout: float = 600.0) -> Finished:
    """Wait for `proc` and collect its output and its own peak RSS (`wait4`, not the maximum over all children)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    logs = proc.logs  # type: ignore[attr-defined]
    out = Path(f"{logs}.out").read_text(errors="replace")
    err = Path(f"{logs}.err").read_text(errors="replace")
    return Finished(proc.returncode, out, err, usage.ru_maxrss / 1024.0)


def run(args: Sequence[str], logs: Path, timeout: float = 600.0,
        preexec_fn: Callable[[], None] | None = None) -> Finished:
    return finish(start(args, logs, preexec_fn), timeout)


def kill_when(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 300.0) -> bool:
    """SIGKILL `proc` as soon as `condition()` holds; False if it ended (or timed out) first."""
    deadline = time.monotonic() + timeout
    while running(proc) and time.monotonic() < deadline:
        if condition():
            proc.send_signal(signal.SIGKILL)
            return True
        time.sleep(0.005)
    return False


def running(proc: subprocess.Popen) -> bool:
    """Whether `proc` is still running, without reaping it (`finish` reaps it to read its own rusage)."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None


def after(seconds: float) -> Callable[[], bool]:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() >= end


# ---------------------------------------------------------------------------------------------------- audio files


def make_audio_folder(folder: Path, n_files: int = 20, seconds: float = 3.0, sample_rate: int = 16000,
                      seed: int = 0) -> list[Path]:
    """`n_files` short noisy tones (PCM_16 WAV), in a subfolder too so the output tree is mirrored."""
    rng = np.random.default_rng(seed)
    paths = []
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    for index in range(n_files):
        tone = 0.3 * np.sin(2 * np.pi * (200 + 37 * index) * t)
        audio = (tone + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
        path = folder / ("sub" if index % 4 == 3 else "") / f"clip_{index:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio, sample_rate, subtype="PCM_16")
        paths.append(path)
    return paths


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(f"{TEMP_PREFIX}*")) if folder.exists() else []


def output_problems(inputs: Path, outputs: Path, reference: dict[str, np.ndarray] | None = None,
                    expect_all: bool = False) -> list[str]:
    """Every visible file under `outputs` must be a complete output of a file under `inputs`.

    Complete means readable, with the input's rate, channels and length, and (given `reference`, the outputs of an
    uninterrupted run by relative path) the same samples.
    """
    problems = []
    wanted = {p.relative_to(inputs).as_posix() for p in inputs.rglob("*.wav")}
    found = set()
    for path in sorted(outputs.rglob("*")) if outputs.exists() else []:
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(outputs).as_posix()
        found.add(relative)
        if relative not in wanted:
            problems.append(f"stray visible file {relative}")
            continue
        try:
            data, rate = sf.read(str(path), dtype="int16", always_2d=True)
        except Exception as exc:  # any failure to read is the finding
            problems.append(f"{relative}: unreadable ({exc})")
            continue
        info = sf.info(str(inputs / relative))
        if rate != info.samplerate or data.shape != (info.frames, info.channels):
            problems.append(f"{relative}: {data.shape} at {rate} Hz, input {(info.frames, info.channels)} at "
                            f"{info.samplerate} Hz")
        elif reference is not None and not np.array_equal(data, reference[relative]):
            problems.append(f"{relative}: samples differ from an uninterrupted run")
    if expect_all:
        problems += [f"{name}: output missing" for name in sorted(wanted - found)]
    return problems


def read_outputs(outputs: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(outputs).as_posix(): sf.read(str(p), dtype="int16", always_2d=True)[0]
            for p in outputs.rglob("*.wav") if not p.name.startswith(".")}


def mtimes(outputs: Path) -> dict[str, int]:
    return {p.relative_to(outputs).as_posix(): p.stat().st_mtime_ns
            for p in outputs.rglob("*.wav") if not p.name.startswith(".")}


def count_outputs(outputs: Path) -> int:
    return sum(1 for p in outputs.rglob("*.wav") if not p.name.startswith(".")) if outputs.exists() else 0


# ---------------------------------------------------------------------------------------------------- denoise


def denoise_kill_trial(work: Path, inputs: Path, *, delay: float | None = None, min_outputs: int | None = None,
                       reference: dict[str, np.ndarray] | None = None) -> Trial:
    """Kill `dlsp denoise run INPUTS -o OUT` after `delay` seconds or once `min_outputs` exist; check; re-run."""
    outputs = work / "out"
    shutil.rmtree(outputs, ignore_errors=True)
    proc = start(dlsp_command("denoise", "run", inputs, "-o", outputs, "--skip-existing"), work / "logs" / "kill")
    condition = after(delay) if delay is not None else (lambda: count_outputs(outputs) >= (min_outputs or 1))
    killed = kill_when(proc, condition)
    first = finish(proc)
    trial = Trial(note=f"{count_outputs(outputs)} outputs at the kill")
    if not killed:
        trial.note = "finished before the kill"
        if first.code != 0:
            trial.problems.append(f"exit {first.code}: {first.err.strip()[-300:]}")
    trial.problems += output_problems(inputs, outputs, reference)
    before = mtimes(outputs)
    again = run(dlsp_command("denoise", "run", inputs, "-o", outputs, "--skip-existing"), work / "logs" / "rerun")
    if again.code != 0:
        trial.problems.append(f"re-run exit {again.code}: {again.err.strip()[-300:]}")
    trial.problems += output_problems(inputs, outputs, reference, expect_all=True)
    after_rerun = mtimes(outputs)
    redone = [name for name, mtime in before.items() if after_rerun.get(name) != mtime]
    trial.problems += [f"{name}: finished output redone or lost by the re-run" for name in redone]
    trial.lost = len(redone)
    trial.problems += [f"temporary file left after the re-run: {p.name}" for p in temp_files(outputs)]
    return trial


def concurrent_denoise(work: Path, inputs: Path, processes: int = 4,
                       reference: dict[str, np.ndarray] | None = None) -> Trial:
    """`processes` runs of `dlsp denoise run --skip-existing` on the same input and output folders at once."""
    outputs = work / "out"
    shutil.rmtree(outputs, ignore_errors=True)
    procs = [start(dlsp_command("denoise", "run", inputs, "-o", outputs, "--skip-existing"),
                   work / "logs" / f"run{i}") for i in range(processes)]
    trial = Trial()
    for index, proc in enumerate(procs):
        done = finish(proc)
        if done.code != 0 or "error" in done.err.lower():
            trial.problems.append(f"process {index}: exit {done.code}: {done.err.strip()[-300:]}")
    trial.problems += output_problems(inputs, outputs, reference, expect_all=True)
    trial.problems += [f"temporary file left: {p.name}" for p in temp_files(outputs)]
    return trial


# ---------------------------------------------------------------------------------------------------- training


def train_command(corpus: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    sets = [a for item in TINY_TRAIN for a in ("--set", item)]
    return dlsp_command("denoise", "train", "--clean", corpus / "speech", "--noise", corpus / "noise", "--out", out,
                        "--quiet", "--epochs", epochs, *sets, *extra)


def run_folder_problems(out: Path) -> list[str]:
    """Whatever of best.pt, last.pt, metrics.jsonl and config.yaml exists must load."""
    import torch
    import yaml

    from dlsp.denoise.model_file import load_denoiser
    from dlsp.errors import DlspError
    from dlsp.train.run_folder import RESUME_FORMAT

    problems = []
    if (out / "best.pt").exists():
        try:
            load_denoiser(out / "best.pt")
        except DlspError as exc:
            problems.append(f"best.pt: {exc}")
    if (out / "last.pt").exists():
        try:
            state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
            if state.get("format") != RESUME_FORMAT:
                problems.append("last.pt: no resume format marker")
        except Exception as exc:  # any failure to load is the finding
            problems.append(f"last.pt: {str(exc).splitlines()[0][:200]}")
    if (out / "metrics.jsonl").exists():
        for number, line in enumerate((out / "metrics.jsonl").read_text().splitlines(), 1):
            try:
                json.loads(line)
            except ValueError:
                problems.append(f"metrics.jsonl line {number} is not JSON: {line[:80]!r}")
    if (out / "config.yaml").exists():
        try:
            if not isinstance(yaml.safe_load((out / "config.yaml").read_text()), dict):
                problems.append("config.yaml is not a mapping")
        except yaml.YAMLError as exc:
            problems.append(f"config.yaml: {str(exc).splitlines()[0]}")
    return problems


def train_kill_trial(work: Path, corpus: Path, epochs: int = 6, *, delay: float | None = None,
                     min_epochs: int | None = None) -> Trial:
    """Kill a tiny `dlsp denoise train` after `delay` s or `min_epochs` logged epochs; check; resume to the end."""
    out = work / "run"
    shutil.rmtree(out, ignore_errors=True)
    metrics = out / "metrics.jsonl"

    def logged() -> int:
        try:
            return len(metrics.read_text().splitlines())
        except OSError:
            return 0

    proc = start(train_command(corpus, out, epochs), work / "logs" / "train")
    killed = kill_when(proc, after(delay) if delay is not None else lambda: logged() >= (min_epochs or 1))
    finish(proc)
    trial = Trial(note=f"killed after {logged()} epochs" if killed else "finished before the kill")
    trial.problems += run_folder_problems(out)
    resumable = (out / "last.pt").exists()
    saved = _saved_epochs(out / "last.pt") if resumable else 0
    # Killed before its first epoch was saved: the folder holds its config, so it is started over.
    again = run(train_command(corpus, out, epochs, "--resume" if resumable else "--overwrite"),
                work / "logs" / "resume")
    if again.code != 0:
        trial.problems.append(f"{'resume' if resumable else 'restart'} exit {again.code}: {again.err.strip()[-300:]}")
        return trial
    trial.problems += run_folder_problems(out)
    trial.problems += [f"temporary file left after the resume: {p.name}" for p in temp_files(out)]
    logged_epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]
    if logged_epochs != list(range(epochs)):
        trial.problems.append(f"metrics.jsonl epochs {logged_epochs}, expected 0..{epochs - 1}")
    results = json.loads((out / "results.json").read_text())
    if results.get("epochs") != epochs:
        trial.problems.append(f"results.json says {results.get('epochs')} epochs, expected {epochs}")
    # The log line of an epoch is written just before its state, so a kill in between redoes that one epoch.
    if resumable and saved < epochs and f"resuming after epoch {saved}" not in again.out:
        trial.lost = 1
        trial.problems.append(f"resume did not continue after the {saved} saved epochs: {again.out[:200]}")
    return trial


def _saved_epochs(path: Path) -> int:
    import torch

    try:
        return len(torch.load(path, map_location="cpu", weights_only=True)["history"])
    except Exception:  # reported by run_folder_problems
        return -1


# ---------------------------------------------------------------------------------------------------- speakers


def speaker_files(folder: Path, count: int = 4, seconds: float = 1.0, sample_rate: int = 16000) -> list[Path]:
    """Short voiced-like recordings (harmonics of a gliding pitch, in noise) that the speaker encoder accepts."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    paths = []
    for index in range(count):
        pitch = 110 + 25 * index + 10 * np.sin(2 * np.pi * 3 * t)
        phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 8))
        audio = (0.2 * voice + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
        path = folder / f"voice_{index}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio, sample_rate, subtype="PCM_16")
        paths.append(path)
    return paths


def enroll_kill_trial(work: Path, files: Sequence[Path], delay: float, seed_db: Path) -> Trial:
    """Kill `dlsp speaker enroll alice B C` after `delay` s on a copy of `seed_db` (alice with one file, bob)."""
    from dlsp.speaker.database import SpeakerDatabase, check_database

    db = work / "speakers.db"
    work.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(seed_db, db)
    with SpeakerDatabase(db, None, None, create=False) as database:
        old = database.get("alice")
    proc = start(dlsp_command("speaker", "enroll", "alice", *files[1:3], "--db", db), work / "logs" / "enroll")
    killed = kill_when(proc, after(delay))
    finish(proc)
    trial = Trial(note="killed" if killed else "finished before the kill")
    result = check_database(db)
    trial.problems += result.problems
    if result.names != ["alice", "bob"]:
        trial.problems.append(f"people {result.names}, expected alice and bob")
        trial.lost = 1
    with SpeakerDatabase(db, None, None, create=False) as database:
        alice = database.get("alice")
    if alice.n_files not in (old.n_files, old.n_files + 2):
        trial.problems.append(f"alice has {alice.n_files} files: neither the old 1 nor the new 3")
    elif alice.n_files == old.n_files and not np.array_equal(alice.embedding, old.embedding):
        trial.problems.append("alice has the old file count but a changed embedding")
    return trial


def seed_database(path: Path, files: Sequence[Path]) -> Path:
    """A database with alice (the first file) and bob (the last), made with the default encoder."""
    from dlsp.speaker.database import SpeakerDatabase
    from dlsp.speaker.embed import SpeakerEmbedder

    embedder = SpeakerEmbedder.from_file(None, "cpu")
    with SpeakerDatabase(path, embedder.loaded.model_id, embedder.embedding_dim) as db:
        db.enroll("alice", embedder.embed_files([files[0]]))
        db.enroll("bob", embedder.embed_files([files[-1]]))
    return path


def concurrent_enroll(work: Path, files: Sequence[Path], names: Sequence[str] = ("alice", "bob", "alice", "carol")
                      ) -> Trial:
    """One `dlsp speaker enroll NAME FILE` per name, all at once on a new database."""
    from dlsp.speaker.database import SpeakerDatabase, check_database

    db = work / "shared.db"
    procs = [start(dlsp_command("speaker", "enroll", name, files[i % len(files)], "--db", db),
                   work / "logs" / f"enroll{i}") for i, name in enumerate(names)]
    trial = Trial()
    for index, proc in enumerate(procs):
        done = finish(proc)
        if done.code != 0 or "error" in done.err.lower():
            trial.problems.append(f"enroll {index} ({names[index]}): exit {done.code}: {done.err.strip()[-300:]}")
    if not db.exists():
        return Trial(problems=[*trial.problems, "database was not created"], lost=len(set(names)))
    result = check_database(db)
    trial.problems += result.problems
    missing = sorted(set(names) - set(result.names))
    trial.problems += [f"{name} missing from the database" for name in missing]
    trial.lost = len(missing)
    with SpeakerDatabase(db, None, None, create=False) as database:
        for name in set(names) - set(missing):
            expected = list(names).count(name)
            if database.get(name).n_files != expected:
                trial.problems.append(f"{name} has {database.get(name).n_files} files, expected {expected}")
                trial.lost += 1
    return trial


# ---------------------------------------------------------------------------------------------------- memory


def write_long_file(path: Path, seconds: float, sample_rate: int = 16000, block_seconds: float = 60.0) -> Path:
    """A long speech-like 16-bit WAV written block by block (never in memory at once)."""
    rng = np.random.default_rng(3)
    path.parent.mkdir(parents=True, exist_ok=True)
    total, written = int(seconds * sample_rate), 0
    with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as handle:
        while written < total:
            n = min(int(block_seconds * sample_rate), total - written)
            t = (written + np.arange(n)) / sample_rate
            envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)
            block = 0.25 * envelope * np.sin(2 * np.pi * (180 + 40 * np.sin(0.5 * t)) * t)
            handle.write((block + 0.03 * rng.standard_normal(n)).astype(np.float32))
            written += n
    return path


def denoise_peak_rss(work: Path, seconds: float, name: str = "long") -> tuple[float, list[str]]:
    """Peak RSS (MB) of `dlsp denoise run` on a `seconds`-long 16 kHz file it first writes; and any problems."""
    source = write_long_file(work / f"{name}.wav", seconds)
    target = work / f"{name}_denoised.wav"
    done = run(dlsp_command("denoise", "run", source, "-o", target), work / "logs" / name)
    problems = [] if done.code == 0 else [f"exit {done.code}: {done.err.strip()[-300:]}"]
    if not problems and sf.info(str(target)).frames != sf.info(str(source)).frames:
        problems.append("denoised file has the wrong length")
    source.unlink(missing_ok=True)
    target.unlink(missing_ok=True)
    return done.max_rss_mb, problems


# ---------------------------------------------------------------------------------------------------- fuzz


def fuzz_rows(quick: bool, work: Path) -> list[Row] | None:
    """Rows of `benchmarks/fuzz.py --json` (target, inputs tried, crashes and hangs), or None when it is absent.

    `--quick` gives each fuzz target 10 s (when fuzz.py takes `--seconds`); otherwise fuzz.py's own budget.
    """
    script = HERE / "fuzz.py"
    if not script.exists():
        return None
    help_text = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                               env=child_env()).stdout
    report = work / "fuzz.json"
    args = [sys.executable, str(script), "--json", str(report)]
    args += ["--out", str(work / "fuzz")] if "--out" in help_text else []
    args += ["--seconds", "10"] if quick and "--seconds" in help_text else []
    done = subprocess.run(args, capture_output=True, text=True, env=child_env())
    try:
        data = json.loads(report.read_text()) if report.exists() else json.loads(done.stdout)
    except ValueError:
        return [Row("fuzz", 0, 1, 0, f"fuzz.py exit {done.returncode}, no JSON: {done.stderr.strip()[-200:]}")]
    items = data.get("rows", data.get("targets", data)) if isinstance(data, dict) else data
    rows = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            target = item.get("target") or item.get("name") or "?"
            tried = item.get("inputs", item.get("inputs_tried", item.get("trials", 0)))
            crashes, hangs = int(item.get("crashes", item.get("failures", 0)) or 0), int(item.get("hangs", 0) or 0)
            note = f"{hangs} hangs" if hangs else ""
            rows.append(Row(f"fuzz: {target}", int(tried or 0), crashes + hangs, 0, note))
    return rows or [Row("fuzz", 0, 1, 0, "fuzz.py gave no rows")]


# ---------------------------------------------------------------------------------------------------- main


def _row(check: str, trials: list[Trial], note: str = "") -> Row:
    failed = [t for t in trials if t.problems]
    if failed:
        note = (note + "; " if note else "") + "; ".join(failed[0].problems[:2])
    return Row(check, len(trials), len(failed), sum(t.lost for t in trials), note)


def run_all(quick: bool, work: Path, seed: int = 0, log: Callable[[str], None] = print) -> tuple[list[Row], float]:
    from dlsp.data.synthetic_corpus import make_synthetic_corpus

    rng = random.Random(seed)
    rows: list[Row] = []
    n_denoise, n_train, n_enroll = (3, 2, 3) if quick else (10, 5, 10)

    inputs = work / "audio"
    make_audio_folder(inputs, 20)
    started = time.monotonic()
    clean_run = run(dlsp_command("denoise", "run", inputs, "-o", work / "reference"), work / "logs" / "reference")
    duration = time.monotonic() - started
    reference = read_outputs(work / "reference")
    log(f"denoise run of 20 files: {duration:.1f} s")
    trials = []
    for index in range(n_denoise):
        delay = rng.uniform(0.3, 1.0) * duration
        trials.append(denoise_kill_trial(work / f"denoise{index}", inputs, delay=delay, reference=reference))
        log(f"denoise kill at {delay:.1f} s: {trials[-1].note}; {trials[-1].problems or 'ok'}")
    rows.append(_row("kill -9 during denoise run (20 files)", trials,
                     "" if clean_run.code == 0 else f"reference run exit {clean_run.code}"))

    rows.append(_row("4 concurrent denoise runs, same folders",
                     [concurrent_denoise(work / "concurrent", inputs, 4, reference)]))
    log(f"concurrent denoise: {rows[-1]}")

    corpus = make_synthetic_corpus(work / "corpus", seed=5, n_speakers=5, utterances_per_speaker=3,
                                   noise_files_per_kind=3, noise_seconds=3.0, progress=False)
    epochs = 6
    started = time.monotonic()
    run(train_command(corpus, work / "train_reference", epochs), work / "logs" / "train_reference")
    train_seconds = time.monotonic() - started
    trials = []
    for index in range(n_train):
        delay = rng.uniform(0.3, 0.9) * train_seconds
        trials.append(train_kill_trial(work / f"train{index}", corpus, epochs, delay=delay))
        log(f"train kill at {delay:.1f} s: {trials[-1].note}; {trials[-1].problems or 'ok'}")
    rows.append(_row(f"kill -9 during denoise train ({epochs} epochs) + resume", trials))

    voices = speaker_files(work / "voices", 4)
    seed_db = seed_database(work / "seed.db", voices)
    started = time.monotonic()
    run(dlsp_command("speaker", "enroll", "dave", voices[1], "--db", work / "timing.db"), work / "logs" / "timing")
    enroll_seconds = time.monotonic() - started
    trials = []
    for index in range(n_enroll):
        delay = rng.uniform(0.5, 1.05) * enroll_seconds
        trials.append(enroll_kill_trial(work / f"enroll{index}", voices, delay, seed_db))
        log(f"enroll kill at {delay:.1f} s: {trials[-1].note}; {trials[-1].problems or 'ok'}")
    rows.append(_row("kill -9 during speaker enroll", trials))
    rows.append(_row("4 concurrent speaker enrolls, one database", [concurrent_enroll(work / "enroll_load", voices)]))
    log(f"concurrent enroll: {rows[-1]}")

    seconds = 600.0 if quick else 7200.0
    peak, problems = denoise_peak_rss(work, seconds)
    too_big = [f"peak RSS {peak:.0f} MB over {MEMORY_LIMIT_MB:.0f} MB"] if peak > MEMORY_LIMIT_MB else []
    rows.append(_row(f"denoise run of a {seconds / 60:.0f}-minute file, peak RSS < 1 GB",
                     [Trial(problems=problems + too_big)], f"peak RSS {peak:.0f} MB"))
    log(f"memory: {rows[-1]}")

    fuzz = fuzz_rows(quick, work)
    rows += fuzz if fuzz is not None else [Row("fuzz: not available", 0, 0, 0, "benchmarks/fuzz.py does not exist")]
    return rows, peak


def format_rows(rows: list[Row]) -> str:
    header = ("check", "trials", "failures", "files lost", "note")
    lines = [header, *[(r.check, str(r.trials), str(r.failures), str(r.lost), r.note) for r in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    out = []
    for number, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(line)) + " |")
        if number == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in [*widths, len("note")]) + "|")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials and a 10-minute file (about 3 min)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random kill times")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dlsp-reliability-"))
    try:
        started = time.monotonic()
        rows, peak = run_all(args.quick, work, args.seed, log=lambda line: print(line, file=sys.stderr))
        print(format_rows(rows))
        print(f"\npeak RSS on the long file: {peak:.0f} MB; {time.monotonic() - started:.0f} s in all")
        if args.json:
            Path(args.json).write_text(json.dumps({"rows": [asdict(r) for r in rows], "peak_rss_mb": peak},
                                                  indent=2) + "\n")
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if any(r.failures or r.lost for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

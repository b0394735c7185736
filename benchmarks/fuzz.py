"""Fixed-budget fuzzing of every loader of user files (targets in `tests/fuzz_targets.py`).

Run: `.venv/bin/python benchmarks/fuzz.py [--seconds 120] [--targets wav,idx] [--out runs/fuzz] [--json FILE]`.

Each target runs in its own process for `--seconds`. The engine is atheris (coverage-guided libFuzzer over the
instrumented dlsp modules; `pip install -e '.[fuzz]'`) when it is installed, else hypothesis-driven random
mutation of the same seed corpus (`--engine` forces one). A crash is any exception other than `DlspError`
escaping a loader (including MemoryError and RecursionError); a hang is an input taking longer than
`--hang-seconds`, or a worker that stops answering. Crash and hang inputs are saved to
`OUT/crashes/<target>/` with a `.txt` traceback beside each, for reproduction:

    .venv/bin/python benchmarks/fuzz.py --replay OUT/crashes/wav/crash-<sha1>  (target from the folder name)

Prints a table (target, engine, inputs tried, crashes, distinct crash sites, hangs); `--json FILE` writes the
rows; exits 1 if any target crashed or hung.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HANG_SECONDS = 10.0
# Modules whose code atheris instruments for coverage feedback: the loaders and what they call in dlsp.
INSTRUMENTED = ("dlsp.audio.io", "dlsp.data.image_files", "dlsp.data.manifests", "dlsp.data.index",
                "dlsp.data.pairs", "dlsp.config", "dlsp.train.checkpoint", "dlsp.denoise.model_file",
                "dlsp.speaker.model_file", "dlsp.vision.model_file", "dlsp.speaker.database",
                "dlsp.models.lowrank")
# At most this many saved inputs per distinct crash site (the count still includes every crash).
SAVED_PER_SITE = 3
# The targets live beside the tests that also run them (tests/fuzz_targets.py), outside the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> int:
    args = parse_args()
    if args.worker:
        return run_worker(args)
    if args.replay:
        return replay(Path(args.replay))
    from fuzz_targets import TARGETS

    names = list(TARGETS) if not args.targets else [name.strip() for name in args.targets.split(",")]
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        print(f"unknown target(s) {', '.join(unknown)} (known: {', '.join(TARGETS)})", file=sys.stderr)
        return 2
    engine = args.engine if args.engine != "auto" else ("atheris" if has_atheris() else "hypothesis")
    out = Path(args.out)
    rows = [run_target(name, engine, args.seconds, args.hang_seconds, out) for name in names]
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 1 if any(row["crashes"] or row["hangs"] for row in rows) else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="budget per target")
    parser.add_argument("--targets", help="comma-separated target names (default: all)")
    parser.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    parser.add_argument("--out", default="runs/fuzz", help="corpus and crash folder")
    parser.add_argument("--json", metavar="FILE", help="also write the table rows as JSON")
    parser.add_argument("--hang-seconds", type=float, default=HANG_SECONDS)
    parser.add_argument("--replay", metavar="FILE", help="run one saved input and show what it raises")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args()


def has_atheris() -> bool:
    return importlib.util.find_spec("atheris") is not None


# ---------------------------------------------------------------- parent: one worker process per target


def run_target(name: str, engine: str, seconds: float, hang_seconds: float, out: Path) -> dict:
    """Fuzz one target in a child process and collect its counts."""
    stats_path = out / "stats" / f"{name}.json"
    stats_path.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--worker", name, "--engine", engine, "--seconds", str(seconds),
               "--hang-seconds", str(hang_seconds), "--out", str(out)]
    started = time.monotonic()
    # Generous grace: start-up (torch import, seeds) plus one slow input must not count as a hang.
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120 + 2 * hang_seconds)
        output, killed = proc.stdout + proc.stderr, False
    except subprocess.TimeoutExpired as exc:
        output, killed = f"{exc.stdout or ''}{exc.stderr or ''}", True
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    row = {"target": name, "engine": engine, "inputs": stats.get("inputs", 0), "crashes": stats.get("crashes", 0),
           "sites": len(stats.get("sites", {})), "hangs": stats.get("hangs", 0),
           "seconds": round(time.monotonic() - started, 1)}
    # libFuzzer stops on what it handles itself (timeouts, out-of-memory) and saves the input.
    if killed or "libFuzzer: timeout" in output:
        row["hangs"] += 1
    elif "libFuzzer: out-of-memory" in output or "libFuzzer: deadly signal" in output:
        row["crashes"] += 1
    if not stats:
        row["error"] = output.strip().splitlines()[-1] if output.strip() else "worker wrote no stats"
        row["crashes"] += 0 if killed else 1
    for site in stats.get("sites", {}):
        row.setdefault("crash_sites", []).append(site)
    return row


def print_table(rows: list[dict]) -> None:
    header = ("target", "engine", "inputs", "crashes", "sites", "hangs", "seconds")
    cells = [header, *[tuple(str(row[key]) for key in header) for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    for index, line in enumerate(cells):
        print("  ".join(cell.ljust(width) if i < 2 else cell.rjust(width)
                        for i, (cell, width) in enumerate(zip(line, widths, strict=True))))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    for row in rows:
        for site in row.get("crash_sites", []):
            print(f"{row['target']}: {site}")
        if "error" in row:
            print(f"{row['target']}: worker failed: {row['error']}")


# ---------------------------------------------------------------- worker: runs inside the child process


class Recorder:
    """Runs inputs against a target, counting inputs, crashes (by site) and hangs; saves failing inputs."""

    def __init__(self, name: str, out: Path, hang_seconds: float) -> None:
        self.name, self.hang_seconds = name, hang_seconds
        self.crash_dir = out / "crashes" / name
        self.stats_path = out / "stats" / f"{name}.json"
        self.stats_path.parent.mkdir(parents=True, exist_ok=True)
        self.work_root = Path(tempfile.mkdtemp(prefix=f"dlsp-fuzz-{name}-"))
        self.inputs = self.crashes = self.hangs = 0
        self.sites: dict[str, int] = {}
        self.last_write = 0.0

    def check(self, data: bytes) -> None:
        from dlsp.errors import DlspError
        from fuzz_targets import TARGETS

        work = self.work_root / "in"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        started = time.monotonic()
        try:
            TARGETS[self.name].run(data, work)
        except DlspError:
            pass
        except Exception as exc:  # the contract: anything but DlspError is a loader bug
            self.record_crash(data, exc)
        if time.monotonic() - started > self.hang_seconds:
            self.hangs += 1
            self.save("hang", data, f"took {time.monotonic() - started:.1f} s\n")
        self.inputs += 1
        self.write_stats()

    def record_crash(self, data: bytes, exc: Exception) -> None:
        site = crash_site(exc)
        self.crashes += 1
        self.sites[site] = self.sites.get(site, 0) + 1
        if self.sites[site] <= SAVED_PER_SITE:
            self.save("crash", data, "".join(traceback.format_exception(exc)))
        self.write_stats(force=True)

    def save(self, kind: str, data: bytes, text: str) -> None:
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        path = self.crash_dir / f"{kind}-{hashlib.sha1(data).hexdigest()}"
        path.write_bytes(data)
        path.with_suffix(".txt").write_text(text, encoding="utf-8")

    def write_stats(self, force: bool = False) -> None:
        # libFuzzer ends the process with exit() when the budget is spent, so the counts are kept on disk.
        now = time.monotonic()
        if force or now - self.last_write > 0.5:
            self.last_write = now
            stats = {"inputs": self.inputs, "crashes": self.crashes, "hangs": self.hangs, "sites": self.sites}
            tmp = self.stats_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(stats))
            os.replace(tmp, self.stats_path)


def crash_site(exc: BaseException) -> str:
    """`Type at file:line`, the innermost dlsp frame (else the innermost frame): one per distinct bug."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [frame for frame in frames if "/dlsp/" in frame.filename and "fuzz_targets" not in frame.filename]
    frame = (inside or frames)[-1] if (inside or frames) else None
    where = f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"
    kind = type(exc).__qualname__ if type(exc).__module__ == "builtins" else \
        f"{type(exc).__module__}.{type(exc).__qualname__}"
    return f"{kind} at {where}"


def run_worker(args: argparse.Namespace) -> int:
    out = Path(args.out)
    corpus = out / "corpus" / args.worker
    if args.engine == "atheris":
        import atheris

        with atheris.instrument_imports(include=["dlsp"]):
            for module in INSTRUMENTED:
                __import__(module)
    from fuzz_targets import TARGETS

    recorder = Recorder(args.worker, out, args.hang_seconds)
    seeds = TARGETS[args.worker].seeds(recorder.work_root / "seeds")
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        (corpus / f"seed-{hashlib.sha1(seed).hexdigest()}").write_bytes(seed)
    recorder.write_stats(force=True)
    try:
        if args.engine == "atheris":
            fuzz_atheris(recorder, corpus, args.seconds, out)
        else:
            fuzz_hypothesis(recorder, seeds, args.seconds)
    finally:
        recorder.write_stats(force=True)
        shutil.rmtree(recorder.work_root, ignore_errors=True)
    return 0


def fuzz_atheris(recorder: Recorder, corpus: Path, seconds: float, out: Path) -> None:
    import atheris

    artifacts = out / "crashes" / recorder.name
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], f"-max_total_time={max(1, int(seconds))}", f"-timeout={int(6 * recorder.hang_seconds)}",
            "-rss_limit_mb=3072", "-max_len=65536", f"-artifact_prefix={artifacts}/", str(corpus)]
    atheris.Setup(argv, recorder.check)
    atheris.Fuzz()


def fuzz_hypothesis(recorder: Recorder, seeds: list[bytes], seconds: float) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from fuzz_targets import input_strategy

    deadline = time.monotonic() + seconds
    strategy = input_strategy(seeds)
    batch = 0
    while time.monotonic() < deadline:
        # Fresh seeded batches until the budget is spent: random, yet reproducible from the batch number.
        @hypothesis_seed(batch)
        @settings(max_examples=100, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def one_batch(data: bytes) -> None:
            if time.monotonic() < deadline:
                recorder.check(data)

        one_batch()
        batch += 1


def replay(path: Path) -> int:
    """Run one saved input against the target its folder names; print what it raises."""
    from dlsp.errors import DlspError
    from fuzz_targets import TARGETS

    name = path.parent.name
    with tempfile.TemporaryDirectory() as work:
        try:
            TARGETS[name].run(path.read_bytes(), Path(work))
        except DlspError as exc:
            print(f"DlspError (fine): {exc}")
            return 0
        except Exception:
            traceback.print_exc()
            return 1
    print("loaded without error")
    return 0


if __name__ == "__main__":
    sys.exit(main())

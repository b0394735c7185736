"""`dlsp denoise run`: denoise audio files and folders with a trained model, keeping rate, channels and format."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from dlsp.cli.common import add_command, add_device_option, count_noun, positive_float, skip_warning
from dlsp.errors import DlspError

EXAMPLES = """
dlsp denoise run noisy.wav -o clean.wav
dlsp denoise run recordings/ -o denoised/ --model runs/unet/model.pt
dlsp denoise run a.flac b.wav -o out/ --strength 0.8 --atten-limit 18
dlsp denoise run talks/ -o out/ --skip-existing --suffix _denoised
dlsp denoise run noisy.wav -o clean.wav --model model.onnx
dlsp denoise run noisy.wav -o clean.wav --stream   # block by block through the streaming engine
dlsp denoise run quiet.wav -o clean.wav --level-floor none   # show the network the input as it is
"""
# Files longer than this get a progress bar of their own.
LONG_FILE_SECONDS = 120.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "run", "denoise audio files or folders with a trained denoiser", EXAMPLES,
                         description="Denoise audio files or folders (recursively; the output mirrors the "
                                     "subfolders). Each file keeps its sample rate, channels and format; outputs "
                                     "are written atomically. A single input file that fails is an error (exit "
                                     "code 2); with several inputs or a folder, bad files are skipped and listed "
                                     "(exit code 1; 2 if none could be denoised, and then nothing is written).")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", type=Path, help="audio files or folders")
    parser.add_argument("-o", "--output", required=True, type=Path,
                        help="output folder, or an audio file when INPUT is a single file")
    parser.add_argument("--model", type=Path, default=None,
                        help="denoiser model file (.pt, or .onnx from 'dlsp denoise export'), or 'unet' for the "
                             "bundled non-causal U-Net; default: the causal model shipped with dlsp")
    parser.add_argument("--strength", type=float, default=1.0,
                        help="dry/wet mix: 1 fully denoised, 0 the input unchanged")
    parser.add_argument("--atten-limit", type=float, default=None, metavar="DB",
                        help="attenuate no time-frequency bin by more than DB decibels (default: no limit)")
    parser.add_argument("--level-floor", type=level_floor, default=argparse.SUPPRESS, metavar="DB",
                        help="show the network quiet input raised until its loud frames reach DB dB re full scale "
                             "(the output keeps the input's level; the models train on speech at -35 to -15 "
                             "dBFS); 'none' shows the input as it is (default: -30, where speech of -35 dBFS "
                             "active level peaks)")
    parser.add_argument("--independent-channels", action="store_true",
                        help="denoise each channel with its own gains (default: channels share one gain per "
                             "time-frequency bin, so a centred source stays centred)")
    parser.add_argument("--chunk-seconds", type=positive_float, default=20.0,
                        help="audio processed at once (memory only; the output does not depend on it)")
    add_device_option(parser)
    parser.add_argument("--engine", choices=("auto", "torch", "onnx"), default="auto",
                        help="run the network with torch or onnxruntime; auto: onnxruntime for .onnx models and, "
                             "on the CPU, for a model whose ONNX export lies beside it (the default model ships "
                             "one), torch otherwise")
    parser.add_argument("--stream", action="store_true",
                        help="feed files block by block (one STFT hop) through the streaming denoiser")
    parser.add_argument("--skip-existing", action="store_true", help="skip outputs that already exist")
    parser.add_argument("--suffix", default="", help="text added to each output file name before its extension")
    parser.set_defaults(func=run)


def level_floor(text: str) -> float | None:
    """`--level-floor`: a level in dB, or none."""
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a level in dB or 'none', got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite level in dB or 'none', got {text!r}")
    return value


def plan_jobs(inputs: list[Path], output: Path, suffix: str = ""
              ) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """Pair every input audio file with its output path; return `(jobs, skipped)`, `skipped` holding
    `(path, problem)` for non-audio files in folders and, when there are several inputs, for named inputs that
    are missing or not audio files.

    A single input file with an output ending in an audio extension writes that file; otherwise the output is a
    folder: files go directly into it, and a folder's tree is mirrored into it (into a subfolder named after
    the input folder when there are several inputs). Raises `DlspError` for a single input that is missing or
    not audio, outputs inside an input folder, outputs that would overwrite an input, and two inputs mapping
    to one output.
    """
    from dlsp.audio.io import AUDIO_EXTENSIONS

    skipped: list[tuple[Path, str]] = []
    if len(inputs) == 1 and not inputs[0].exists():
        raise DlspError("input does not exist", inputs[0])
    skipped += [(path, "input does not exist") for path in inputs if not path.exists()]
    inputs = [path for path in inputs if path.exists()]
    output_is_file = output.suffix.lower() in AUDIO_EXTENSIONS
    if output_is_file and not (len(inputs) == 1 and inputs[0].is_file()):
        raise DlspError("output ends in an audio extension, but only a single input file can go to a file; "
                        "give an output folder", output)
    if not output_is_file and output.exists() and not output.is_dir():
        raise DlspError("output exists and is not a folder", output)
    jobs: list[tuple[Path, Path]] = []
    several = len(inputs) + len(skipped) > 1
    for path in inputs:
        if path.is_file():
            if path.suffix.lower() not in AUDIO_EXTENSIONS:
                problem = f"not an audio file (use {', '.join(AUDIO_EXTENSIONS)})"
                if not several:
                    raise DlspError(problem, path)
                skipped.append((path, problem))
                continue
            jobs.append((path, output if output_is_file else output / _renamed(path.name, suffix)))
            continue
        _refuse_output_inside(path, output)
        target = output / path.resolve().name if several else output
        for file in _visible_files(path):
            relative = file.relative_to(path)
            if file.suffix.lower() in AUDIO_EXTENSIONS:
                jobs.append((file, target / relative.parent / _renamed(file.name, suffix)))
            else:
                skipped.append((file, "not an audio file"))
    _refuse_collisions(jobs)
    return jobs, skipped


def run(args: argparse.Namespace) -> int:
    from dlsp.denoise.enhance import Denoiser

    jobs, skipped = plan_jobs(args.inputs, args.output, args.suffix)
    if not jobs:
        for path, problem in skipped:
            skip_warning(path, problem)
        raise DlspError("no audio files to denoise", args.inputs[0] if len(args.inputs) == 1 else None)
    single = len(args.inputs) == 1 and args.inputs[0].is_file()
    denoiser = Denoiser.from_file(args.model, device=args.device, chunk_seconds=args.chunk_seconds,
                                  strength=args.strength, atten_limit_db=args.atten_limit,
                                  engine=None if args.engine == "auto" else args.engine,
                                  link_channels=not args.independent_channels,
                                  **({"level_floor_db": args.level_floor} if "level_floor" in args else {}))
    _prepare_output(args.output)  # after the model loaded; creates nothing: folders appear with their files
    new_dirs = _missing_dirs(dst for _, dst in jobs)
    for path, problem in skipped:
        skip_warning(path, problem)
    block_seconds = None
    if args.stream:
        stream = denoiser.stream()
        block_seconds = denoiser.model.stft.hop_length / denoiser.sample_rate
        print(f"streaming in blocks of {block_seconds * 1000:.1f} ms, latency {stream.latency_seconds * 1000:.1f} "
              f"ms at {denoiser.sample_rate} Hz")
    try:
        done, existing, failed = _process(denoiser, jobs, args.skip_existing, block_seconds, single)
    finally:
        _remove_empty(new_dirs)  # folders made for outputs that failed
    if done + existing == 0:
        raise DlspError(f"none of the {count_noun(len(jobs), 'audio file')} could be denoised; nothing written")
    non_audio = sum(problem.startswith("not an audio file") for _, problem in skipped)
    parts = [f"denoised {done} of {count_noun(len(jobs), 'audio file')} into {args.output}"]
    if existing:
        parts.append(f"{existing} skipped (output exists)")
    if failed:
        parts.append(f"{failed} failed")
    if non_audio:
        parts.append(f"{count_noun(non_audio, 'non-audio file')} skipped")
    if len(skipped) > non_audio:
        parts.append(f"{len(skipped) - non_audio} missing")
    print(", ".join(parts))
    return 1 if failed or skipped else 0


def _prepare_output(output: Path) -> None:
    """Fail early (exit 2) on an unwritable output, and clear what killed earlier runs left there.

    Outputs appear only complete (renamed from a temporary file), so after a kill the only debris is hidden
    temporary files; those of dead processes go, those of concurrent runs into the same folder stay.
    """
    from dlsp.audio.io import AUDIO_EXTENSIONS
    from dlsp.fileio import check_writable, remove_stale_temp_files

    folder = output.parent if output.suffix.lower() in AUDIO_EXTENSIONS else output
    folder = folder if str(folder) else Path(".")
    check_writable(folder, folder=True)
    if not folder.is_dir():
        return
    removed = remove_stale_temp_files(folder, recursive=folder == output)
    if removed:
        _warn(f"removed {count_noun(removed, 'temporary file')} left by an interrupted run in {folder}")


def _missing_dirs(outputs) -> list[Path]:
    """The folders that do not exist yet on the way to `outputs`, deepest first."""
    missing: set[Path] = set()
    for dst in outputs:
        folder = Path(dst).parent
        while str(folder) and folder not in missing and not folder.exists() and folder != folder.parent:
            missing.add(folder)
            folder = folder.parent
    return sorted(missing, key=lambda p: len(p.absolute().parts), reverse=True)


def _remove_empty(folders: list[Path]) -> None:
    """Remove those of `folders` (deepest first) that exist and are empty."""
    for folder in folders:
        try:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        except OSError:
            pass


def _process(denoiser, jobs: list[tuple[Path, Path]], skip_existing: bool, block_seconds: float | None,
             single: bool = False) -> tuple[int, int, int]:
    """Denoise every job; a bad input is skipped and listed (raised when it is the `single` input), an
    unwritable output stops the run."""
    from tqdm import tqdm

    from dlsp.audio.io import audio_info
    from dlsp.fileio import WriteError

    done = existing = failed = 0
    for src, dst in tqdm(jobs, unit="file", desc="denoising", disable=None, leave=False):
        if skip_existing and dst.exists():
            existing += 1
            continue
        try:
            info = audio_info(src)
            with tqdm(total=info.frames, unit="frame", unit_scale=True, desc=src.name, leave=False,
                      disable=None if info.duration > LONG_FILE_SECONDS else True) as bar:
                denoiser.enhance_file(src, dst, block_seconds=block_seconds, progress=bar.update)
            done += 1
        except WriteError as exc:
            # Disk full or no permission: every later file would fail the same way.
            if single:
                raise
            raise WriteError(f"{exc.problem}; stopped after denoising {done} of {count_noun(len(jobs), 'file')}",
                             exc.path) from None
        except DlspError as exc:
            if single:
                raise
            skip_warning(exc.path or src, exc.problem)
            failed += 1
    return done, existing, failed


def _visible_files(folder: Path) -> list[Path]:
    """Files under `folder`, skipping hidden ones, hidden folders and dlsp's temporary files."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _renamed(name: str, suffix: str) -> str:
    path = Path(name)
    return f"{path.stem}{suffix}{path.suffix}"


def _refuse_output_inside(folder: Path, output: Path) -> None:
    folder, resolved = folder.resolve(), output.resolve()
    if resolved == folder or folder in resolved.parents:
        raise DlspError(f"output is inside the input folder {folder}; choose an output outside it", output)


def _refuse_collisions(jobs: list[tuple[Path, Path]]) -> None:
    sources = {src.resolve() for src, _ in jobs}
    seen: dict[Path, Path] = {}
    for src, dst in jobs:
        resolved = dst.resolve()
        if resolved in sources:
            raise DlspError("output would overwrite an input file", dst)
        if resolved in seen:
            raise DlspError(f"inputs {seen[resolved]} and {src} would both be written here", dst)
        seen[resolved] = src


def _warn(message: str) -> None:
    print(f"dlsp: warning: {message}", file=sys.stderr)

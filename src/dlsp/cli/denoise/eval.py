"""`dlsp denoise eval`: score a denoiser on clean/noisy pairs, overall and by input SNR, with its speed."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlsp.cli.common import add_command, add_device_option, positive_int

DEFAULT_OUT = "denoise_eval"
SPLIT_CHOICES = ("train", "val", "test", "all")

EXAMPLES = """\
dlsp denoise eval --model model.pt --data noisy_corpus
dlsp denoise eval --model model.pt --data voicebank_demand --no-pesq --limit 50
dlsp denoise eval --model model.pt --clean clean_testset_wav --noisy noisy_testset_wav --out eval --json eval.json
dlsp denoise eval --data noisy_corpus/manifest.csv --split all --device cuda"""

DESCRIPTION = f"""\
Denoise every noisy file of a set of clean/noisy pairs and measure SNR, segmental SNR, SI-SDR, PESQ, STOI
and ESTOI against the clean file, before (noisy) and after (denoised), overall and per input-SNR bucket
(centred on -5, 0, 5, 10, 15, 20 dB), plus the real-time factor (processing time / audio time).

Pairs come from --data (a 'dlsp data mix' folder or its manifest.csv, VoiceBank-DEMAND or MS-SNSD clean*/ and
noisy*/ folders, or plain clean/ + noisy/), or from --clean and --noisy folders matched by relative path. With
--data, only the test split is scored when the pairs carry splits (--split all scores every pair). Input SNR
is the manifest's snr_db when known, else 10 log10(sum clean^2 / sum (noisy - clean)^2).

Writes to --out (default: ./{DEFAULT_OUT}/): per_file.csv, summary.json, improvement.png (SI-SDR and PESQ
improvement against input SNR) and examples/ (noisy, denoised and clean wavs and spectrograms of a few files).
Nothing is written until every file has been scored."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "eval", "score a denoiser on clean/noisy pairs (by input SNR, with speed)",
                         EXAMPLES, description=DESCRIPTION)
    parser.add_argument("--model", metavar="MODEL", default=argparse.SUPPRESS,
                        help="denoiser model file, or 'unet' (bundled); default: the installed default model")
    parser.add_argument("--data", metavar="DIR", help="pairs folder or manifest CSV (instead of --clean/--noisy)")
    parser.add_argument("--clean", metavar="DIR", help="folder of clean files (with --noisy)")
    parser.add_argument("--noisy", metavar="DIR", help="folder of noisy files, same relative paths as --clean")
    parser.add_argument("--split", choices=SPLIT_CHOICES, default=argparse.SUPPRESS,
                        help="which split of --data to score (default: test when the pairs carry splits, "
                             "else all)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help="folder for per_file.csv, summary.json, improvement.png and examples/")
    parser.add_argument("--json", metavar="FILE", help="also write the summary JSON to FILE")
    parser.add_argument("--no-pesq", action="store_true", help="skip PESQ (the slowest metric)")
    parser.add_argument("--no-stoi", action="store_true", help="skip STOI and ESTOI")
    add_device_option(parser)
    parser.add_argument("--limit", type=positive_int, metavar="N", help="score only the first N pairs")
    parser.add_argument("--examples", type=int, default=3, metavar="N",
                        help="write wavs and spectrograms of N files spread over the input SNRs (0: none)")
    parser.add_argument("--allow-outside", action="store_true",
                        help="let a manifest list absolute paths and paths outside its folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.denoise.evaluate import evaluate_enhancer
    from dlsp.errors import DlspError
    from dlsp.fileio import check_writable, write_json

    if args.examples < 0:
        raise DlspError(f"--examples must be 0 or more, got {args.examples}")
    out = Path(args.out)
    check_writable(out, folder=True)  # before minutes of scoring, not after
    check_writable(args.json)
    pairs, note = select_pairs(args)
    # Imported only now so that bad input is reported before torch and the model load.
    from dlsp.denoise.enhance import Denoiser

    model = getattr(args, "model", None)
    denoiser = Denoiser.from_file(model, device=args.device)
    label = f"model {model or 'default'}"
    print(f"{note}; {label} at {denoiser.sample_rate} Hz", flush=True)
    result = evaluate_enhancer(denoiser, pairs, pesq=not args.no_pesq, stoi=not args.no_stoi,
                               progress=not args.no_progress, examples_dir=out / "examples",
                               n_examples=args.examples, label=label)
    written = result.write(out)
    if args.json:
        write_json(args.json, result.summary())
    print(result.table())
    print(f"\nwrote {written['per_file']}, {written['summary']}, {written['plot']}"
          + (f" and {len(result.examples)} examples in {out / 'examples'}" if result.examples else "")
          + (f"; summary also in {args.json}" if args.json else ""))
    return 0


def select_pairs(args: argparse.Namespace) -> tuple[list, str]:
    """The pairs to score (split and --limit applied) and a line saying which they are."""
    from dlsp.denoise.evaluate import pairs_from_dataset, pairs_from_folders
    from dlsp.errors import DlspError

    if args.data and (args.clean or args.noisy):
        raise DlspError("give either --data DIR or --clean DIR with --noisy DIR, not both")
    if args.data:
        pairs, source = pairs_from_dataset(args.data, allow_outside=args.allow_outside), args.data
    elif args.clean and args.noisy:
        pairs, source = pairs_from_folders(args.clean, args.noisy), f"{args.clean} + {args.noisy}"
    else:
        raise DlspError("say what to score: --data DIR, or --clean DIR with --noisy DIR")
    total = len(pairs)
    split = getattr(args, "split", None)
    if split is None:
        split = "test" if args.data and any(pair.split for pair in pairs) else "all"
    if split != "all":
        present = sorted({pair.split for pair in pairs if pair.split})
        pairs = [pair for pair in pairs if pair.split == split]
        if not pairs:
            raise DlspError(f"no pairs in the {split} split (splits present: {', '.join(present) or 'none'}; "
                            "--split all scores every pair)", args.data or args.noisy)
    if args.limit:
        pairs = pairs[: args.limit]
    where = f"{split} split, " if split != "all" else ""
    return pairs, f"scoring {len(pairs)} of {total} pairs ({where}{source})"

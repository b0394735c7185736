"""`dlsp denoise export`: write a denoiser's network as a self-describing ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlsp.cli.common import add_command, positive_int
from dlsp.errors import DlspError

EXAMPLES = """
dlsp denoise export --model runs/unet/model.pt -o unet.onnx
dlsp denoise export --model model.pt -o model.onnx --check
dlsp denoise run noisy.wav -o clean.wav --model model.onnx
"""
# The ONNX network must reproduce torch this closely end to end (after STFT, network and overlap-add).
CHECK_TOLERANCE = 1e-4


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "export", "export a denoiser to ONNX (for onnxruntime)", EXAMPLES,
                         description="Export a denoiser's network to ONNX: STFT magnitude (batch, freq, frames) "
                                     "in, estimate out, frames dynamic. The file carries the sample rate, STFT "
                                     "settings and model arguments, so 'dlsp denoise run --model FILE.onnx' "
                                     "runs it. Needs: pip install 'dlsp[onnx]'.")
    parser.add_argument("--model", type=Path, default=None, help="denoiser model file (default: the shipped one)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="ONNX file to write (.onnx)")
    parser.add_argument("--opset", type=positive_int, default=18,
                        help="ONNX opset (the dynamo exporter needs >= 18)")
    parser.add_argument("--check", action="store_true",
                        help="denoise 2 s of noise with torch and with onnxruntime and print the max difference")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.denoise.export import export_onnx, load_onnx_denoiser
    from dlsp.denoise.model_file import load_denoiser
    from dlsp.release import compare_engines

    if args.output.suffix.lower() != ".onnx":
        raise DlspError("ONNX model files must end in .onnx", args.output)
    model = load_denoiser(args.model)
    path = export_onnx(model, args.output, opset=args.opset)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, opset {args.opset}): {model.name} denoiser at "
          f"{model.sample_rate} Hz, n_fft {model.stft.n_fft}, hop {model.stft.hop_length}")
    if not args.check:
        return 0
    difference = compare_engines(model, load_onnx_denoiser(path))
    verdict = "ok" if difference <= CHECK_TOLERANCE else f"FAILED (tolerance {CHECK_TOLERANCE:.0e})"
    print(f"check: max |onnxruntime - torch| = {difference:.2e} on 2 s of noise: {verdict}")
    return 0 if difference <= CHECK_TOLERANCE else 1

"""`dlsp demo`: the main job on the embedded default data."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command, add_device_option, positive_float, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "demo",
        "synthesize a noisy corpus, train a denoiser for about a minute, evaluate, write a report",
        "dlsp demo\ndlsp demo --out /tmp/demo --seconds 20\ndlsp demo --device cuda",
    )
    parser.add_argument("--out", default="demo_out", help="report folder")
    parser.add_argument("--seed", type=int, default=0, help="seed for data synthesis, mixing and training")
    parser.add_argument("--seconds", type=positive_float, default=60.0, help="training time budget")
    parser.add_argument("--speakers", type=positive_int, default=8, help="synthetic speakers")
    parser.add_argument("--mixtures", type=positive_int, default=160, help="noisy utterances to synthesize")
    add_device_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.denoise.demo import DemoConfig, run_demo, summary_table

    config = DemoConfig(out=args.out, seed=args.seed, speakers=args.speakers, mixtures=args.mixtures,
                        train_seconds=args.seconds, device=args.device)
    results = run_demo(config, progress=not args.quiet)
    print()
    print(summary_table(results["metrics"]))
    print(f"\nreport: {config.out}/report.html  (wavs in {config.out}/denoised, examples in {config.out}/examples)")
    return 0

"""`dlsp compress MODEL --rank D -o OUT`: low-rank factorisation of any dlsp model's linear layers."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command, add_device_option, positive_float, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "compress", "replace a model's linear layers by rank-D factors (truncated SVD, optional "
                                "fine-tuning)",
        "dlsp compress runs/mnist_mlp/best.pt --rank 20 -o mnist_rank20.pt\n"
        "dlsp compress runs/mnist_mlp/best.pt --rank 20 --finetune 3 --data $DLSP_DATA/images/mnist -o m20.pt\n"
        "dlsp compress runs/denoise_dense/best.pt --rank 32 -o dense_rank32.pt   # any dlsp model file",
        description="Every linear layer W (out x in) where rank D saves parameters becomes U V^T from its "
                    "truncated SVD; smaller layers stay dense. The output is the same kind of model file (it "
                    "records the factorisation, so 'dlsp vision eval' or 'dlsp denoise run --model' load it). "
                    "Image classifiers are evaluated on their test data and can be fine-tuned.",
    )
    parser.add_argument("model", metavar="MODEL", help="dlsp model file (.pt)")
    parser.add_argument("--rank", type=positive_int, default=20, help="rank D of every factorised layer")
    parser.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                        help="fine-tune the factorised image classifier for this many epochs")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="fine-tuning learning rate")
    parser.add_argument("--data", metavar="DIR", help="dataset folder (default: the one the model was trained on)")
    parser.add_argument("-o", "--out", required=True, help="output model file")
    add_device_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.errors import DlspError
    from dlsp.models.compress import compress_file
    from dlsp.vision.compression import compression_figures

    if args.finetune < 0:
        raise DlspError(f"--finetune must be 0 or more epochs, got {args.finetune}")
    from dlsp.fileio import check_writable

    check_writable(args.out)  # before the factorisation and the fine-tuning
    evaluate = compression_figures(args.model, args.finetune, args.data, args.lr, args.device,
                                   progress=not args.quiet)
    figures = compress_file(args.model, args.out, args.rank, evaluate, args.finetune)
    before, after = figures["params_before"], figures["params_after"]
    print(f"{figures['model']}: {len(figures['layers'])} linear layers at rank {args.rank}: "
          f"{before:,} -> {after:,} parameters ({before / after:.1f}x fewer), "
          f"{figures['bytes_before'] / 1024:.0f} KB -> {figures['bytes_after'] / 1024:.0f} KB")
    for key, label in (("test_accuracy_before", "test accuracy before"), ("test_accuracy_svd", "after SVD"),
                       ("test_accuracy_finetuned", f"after {args.finetune} epochs fine-tuning")):
        if key in figures:
            print(f"{label}: {figures[key]:.4f}")
    print(f"model: {args.out}")
    return 0

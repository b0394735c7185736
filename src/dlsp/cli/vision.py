"""`dlsp vision ...`: the image classification lab (MNIST MLP, compression, CIFAR augmentation, SSL transfer)."""

from __future__ import annotations

import argparse

from dlsp.cli import vision_eval, vision_train
from dlsp.cli.common import HelpFormatter

EXAMPLES = """\
dlsp vision train recipes/vision_mnist_mlp.yaml --data $DLSP_DATA/images/mnist --out runs/mnist_mlp
dlsp vision train recipes/vision_compression.yaml --quick --out runs/compress_quick
dlsp vision train recipes/vision_cifar_augment.yaml --data $DLSP_DATA/images/cifar10 --out runs/cifar_aug
dlsp vision eval runs/mnist_mlp"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "vision", help="image classification studies: MNIST MLP, low-rank compression, augmentation, SSL",
        description="Image classification lab. Each study is a recipe (recipes/vision_*.yaml); without --data "
                    "(or with --quick) it runs on scikit-learn's embedded 8x8 digits.",
        epilog="examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES.splitlines()),
        formatter_class=HelpFormatter,
    )
    vision_subparsers = parser.add_subparsers(dest="vision_command", metavar="SUBCOMMAND")
    for module in (vision_train, vision_eval):
        module.register(vision_subparsers)
    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2

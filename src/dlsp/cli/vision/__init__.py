"""`dlsp vision ...`: the image classification lab (MNIST MLP, compression, CIFAR augmentation, SSL transfer)."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command_group
from dlsp.cli.vision import eval, train

EXAMPLES = """\
dlsp vision train recipes/vision_mnist_mlp.yaml --data $DLSP_DATA/images/mnist --out runs/mnist_mlp
dlsp vision train recipes/vision_compression.yaml --quick --out runs/compress_quick
dlsp vision train recipes/vision_cifar_augment.yaml --data $DLSP_DATA/images/cifar10 --out runs/cifar_aug
dlsp vision eval runs/mnist_mlp"""


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command_group(
        subparsers, "vision", "image classification studies: MNIST MLP, low-rank compression, augmentation, SSL",
        "Image classification lab. Each study is a recipe (recipes/vision_*.yaml); without --data "
        "(or with --quick) it runs on scikit-learn's embedded 8x8 digits.",
        EXAMPLES, (train, eval),
    )

"""The image classification lab: MNIST MLP, low-rank compression, CIFAR augmentation, self-supervised transfer.

Each study is a recipe (`recipes/vision_*.yaml`) run by `dlsp vision train RECIPE`; `--quick` shrinks any of
them to the embedded digits so it runs in well under a minute.
"""

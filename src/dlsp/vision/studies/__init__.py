"""The vision studies, one module per `study:` key of a vision recipe (run by `dlsp.vision.run.run_study`).

`mnist_mlp` (an MLP on MNIST and views of its activations), `compression` (low-rank compression of a trained
classifier), `cifar_augment` (data augmentation for a small CNN on CIFAR-10) and `ssl` (a self-supervised pretext
task, then transfer with few labels). Each hands back a `StudyOutput`; `plots` draws their figures.
"""

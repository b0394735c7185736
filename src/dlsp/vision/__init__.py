"""The image classification lab: MNIST MLP, low-rank compression, CIFAR augmentation, self-supervised transfer.

Each study is a recipe (`recipes/vision_*.yaml`) run by `dlsp vision train RECIPE`; `--quick` shrinks any of
them to the embedded digits so it runs in well under a minute.

Modules: `config` (the recipe's dataclasses), `data` (images and batches), `augment` (image augmentations and
pretext labels), `training` (training and scoring classifiers), `model_file`, `inference` (`ImageClassifier`: a
model file loaded, class probabilities), `run` (a study into a run folder), `studies/` (one module per study) and
`task` (the task as `dlsp run` sees it). Low-rank compression of any model file is `dlsp.models.compress`.
"""

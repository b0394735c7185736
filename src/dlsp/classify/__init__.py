"""Audio clip classification on MFCC segments (genres, keywords, spoken digits): data, training, evaluation.

    from dlsp.classify import Classifier
    classifier = Classifier.from_file("runs/digits")      # a run folder of `dlsp classify train`, or its best.pt
    classifier.predict_file("clip.wav")                   # [(label, probability), ...] best first

Modules: `features` (MFCC segments and the feature cache), `data` (indexing that survives bad files, splits by
clip and speaker), `augment`, `train` (config, batches, run folders), `inference` (`Classifier`: a model file
loaded, clip probabilities), `evaluate` (scores, confusion matrices, whole datasets), `study` (the optimiser
study), `toy` (a tones/noise/chirps dataset for tests and examples), `task` (the task as `dlsp run` and
`dlsp tune` see it).
"""

from dlsp.classify.features import FeatureConfig
from dlsp.classify.inference import Classifier
from dlsp.classify.train import ClassifyConfig

__all__ = ["Classifier", "ClassifyConfig", "FeatureConfig"]

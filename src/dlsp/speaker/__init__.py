"""Speaker verification: a bidirectional-GRU speaker encoder, its training, embedding, an SQLite enrolment
database, and EER/minDCF evaluation.

    from dlsp.speaker import SpeakerEmbedder
    embedder = SpeakerEmbedder.from_file(None)          # the default encoder shipped with dlsp
    a, b = embedder.embed_files(["alice1.wav", "unknown.wav"])
    scorer = embedder.loaded.scorer                     # AS-norm when the model file has a cohort, else cosine
    accepted = scorer.scores(a[None], b)[0] >= scorer.threshold
"""

from dlsp.speaker.embed import SpeakerEmbedder, cosine_scores
from dlsp.speaker.model_file import SpeakerModel, load_speaker_model

__all__ = ["SpeakerEmbedder", "SpeakerModel", "cosine_scores", "load_speaker_model"]

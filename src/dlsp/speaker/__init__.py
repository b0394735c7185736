"""Speaker verification: a bidirectional-GRU speaker encoder, its training, embedding, an SQLite enrolment
database, and EER/minDCF evaluation.

    from dlsp.speaker import SpeakerEmbedder
    embedder = SpeakerEmbedder.from_file(None)          # the default encoder shipped with dlsp
    alice = embedder.embed_files(["alice1.wav"])[0]
    probe, bandwidth = embedder.embed_probe("unknown.wav")  # and where its content stops
    # AS-norm when the model file has a cohort, else cosine; thresholds for a person enrolled with 1 recording
    scorer = embedder.loaded.scorer.for_enrolment(1)
    score = scorer.scores(alice[None], probe)[0]
    accepted = score >= scorer.threshold_for(bandwidth)  # telephone-band probes have their own threshold
"""

from dlsp.speaker.embed import SpeakerEmbedder, cosine_scores
from dlsp.speaker.model_file import SpeakerModel, load_speaker_model

__all__ = ["SpeakerEmbedder", "SpeakerModel", "cosine_scores", "load_speaker_model"]

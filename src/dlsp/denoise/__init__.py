"""Speech denoising on STFT magnitudes: model files, training, offline and streaming inference, evaluation.

    from dlsp.denoise import Denoiser, StreamingDenoiser
    denoiser = Denoiser.from_file()            # the default model shipped with dlsp
    clean = denoiser.enhance(noisy, sample_rate)
"""

from dlsp.denoise.enhance import Denoiser
from dlsp.denoise.model_file import DenoiserModel, load_denoiser, save_denoiser
from dlsp.denoise.streaming import StreamingDenoiser

__all__ = ["Denoiser", "DenoiserModel", "StreamingDenoiser", "load_denoiser", "save_denoiser"]

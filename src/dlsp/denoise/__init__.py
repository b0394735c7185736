"""Speech denoising on STFT magnitudes: model files, training, offline and streaming inference, evaluation."""

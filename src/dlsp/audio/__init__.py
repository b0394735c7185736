"""Pure signal functions: file I/O, STFT, features, mixing and the synthetic corpus."""

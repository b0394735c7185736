"""Memory does not grow with the data: long files denoise in bounded memory, big feature caches are mapped."""

from __future__ import annotations

import importlib.util
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from dlsp.classify import features as features_module
from dlsp.classify.features import FeatureConfig, cache_file, cached_features, extract_features
from dlsp.classify.toy import toy_clip

_SPEC = importlib.util.spec_from_file_location("dlsp_reliability_benchmark",
                                               Path(__file__).resolve().parents[1] / "benchmarks" / "reliability.py")
bench = sys.modules.get(_SPEC.name) or importlib.util.module_from_spec(_SPEC)
if _SPEC.name not in sys.modules:
    sys.modules[_SPEC.name] = bench
    _SPEC.loader.exec_module(bench)

# Small hops and many coefficients make the features large next to the audio (about 80 kB per 1 s clip).
CONFIG = FeatureConfig(n_fft=256, hop_length=16, n_mels=40, n_mfcc=40)


def _clips(tmp_path, write_wav, n: int = 40) -> list[Path]:
    rng = np.random.default_rng(0)
    return [write_wav(f"data/{'ab'[i % 2]}/{i:02d}.wav", toy_clip("tone" if i % 2 else "chirp", 1.0, 8000, rng), 8000)
            for i in range(n)]


def test_large_feature_cache_is_computed_in_bounded_memory_and_memory_mapped(tmp_path, write_wav):
    paths = _clips(tmp_path, write_wav)
    expected = extract_features(sorted(paths), 8000, CONFIG)
    total = expected.features.nbytes
    assert total > 2_000_000
    tracemalloc.start()
    try:
        first, hit = cached_features(paths, tmp_path / "data", 8000, CONFIG, tmp_path / "cache", mmap_bytes=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Without streaming the clips' features are held in a list and again stacked: twice the total.
    assert not hit and peak < total / 3, (peak, total)
    second, hit = cached_features(paths, tmp_path / "data", 8000, CONFIG, tmp_path / "cache", mmap_bytes=0)
    assert hit
    for result in (first, second):
        assert isinstance(result.features, np.memmap) and not result.features.flags.writeable
        assert Path(result.features.filename) == cache_file(tmp_path / "cache", tmp_path / "data", CONFIG, 8000)
        np.testing.assert_array_equal(result.features, expected.features)
        assert result.paths == expected.paths
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cache_file(tmp_path, tmp_path / "data", CONFIG,
                                                                           8000).name]  # no scratch file left
    small, _ = cached_features(paths, tmp_path / "data", 8000, CONFIG, tmp_path / "cache")
    assert not isinstance(small, np.memmap) and type(small.features) is np.ndarray  # under MMAP_BYTES: loaded


def test_training_data_loads_from_a_memory_mapped_cache(tmp_path, write_wav, monkeypatch):
    from dlsp.classify.train import ClassifyConfig, load_data
    from dlsp.config import apply_overrides

    _clips(tmp_path, write_wav, 12)
    config = apply_overrides(ClassifyConfig(), ["features.n_fft=256", "features.hop_length=128",
                                                "features.n_mels=40", "data.split=clip"])
    in_memory = load_data(config, tmp_path / "data", cache_dir=None, progress=False)
    monkeypatch.setattr(features_module, "MMAP_BYTES", 0)
    for _ in range(2):  # computed, then read from the cache
        mapped = load_data(config, tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
        for name, clips in in_memory.sets.items():
            assert clips.paths == mapped.sets[name].paths
            assert np.array_equal(clips.features.numpy(), mapped.sets[name].features.numpy())


@pytest.mark.slow  # two denoising runs of several minutes of audio: about 30 s on 2 busy cores
def test_denoise_run_peak_memory_does_not_grow_with_file_length(tmp_path):
    short, problems_short = bench.denoise_peak_rss(tmp_path, 3 * 60.0, "short")
    long, problems_long = bench.denoise_peak_rss(tmp_path, 12 * 60.0, "long")
    assert problems_short == [] and problems_long == []
    # Loading the whole file would add well over 100 MB for the 9 extra minutes (audio, STFT, output).
    assert long - short < 40.0, (short, long)
    assert long < bench.MEMORY_LIMIT_MB

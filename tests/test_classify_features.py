"""MFCC segment features of clips: segment arithmetic, padding, skipping bad clips, the on-disk cache."""

from __future__ import annotations

import os

import numpy as np
import pytest

from dlsp.classify.features import FeatureConfig, cache_file, cached_features, clip_features, extract_features
from dlsp.classify.toy import toy_clip
from dlsp.errors import DlspError


@pytest.mark.parametrize(("seconds", "rate", "n_segments", "segment_seconds", "frames"), [
    (30.0, 22050, 10, None, 130),   # GTZAN: 10 x 3 s segments -> the study's 130 x 13
    (30.0, 22050, 5, 3.0, 130),     # 5 segments of 3 s (the first 15 s)
    (30.0, 22050, 5, None, 259),    # 5 segments of 6 s
    (1.0, 16000, 1, 1.0, 32),       # a 1 s keyword, one segment
    (0.4, 16000, 1, 1.0, 32),       # a short keyword is padded to the segment
])
def test_segments_times_frames(seconds, rate, n_segments, segment_seconds, frames):
    config = FeatureConfig(n_segments=n_segments, segment_seconds=segment_seconds)
    audio = toy_clip("chirp", seconds, rate, np.random.default_rng(0))
    features = clip_features(audio, rate, config)
    assert tuple(features.shape) == (n_segments, 13, frames)
    assert config.frames(rate, len(audio)) == frames


def test_padding_leaves_the_clip_part_unchanged():
    rate = 8000
    config = FeatureConfig(segment_seconds=1.0, n_fft=256, hop_length=128, n_mels=40)
    audio = toy_clip("tone", 1.0, rate, np.random.default_rng(1))
    half = audio.copy()
    half[rate // 2:] = 0
    # A clip of 0.5 s padded to 1 s equals the 1 s clip whose second half is silent.
    assert np.allclose(clip_features(audio[:rate // 2], rate, config), clip_features(half, rate, config))


def _write_clips(tmp_path, write_wav, n=4, seconds=1.0, rate=8000):
    rng = np.random.default_rng(3)
    return [write_wav(f"data/c/{i}.wav", toy_clip("noise", seconds, rate, rng), rate) for i in range(n)]


def test_extract_skips_short_and_unreadable_clips_with_reasons(tmp_path, write_wav):
    paths = _write_clips(tmp_path, write_wav, n=2)
    short = write_wav("data/c/short.wav", np.full(100, 0.1, np.float32), 8000)
    broken = tmp_path / "data" / "c" / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk")
    config = FeatureConfig(n_fft=256, hop_length=128, n_mels=40)
    result = extract_features([*paths, short, broken], 8000, config)
    assert result.paths == paths
    assert result.features.shape == (2, 1, 13, 63)
    assert result.skipped[str(short)].startswith("too short: 100 samples")
    assert result.skipped[str(broken)].startswith("unreadable")


def test_extract_resamples_and_counts_other_rates(tmp_path, write_wav):
    rng = np.random.default_rng(0)
    a = write_wav("a.wav", toy_clip("tone", 1.0, 8000, rng), 8000)
    b = write_wav("b.wav", toy_clip("tone", 1.0, 16000, rng), 16000)
    result = extract_features([a, b], 8000, FeatureConfig(n_fft=256, hop_length=128, n_mels=40))
    assert result.resampled == {16000: 1}
    assert result.features.shape == (2, 1, 13, 63)


class TestCache:
    config = FeatureConfig(n_fft=256, hop_length=128, n_mels=40)

    def test_second_call_reads_the_cache_with_the_same_features(self, tmp_path, write_wav):
        paths = _write_clips(tmp_path, write_wav)
        first, hit1 = cached_features(paths, tmp_path / "data", 8000, self.config, tmp_path / "cache")
        second, hit2 = cached_features(paths, tmp_path / "data", 8000, self.config, tmp_path / "cache")
        assert (hit1, hit2) == (False, True)
        assert np.array_equal(first.features, second.features)
        assert second.paths == first.paths
        assert len(list((tmp_path / "cache").iterdir())) == 1  # one file per dataset + parameters

    def test_changed_audio_invalidates(self, tmp_path, write_wav):
        paths = _write_clips(tmp_path, write_wav)
        before, _ = cached_features(paths, tmp_path / "data", 8000, self.config, tmp_path / "cache")
        write_wav("data/c/0.wav", toy_clip("tone", 1.0, 8000, np.random.default_rng(9)), 8000)
        stat = os.stat(paths[0])
        os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a clearly later mtime
        after, hit = cached_features(paths, tmp_path / "data", 8000, self.config, tmp_path / "cache")
        assert not hit
        assert not np.allclose(before.features[0], after.features[0])
        assert np.array_equal(before.features[1:], after.features[1:])

    def test_added_file_invalidates(self, tmp_path, write_wav):
        paths = _write_clips(tmp_path, write_wav)
        cached_features(paths, tmp_path / "data", 8000, self.config, tmp_path / "cache")
        extra = write_wav("data/c/9.wav", toy_clip("tone", 1.0, 8000, np.random.default_rng(9)), 8000)
        result, hit = cached_features([*paths, extra], tmp_path / "data", 8000, self.config, tmp_path / "cache")
        assert not hit and len(result.paths) == len(paths) + 1

    def test_changed_parameters_use_another_file(self, tmp_path, write_wav):
        paths = _write_clips(tmp_path, write_wav)
        other = FeatureConfig(n_fft=256, hop_length=128, n_mels=40, n_mfcc=20)
        cached_features(paths, tmp_path / "data", 8000, self.config, tmp_path / "cache")
        result, hit = cached_features(paths, tmp_path / "data", 8000, other, tmp_path / "cache")
        assert not hit and result.features.shape[2] == 20
        assert cache_file(tmp_path, tmp_path / "data", self.config, 8000) != cache_file(
            tmp_path, tmp_path / "data", other, 8000)
        assert len(list((tmp_path / "cache").iterdir())) == 2

    def test_corrupt_cache_file_is_recomputed(self, tmp_path, write_wav):
        paths = _write_clips(tmp_path, write_wav)
        cached_features(paths, tmp_path / "data", 8000, self.config, tmp_path / "cache")
        next((tmp_path / "cache").iterdir()).write_bytes(b"not a zip")
        result, hit = cached_features(paths, tmp_path / "data", 8000, self.config, tmp_path / "cache")
        assert not hit and result.features.shape[0] == len(paths)


def test_bad_feature_settings_are_refused():
    with pytest.raises(DlspError, match="n_segments"):
        FeatureConfig(n_segments=0).check()
    with pytest.raises(DlspError, match="n_mfcc <= n_mels"):
        FeatureConfig(n_mfcc=50, n_mels=40).check()


def test_clips_shorter_than_one_window_are_padded_not_skipped(tmp_path, write_wav):
    from dlsp.classify.features import MIN_CLIP_SECONDS, fit_window

    rng = np.random.default_rng(4)
    short = (0.1 * rng.standard_normal(1200)).astype(np.float32)  # 0.15 s at 8 kHz: a quick spoken digit
    fitted = fit_window(short, 8000, 2048)
    assert fitted.shape == (2048,) and np.array_equal(fitted[424:1624], short)  # centred, zeros around
    assert fit_window(short[:700], 8000, 2048) is None  # under MIN_CLIP_SECONDS: too little to classify
    assert MIN_CLIP_SECONDS * 8000 == 800
    long = (0.1 * rng.standard_normal(4000)).astype(np.float32)
    assert fit_window(long, 8000, 2048) is long
    paths = _write_clips(tmp_path, write_wav, n=2)
    quick = write_wav("data/c/quick.wav", short, 8000)
    config = FeatureConfig(n_fft=2048, hop_length=512, n_mels=40, segment_seconds=0.5)
    result = extract_features([*paths, quick], 8000, config)
    assert result.paths == [*paths, quick] and not result.skipped


@pytest.mark.shared_data
def test_every_fsdd_clip_gives_features_with_the_default_settings(shared_data):
    from dlsp.audio.io import load_audio
    from dlsp.classify.features import fit_window

    clips = sorted((shared_data / "speech" / "fsdd").glob("*.wav"))
    assert len(clips) == 2500
    lengths = [load_audio(path)[0].shape[-1] for path in clips]
    assert min(lengths) < FeatureConfig().n_fft  # the clips that used to be skipped
    assert all(fit_window(np.zeros(n, np.float32), 8000, FeatureConfig().n_fft) is not None for n in lengths)

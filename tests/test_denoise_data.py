"""dlsp.denoise.data: on-the-fly mixing and pair sources, determinism per (seed, epoch, index), the cache."""

from __future__ import annotations

import numpy as np
import pytest

from dlsp.audio.io import save_audio
from dlsp.data.noisy_corpus import make_noisy_corpus
from dlsp.data.synthetic_corpus import make_synthetic_corpus
from dlsp.denoise.data import DenoiseDataConfig, batches, mixing_data, pair_data
from dlsp.errors import DlspError
from dlsp.metrics.enhancement import snr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return make_synthetic_corpus(root / "c", seed=3, n_speakers=5, utterances_per_speaker=3,
                                 noise_files_per_kind=3, noise_seconds=3.0, progress=False)


def test_mixing_source_segments_have_the_drawn_snr_and_are_reproducible(corpus):
    config = DenoiseDataConfig(segment_seconds=1.0, snr="5", level_db=None)
    data = mixing_data([corpus / "speech"], [corpus / "noise"], config, seed=0, progress=False)
    source = data.sources["train"]
    noisy, clean = source.segment(0, 0, 7)
    assert noisy.shape == clean.shape == (16000,) and noisy.dtype == np.float32
    assert snr(clean, noisy) == pytest.approx(5.0, abs=0.01)  # SNR of clean vs (noisy - clean) = the noise
    again = source.segment(0, 0, 7)
    np.testing.assert_array_equal(again[0], noisy)
    assert not np.array_equal(source.segment(0, 1, 7)[0], noisy)  # a new epoch, new data


def test_splits_keep_speakers_and_noise_recordings_apart(corpus):
    data = mixing_data([corpus / "speech"], [corpus / "noise"], DenoiseDataConfig(), seed=0, progress=False)
    speakers = {s: {p.split("/")[-2] for p in data.files[s]["clean"]} for s in data.files}
    noises = {s: set(data.files[s]["noise"]) for s in data.files}
    assert set(data.files) == {"train", "val", "test"}
    assert not speakers["train"] & speakers["val"] and not speakers["train"] & speakers["test"]
    assert not noises["train"] & noises["test"] and not noises["val"] & noises["test"]


def test_batches_shape_and_count(corpus):
    config = DenoiseDataConfig(segment_seconds=0.5)
    source = mixing_data([corpus / "speech"], [corpus / "noise"], config, seed=0, progress=False).sources["val"]
    got = list(batches(source, 0, 0, 10, 4))
    assert [b[0].shape for b in got] == [(4, 8000), (4, 8000), (2, 8000)]


def test_pair_source_uses_the_manifest_splits(corpus, tmp_path):
    mixes = make_noisy_corpus(corpus / "speech", corpus / "noise", tmp_path / "mix", count=12, seed=0,
                              progress=False).parent
    data = pair_data(mixes, DenoiseDataConfig(segment_seconds=0.5), seed=0, progress=False)
    assert set(data.sources) == {"train", "val", "test"}
    noisy, clean = data.sources["train"].segment(0, 0, 0)
    assert noisy.shape == clean.shape == (8000,)


def test_cache_is_reused_and_invalidated(corpus, tmp_path):
    cache = tmp_path / "PREPROCESSED"
    config = DenoiseDataConfig(segment_seconds=0.5)
    first = mixing_data([corpus / "speech"], [corpus / "noise"], config, 0, cache=cache, progress=False)
    assert (cache / "train" / "clean.npy").exists() and (cache / "validation" / "noise.npy").exists()
    second = mixing_data([corpus / "speech"], [corpus / "noise"], config, 0, cache=cache, progress=False)
    np.testing.assert_array_equal(first.sources["train"].segment(0, 0, 1)[0],
                                  second.sources["train"].segment(0, 0, 1)[0])
    # Changing an input file changes the key: the stale cache is not used.
    target = corpus / "speech" / "spk00" / "spk00_000.wav"
    original = target.read_bytes()
    try:
        save_audio(target, np.full(8000, 0.1, np.float32), 16000)
        key_before = (cache / "train" / "clean.json").read_text()
        mixing_data([corpus / "speech"], [corpus / "noise"], config, 0, cache=cache, progress=False)
        assert (cache / "train" / "clean.json").read_text() != key_before or "spk00" not in key_before
    finally:
        target.write_bytes(original)


def test_missing_noise_is_a_clear_error(corpus, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DlspError, match="no audio files"):
        mixing_data([corpus / "speech"], [tmp_path / "empty"], DenoiseDataConfig(), 0, progress=False)


def test_noise_augmentation_only_in_training(corpus):
    data = mixing_data([corpus / "speech"], [corpus / "noise"], DenoiseDataConfig(), seed=0, progress=False)
    assert data.sources["train"].augment_noise and not data.sources["val"].augment_noise
    plain = mixing_data([corpus / "speech"], [corpus / "noise"], DenoiseDataConfig(augment_noise=False), seed=0,
                        progress=False)
    assert not plain.sources["train"].augment_noise
    noisy, clean = data.sources["train"].segment(0, 0, 3)
    assert np.all(np.isfinite(noisy)) and not np.array_equal(noisy, clean)


def test_synthetic_noise_joins_the_training_pool_only(corpus):
    config = DenoiseDataConfig(synthetic_noise_files=2)
    data = mixing_data([corpus / "speech"], [corpus / "noise"], config, seed=0, progress=False)
    train_names = data.sources["train"].noise.names
    assert sum(name.startswith("synthetic:") for name in train_names) == 2 * 7
    assert not any(name.startswith("synthetic:") for name in data.sources["val"].noise.names)


def test_speed_perturbation_moves_the_pitch_within_its_range_in_training_only(corpus):
    from dlsp.audio.mixing import parse_snr_spec
    from dlsp.denoise.data import AudioPool, MixingSource

    sr = 8000
    tone = np.sin(2 * np.pi * 1000 * np.arange(sr) / sr).astype(np.float32)  # a 1 kHz "utterance"
    noise = AudioPool(["n"], [np.random.default_rng(0).standard_normal(2 * sr).astype(np.float32)])
    source = MixingSource(AudioPool(["tone"], [tone]), noise, parse_snr_spec("100"), None, sr // 2, sr,
                          speech_speed=0.2)
    peaks = []
    for index in range(40):
        _, clean = source.segment(0, 0, index)
        spectrum = np.abs(np.fft.rfft(clean * np.hanning(clean.size)))
        peaks.append(np.argmax(spectrum) * sr / clean.size)
    peaks = np.array(peaks)
    assert np.all((peaks > 790) & (peaks < 1210))  # within 1 -/+ 0.2 of 1 kHz (plus a bin)
    assert np.mean(np.abs(peaks - 1000) > 20) > 0.4  # most segments are perturbed, not all
    assert np.mean(np.abs(peaks - 1000) <= 4) > 0.1
    with pytest.raises(DlspError, match="speech_speed"):
        MixingSource(AudioPool(["tone"], [tone]), noise, parse_snr_spec("0"), None, sr, sr, speech_speed=0.7)
    data = mixing_data([corpus / "speech"], [corpus / "noise"], DenoiseDataConfig(speech_speed=0.1), seed=0,
                       progress=False)
    assert data.sources["train"].speech_speed == 0.1 and data.sources["val"].speech_speed == 0.0


def test_noise_speed_and_eq_augment_training_noise_and_speech_only_within_their_ranges(corpus):
    from dlsp.audio.mixing import parse_snr_spec
    from dlsp.denoise.data import AudioPool, MixingSource

    sr = 8000
    speech = AudioPool(["s"], [np.random.default_rng(1).standard_normal(sr).astype(np.float32)])
    hum = AudioPool(["hum"], [np.sin(2 * np.pi * 1000 * np.arange(3 * sr) / sr).astype(np.float32)])
    plain = MixingSource(speech, hum, parse_snr_spec("0"), None, sr // 2, sr, augment_noise=True)
    fast = MixingSource(speech, hum, parse_snr_spec("0"), None, sr // 2, sr, augment_noise=True, noise_speed=0.2)
    peaks = []
    for index in range(40):
        noisy, clean = fast.segment(0, 0, index)
        assert noisy.shape == (sr // 2,)
        peaks.append(np.argmax(np.abs(np.fft.rfft((noisy - clean) * np.hanning(sr // 2)))) * 2)
    peaks = np.array(peaks)
    assert np.all((peaks > 790) & (peaks < 1210))
    assert 0.2 < np.mean(np.abs(peaks - 1000) > 20) < 0.8  # about half the crops are sped up or slowed down
    # Off by default: the segments are exactly those of a source without the options.
    np.testing.assert_array_equal(plain.segment(0, 0, 3)[0],
                                  MixingSource(speech, hum, parse_snr_spec("0"), None, sr // 2, sr,
                                               augment_noise=True, noise_speed=0.0, noise_eq=0.0).segment(0, 0, 3)[0])
    coloured = MixingSource(speech, hum, parse_snr_spec("0"), None, sr // 2, sr, augment_noise=True, noise_eq=9.0)
    assert any(not np.array_equal(coloured.segment(0, 0, i)[0], plain.segment(0, 0, i)[0]) for i in range(8))
    voiced = MixingSource(speech, hum, parse_snr_spec("0"), None, sr // 2, sr, augment_noise=True, speech_eq=9.0)
    coloured_speech = [not np.array_equal(voiced.segment(0, 0, i)[1], plain.segment(0, 0, i)[1]) for i in range(12)]
    assert 0 < sum(coloured_speech) < 12  # about half the segments; the clean target is the coloured speech
    for bad in (dict(noise_speed=0.5), dict(noise_eq=-1.0), dict(noise_eq=30.0), dict(speech_eq=25.0)):
        with pytest.raises(DlspError, match=next(iter(bad))):
            MixingSource(speech, hum, parse_snr_spec("0"), None, sr, sr, **bad)
    config = DenoiseDataConfig(noise_speed=0.2, noise_eq=9.0, speech_eq=6.0, segment_seconds=1.0)
    data = mixing_data([corpus / "speech"], [corpus / "noise"], config, seed=0, progress=False)
    val = data.sources["val"]
    assert not val.augment_noise and val.speech_eq == val.noise_eq == val.noise_speed == 0.0  # heard as recorded
    assert data.sources["train"].speech_eq == 6.0
    no_aug = mixing_data([corpus / "speech"], [corpus / "noise"], DenoiseDataConfig(segment_seconds=1.0), seed=0,
                         progress=False)
    np.testing.assert_array_equal(val.segment(0, 0, 2)[0], no_aug.sources["val"].segment(0, 0, 2)[0])


# --- what the mixing teaches: narrowband speech, hold-outs, formats, balance, babble, rooms, clipping ---------

SR = 16000


def _wideband_and_narrowband_corpus(root, seconds: float = 1.0):
    """Two corpora of speaker folders: `wide` (white-noise 'speech', full band) and `narrow` (the same, but
    recorded at 8 kHz and stored at 16 kHz, so nothing above 4 kHz), three speakers each."""
    import soxr

    rng = np.random.default_rng(5)
    for corpus in ("wide", "narrow"):
        for speaker in range(3):
            for take in range(2):
                x = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
                if corpus == "narrow":
                    x = soxr.resample(soxr.resample(x, SR, 8000), 8000, SR).astype(np.float32)
                save_audio(root / corpus / f"spk{speaker}" / f"take{take}.wav", x, SR)
    noise = (0.1 * rng.standard_normal(4 * SR)).astype(np.float32)
    for k in range(3):
        save_audio(root / "noise" / f"hiss_{k}.wav", np.roll(noise, k * 1000), SR)
    return [root / "wide", root / "narrow"], [root / "noise"]


def _band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].sum())


def test_narrowband_speech_never_comes_with_noise_above_its_band(tmp_path):
    clean_dirs, noise_dirs = _wideband_and_narrowband_corpus(tmp_path)
    config = DenoiseDataConfig(segment_seconds=0.5, split=(0.34, 0.33, 0.33), level_db=None)
    data = mixing_data(clean_dirs[1:], noise_dirs, config, seed=0, progress=False)  # narrowband only
    for index in range(8):
        noisy, clean = data.sources["train"].segment(0, 0, index)
        noise = noisy - clean
        # Noise above 4.3 kHz (the band edge plus the filter's transition) is gone: > 60 dB below the rest.
        assert _band_energy(noise, 4300, 8000) < 1e-6 * _band_energy(noise, 0, 4000)
    wide = mixing_data(clean_dirs[:1], noise_dirs, config, seed=0, progress=False)
    noisy, clean = wide.sources["train"].segment(0, 0, 0)
    assert _band_energy(noisy - clean, 4300, 8000) > 0.3 * _band_energy(noisy - clean, 0, 4000)


def test_narrowband_exclude_drops_such_speech_and_says_so(tmp_path):
    clean_dirs, noise_dirs = _wideband_and_narrowband_corpus(tmp_path)
    config = DenoiseDataConfig(segment_seconds=0.5, split=(0.34, 0.33, 0.33), narrowband="exclude")
    lines = []
    data = mixing_data(clean_dirs, noise_dirs, config, seed=0, progress=False, log=lines.append)
    assert all("/wide/" in name for split in data.files for name in data.files[split]["clean"])
    assert any("narrowband" in line and "excluded" in line for line in lines)
    with pytest.raises(DlspError, match="narrowband"):
        mixing_data(clean_dirs[1:], noise_dirs, config, seed=0, progress=False)
    with pytest.raises(DlspError, match=r"data\.narrowband must be one of"):
        mixing_data(clean_dirs, noise_dirs, DenoiseDataConfig(narrowband="drop"), seed=0, progress=False)


def test_excluded_files_are_in_no_split(tmp_path):
    clean_dirs, noise_dirs = _wideband_and_narrowband_corpus(tmp_path)
    config = DenoiseDataConfig(segment_seconds=0.5, split=(0.5, 0.5, 0.0), exclude=("wide/spk0/*", "noise/hiss_0.*"))
    data = mixing_data(clean_dirs, noise_dirs, config, seed=0, progress=False)
    used = [name for split in data.files for kind in data.files[split] for name in data.files[split][kind]]
    assert used and not any("spk0" in name and "/wide/" in name for name in used)
    assert not any("hiss_0" in name for name in used)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_every_format_soundfile_reads_works_for_clean_and_noise(tmp_path, fmt):
    import soundfile as sf

    rng = np.random.default_rng(0)
    for speaker in range(3):
        (tmp_path / "speech" / f"s{speaker}").mkdir(parents=True)
        sf.write(tmp_path / "speech" / f"s{speaker}" / f"u.{fmt}", (0.1 * rng.standard_normal(SR)).astype(np.float32),
                 SR)
    (tmp_path / "noise").mkdir()
    for k in range(3):
        sf.write(tmp_path / "noise" / f"n_{k}.{fmt}", (0.1 * rng.standard_normal(2 * SR)).astype(np.float32), SR)
    config = DenoiseDataConfig(segment_seconds=0.5, split=(0.34, 0.33, 0.33))
    data = mixing_data([tmp_path / "speech"], [tmp_path / "noise"], config, seed=0, progress=False)
    used = [name for split in data.files for kind in data.files[split] for name in data.files[split][kind]]
    assert len(used) == 6 and all(name.endswith(f".{fmt}") for name in used)
    noisy, clean = data.sources["train"].segment(0, 0, 0)
    assert np.isfinite(noisy).all() and np.abs(noisy - clean).max() > 0


def test_noise_folders_with_nothing_usable_are_refused_before_training(tmp_path):
    clean_dirs, _ = _wideband_and_narrowband_corpus(tmp_path)
    for k in range(3):
        save_audio(tmp_path / "short" / f"blip_{k}.wav", np.full(100, 0.1, np.float32), SR)
    with pytest.raises(DlspError, match=r"no usable audio .*shorter than 0.1 s") as info:
        mixing_data(clean_dirs, [tmp_path / "short"], DenoiseDataConfig(split=(0.34, 0.33, 0.33)), seed=0,
                    progress=False)
    assert "short" in str(info.value)


def _pool(corpus_seconds: dict[str, list[list[float]]]):
    """An AudioPool with given corpora -> speakers -> file lengths (s); every file a constant at a level
    that names its corpus and speaker, so a drawn segment tells where it came from."""
    from dlsp.denoise.data import AudioPool

    pool = AudioPool([], [], [], [], [])
    for c, (corpus, speakers) in enumerate(sorted(corpus_seconds.items())):
        for s, files in enumerate(speakers):
            for f, seconds in enumerate(files):
                pool.names.append(f"{corpus}/{s}/{f}")
                pool.audio.append(np.full(int(seconds * SR), 0.01 * (1 + c * 10 + s), np.float32))
                pool.corpora.append(corpus)
                pool.speakers.append(f"{corpus}{s}")
                pool.bandwidths.append(8000.0)
    return pool


def test_corpus_balance_weighs_corpora_by_minutes_and_speakers_equally():
    from dlsp.denoise.data import _CorpusSampler

    # Corpus "long": 1 speaker with 4 x 4 s; corpus "short": 4 speakers, one with 30 files of 1 s, three with 2.
    pool = _pool({"long": [[4.0] * 4], "short": [[1.0] * 30, [1.0] * 2, [1.0] * 2, [1.0] * 2]})
    sampler = _CorpusSampler(pool)
    # 16 s vs 36 s of speech: corpus weights sqrt(16) : sqrt(36) = 0.4 : 0.6.
    np.testing.assert_allclose(sampler.corpus_p, [0.4, 0.6])
    rng = np.random.default_rng(0)
    corpora, speakers = [], []
    for _ in range(4000):
        draw = sampler.drawer(rng)
        first = draw()
        corpora.append(pool.corpora[first])
        speakers += [pool.speakers[first]] if pool.corpora[first] == "short" else []
    assert corpora.count("long") / len(corpora) == pytest.approx(0.4, abs=0.03)
    counts = [speakers.count(f"short{s}") / len(speakers) for s in range(4)]
    np.testing.assert_allclose(counts, 0.25, atol=0.03)  # the talkative speaker gets no more than the others


def _source(**options):
    from dlsp.audio.mixing import parse_snr_spec
    from dlsp.denoise.data import AudioPool, MixingSource

    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    # Each "utterance" is a tone at its own frequency (300 Hz apart), so babble shows which ones it summed.
    tones = [np.sin(2 * np.pi * (400 + 300 * k) * t).astype(np.float32) * 0.1 for k in range(16)]
    clean = AudioPool([f"tone{k}" for k in range(16)], tones)
    noise = AudioPool(["hiss"], [(0.1 * rng.standard_normal(3 * SR)).astype(np.float32)])
    return MixingSource(clean, noise, parse_snr_spec("0"), None, SR, SR, **options)


def test_babble_is_three_to_eight_training_utterances_summed():
    source = _source(babble=1.0)
    for index in range(12):
        noisy, clean = source.segment(0, 0, index)
        spectrum = np.abs(np.fft.rfft(noisy - clean))
        freqs = np.fft.rfftfreq(len(noisy), 1 / SR)
        peaks = [f for f in range(400, 400 + 300 * 16, 300) if spectrum[np.argmin(np.abs(freqs - f))] >
                 0.05 * spectrum.max()]
        # Talkers may repeat an utterance, so count distinct tones: at least 1, at most 8 talkers' worth.
        assert 1 <= len(peaks) <= 8
        assert np.median(spectrum) < 1e-3 * spectrum.max()  # nothing but tones: no recorded noise in it
    with pytest.raises(DlspError, match="babble is a probability"):
        _source(babble=1.5)


def test_reverberant_segments_train_towards_the_early_reflections():
    from dlsp.audio.rooms import reverberate

    late = int(0.2 * SR)
    rir = np.zeros(late + 1, np.float32)
    rir[0], rir[late] = 1.0, 0.7
    reverberant = _source(reverb=1.0, rirs=[rir])
    dry = _source()
    noisy_r, target_r = reverberant.segment(0, 0, 3)
    noisy_d, target_d = dry.segment(0, 0, 3)
    # Same draws: the target is the dry speech (early part of this room = direct path) at the mixture's gain,
    # and the input holds the late echo as well.
    _, early = reverberate(target_d, rir, SR)
    gain = np.dot(target_r, early) / np.dot(early, early)
    np.testing.assert_allclose(target_r, gain * early, atol=1e-5)
    assert np.abs(noisy_r - target_r).max() > np.abs(noisy_d - target_d).max() * 0.5
    with pytest.raises(DlspError, match="reverb needs room impulse responses"):
        _source(reverb=0.5)


def test_clipped_inputs_keep_an_unclipped_target():
    noisy, clean = _source(clipping=1.0).segment(0, 0, 1)
    plain_noisy, plain_clean = _source().segment(0, 0, 1)
    np.testing.assert_array_equal(clean, plain_clean)
    peak = np.abs(noisy).max()
    assert peak < 0.9 * np.abs(plain_noisy).max() + 1e-6
    assert np.mean(np.abs(noisy) >= peak - 1e-7) > 0.001  # a flat top: samples pinned at the clip level


def test_noise_with_nothing_in_the_band_of_narrowband_speech_is_drawn_again():
    from dlsp.audio.mixing import parse_snr_spec
    from dlsp.denoise.data import AudioPool, MixingSource

    rng = np.random.default_rng(0)
    speech = band_limit_8k(0.1 * rng.standard_normal(SR).astype(np.float32))
    t = np.arange(2 * SR) / SR
    # All above 4 kHz, and a whole number of periods in any crop, so nothing leaks below the band.
    whistle = (0.1 * np.sin(2 * np.pi * 7000 * t)).astype(np.float32)
    hiss = (0.1 * rng.standard_normal(2 * SR)).astype(np.float32)
    clean = AudioPool(["s"], [speech], ["c"], ["a"], [3990.0])
    source = MixingSource(clean, AudioPool(["whistle", "hiss"], [whistle, hiss]), parse_snr_spec("0"), None,
                          SR // 2, SR, narrowband="limit")
    for index in range(20):  # about half the draws pick the whistle first
        noisy, _ = source.segment(0, 0, index)
        assert np.isfinite(noisy).all()
    only_whistle = MixingSource(clean, AudioPool(["whistle"], [whistle]), parse_snr_spec("0"), None, SR // 2, SR,
                                narrowband="limit")
    with pytest.raises(DlspError, match="no training noise has content below 3990 Hz"):
        only_whistle.segment(0, 0, 0)


def band_limit_8k(x: np.ndarray) -> np.ndarray:
    from dlsp.audio.bandwidth import band_limit

    return band_limit(x, SR, 3990)


def test_noise_folders_of_unreadable_files_are_refused_before_training_naming_a_file(tmp_path, cli):
    clean_dirs, _ = _wideband_and_narrowband_corpus(tmp_path)
    for k in range(3):
        (tmp_path / "broken" / f"n_{k}.wav").parent.mkdir(exist_ok=True)
        (tmp_path / "broken" / f"n_{k}.wav").write_bytes(b"RIFF not really a wave file")
    code, _, err = cli("denoise", "train", "--clean", str(clean_dirs[0]), "--noise", str(tmp_path / "broken"),
                       "--out", str(tmp_path / "run"), "--set", "data.split=[0.34,0.33,0.33]", "--quiet")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "broken/n_" in err
    assert not (tmp_path / "run" / "best.pt").exists()


def test_narrow_input_low_passes_input_and_target_alike_at_a_listed_cutoff():
    from dlsp.denoise.data import NARROW_CUTOFFS_HZ

    source = _source(narrow_input=1.0)
    plain = _source()
    for index in range(6):
        noisy, target = source.segment(0, 0, index)
        wide_noisy, _ = plain.segment(0, 0, index)
        edge = next(c for c in sorted(NARROW_CUTOFFS_HZ) if _band_energy(noisy, c, 8000) < 1e-9 * _band_energy(
            noisy, 0, c - 250))
        assert _band_energy(target, edge, 8000) < 1e-9 * _band_energy(target, 0, edge - 250)
        assert _band_energy(wide_noisy, edge, 8000) > 1e-3 * _band_energy(wide_noisy, 0, edge - 250)
        np.testing.assert_allclose(_band_energy(noisy, 0, 3000), _band_energy(wide_noisy, 0, 3000), rtol=1e-3)
    with pytest.raises(DlspError, match="narrow_input is a probability"):
        _source(narrow_input=-0.1)

"""The synthetic corpus: determinism, speech-like utterances, noise spectra, separable speakers, layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy import signal, stats

from dlsp.audio.io import audio_info, load_audio
from dlsp.audio.synthetic import (
    NOISE_KINDS,
    README_NAME,
    README_TITLE,
    SyntheticSpeaker,
    is_synthetic_corpus,
    make_speakers,
    make_synthetic_corpus,
    synth_noise,
    synth_utterance,
)
from dlsp.errors import DlspError

SR = 16000
SMALL = {"n_speakers": 2, "utterances_per_speaker": 2, "utterance_seconds": (0.5, 0.8),
         "noise_files_per_kind": 1, "noise_seconds": 0.4, "progress": False}


def _f0_estimates(audio: np.ndarray, sr: int = SR, fmin: float = 50.0, fmax: float = 500.0) -> np.ndarray:
    """f0 of loud, clearly periodic 50 ms frames by autocorrelation (low-passed at 1 kHz, octave-guarded)."""
    low = signal.sosfiltfilt(signal.butter(4, 1000, fs=sr, output="sos"), audio.astype(float))
    size = int(0.05 * sr)
    frames = np.lib.stride_tricks.sliding_window_view(low, size)[:: size // 2]
    energy = np.sum(frames**2, axis=1)
    shortest, longest = int(sr / fmax), int(sr / fmin)
    estimates = []
    for frame in frames[energy > 0.1 * energy.max()]:
        frame = frame - frame.mean()
        corr = np.correlate(frame, frame, "full")[size - 1:] / (frame @ frame) / (1 - np.arange(size) / size)
        band = corr[shortest:longest]
        if band.max() < 0.5:
            continue
        # The shortest lag whose peak is nearly as high as the best one: the period, not a multiple of it.
        peaks = signal.find_peaks(band, height=0.85 * band.max())[0]
        estimates.append(sr / (shortest + (peaks[0] if len(peaks) else np.argmax(band))))
    return np.array(estimates)


def _slope_db_per_octave(noise: np.ndarray, band: tuple[float, float] = (100.0, 4000.0)) -> float:
    freqs, power = signal.welch(noise, SR, nperseg=4096)
    inside = (freqs >= band[0]) & (freqs <= band[1])
    return float(np.polyfit(np.log2(freqs[inside]), 10 * np.log10(power[inside]), 1)[0])


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- speakers and utterances ------------------------------------------------------------------------------


def test_speakers_span_the_voice_range_deterministically():
    speakers = make_speakers(8, seed=0)
    assert [s.name for s in speakers] == [f"spk{i:02d}" for i in range(8)]
    assert make_speakers(8, seed=0) == speakers
    assert make_speakers(8, seed=1) != speakers
    assert all(85 <= s.f0_low < s.f0_high <= 400 for s in speakers)
    assert speakers[0].f0_high <= 160 and speakers[-1].f0_low >= 230  # male-like to child-like
    assert all(0.85 <= s.formant_scale <= 1.2 for s in speakers)
    assert all(0 < s.breathiness < 0.5 and 3 <= s.rate <= 6 for s in speakers)
    assert np.all(np.diff([s.f0_low for s in speakers]) > 0)
    assert [s.name for s in make_speakers(12)][-1] == "spk11"
    with pytest.raises(DlspError):
        make_speakers(0)


def test_utterance_is_deterministic_and_seed_dependent():
    speaker = make_speakers(4)[1]
    first = synth_utterance(speaker, 1.0, rng=3)
    np.testing.assert_array_equal(first, synth_utterance(speaker, 1.0, rng=np.random.default_rng(3)))
    assert not np.allclose(first, synth_utterance(speaker, 1.0, rng=4))
    np.testing.assert_array_equal(synth_utterance(speaker, 0.5), synth_utterance(speaker, 0.5))  # None is 0


@pytest.mark.parametrize(("seconds", "sr"), [(1.3, 16000), (0.25, 16000), (1.0, 8000), (0.7, 22050)])
def test_utterance_length_dtype_and_level(seconds, sr):
    for speaker in make_speakers(3):
        audio = synth_utterance(speaker, seconds, sr, rng=7)
        assert audio.shape == (round(seconds * sr),) and audio.dtype == np.float32
        assert np.all(np.isfinite(audio))
        peak_db = 20 * np.log10(np.max(np.abs(audio)))
        assert -6.1 <= peak_db <= -2.9, peak_db
        assert np.sqrt(np.mean(audio**2)) > 0.01  # not just a click: speech fills the utterance


def test_utterance_has_pauses_and_syllable_rhythm():
    audio = synth_utterance(make_speakers(4)[2], 3.0, rng=1).astype(float)
    envelope = np.sqrt(np.convolve(audio**2, np.ones(160) / 160, "same"))[::160]  # 10 ms frames
    level = 20 * np.log10(envelope + 1e-9) - 20 * np.log10(envelope.max())
    assert 0.05 < np.mean(level < -40) < 0.6  # silent stretches: lead, tail, closures and pauses
    modulation = np.abs(np.fft.rfft(envelope - envelope.mean())) ** 2
    rates = np.fft.rfftfreq(len(envelope), 0.01)
    band = (rates >= 1) & (rates <= 16)
    centroid = np.sum(rates[band] * modulation[band]) / np.sum(modulation[band])
    assert 2.0 <= centroid <= 7.0  # syllables (and pauses) modulate the level a few times per second


@pytest.mark.parametrize("index", [0, 3, 7])
def test_voiced_pitch_lies_in_the_speakers_range(index):
    speaker = make_speakers(8)[index]
    f0 = np.concatenate([_f0_estimates(synth_utterance(speaker, 2.0, rng=seed)) for seed in range(2)])
    assert len(f0) >= 20
    inside = (f0 >= 0.8 * speaker.f0_low) & (f0 <= 1.2 * speaker.f0_high)
    assert np.mean(inside) >= 0.9, (speaker, np.percentile(f0, [5, 50, 95]))
    assert speaker.f0_low <= np.median(f0) <= speaker.f0_high


def test_pitch_estimator_would_notice_a_wrong_range():
    low, high = make_speakers(8)[0], make_speakers(8)[7]
    low_f0 = np.median(_f0_estimates(synth_utterance(low, 2.0, rng=0)))
    assert not 0.8 * high.f0_low <= low_f0 <= 1.2 * high.f0_high


def _mean_log_mel(audio: np.ndarray, bands: int = 40) -> np.ndarray:
    """Mean log power of the loud (vowel) frames in mel-spaced bands, level removed.

    Shape: `(time,) -> (bands,)`.
    """
    freqs, _, spectrum = signal.stft(audio, SR, nperseg=512, noverlap=352)
    mel = 2595 * np.log10(1 + freqs / 700)
    edges = np.linspace(mel[1], mel[-1], bands + 1)
    band_of_bin = np.clip(np.searchsorted(edges, mel, side="right") - 1, 0, bands - 1)
    power = np.stack([np.mean(np.abs(spectrum[band_of_bin == b]) ** 2, axis=0) for b in range(bands)])
    log_power = np.log(power + 1e-12)
    feature = log_power[:, log_power.max(axis=0) > log_power.max() - 6].mean(axis=1)
    return feature - feature.mean()  # levels vary by design; compare spectral shape


def test_speakers_are_separable_by_their_long_term_spectrum():
    # The speaker-encoder requirement in miniature: nearest centroid of 3 utterances, 2 held out per speaker.
    speakers = make_speakers(6, seed=0)
    features = {s.name: [_mean_log_mel(synth_utterance(s, 2.0, rng=100 * i + k)) for k in range(5)]
                for i, s in enumerate(speakers)}
    centroids = {name: np.mean(f[:3], axis=0) for name, f in features.items()}
    guesses = [(name, min(centroids, key=lambda c, v=held_out: np.linalg.norm(v - centroids[c])))
               for name, f in features.items() for held_out in f[3:]]
    accuracy = np.mean([truth == guess for truth, guess in guesses])
    assert accuracy >= 0.8, guesses


def test_bad_durations_and_rates_are_user_errors():
    speaker = SyntheticSpeaker("x", 100, 150, 1.0, 0.1, 4.0)
    for seconds, sr in [(0.0, 16000), (-1.0, 16000), (float("nan"), 16000), (1.0, 4000)]:
        with pytest.raises(DlspError):
            synth_utterance(speaker, seconds, sr)


# --- noise --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_noise_length_level_and_determinism(kind):
    noise = synth_noise(kind, 1.5, SR, rng=5)
    assert noise.shape == (24000,) and noise.dtype == np.float32 and np.all(np.isfinite(noise))
    assert np.max(np.abs(noise)) <= 10 ** (-1 / 20) + 1e-6
    rms_db = 10 * np.log10(np.mean(noise.astype(float) ** 2))
    if kind == "clicks":  # impulsive: the peak limit binds before the RMS target
        assert rms_db < -26.5
    else:
        assert -26.5 <= rms_db <= -19.5
    assert abs(float(np.mean(noise))) < 1e-3
    np.testing.assert_array_equal(noise, synth_noise(kind, 1.5, SR, rng=5))
    assert not np.allclose(noise, synth_noise(kind, 1.5, SR, rng=6))


def test_unknown_noise_kind_is_a_user_error():
    with pytest.raises(DlspError, match="unknown noise kind 'purple'"):
        synth_noise("purple", 1.0)


@pytest.mark.parametrize(("kind", "expected"), [("white", 0.0), ("pink", -3.0), ("brown", -6.0)])
def test_coloured_noise_spectral_slopes(kind, expected):
    slopes = [_slope_db_per_octave(synth_noise(kind, 4.0, SR, rng=seed)) for seed in range(3)]
    assert np.allclose(slopes, expected, atol=0.5), slopes


def test_hum_energy_sits_on_mains_harmonics():
    mains_seen = set()
    for seed in range(4):
        hum = synth_noise("hum", 4.0, SR, rng=seed).astype(float)
        power = np.abs(np.fft.rfft(hum)) ** 2
        freqs = np.fft.rfftfreq(len(hum), 1 / SR)
        fractions = {}
        for mains in (50, 60):
            harmonic = np.round(freqs / mains)
            near = (harmonic >= 1) & (np.abs(freqs - harmonic * mains) <= 2 + 0.01 * freqs)
            fractions[mains] = power[near].sum() / power.sum()
        mains = max(fractions, key=fractions.get)
        assert fractions[mains] >= 0.9 and fractions[110 - mains] < 0.2, fractions
        mains_seen.add(mains)
    assert mains_seen == {50, 60}  # both grids occur


def test_clicks_are_impulsive_and_the_others_are_not():
    assert stats.kurtosis(synth_noise("clicks", 2.0, SR, rng=1), fisher=False) > 30
    for kind in ("white", "pink", "hum", "machine"):
        assert stats.kurtosis(synth_noise(kind, 2.0, SR, rng=1), fisher=False) < 6, kind


def test_noise_at_8_khz():
    for kind in NOISE_KINDS:
        noise = synth_noise(kind, 0.5, 8000, rng=2)
        assert noise.shape == (4000,) and np.all(np.isfinite(noise)) and np.max(np.abs(noise)) > 0


# --- the corpus ---------------------------------------------------------------------------------------------


def test_corpus_layout_readme_and_wav_format(tmp_path):
    out = make_synthetic_corpus(tmp_path / "synth", seed=3, **SMALL)
    assert out == tmp_path / "synth"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    speech = [f"speech/spk0{s}/spk0{s}_00{u}.wav" for s in range(2) for u in range(2)]
    noise = [f"noise/{kind}_00.wav" for kind in NOISE_KINDS]
    assert files == sorted([README_NAME, *speech, *noise])
    readme = (out / README_NAME).read_text()
    assert readme.startswith(README_TITLE + "\n") and "dlsp data synth --seed 3" in readme
    assert "spk01" in readme and is_synthetic_corpus(out)
    info = audio_info(out / speech[0])
    assert (info.sample_rate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    assert 0.5 <= info.duration <= 0.8
    audio, _ = load_audio(out / noise[0])
    assert audio.shape == (round(0.4 * SR),)


def test_corpus_is_byte_identical_for_a_seed_and_files_do_not_depend_on_order(tmp_path):
    first = _digests(make_synthetic_corpus(tmp_path / "a", seed=3, **SMALL))
    assert _digests(make_synthetic_corpus(tmp_path / "b", seed=3, **SMALL)) == first
    other = _digests(make_synthetic_corpus(tmp_path / "c", seed=4, **SMALL))
    assert all(other[name] != digest for name, digest in first.items() if name.endswith(".wav"))
    # Fewer utterances per speaker: the files that remain are the same files.
    fewer = _digests(make_synthetic_corpus(tmp_path / "d", seed=3, **{**SMALL, "utterances_per_speaker": 1}))
    for name in ("speech/spk00/spk00_000.wav", "speech/spk01/spk01_000.wav", "noise/pink_00.wav"):
        assert fewer[name] == first[name]


def test_rerun_overwrites_an_earlier_corpus_and_removes_its_extra_files(tmp_path):
    out = make_synthetic_corpus(tmp_path / "synth", seed=3, **SMALL)
    make_synthetic_corpus(out, seed=5, **{**SMALL, "n_speakers": 1, "noise_files_per_kind": 0})
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert files == [README_NAME, "speech", "speech/spk00", "speech/spk00/spk00_000.wav",
                     "speech/spk00/spk00_001.wav"]
    assert "--seed 5" in (out / README_NAME).read_text()


def test_refuses_a_foreign_non_empty_folder_and_writes_nothing(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(DlspError, match="not empty"):
        make_synthetic_corpus(tmp_path, **SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    (tmp_path / "file.wav").write_bytes(b"")
    with pytest.raises(DlspError, match="not a folder"):
        make_synthetic_corpus(tmp_path / "file.wav", **SMALL)


@pytest.mark.parametrize("bad", [{"n_speakers": 0}, {"utterances_per_speaker": 0}, {"seed": -1},
                                 {"utterance_seconds": (2.0, 1.0)}, {"noise_seconds": 0.0},
                                 {"sample_rate": 4000}, {"noise_files_per_kind": -1}])
def test_bad_corpus_settings_are_refused_before_writing(tmp_path, bad):
    with pytest.raises(DlspError):
        make_synthetic_corpus(tmp_path / "synth", **{**SMALL, **bad})
    assert not (tmp_path / "synth").exists()


# --- the command line ---------------------------------------------------------------------------------------


def test_cli_writes_a_corpus_and_summarises_it(cli, tmp_path):
    code, out, err = cli("data", "synth", "--out", tmp_path / "synth", "--speakers", "2", "--utterances", "1",
                         "--noise-seconds", "0.3", "--seed", "2", "--sr", "8000")
    assert code == 0, err
    assert "2 speech files" in out and "14 noise files" in out
    assert str(tmp_path / "synth") in out and "seed 2" in out
    assert audio_info(tmp_path / "synth" / "speech" / "spk01" / "spk01_000.wav").sample_rate == 8000
    assert "--seed 2" in (tmp_path / "synth" / README_NAME).read_text()


def test_cli_refuses_a_foreign_folder_with_one_line(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, out, err = cli("data", "synth", "--out", tmp_path, "--speakers", "1", "--utterances", "1")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("dlsp: error: ") and str(tmp_path) in err
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_cli_help_has_examples(cli):
    with pytest.raises(SystemExit) as exit_info:
        cli("data", "synth", "--help")
    assert exit_info.value.code == 0

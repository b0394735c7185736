"""Enhancement metrics (dlsp.metrics.enhancement) and `dlsp metrics`, on signals with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from dlsp.errors import DlspError
from dlsp.metrics import enhancement_metrics, pesq_score, segmental_snr, si_sdr, snr, stoi_score


def speech_like(sr: int = 16000, seconds: float = 3.0) -> np.ndarray:
    """A voiced-speech stand-in PESQ's voice activity detector accepts: a gliding harmonic complex with two
    formant bumps, a 4 Hz syllable envelope and a 0.3 s pause every second."""
    t = np.arange(int(sr * seconds)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = np.zeros_like(t)
    for k in range(1, 30):
        amp = (1 + 2 * np.exp(-(((k * 140 - 500) / 200) ** 2)) + np.exp(-(((k * 140 - 1500) / 300) ** 2))) / k
        voiced += np.where(k * f0 < 0.45 * sr, amp * np.sin(k * phase), 0.0)
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4 * t)) * ((t % 1.0) < 0.7)
    signal = voiced * envelope
    return 0.3 * signal / np.max(np.abs(signal))


def add_noise(signal: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(signal.shape)
    return signal + noise * np.sqrt(np.sum(signal**2) / np.sum(noise**2) / 10 ** (snr_db / 10))


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like()


# --- SNR ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 20.0])
def test_snr_of_sine_plus_white_noise_matches_the_power_ratio(rng, snr_db):
    t = np.arange(160000) / 16000
    amplitude = 0.5
    clean = amplitude * np.sin(2 * np.pi * 440 * t)
    noise_std = np.sqrt(amplitude**2 / 2 / 10 ** (snr_db / 10))  # sine power is A²/2
    noisy = clean + noise_std * rng.standard_normal(t.size)
    assert snr(clean, noisy) == pytest.approx(snr_db, abs=0.05)


def test_snr_has_no_scaling_and_known_edge_values(speech):
    assert snr(speech, speech) == np.inf
    assert snr(speech, np.zeros_like(speech)) == pytest.approx(0.0, abs=1e-12)
    assert snr(speech, 0.5 * speech) == pytest.approx(20 * np.log10(2), abs=1e-9)  # error is half the signal


def test_snr_batches_match_single_calls(rng):
    reference = rng.standard_normal((2, 3, 400))
    estimate = reference + 0.3 * rng.standard_normal((2, 3, 400))
    batch = snr(reference, estimate)
    assert batch.shape == (2, 3)
    assert batch[1, 2] == pytest.approx(snr(reference[1, 2], estimate[1, 2]), abs=1e-12)
    assert isinstance(snr(reference[0, 0], estimate[0, 0]), float)


@pytest.mark.parametrize(
    ("reference", "estimate", "message"),
    [
        (np.ones(100), np.ones(99), "100 vs 99 samples"),
        (np.zeros(100), np.ones(100), "reference is .*silent"),
        (np.ones(100), np.full(100, np.nan), "estimate contains NaN"),
        (np.zeros(0), np.zeros(0), "empty"),
        (np.ones((2, 5)), np.ones((3, 5)), "shapes differ"),
    ],
)
def test_bad_pairs_raise_one_line_errors(reference, estimate, message):
    for metric in (snr, si_sdr, lambda r, e: segmental_snr(r, e, 16000)):
        with pytest.raises(DlspError, match=message):
            metric(reference, estimate)


def test_silent_reference_in_a_batch_is_named_by_index(rng):
    reference = rng.standard_normal((3, 50))
    reference[2] = 0
    with pytest.raises(DlspError, match=r"batch index \(2,\)"):
        snr(reference, reference)


# --- segmental SNR -----------------------------------------------------------------------------------------


def test_segmental_snr_of_a_constant_per_frame_ratio_is_that_ratio(speech):
    # An error of 0.1 x the reference in every sample gives exactly 20 dB in every frame.
    assert segmental_snr(speech, 1.1 * speech, 16000) == pytest.approx(20.0, abs=1e-9)


def test_segmental_snr_clamps_both_ends(speech):
    assert segmental_snr(speech, speech, 16000) == 35.0
    assert segmental_snr(speech, -9 * speech, 16000) == -10.0  # error 10 x signal: -20 dB per frame
    assert segmental_snr(speech, -9 * speech, 16000, min_db=-30) == pytest.approx(-20.0, abs=1e-9)


def test_segmental_snr_skips_silent_reference_frames(rng):
    active = rng.standard_normal(8000)
    pause = 1e-4 * rng.standard_normal(8000)  # -80 dB against the active half
    reference = np.concatenate([pause, active])
    # Noise in the pause would score -10 dB there; skipped frames leave the 20 dB of the active half
    # (one frame straddles the boundary and scores a little less).
    estimate = reference + np.concatenate([0.01 * rng.standard_normal(8000), 0.1 * active])
    assert segmental_snr(reference, estimate, 16000) == pytest.approx(20.0, abs=0.01)
    assert segmental_snr(reference, estimate, 16000, silence_db=100) == pytest.approx(5.0, abs=0.5)


def test_segmental_snr_batch_and_short_signal(rng):
    reference = rng.standard_normal((2, 3000))
    estimate = reference + 0.1 * rng.standard_normal((2, 3000))
    batch = segmental_snr(reference, estimate, 16000)
    assert batch.shape == (2,)
    assert batch[1] == pytest.approx(segmental_snr(reference[1], estimate[1], 16000), abs=1e-12)
    # Shorter than one 32 ms frame: one frame, i.e. the plain SNR.
    assert segmental_snr(reference[0, :100], estimate[0, :100], 16000) == pytest.approx(
        snr(reference[0, :100], estimate[0, :100]), abs=1e-9)


# --- SI-SDR ------------------------------------------------------------------------------------------------


def test_si_sdr_is_invariant_to_scaling_the_estimate(speech):
    noisy = add_noise(speech, 5.0)
    base = si_sdr(speech, noisy)
    for factor in (0.1, 10.0):
        assert si_sdr(speech, factor * noisy) == pytest.approx(base, abs=1e-6)
    assert snr(speech, 0.1 * noisy) != pytest.approx(base, abs=1.0)  # plain SNR is not


def test_si_sdr_equals_snr_for_an_orthogonal_error(speech, rng):
    reference = speech - speech.mean()
    error = rng.standard_normal(speech.size)
    error -= error.mean()
    error -= np.dot(error, reference) / np.dot(reference, reference) * reference
    error *= np.sqrt(np.sum(reference**2) / np.sum(error**2) / 10)  # 10 dB
    assert si_sdr(reference, reference + error) == pytest.approx(snr(reference, reference + error), abs=1e-9)
    assert si_sdr(reference, reference + error) == pytest.approx(10.0, abs=1e-9)


def test_si_sdr_edge_values(speech):
    assert si_sdr(speech, speech) == np.inf
    assert si_sdr(speech, np.zeros_like(speech)) == -np.inf
    with pytest.raises(DlspError, match="constant"):
        si_sdr(np.full(100, 0.5), np.ones(100))
    # Without mean removal a DC offset in the estimate counts as distortion.
    assert si_sdr(speech, speech + 0.1, zero_mean=False) < si_sdr(speech, speech + 0.1) - 10


# --- PESQ and STOI -----------------------------------------------------------------------------------------


def test_pesq_is_at_its_maximum_for_identical_signals_and_drops_with_noise(speech):
    scores = pesq_score(np.stack([speech, speech]), np.stack([speech, add_noise(speech, 10.0)]), 16000)
    assert scores.shape == (2,)
    assert scores[0] == pytest.approx(4.64, abs=0.02)  # P.862.2 wideband maximum
    assert scores[1] < scores[0] - 1.0


def test_pesq_narrowband_at_8k_and_resampling_of_other_rates():
    speech_8k = speech_like(8000)
    assert pesq_score(speech_8k, speech_8k, 8000) == pytest.approx(4.55, abs=0.02)  # P.862.1 maximum
    speech_22k = speech_like(22050, seconds=2.0)
    assert pesq_score(speech_22k, speech_22k, 22050) == pytest.approx(4.64, abs=0.02)  # scored as wb at 16k


def test_pesq_failures_raise_or_give_nan(speech):
    short = speech[:1600]  # 0.1 s: pesq needs 0.25 s
    with pytest.raises(DlspError, match="PESQ failed: buffer needs to be at least 1/4 of a second"):
        pesq_score(short, short, 16000)
    with pytest.warns(RuntimeWarning, match="PESQ is NaN for 1 of 1"):
        assert np.isnan(pesq_score(short, short, 16000, on_error="nan"))
    with pytest.raises(DlspError, match="estimate is silent"):
        pesq_score(speech, np.zeros_like(speech), 16000)
    with pytest.raises(DlspError, match="wideband PESQ needs audio sampled at 16 kHz"):
        pesq_score(speech[:8000], speech[:8000], 8000, mode="wb")


def test_stoi_is_one_for_identical_signals_and_drops_with_noise(speech):
    for extended in (False, True):
        assert stoi_score(speech, speech, 16000, extended=extended) == pytest.approx(1.0, abs=1e-6)
    noisy = add_noise(speech, 0.0)
    assert stoi_score(speech, noisy, 16000) < 0.9
    assert stoi_score(speech, noisy, 16000, extended=True) < 0.5


def test_stoi_with_too_little_speech_raises_or_gives_nan(speech):
    short = speech[:3200]  # 0.2 s, pystoi would quietly return 1e-5
    with pytest.raises(DlspError, match="too little speech for ESTOI"):
        stoi_score(short, short, 16000, extended=True)
    with pytest.warns(RuntimeWarning, match="STOI is NaN"):
        assert np.isnan(stoi_score(short, short, 16000, on_error="nan"))


def test_enhancement_metrics_returns_every_key(speech):
    noisy = add_noise(speech, 10.0)
    metrics = enhancement_metrics(speech, noisy, 16000, pesq=False)
    assert list(metrics) == ["snr", "segsnr", "si_sdr", "pesq", "stoi", "estoi"]
    assert metrics["snr"] == pytest.approx(10.0, abs=1e-9)
    assert metrics["pesq"] is None
    assert 0 < metrics["estoi"] < metrics["stoi"] < 1


# --- the `dlsp metrics` command ----------------------------------------------------------------------------


@pytest.fixture
def speech_files(write_wav, speech):
    reference = write_wav("clean.wav", speech, subtype="FLOAT")
    noisy = write_wav("noisy.wav", add_noise(speech, 10.0), subtype="FLOAT")
    return reference, noisy


def test_cli_prints_a_table_of_every_metric(cli, speech_files):
    code, out, err = cli("metrics", *speech_files)
    assert (code, err) == (0, "")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert float(rows["snr"][0]) == pytest.approx(10.0, abs=0.01)
    assert rows["pesq"][1] == "(wb)"
    for key in ("segsnr", "si_sdr", "stoi", "estoi"):
        assert np.isfinite(float(rows[key][0]))


def test_cli_json_is_one_object_with_the_metric_keys(cli, speech_files):
    code, out, _ = cli("metrics", *speech_files, "--json")
    result = json.loads(out)
    assert code == 0
    assert {"snr", "segsnr", "si_sdr", "pesq", "stoi", "estoi"} <= set(result)
    assert result["snr"] == pytest.approx(10.0, abs=0.01)
    assert 1.0 < result["pesq"] < 4.0
    # Identical files: SNR is +inf, written as null so the output stays strict JSON.
    code, out, _ = cli("metrics", speech_files[0], speech_files[0], "--json", "--no-pesq")
    result = json.loads(out)
    assert (result["snr"], result["pesq"], result["stoi"]) == (None, None, pytest.approx(1.0, abs=1e-6))


def test_cli_resamples_an_estimate_at_another_rate(cli, write_wav, speech_files):
    from dlsp.audio.io import resample

    clean, _ = sf.read(speech_files[0])
    estimate_8k = write_wav("clean_8k.wav", resample(clean.astype(np.float32), 16000, 8000), 8000, "FLOAT")
    code, out, _ = cli("metrics", speech_files[0], estimate_8k, "--json")
    result = json.loads(out)
    assert code == 0
    assert (result["sample_rate"], result["estimate_sample_rate"], result["pesq_mode"]) == (16000, 8000, "wb")
    assert result["snr"] > 20  # the clean signal lost only what lies above 4 kHz
    assert result["stoi"] > 0.99
    # --sr resamples both: at 8 kHz the two are the same band-limited signal, scored by narrowband PESQ.
    code, out, _ = cli("metrics", speech_files[0], estimate_8k, "--json", "--sr", "8000", "--no-stoi")
    result = json.loads(out)
    assert (code, result["sample_rate"], result["pesq_mode"]) == (0, 8000, "nb")
    assert result["snr"] is None  # the same soxr call made both: identical, SNR = inf
    assert result["pesq"] == pytest.approx(4.55, abs=0.02)


def test_cli_trims_a_tiny_length_difference_and_says_so(cli, write_wav, speech):
    reference = write_wav("clean.wav", speech, subtype="FLOAT")
    estimate = write_wav("trimmed.wav", speech[:-100], subtype="FLOAT")  # 0.2% shorter
    code, out, err = cli("metrics", reference, estimate, "--json", "--no-pesq")
    assert code == 0
    assert json.loads(out)["trimmed_samples"] == 100
    assert err.count("\n") == 1 and "trimmed.wav" in err and "scoring the first 47900" in err


def test_cli_names_the_flag_that_skips_a_metric_it_cannot_compute(cli, write_wav, speech):
    reference = write_wav("short_clean.wav", speech[:4800], subtype="FLOAT")  # 0.3 s: too short for STOI
    estimate = write_wav("short_noisy.wav", add_noise(speech[:4800], 10.0), subtype="FLOAT")
    code, _, err = cli("metrics", reference, estimate, "--no-pesq")
    assert code == 2 and err.count("\n") == 1
    assert "short_clean.wav vs " in err and "too little speech for STOI" in err and "--no-stoi" in err
    code, out, _ = cli("metrics", reference, estimate, "--no-pesq", "--no-stoi", "--json")
    result = json.loads(out)
    assert code == 0
    assert (result["stoi"], result["estoi"]) == (None, None)
    assert result["snr"] == pytest.approx(10.0, abs=0.01)


def test_cli_help_documents_the_length_rule_and_examples(capsys):
    from dlsp.cli import main

    with pytest.raises(SystemExit):
        main(["metrics", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "at most 1% of REF's length" in text
    assert "dlsp metrics clean.wav enhanced.wav --json" in text


@pytest.mark.parametrize(
    ("make_bad", "which", "problem"),
    [
        (lambda tmp, ww, s: tmp / "missing.wav", "est", "does not exist"),
        (lambda tmp, ww, s: (tmp / "folder.wav").mkdir() or tmp / "folder.wav", "est", "is a directory"),
        (lambda tmp, ww, s: (tmp / "notes.wav").write_text("hello") and tmp / "notes.wav", "est",
         "not a readable audio file"),
        (lambda tmp, ww, s: ww("silent.wav", np.zeros(48000)), "ref", "silent"),
        (lambda tmp, ww, s: ww("silent.wav", np.zeros(48000)), "est", "PESQ is undefined"),
        (lambda tmp, ww, s: ww("nan.wav", np.where(s > 0.2, np.nan, s), subtype="FLOAT"), "est", "NaN"),
        (lambda tmp, ww, s: ww("half.wav", s[:24000]), "est", "more than 1% apart"),
    ],
    ids=["missing", "directory", "not-audio", "silent-ref", "silent-est", "nan", "length"],
)
def test_cli_bad_input_exits_2_with_one_line_naming_the_file(cli, tmp_path, write_wav, speech, make_bad,
                                                            which, problem):
    good = write_wav("good.wav", speech)
    bad = make_bad(tmp_path, write_wav, speech)
    before = sorted(tmp_path.iterdir())
    code, out, err = cli("metrics", *((bad, good) if which == "ref" else (good, bad)))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("dlsp: error: ")
    assert bad.name in err and problem in err
    assert "Traceback" not in err
    assert sorted(tmp_path.iterdir()) == before  # nothing written

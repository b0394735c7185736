"""Denoiser evaluation: metrics before/after, SNR buckets, artefacts, and `dlsp denoise eval`."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dlsp.audio.io import load_audio
from dlsp.audio.mixing import mix_at_snr
from dlsp.audio.noises import synth_noise
from dlsp.audio.synthetic import make_speakers, synth_utterance
from dlsp.denoise.evaluate import (
    CSV_COLUMNS,
    EvalPair,
    bucket_for,
    evaluate_enhancer,
    pairs_from_dataset,
    pairs_from_folders,
    snr_buckets,
)
from dlsp.errors import DlspError

SR = 16000
SNRS = (-5.0, 0.0, 5.0, 10.0)
REQUIRED_KEYS = {"snr", "si_sdr", "pesq", "stoi", "rtf", "n_files", "buckets"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """`dlsp data mix`-style folder: clean/, noise/, noisy/ and manifest.csv; one test mixture per SNR in SNRS."""
    root = tmp_path_factory.mktemp("corpus")
    speakers = make_speakers(len(SNRS), seed=3)
    rows = []
    for k, (speaker, snr) in enumerate(zip(speakers, SNRS, strict=True)):
        seconds = 1.2 + 0.2 * k
        clean = synth_utterance(speaker, seconds, SR, rng=k)
        noise = synth_noise(("white", "pink", "babble", "machine")[k], seconds, SR, rng=10 + k)
        mix = mix_at_snr(clean, noise, snr, np.random.default_rng(k))
        name = f"test_{k:04d}"
        for folder, audio in (("clean", mix.clean), ("noise", mix.noise), ("noisy", mix.noisy)):
            (root / folder).mkdir(exist_ok=True)
            sf.write(str(root / folder / f"{name}.wav"), audio, SR, subtype="PCM_16")
        rows.append(f"{name},clean/{name}.wav,noise/{name}.wav,noisy/{name}.wav,{snr},{SR},test,{speaker.name}")
    (root / "manifest.csv").write_text("name,clean,noise,noisy,snr_db,sample_rate,split,speaker\n"
                                       + "\n".join(rows) + "\n")
    return root


@pytest.fixture
def folders(corpus, tmp_path) -> tuple[Path, Path]:
    """The corpus as two plain folders (no manifest, so input SNRs are measured)."""
    shutil.copytree(corpus / "clean", tmp_path / "c")
    shutil.copytree(corpus / "noisy", tmp_path / "n")
    return tmp_path / "c", tmp_path / "n"


class Identity:
    sample_rate = SR

    def enhance(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return audio.copy()


class Oracle:
    """Returns the clean partner of the noisy input, found by its first samples (also for warm-up prefixes)."""

    sample_rate = SR

    def __init__(self, pairs) -> None:
        self.clean = {}
        for pair in pairs:
            noisy, _ = load_audio(pair.noisy)
            self.clean[noisy[:800].tobytes()] = load_audio(pair.clean)[0]

    def enhance(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.clean[audio[:800].tobytes()][: audio.size].copy()


# --- pairs and buckets -----------------------------------------------------------------------------------------


def test_pairs_from_manifest_carry_names_snrs_and_splits(corpus):
    pairs = pairs_from_dataset(corpus)
    assert [p.name for p in pairs] == [f"test_{k:04d}" for k in range(4)]
    assert [p.snr_db for p in pairs] == list(SNRS) and {p.split for p in pairs} == {"test"}
    assert all(p.clean.parent.name == "clean" and p.noisy.parent.name == "noisy" for p in pairs)


def test_pairs_from_folders_match_by_name(folders):
    pairs = pairs_from_folders(*folders)
    assert [p.name for p in pairs] == [f"test_{k:04d}" for k in range(4)]
    assert all(p.clean.name == p.noisy.name and p.snr_db is None for p in pairs)


def test_pairs_from_folders_name_the_first_unmatched_file(folders):
    (folders[0] / "test_0002.wav").unlink()
    with pytest.raises(DlspError, match=r"test_0002\.wav") as info:
        pairs_from_folders(*folders)
    assert info.value.path.endswith("n/test_0002.wav")


def test_default_buckets_have_edges_halfway_between_centres():
    buckets = snr_buckets()
    inner = [(b.low, b.high) for b in buckets if b.centre is not None]
    assert inner == [(-7.5, -2.5), (-2.5, 2.5), (2.5, 7.5), (7.5, 12.5), (12.5, 17.5), (17.5, 22.5)]
    assert [bucket_for(x, buckets).label for x in (-9, -7.5, -2.6, 2.5, 12.49, 22.49, 22.5, math.inf)] == \
        ["<-7.5", "-5", "-5", "5", "10", "20", ">=22.5", ">=22.5"]
    assert [b.label for b in snr_buckets((0, 10, 30))][1:-1] == ["0", "10", "30"]
    with pytest.raises(DlspError, match="increasing"):
        snr_buckets((5, 0))


# --- evaluation ------------------------------------------------------------------------------------------------


def test_identity_enhancer_improves_nothing(corpus):
    result = evaluate_enhancer(Identity(), pairs_from_dataset(corpus), pesq=False, progress=False)
    for row in result.rows:
        for metric in ("snr", "segsnr", "si_sdr", "stoi", "estoi"):
            # pystoi's FFTs are not bit-reproducible between calls; the SNRs are.
            assert row[f"{metric}_before"] == pytest.approx(row[f"{metric}_after"], rel=1e-12, abs=1e-12)
            assert row[f"{metric}_improvement"] == pytest.approx(0.0, abs=1e-12)
        assert math.isnan(row["pesq_before"]) and row["rtf"] > 0 and math.isfinite(row["rtf"])
    summary = result.summary()
    assert summary["si_sdr"]["improvement"] == 0.0 and summary["stoi"]["improvement"] == pytest.approx(0, abs=1e-12)
    assert summary["pesq"] is None and summary["n_files"] == 4
    assert 0 < summary["rtf"] < 1 and math.isfinite(summary["rtf"])
    # The measured input SNR (the 'snr before') matches the SNR the files were mixed at, up to 16-bit rounding.
    assert [row["snr_before"] for row in result.rows] == pytest.approx(SNRS, abs=0.01)


def test_oracle_enhancer_reaches_the_maximum(corpus):
    pairs = pairs_from_dataset(corpus)
    result = evaluate_enhancer(Oracle(pairs), pairs, progress=False)
    summary = result.summary()
    assert summary["snr"]["after"] == math.inf and summary["si_sdr"]["after"] == math.inf
    assert summary["segsnr"]["after"] == pytest.approx(35.0)
    assert summary["pesq"]["after"] > 4.5 and summary["pesq"]["before"] < 3.5
    assert summary["stoi"]["after"] == pytest.approx(1.0, abs=1e-6)
    assert summary["estoi"]["after"] == pytest.approx(1.0, abs=1e-6)
    assert all(row["pesq_improvement"] > 0.5 for row in result.rows)


def test_files_land_in_their_input_snr_buckets(corpus, folders):
    for pairs, source in ((pairs_from_dataset(corpus), "manifest"), (pairs_from_folders(*folders), "measured")):
        result = evaluate_enhancer(Identity(), pairs, pesq=False, stoi=False, progress=False)
        assert [row["snr_bucket"] for row in result.rows] == ["-5", "0", "5", "10"]
        assert {row["input_snr_source"] for row in result.rows} == {source}
        buckets = {b["label"]: b for b in result.summary()["buckets"]}
        assert list(buckets) == ["-5", "0", "5", "10", "15", "20"]
        assert [buckets[label]["n_files"] for label in buckets] == [1, 1, 1, 1, 0, 0]
        assert buckets["5"]["snr"]["before"] == pytest.approx(5.0, abs=0.01)
        assert buckets["15"]["snr"]["n_files"] == 0 and math.isnan(buckets["15"]["snr"]["before"])


def test_files_outside_the_grid_get_open_buckets(corpus):
    pairs = [EvalPair(p.name, p.clean, p.noisy, snr) for p, snr in zip(pairs_from_dataset(corpus),
                                                                          (-12.0, 0.0, 25.0, 30.0), strict=True)]
    result = evaluate_enhancer(Identity(), pairs, pesq=False, stoi=False, progress=False,
                               bucket_centres=(0, 10))
    assert [row["snr_bucket"] for row in result.rows] == ["<-5", "0", ">=15", ">=15"]
    labels = [(b["label"], b["n_files"]) for b in result.summary()["buckets"]]
    assert labels == [("<-5", 1), ("0", 1), ("10", 0), (">=15", 2)]


def test_artefacts_have_the_documented_columns_and_keys(corpus, tmp_path):
    pairs = pairs_from_dataset(corpus)
    result = evaluate_enhancer(Oracle(pairs), pairs, stoi=False, progress=False,
                               examples_dir=tmp_path / "out" / "examples", n_examples=2)
    written = result.write(tmp_path / "out")
    with open(written["per_file"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 4
    assert rows[0]["snr_after"] == "inf" and rows[0]["stoi_after"] == "" and float(rows[2]["input_snr"]) == 5.0
    summary = json.loads(written["summary"].read_text())
    assert set(summary) >= REQUIRED_KEYS and summary["stoi"] is None
    assert set(summary["pesq"]) == {"before", "after", "improvement", "n_files"}
    assert summary["si_sdr"]["after"] is None  # +inf is not JSON
    assert written["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Two examples spread over the input SNRs: the lowest and the highest.
    assert result.examples == ["test_0000", "test_0003"] == summary["examples"]
    names = sorted(p.name for p in (tmp_path / "out" / "examples").iterdir())
    assert names == sorted(f"test_000{k}{s}" for k in (0, 3) for s in ("_noisy.wav", "_denoised.wav",
                                                                          "_clean.wav", ".png"))
    denoised, _ = load_audio(tmp_path / "out" / "examples" / "test_0003_denoised.wav")
    np.testing.assert_allclose(denoised, load_audio(pairs[3].clean)[0], atol=1e-7)
    table = result.table()
    assert "SI-SDR (dB)" in table and "PESQ" in table and "STOI" not in table and "real-time factor" in table


def test_an_unscorable_file_gives_nan_and_one_warning_not_an_abort(corpus, tmp_path):
    clean, _ = load_audio(corpus / "clean" / "test_0001.wav")
    noisy, _ = load_audio(corpus / "noisy" / "test_0001.wav")
    # 0.2 s: too short for PESQ (0.25 s) and STOI (0.4 s).
    sf.write(str(tmp_path / "c.wav"), clean[4000:7200], SR)
    sf.write(str(tmp_path / "n.wav"), noisy[4000:7200], SR)
    pairs = [*pairs_from_dataset(corpus)[:2], ("short", tmp_path / "c.wav", tmp_path / "n.wav")]
    with pytest.warns(RuntimeWarning) as caught:
        result = evaluate_enhancer(Identity(), pairs, progress=False)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 3 and all(" could not be computed for 1 of 3 files (first: short: " in m
                                      for m in messages)
    assert [m.split(" ")[0] for m in messages] == ["ESTOI", "PESQ", "STOI"]
    assert math.isnan(result.rows[2]["pesq_after"]) and math.isnan(result.rows[2]["stoi_before"])
    assert result.summary()["pesq"]["n_files"] == 2 and result.summary()["snr"]["n_files"] == 3


def _refuse(audio: np.ndarray) -> np.ndarray:
    raise DlspError("sample rate not supported")


@pytest.mark.parametrize(("enhancer_output", "message"), [
    (lambda audio: audio[:-1], "returned shape"), (lambda audio: audio * np.nan, "NaN or Inf"),
    (_refuse, "not supported")])
def test_a_broken_enhancer_is_named_by_file(corpus, enhancer_output, message):
    class Broken(Identity):
        def enhance(self, audio, sample_rate):
            return enhancer_output(audio)

    with pytest.raises(DlspError, match=message) as info:
        evaluate_enhancer(Broken(), pairs_from_dataset(corpus), pesq=False, stoi=False, progress=False)
    assert info.value.path.endswith("test_0000.wav")


def test_evaluating_at_another_rate_resamples_both(corpus):
    result = evaluate_enhancer(Identity(), pairs_from_dataset(corpus)[:1], 8000, pesq=False, stoi=False,
                               progress=False)
    assert result.rows[0]["sample_rate"] == 8000 and result.rows[0]["seconds"] == pytest.approx(1.2)


# --- command line ----------------------------------------------------------------------------------------------


@pytest.fixture
def fake_denoiser(monkeypatch):
    """`Denoiser.from_file` returning the identity enhancer, recording its arguments."""
    from dlsp.denoise.enhance import Denoiser

    calls = []

    def from_file(path=None, device="auto", **options):
        calls.append((path, device))
        return Identity()

    monkeypatch.setattr(Denoiser, "from_file", staticmethod(from_file))
    return calls


def test_cli_prints_the_table_and_writes_json(corpus, tmp_path, cli, fake_denoiser):
    out, summary_path = tmp_path / "eval", tmp_path / "s.json"
    code, stdout, stderr = cli("denoise", "eval", "--model", "m.pt", "--data", corpus, "--out", out,
                               "--json", summary_path, "--no-pesq", "--no-progress", "--examples", "0",
                               "--device", "cpu")
    assert code == 0, stderr
    assert fake_denoiser == [("m.pt", "cpu")]
    assert "scoring 4 of 4 pairs (test split" in stdout and "SI-SDR (dB)" in stdout
    assert "improvement by input SNR" in stdout and "real-time factor" in stdout
    summary = json.loads(summary_path.read_text())
    assert set(summary) >= REQUIRED_KEYS and summary["n_files"] == 4 and summary["pesq"] is None
    assert summary["si_sdr"]["improvement"] == 0.0 and summary["rtf"] > 0
    assert json.loads((out / "summary.json").read_text()) == summary
    assert {p.name for p in out.iterdir()} == {"per_file.csv", "summary.json", "improvement.png"}


def test_cli_folders_limit_and_split(folders, corpus, tmp_path, cli, fake_denoiser):
    code, stdout, _ = cli("denoise", "eval", "--clean", folders[0], "--noisy", folders[1], "--out", tmp_path / "o",
                          "--no-pesq", "--no-stoi", "--no-progress", "--limit", "2", "--examples", "0")
    assert code == 0 and "scoring 2 of 4 pairs" in stdout and fake_denoiser == [(None, "auto")]
    assert not (tmp_path / "o" / "examples").exists()
    code, _, stderr = cli("denoise", "eval", "--data", corpus, "--split", "train", "--out", tmp_path / "p")
    assert code == 2 and "no pairs in the train split (splits present: test" in stderr


def _bad_inputs(corpus: Path, tmp: Path) -> dict[str, tuple[list, str]]:
    """Bad invocations and the file each error line must name."""
    (tmp / "empty").mkdir(parents=True)
    clean, noisy = tmp / "c", tmp / "n"
    shutil.copytree(corpus / "clean", clean)
    shutil.copytree(corpus / "noisy", noisy)
    (noisy / "test_0001.wav").unlink()
    garbage = tmp / "g"
    shutil.copytree(corpus / "clean", garbage / "clean")
    shutil.copytree(corpus / "noisy", garbage / "noisy")
    (garbage / "noisy" / "test_0002.wav").write_bytes(b"not audio at all")
    silent = tmp / "s"
    shutil.copytree(corpus / "clean", silent / "clean")
    shutil.copytree(corpus / "noisy", silent / "noisy")
    sf.write(str(silent / "clean" / "test_0003.wav"), np.zeros(int(1.8 * SR), np.float32), SR, subtype="PCM_16")
    return {
        "missing folder": (["--data", tmp / "nope"], str(tmp / "nope")),
        "no pairs": (["--data", tmp / "empty"], str(tmp / "empty")),
        "missing --clean folder": (["--clean", tmp / "nope", "--noisy", noisy], str(tmp / "nope")),
        "unmatched": (["--clean", clean, "--noisy", noisy], str(clean / "test_0001.wav")),
        "unreadable": (["--data", garbage], str(garbage / "noisy" / "test_0002.wav")),
        # Passes the header checks; fails while scoring, after three files: still nothing may be written.
        "silent clean": (["--data", silent], str(silent / "clean" / "test_0003.wav")),
        "no data": ([], "--data"),
        "both": (["--data", corpus, "--clean", clean, "--noisy", noisy], "--data"),
        "out is a file": (["--data", corpus, "--out", corpus / "manifest.csv"], str(corpus / "manifest.csv")),
    }


def test_every_bad_input_is_one_line_and_writes_nothing(corpus, tmp_path, cli, fake_denoiser):
    for case, (argv, named) in _bad_inputs(corpus, tmp_path / "in").items():
        out, summary = tmp_path / "out", tmp_path / "s.json"
        argv = ["--out", out, *argv] if "--out" not in argv else argv
        code, _, stderr = cli("denoise", "eval", *argv, "--json", summary, "--no-pesq", "--no-progress")
        assert code == 2, case
        assert stderr.count("\n") == 1 and stderr.startswith("dlsp: error: ") and named in stderr, (case, stderr)
        assert "Traceback" not in stderr and not out.exists() and not summary.exists(), case


def test_missing_default_model_exits_2_with_the_loader_message(corpus, tmp_path, cli, monkeypatch):
    import dlsp.denoise.model_file as model_file

    monkeypatch.setattr(model_file, "PRETRAINED_DIR", tmp_path / "no_models")
    code, _, stderr = cli("denoise", "eval", "--data", corpus, "--out", tmp_path / "o", "--no-progress")
    assert code == 2 and "no default denoiser is installed" in stderr and stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_cli_with_a_tiny_real_model(corpus, tmp_path, cli):
    import torch

    from dlsp.audio.stft import StftConfig
    from dlsp.denoise.model_file import save_denoiser
    from dlsp.models.denoisers import build_denoiser

    stft = StftConfig(n_fft=512, hop_length=128)
    torch.manual_seed(0)
    model = build_denoiser("linear", n_freqs=stft.n_freqs, hidden=[], context=1)
    save_denoiser(tmp_path / "tiny.pt", model, "linear", sample_rate=SR, stft=stft)
    code, stdout, stderr = cli("denoise", "eval", "--model", tmp_path / "tiny.pt", "--data", corpus, "--out",
                               tmp_path / "o", "--json", tmp_path / "s.json", "--no-pesq", "--no-progress",
                               "--device", "cpu", "--examples", "1")
    assert code == 0, stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert set(summary) >= REQUIRED_KEYS and summary["n_files"] == 4
    assert 0 < summary["rtf"] < 1 and math.isfinite(summary["si_sdr"]["after"])
    assert "real-time factor" in stdout and (tmp_path / "o" / "improvement.png").is_file()
    assert len(list((tmp_path / "o" / "examples").iterdir())) == 4


def test_an_unwritable_output_fails_before_the_model_loads_or_any_pair_is_scored(corpus, tmp_path, cli,
                                                                                  fake_denoiser, monkeypatch):
    import dlsp.denoise.evaluate as evaluate

    def never(*args, **kwargs):
        raise AssertionError("pairs were scored before the outputs were checked")

    monkeypatch.setattr(evaluate, "evaluate_enhancer", never)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for flags, named in ((["--out", blocker / "eval"], blocker / "eval"),
                         (["--out", tmp_path / "o", "--json", blocker / "out.json"], blocker / "out.json")):
        code, _, stderr = cli("denoise", "eval", "--data", corpus, *flags, "--no-progress")
        assert code == 2 and stderr.count("\n") == 1 and str(named) in stderr, stderr
        assert f"{blocker} is a file" in stderr
    assert fake_denoiser == [] and not (tmp_path / "o").exists()

"""Clean/noisy pairs: VoiceBank-DEMAND, MS-SNSD, `dlsp data mix` manifests, partner checks, the pairs CSV."""

from __future__ import annotations

import pytest

from dlsp.data.index import detect_format, index_dataset
from dlsp.data.pairs import index_pairs, write_pairs_csv
from dlsp.errors import DlspError

SR = 8000
FRAMES = 400  # 50 ms: tiny files, exact known duration



def test_voicebank_pairs_speakers_and_splits(tmp_path, tone):
    for folder, names in (("trainset_28spk_wav", ("p226_001", "p226_002", "p287_010")),
                          ("testset_wav", ("p232_001",))):
        for name in names:
            tone(f"vb/clean_{folder}/{name}.wav")
            tone(f"vb/noisy_{folder}/{name}.wav")
    assert detect_format(tmp_path / "vb") == "pairs"
    pairs = index_pairs(tmp_path / "vb")
    assert [(p.noisy.name, p.speaker, p.split, p.snr_db) for p in pairs] == [
        ("p232_001.wav", "p232", "test", None), ("p226_001.wav", "p226", "train", None),
        ("p226_002.wav", "p226", "train", None), ("p287_010.wav", "p287", "train", None)]
    assert all(p.clean.name == p.noisy.name and p.clean.parent.name.startswith("clean_") for p in pairs)
    items = index_dataset(tmp_path / "vb")
    assert [i.path for i in items] == sorted(p.noisy for p in pairs)
    assert items[0].duration == pytest.approx(FRAMES / SR) and items[0].label is None


def test_ms_snsd_names_pair_and_give_snr(tmp_path, tone):
    tone("ms/CleanSpeech_training/clnsp1.wav")
    tone("ms/NoisySpeech_training/noisy1_SNRdb_5.0_clnsp1.wav")
    tone("ms/CleanSpeech_training/clnsp2.wav")
    tone("ms/NoisySpeech_training/noisy2_SNRdb_-2.5_clnsp2.wav")
    pairs = index_pairs(tmp_path / "ms")
    assert [(p.clean.name, p.snr_db, p.split) for p in pairs] == [("clnsp1.wav", 5.0, "train"),
                                                                  ("clnsp2.wav", -2.5, "train")]


def test_mix_manifest_pairs(tmp_path, tone):
    for name in ("a", "b"):
        tone(f"mix/clean/{name}.wav")
        tone(f"mix/noisy/{name}.wav")
    (tmp_path / "mix" / "manifest.csv").write_text(
        "name,clean,noise,noisy,snr_db,sample_rate,split,speaker\n"
        "a,clean/a.wav,noise/x.wav,noisy/a.wav,5,8000,train,s1\n"
        "b,clean/b.wav,noise/x.wav,noisy/b.wav,-3.5,8000,test,\n")
    assert detect_format(tmp_path / "mix") == "pairs"
    pairs = index_pairs(tmp_path / "mix")
    assert [(p.noisy.name, p.snr_db, p.split, p.speaker) for p in pairs] == [("a.wav", 5.0, "train", "s1"),
                                                                             ("b.wav", -3.5, "test", None)]
    assert pairs[0].clean == tmp_path / "mix" / "clean" / "a.wav"


def test_plain_clean_noisy_folders_without_manifest(tmp_path, tone):
    tone("cn/clean/x.wav")
    tone("cn/noisy/x.wav")
    [pair] = index_pairs(tmp_path / "cn")
    assert (pair.clean.parent.name, pair.noisy.parent.name) == ("clean", "noisy")
    assert (pair.speaker, pair.split, pair.snr_db) == (None, None, None)


def test_pairs_missing_partners_name_first_unmatched(tmp_path, tone):
    for name in ("p1_001", "p1_002"):
        tone(f"vb/clean_x/{name}.wav")
    tone("vb/noisy_x/p1_001.wav")
    with pytest.raises(DlspError, match="no noisy partner") as err:
        index_pairs(tmp_path / "vb")
    assert err.value.path == str(tmp_path / "vb" / "clean_x" / "p1_002.wav")
    tone("vb/noisy_x/p1_000.wav")
    tone("vb/noisy_x/p1_009.wav")
    with pytest.raises(DlspError, match="no clean partner") as err:
        index_pairs(tmp_path / "vb")
    assert err.value.path == str(tmp_path / "vb" / "noisy_x" / "p1_000.wav")


def test_pairs_refuse_length_or_rate_mismatch(tmp_path, tone):
    tone("a/clean/x.wav")
    tone("a/noisy/x.wav", frames=FRAMES + 1)
    with pytest.raises(DlspError, match="samples but its clean partner"):
        index_pairs(tmp_path / "a")
    tone("b/clean/x.wav")
    tone("b/noisy/x.wav", sr=16000)
    with pytest.raises(DlspError, match="Hz"):
        index_pairs(tmp_path / "b")


def test_pairs_without_pair_folders(tmp_path, tone):
    tone("ds/cat/a.wav")
    with pytest.raises(DlspError, match="no clean/noisy pairs"):
        index_pairs(tmp_path / "ds")


def test_pairs_csv_round_trip(tmp_path, tone):
    tone("vb/clean_trainset/p9_001.wav")
    tone("vb/noisy_trainset/p9_001.wav")
    pairs = index_pairs(tmp_path / "vb")
    write_pairs_csv(pairs, tmp_path / "vb" / "pairs.csv")
    assert index_pairs(tmp_path / "vb" / "pairs.csv") == pairs


# CLI.

def test_cli_pairs_writes_pairs_csv(tmp_path, tone, cli):
    tone("vb/clean_testset_wav/p232_001.wav")
    tone("vb/noisy_testset_wav/p232_001.wav")
    code, stdout, _ = cli("data", "index", tmp_path / "vb", "-o", tmp_path / "vb" / "pairs.csv")
    assert code == 0 and "format pairs" in stdout
    assert (tmp_path / "vb" / "pairs.csv").read_text().splitlines()[1] == (
        "p232_001,clean_testset_wav/p232_001.wav,noisy_testset_wav/p232_001.wav,,8000,test,p232,0.050000")

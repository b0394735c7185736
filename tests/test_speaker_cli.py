"""`dlsp speaker embed/enroll/verify/list/remove/eval` on synthetic speakers, and their refusals of bad input."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
import torch

from dlsp.audio.io import save_audio
from dlsp.metrics.verification import eer
from dlsp.models.speaker import SpeakerEncoder
from dlsp.speaker.evaluate import build_trials, score_trials
from dlsp.speaker.model_file import save_speaker_model
from dlsp.speaker.train import embed_clips
from speaker_helpers import N_SPEAKERS, SR, TAKES, overfit_encoder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny encoder overfit on three synthetic speakers, and recordings of them (16 kHz stereo files, so the
    CLI must resample and downmix)."""
    root = tmp_path_factory.mktemp("speakers")
    encoder, speakers, audio, labels = overfit_encoder()
    trials = build_trials(labels, max_nontarget=None)
    rate, threshold = eer(score_trials(embed_clips(encoder, audio, torch.device("cpu")), trials), trials.target)
    model = save_speaker_model(root / "tiny.pt", encoder, "gru", sample_rate=SR, threshold=threshold, trim_db=40.0)
    files = {}
    for i, speaker in enumerate(speakers):
        for j in range(TAKES):
            stereo = np.stack([audio[i * TAKES + j], audio[i * TAKES + j]])
            import soxr

            files[(speaker.name, j)] = save_audio(root / speaker.name / f"{j}.wav",
                                                  soxr.resample(stereo.T, SR, 16000).T, 16000)
    assert rate == 0.0  # the fixture is only useful if the model separates the speakers
    return model, files, [s.name for s in speakers], root


def test_enroll_verify_round_trip(setup, tmp_path, cli):
    model, files, names, _ = setup
    db = tmp_path / "speakers.db"
    for name in names:
        code, out, err = cli("speaker", "enroll", name, files[(name, 0)], files[(name, 1)], files[(name, 2)],
                             "--db", db, "--model", model)
        assert code == 0, err
        assert f"enrolled {name}: 3 file(s) added, 3 in total" in out
    for claimed in names:
        for actual in names:
            code, out, err = cli("speaker", "verify", claimed, files[(actual, 4)], "--db", db, "--model", model,
                                 "--json", tmp_path / "v.json")
            result = json.loads((tmp_path / "v.json").read_text())
            assert result["accepted"] == (claimed == actual), (claimed, actual, out)
            assert code == (0 if claimed == actual else 1) and ("ACCEPT" if claimed == actual else "REJECT") in out
    code, out, _ = cli("speaker", "verify", names[0], files[(names[0], 4)], "--db", db, "--model", model,
                       "--threshold", "1.0")
    assert code == 1 and "threshold 1.000 -> REJECT" in out


def test_enroll_again_adds_and_list_and_remove(setup, tmp_path, cli):
    model, files, names, _ = setup
    db = tmp_path / "s.db"
    assert cli("speaker", "enroll", "ann", files[(names[0], 0)], "--db", db, "--model", model)[0] == 0
    code, out, _ = cli("speaker", "enroll", "ann", files[(names[0], 1)], "--db", db, "--model", model)
    assert code == 0 and "1 file(s) added, 2 in total" in out
    code, out, _ = cli("speaker", "list", "--db", db, "--json")
    assert code == 0 and json.loads(out)["speakers"][0] | {"updated": 0} == {"name": "ann", "n_files": 2,
                                                                           "updated": 0}
    code, out, _ = cli("speaker", "list", "--db", db)
    assert "ann" in out and "1 enrolled" in out
    assert cli("speaker", "remove", "ann", "--db", db)[0] == 0
    code, _, err = cli("speaker", "remove", "ann", "--db", db)
    assert code == 2 and "unknown speaker 'ann'" in err


def test_embed_writes_npy_and_json(setup, tmp_path, cli):
    model, files, names, _ = setup
    inputs = [files[(names[0], 0)], files[(names[1], 0)]]
    code, _, err = cli("speaker", "embed", *inputs, "-o", tmp_path / "e.npy", "--json", tmp_path / "e.json",
                       "--model", model)
    assert code == 0, err
    matrix = np.load(tmp_path / "e.npy")
    assert matrix.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    listed = json.loads((tmp_path / "e.json").read_text())
    np.testing.assert_allclose([f["embedding"] for f in listed["files"]], matrix, atol=1e-6)
    code, out, _ = cli("speaker", "embed", inputs[0], "--json", "-", "--model", model)
    assert code == 0 and json.loads(out)["embedding_dim"] == 8
    code, _, err = cli("speaker", "embed", inputs[0], "--model", model)
    assert code == 2 and "-o FILE.npy" in err


def test_eval_writes_plots_and_json_keys(setup, tmp_path, cli):
    model, _, _, root = setup
    code, out, err = cli("speaker", "eval", "--data", root, "--format", "speakers", "--model", model, "--out",
                         tmp_path / "ev", "--json", tmp_path / "ev.json", "--boot", "20", "--no-progress")
    assert code == 0, err
    summary = json.loads((tmp_path / "ev.json").read_text())
    assert {"eer", "min_dcf", "n_target", "n_nontarget"} <= set(summary)
    assert summary["n_target"] == N_SPEAKERS * TAKES * (TAKES - 1) // 2
    assert summary["n_nontarget"] == TAKES * TAKES * N_SPEAKERS * (N_SPEAKERS - 1) // 2
    assert summary["eer"] <= 0.1 and "EER" in out
    pairs = summary["errors"]["confused_pairs"]
    assert len(pairs) == min(5, N_SPEAKERS * (N_SPEAKERS - 1) // 2)
    assert all(p["n_trials"] == TAKES * TAKES for p in pairs)
    assert [p["false_accept"] for p in pairs] == sorted((p["false_accept"] for p in pairs), reverse=True)
    at = summary["at_threshold"]  # the rates at verify's threshold (cosine for this model, no validation table)
    assert at["score_kind"] == "cosine" and at["expected_far"] is None and 0 <= at["far"] <= 1
    assert "asnorm" not in summary and "at verify's threshold" in out
    for name in ("det.png", "tsne.png", "summary.json"):
        assert (tmp_path / "ev" / name).stat().st_size > 0


def test_bad_audio_is_refused_in_one_line(setup, tmp_path, cli, write_wav, rng):
    model = setup[0]
    short = write_wav("short.wav", (0.3 * rng.standard_normal(3200)).astype(np.float32), 16000)
    silent = write_wav("silent.wav", np.zeros(16000, np.float32), 16000)
    db = tmp_path / "s.db"
    for path, message in ((short, "too short"), (silent, "silence")):
        code, _, err = cli("speaker", "enroll", "x", path, "--db", db, "--model", model)
        assert code == 2 and message in err and "Traceback" not in err
    assert not db.exists()  # nothing is written when a file is refused


def test_unknown_name_foreign_db_and_model_mismatch_are_refused(setup, tmp_path, cli):
    model, files, names, _ = setup
    db = tmp_path / "s.db"
    assert cli("speaker", "enroll", "ann", files[(names[0], 0)], "--db", db, "--model", model)[0] == 0
    code, _, err = cli("speaker", "verify", "bob", files[(names[0], 1)], "--db", db, "--model", model)
    assert code == 2 and "unknown speaker 'bob' (enrolled: ann)" in err
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE t (x)")
    code, _, err = cli("speaker", "enroll", "ann", files[(names[0], 0)], "--db", foreign, "--model", model)
    assert code == 2 and "not a dlsp speaker database" in err
    other = tmp_path / "other.pt"
    torch.manual_seed(5)
    save_speaker_model(other, SpeakerEncoder(sample_rate=SR, n_fft=256, hop_length=128, hidden=8, embedding_dim=8),
                       "gru", sample_rate=SR, threshold=0.5, trim_db=40.0)
    code, _, err = cli("speaker", "verify", "ann", files[(names[0], 1)], "--db", db, "--model", other)
    assert code == 2 and "made with model" in err and "not this model" in err
    code, _, err = cli("speaker", "verify", "ann", files[(names[0], 1)], "--db", tmp_path / "none.db",
                       "--model", model)
    assert code == 2 and "does not exist" in err

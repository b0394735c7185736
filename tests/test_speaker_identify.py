"""`dlsp speaker verify/identify/calibrate` with an AS-norm model: the stored threshold is the one used, a
database calibration overrides it, a narrowband probe gets the model's narrowband threshold (after --threshold and
the database's), 1:N identification with its margin, noise and hum never accepted, the same input always scores
the same, bad input refused in one line."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from dlsp.audio.io import save_audio
from dlsp.audio.synthetic import make_speakers, synth_utterance
from dlsp.speaker.database import Calibration, SpeakerDatabase
from dlsp.speaker.decision import ThresholdChoice, choose_threshold, identify, identify_margin
from dlsp.speaker.embed import SpeakerEmbedder
from dlsp.speaker.evaluate import build_trials
from dlsp.speaker.model_file import load_speaker_model, save_speaker_model
from dlsp.speaker.scoring import NarrowbandThreshold, RateTable, Scorer, balanced_eer, rate_table
from dlsp.speaker.train import embed_clips
from speaker_helpers import N_SPEAKERS, SR, TAKES, overfit_encoder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny encoder overfit on three synthetic speakers, an AS-norm cohort of ten other synthetic voices, the
    threshold at the EER of its normalised scores, and 16 kHz recordings of the three in `<speaker>/<n>.wav`."""
    root = tmp_path_factory.mktemp("people")
    encoder, speakers, audio, labels = overfit_encoder()
    others = make_speakers(10, seed=30)
    cohort = embed_clips(encoder, [synth_utterance(s, 0.8, SR, rng=7 + j) for s in others for j in range(2)],
                         torch.device("cpu")).astype(np.float16).astype(np.float32)
    embeddings = embed_clips(encoder, audio, torch.device("cpu"))
    trials = build_trials(labels, max_nontarget=None)
    scores = Scorer("asnorm", 0.0, cohort, 5).trial_scores(embeddings, trials.first, trials.second)
    rate, threshold = balanced_eer(scores, trials.target)
    scorer = Scorer("asnorm", threshold, cohort, 5, rate_table(scores, trials.target, extra=[threshold]))
    model = save_speaker_model(root.parent / "tiny_asnorm.pt", encoder, "gru", sample_rate=SR, threshold=0.3,
                               trim_db=40.0, scorer=scorer)
    files = {(s.name, j): save_audio(root / s.name / f"{j}.wav", _to_16k(audio[i * TAKES + j]), 16000)
             for i, s in enumerate(speakers) for j in range(TAKES)}
    assert rate < 0.02 and threshold != 0.3  # separable, and the normalised threshold is not the cosine one
    return model, files, [s.name for s in speakers], root


def _to_16k(x):
    import soxr

    return soxr.resample(x, SR, 16000)


@pytest.fixture
def enrolled(setup, tmp_path, cli):
    model, files, names, _ = setup
    db = tmp_path / "people.db"
    for name in names:
        code, _, err = cli("speaker", "enroll", name, *(files[(name, j)] for j in range(3)), "--db", db,
                           "--model", model)
        assert code == 0, err
    return db


def test_verify_scores_by_as_norm_at_the_threshold_stored_in_the_model(setup, enrolled, tmp_path, cli):
    model, files, names, _ = setup
    loaded = load_speaker_model(model)
    embedder = SpeakerEmbedder(loaded, "cpu")
    with SpeakerDatabase(enrolled, loaded.model_id, loaded.embedding_dim) as db:
        mean = db.get(names[0]).embedding
    for actual in names:
        code, out, _ = cli("speaker", "verify", names[0], files[(actual, 4)], "--db", enrolled, "--model", model,
                           "--json", tmp_path / "v.json")
        result = json.loads((tmp_path / "v.json").read_text())
        assert result["threshold"] == loaded.scorer.threshold and result["threshold_source"] == "model validation"
        assert result["accepted"] == (actual == names[0]) == (code == 0), out
        assert result["accepted"] == (result["score"] >= loaded.scorer.threshold)
        # The score is AS-norm against the stored cohort, computed here by hand with numpy.
        probe = embedder.embed_files([files[(actual, 4)]])[0].astype(np.float64)
        cohort = loaded.scorer.cohort.astype(np.float64)
        unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
        e, t = unit(mean.astype(np.float64)), unit(probe)
        top_e, top_t = np.sort(cohort @ e / np.linalg.norm(cohort, axis=1))[-5:], \
            np.sort(cohort @ t / np.linalg.norm(cohort, axis=1))[-5:]
        s = e @ t
        expected = 0.5 * ((s - top_e.mean()) / top_e.std() + (s - top_t.mean()) / top_t.std())
        assert result["score"] == pytest.approx(expected, rel=1e-6)
        assert "AS-norm score; threshold from model validation; expected false-accept rate" in out
        assert result["expected_far"] == pytest.approx(loaded.scorer.table.far_at(loaded.scorer.threshold))


def test_identify_ranks_everyone_and_names_the_speaker_or_unknown(setup, enrolled, tmp_path, cli):
    model, files, names, _ = setup
    for name in names:
        code, out, _ = cli("speaker", "identify", files[(name, 5)], "--db", enrolled, "--model", model,
                           "--top", "2", "--json", tmp_path / "who.json")
        result = json.loads((tmp_path / "who.json").read_text())
        assert code == 0 and result["identified"] == name and f"-> {name} (score" in out, out
        assert len(result["ranking"]) == 2 and result["ranking"][0]["name"] == name
        assert result["ranking"][0]["score"] >= result["ranking"][1]["score"]
        assert result["required"] == pytest.approx(result["threshold"] + result["margin"])
    code, out, _ = cli("speaker", "identify", files[(names[1], 5)], "--db", enrolled, "--model", model,
                       "--threshold", "50")
    assert code == 1 and "-> unknown (best" in out and "threshold 50.000" in out


def test_the_one_to_n_margin_follows_the_rate_table():
    table = RateTable(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), np.array([0.5, 0.2, 0.1, 0.02, 0.0]),
                      np.array([0.0, 0.01, 0.05, 0.2, 0.6]))
    choice = ThresholdChoice(2.0, "model validation", table)  # 1:1 false accepts 10% at the threshold
    assert identify_margin(choice, 1) == 0.0
    assert identify_margin(choice, 5) == pytest.approx(1.0)  # 10% / 5 = 2%: reached at score 3
    assert identify_margin(choice, 1000) == pytest.approx(2.0)  # below the table: its highest impostor score
    assert identify_margin(ThresholdChoice(2.0, "x", None), 5) == 0.0
    ranked = identify(["bo", "al", "cy"], np.array([2.5, 3.5, 3.5]), [choice] * 3)
    assert ranked.names == ["al", "cy", "bo"] and list(ranked.required) == pytest.approx([2.0 + 1.0] * 3)
    assert ranked.identified == "al"
    assert ranked.chance_impostor_named() == pytest.approx(3 * table.far_at(3.0))  # N chances at 2% each
    assert identify(["al", "bo"], np.array([2.9, 1.0]), [choice] * 2, margin=None).identified is None  # < 2 + 1


def test_identify_judges_each_person_at_their_own_threshold():
    table = RateTable(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), np.array([0.5, 0.2, 0.1, 0.02, 0.0]),
                      np.array([0.0, 0.01, 0.05, 0.2, 0.6]))
    # al enrolled with 1 recording (threshold 1), bo with 5 (threshold 2); no margin, to see the thresholds.
    choices = [ThresholdChoice(1.0, "model validation", table, enrolled=1),
               ThresholdChoice(2.0, "model validation", table, enrolled=5)]
    ranked = identify(["al", "bo"], np.array([1.5, 1.2]), choices, margin=0.0)
    assert ranked.identified == "al" and list(ranked.required) == [1.0, 2.0]
    assert ranked.choices[0].enrolled == 1
    # bo best but below his own threshold: unknown, though al's threshold would have let the score in.
    ranked = identify(["al", "bo"], np.array([0.5, 1.5]), choices, margin=0.0)
    assert ranked.names == ["bo", "al"] and ranked.identified is None and list(ranked.required) == [2.0, 1.0]
    assert ranked.chance_impostor_named() == pytest.approx(table.far_at(2.0) + table.far_at(1.0))
    assert ThresholdChoice(1.0, "x", None) in identify(["al"], np.array([0.0]), [ThresholdChoice(1.0, "x", None)]
                                                        ).choices
    assert identify(["al"], np.array([0.0]), [ThresholdChoice(1.0, "x", None)]).chance_impostor_named() is None
    with pytest.raises(ValueError, match="one threshold choice per"):
        identify(["al", "bo"], np.array([0.0, 1.0]), choices[:1])


def test_noise_and_hum_are_never_accepted(setup, enrolled, tmp_path, cli, write_wav):
    model, _, names, _ = setup
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    probes = {"white.wav": 0.1 * rng.standard_normal(t.size), "hum.wav": 0.2 * np.sin(2 * np.pi * 50 * t)}
    for file_name, signal in probes.items():
        path = write_wav(file_name, signal.astype(np.float32), 16000)
        for name in names:
            code, out, err = cli("speaker", "verify", name, path, "--db", enrolled, "--model", model)
            assert code == 2 and "ACCEPT" not in out and f"{file_name}: no voice" in err and "Traceback" not in err
        code, out, err = cli("speaker", "identify", path, "--db", enrolled, "--model", model)
        assert code == 2 and "->" not in out and f"{file_name}: no voice" in err


def test_the_same_input_always_gives_the_same_score(setup, enrolled, tmp_path, cli):
    model, files, names, _ = setup
    results = []
    for attempt in range(2):
        cli("speaker", "verify", names[2], files[(names[2], 4)], "--db", enrolled, "--model", model, "--json",
            tmp_path / f"v{attempt}.json")
        cli("speaker", "identify", files[(names[0], 4)], "--db", enrolled, "--model", model, "--json",
            tmp_path / f"i{attempt}.json")
        results.append((json.loads((tmp_path / f"v{attempt}.json").read_text())["score"],
                        json.loads((tmp_path / f"i{attempt}.json").read_text())["ranking"]))
    assert results[0] == results[1]  # bit for bit


def test_calibrate_sets_the_database_threshold_that_verify_and_identify_use(setup, enrolled, tmp_path, cli):
    model, files, names, root = setup
    code, out, err = cli("speaker", "calibrate", "--db", enrolled, "--data", root, "--format", "speakers", "--far",
                         "0.05", "--model", model, "--json", tmp_path / "cal.json", "--no-progress")
    assert code == 0, err
    cal = json.loads((tmp_path / "cal.json").read_text())
    assert cal["n_target"] == N_SPEAKERS * TAKES * (TAKES - 1) // 2 and cal["far"] <= 0.05
    assert "EER" in out and "false accepts" in out and "false rejects" in out and "stored in" in out
    with SpeakerDatabase(enrolled, None, None, create=False) as db:
        assert db.calibration().threshold == cal["threshold"] and db.calibration().enrolled_files == 1  # pairs
    code, out, _ = cli("speaker", "verify", names[0], files[(names[0], 4)], "--db", enrolled, "--model", model,
                       "--json", tmp_path / "v.json")
    result = json.loads((tmp_path / "v.json").read_text())
    assert result["threshold"] == cal["threshold"] and result["threshold_source"].startswith("database calibration")
    assert "threshold from database calibration on" in out
    # Measured on pairs of recordings, quoted for someone enrolled with 3: the line says so.
    assert (result["table_enrolled_files"], result["enrolled_files"]) == (1, 3)
    assert f"measured on people enrolled with 1 recording; {names[0]} has 3)" in out
    code, _, _ = cli("speaker", "identify", files[(names[0], 4)], "--db", enrolled, "--model", model, "--margin",
                     "0", "--json", tmp_path / "i.json")
    assert json.loads((tmp_path / "i.json").read_text())["threshold"] == cal["threshold"]
    cli("speaker", "verify", names[0], files[(names[0], 4)], "--db", enrolled, "--model", model, "--threshold",
        "-3", "--json", tmp_path / "v2.json")
    override = json.loads((tmp_path / "v2.json").read_text())
    assert override["threshold"] == -3.0 and override["threshold_source"] == "--threshold"
    assert cli("speaker", "calibrate", "--db", enrolled, "--clear")[0] == 0
    cli("speaker", "verify", names[0], files[(names[0], 4)], "--db", enrolled, "--model", model, "--json",
        tmp_path / "v3.json")
    assert json.loads((tmp_path / "v3.json").read_text())["threshold_source"] == "model validation"
    assert cli("speaker", "calibrate", "--db", enrolled, "--data", root, "--format", "speakers", "--enroll", "3",
               "--model", model, "--no-progress")[0] == 0
    code, out, _ = cli("speaker", "verify", names[0], files[(names[0], 4)], "--db", enrolled, "--model", model)
    assert "measured on people" not in out  # calibrated on models of 3, as this person is enrolled


def test_a_calibration_for_another_scoring_is_refused(setup, enrolled, cli):
    model, files, names, _ = setup
    with SpeakerDatabase(enrolled, None, None, create=False) as db:
        db.set_calibration(Calibration(0.5, "cosine", 0.01, 0.01, 0.1, 0.05, 10, 100, "elsewhere", time.time()))
    code, _, err = cli("speaker", "verify", names[0], files[(names[0], 4)], "--db", enrolled, "--model", model)
    assert code == 2 and "calibrated for scoring cosine" in err and "calibrate' again" in err


def test_bad_input_is_refused_in_one_line(setup, enrolled, tmp_path, cli, write_wav):
    model, files, names, root = setup
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    unlabelled = tmp_path / "loose"
    write_wav("loose/a.wav", 0.1 * np.sin(np.arange(8000) / 3).astype(np.float32), 16000)
    cases = [
        (("identify", tmp_path / "missing.wav", "--db", enrolled), "missing.wav"),
        (("identify", not_audio, "--db", enrolled), "notes.wav"),
        (("identify", files[(names[0], 4)], "--db", tmp_path / "none.db"), "does not exist"),
        (("identify", files[(names[0], 4)], "--db", enrolled, "--margin", "-1"), "--margin"),
        (("verify", names[0], files[(names[0], 4)], "--db", enrolled, "--threshold", "nan"), "finite AS-norm"),
        (("calibrate", "--db", enrolled, "--data", root, "--far", "1.5"), "--far"),
        (("calibrate", "--db", enrolled), "--data"),
        (("calibrate", "--db", tmp_path / "new.db", "--data", unlabelled, "--format", "folders"), "no speaker"),
    ]
    for argv, message in cases:
        code, _, err = cli("speaker", *argv, "--model", model)
        assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, \
            (argv, err)
    assert not (tmp_path / "new.db").exists()  # nothing written when the data is refused


def test_eval_reports_as_norm_and_the_rates_at_the_verify_threshold(setup, tmp_path, cli):
    model, _, _, root = setup
    code, out, err = cli("speaker", "eval", "--data", root, "--format", "speakers", "--model", model, "--out",
                         tmp_path / "ev", "--json", tmp_path / "ev.json", "--boot", "0", "--no-progress")
    assert code == 0, err
    summary = json.loads((tmp_path / "ev.json").read_text())
    loaded = load_speaker_model(model)
    at = summary["at_threshold"]
    assert at["score_kind"] == "asnorm" and at["threshold"] == loaded.scorer.threshold
    assert at["expected_far"] == pytest.approx(loaded.scorer.table.far_at(loaded.scorer.threshold))
    assert 0 <= summary["asnorm"]["eer"] <= 0.1 and "AS-norm EER" in out and "at verify's threshold" in out


def _table(top: float) -> RateTable:
    return RateTable(np.array([0.0, top]), np.array([0.4, 0.0]), np.array([0.0, 0.3]))


def test_the_narrowband_threshold_comes_after_the_users_and_the_databases():
    wide, narrow = _table(1.0), _table(8.0)
    scorer = Scorer("asnorm", 0.137, np.eye(2), top_k=1, table=wide,
                    narrow=NarrowbandThreshold(5000.0, 3.98, narrow))
    model = choose_threshold(scorer, None, None, narrowband=True)
    assert (model.threshold, model.table) == (3.98, narrow)
    assert model.source == "model validation, narrowband probe (content below 5 kHz)"
    assert model.expected_far == pytest.approx(narrow.far_at(3.98))
    assert choose_threshold(scorer, None, None, narrowband=False) == ThresholdChoice(0.137, "model validation", wide)
    # Without a rule in the model a narrowband probe gets the one threshold.
    plain = Scorer("asnorm", 0.137, np.eye(2), top_k=1, table=wide)
    assert choose_threshold(plain, None, None, narrowband=True) == ThresholdChoice(0.137, "model validation", wide)
    # --threshold wins; what it means is read from the model's table for this probe.
    assert choose_threshold(scorer, None, 2.5, narrowband=True) == ThresholdChoice(2.5, "--threshold", narrow)
    # So does the database's calibration, with its own table, and --threshold over both.
    db_table = _table(5.0)
    calibration = Calibration(1.5, scorer.score_id, 0.01, 0.01, 0.1, 0.05, 10, 100, "mine", time.time(), db_table)
    from_db = choose_threshold(scorer, calibration, None, narrowband=True)
    assert (from_db.threshold, from_db.table, from_db.source) == (1.5, db_table, "database calibration on mine")
    assert choose_threshold(scorer, calibration, 2.5, narrowband=True) == ThresholdChoice(2.5, "--threshold", db_table,
                                                                                          table_from_model=False)
    assert not from_db.table_from_model and model.table_from_model


@pytest.fixture(scope="module")
def wideband(tmp_path_factory):
    """A 16 kHz model (untrained: the threshold rule is under test, not the voices) scoring by cosine at 0.1,
    and at 0.6 for narrowband probes, with alice enrolled from a full-band recording; probes of her voice at full
    band and low-passed at 3.4 kHz."""
    from dlsp.audio.bandwidth import band_limit
    from dlsp.models.speaker import SpeakerEncoder

    root = tmp_path_factory.mktemp("wideband")
    torch.manual_seed(0)
    encoder = SpeakerEncoder(sample_rate=16000, features="logmel", n_mels=20, n_fft=512, hop_length=256, hidden=8,
                             embedding_dim=4)
    scorer = Scorer("cosine", 0.1, table=_table(1.0), narrow=NarrowbandThreshold(5000.0, 0.6, _table(0.9)))
    model = save_speaker_model(root / "m16.pt", encoder, "gru", sample_rate=16000, threshold=0.1, trim_db=40.0,
                               scorer=scorer)
    voice = make_speakers(2, seed=4)[0]
    enrol = save_audio(root / "enrol.wav", synth_utterance(voice, 1.2, 16000, rng=1), 16000)
    probe = synth_utterance(voice, 1.2, 16000, rng=2)
    probes = {"full": save_audio(root / "full.wav", probe, 16000),
              "phone": save_audio(root / "phone.wav", band_limit(probe, 16000, 3400.0), 16000)}
    return model, enrol, probes


def test_verify_and_identify_judge_a_narrowband_probe_at_the_narrowband_threshold(wideband, tmp_path, cli):
    model, enrol, probes = wideband
    db = tmp_path / "people.db"
    assert cli("speaker", "enroll", "alice", enrol, "--db", db, "--model", model)[0] == 0

    def verify(probe, *extra):
        code, out, err = cli("speaker", "verify", "alice", probes[probe], "--db", db, "--model", model, "--json",
                             tmp_path / "v.json", *extra)
        result = json.loads((tmp_path / "v.json").read_text())
        assert code == (0 if result["accepted"] else 1) and result["accepted"] == (result["score"] >=
                                                                                   result["threshold"]), err
        return result, out

    full, _ = verify("full")
    assert full["narrowband"] is False and full["bandwidth_hz"] > 7000
    assert (full["threshold"], full["threshold_source"]) == (0.1, "model validation")
    phone, out = verify("phone")
    assert phone["narrowband"] is True and 3200 <= phone["bandwidth_hz"] <= 3500
    assert phone["threshold"] == 0.6 and phone["expected_far"] == pytest.approx(_table(0.9).far_at(0.6))
    assert phone["threshold_source"] == "model validation, narrowband probe (content below 5 kHz)"
    assert "threshold from model validation, narrowband probe (content below 5 kHz)" in out
    code, _, _ = cli("speaker", "identify", probes["phone"], "--db", db, "--model", model, "--json",
                     tmp_path / "i.json")
    who = json.loads((tmp_path / "i.json").read_text())
    assert code == (0 if who["identified"] else 1) and who["narrowband"] is True and who["threshold"] == 0.6
    assert who["bandwidth_hz"] == phone["bandwidth_hz"]
    # --threshold, then the database's calibration, still come first for a narrowband probe.
    forced, _ = verify("phone", "--threshold", "-0.5")
    assert (forced["threshold"], forced["threshold_source"], forced["narrowband"]) == (-0.5, "--threshold", True)
    with SpeakerDatabase(db, None, None, create=False) as opened:
        opened.set_calibration(Calibration(0.3, "cosine", 0.01, 0.01, 0.1, 0.05, 10, 100, "mine", time.time()))
    calibrated, _ = verify("phone")
    assert calibrated["threshold"] == 0.3 and calibrated["threshold_source"] == "database calibration on mine"


def test_table_enrolment_reads_the_recipes_enroll_clips():
    from dlsp.speaker.model_file import table_enrolment

    assert table_enrolment({"score": {"enroll_clips": 3}}) == 3
    assert table_enrolment({"score": {"enroll_clips": 0}}) == 1  # pairs: one recording against one
    assert table_enrolment({}) is None and table_enrolment({"score": {"enroll_clips": "3"}}) is None
    assert table_enrolment({"score": {"enroll_clips": True}}) is None


def test_verify_and_identify_use_the_thresholds_of_the_persons_enrolment_size(tmp_path, cli):
    """A model with thresholds set on speaker models of 1, 3 and 5 recordings (and its one threshold on models of
    3): each person is judged at the size they were enrolled with (2 -> 3, 6 -> 5), wideband and narrowband."""
    from dlsp.audio.bandwidth import band_limit
    from dlsp.models.speaker import SpeakerEncoder
    from dlsp.speaker.scoring import EnrolmentThresholds

    torch.manual_seed(0)
    encoder = SpeakerEncoder(sample_rate=16000, features="logmel", n_mels=20, n_fft=512, hop_length=256, hidden=8,
                             embedding_dim=4)
    sizes = tuple(EnrolmentThresholds(n, wide, _table(1.0 + n / 10), NarrowbandThreshold(5000.0, narrow, _table(0.9)))
                  for n, wide, narrow in ((1, 0.05, 0.55), (3, 0.15, 0.65), (5, 0.2, 0.7)))
    scorer = Scorer("cosine", 0.1, table=_table(1.0), narrow=NarrowbandThreshold(5000.0, 0.6, _table(0.9)),
                    by_enrolment=sizes)
    model = save_speaker_model(tmp_path / "m.pt", encoder, "gru", sample_rate=16000, threshold=0.1, trim_db=40.0,
                               scorer=scorer, config={"score": {"enroll_clips": 3, "enroll_sizes": [1, 3, 5]}})
    voice = make_speakers(2, seed=4)[0]
    clips = [save_audio(tmp_path / f"{j}.wav", synth_utterance(voice, 1.2, 16000, rng=j), 16000) for j in range(7)]
    phone = save_audio(tmp_path / "phone.wav", band_limit(synth_utterance(voice, 1.2, 16000, rng=9), 16000, 3400.0),
                       16000)
    db = tmp_path / "people.db"
    for name, n in (("one", 1), ("two", 2), ("six", 6)):
        assert cli("speaker", "enroll", name, *clips[:n], "--db", db, "--model", model)[0] == 0

    def verify(name, probe):
        code, out, err = cli("speaker", "verify", name, probe, "--db", db, "--model", model, "--json",
                             tmp_path / "v.json")
        assert code in (0, 1), err
        return json.loads((tmp_path / "v.json").read_text()), out

    expected = {"one": (0.05, 0.55, 1), "two": (0.15, 0.65, 3), "six": (0.2, 0.7, 5)}
    for name, (wide, narrow, size) in expected.items():
        full, out = verify(name, clips[6])
        assert (full["threshold"], full["table_enrolled_files"]) == (wide, size)
        assert full["expected_far"] == pytest.approx(_table(1.0 + size / 10).far_at(wide))
        assert ("measured on people enrolled with" in out) == (name != "one"), out
        assert verify(name, phone)[0]["threshold"] == narrow
    assert "measured on people enrolled with 3 recordings; two has 2)" in verify("two", clips[6])[1]
    code, _, err = cli("speaker", "identify", phone, "--db", db, "--model", model, "--margin", "0", "--json",
                       tmp_path / "i.json")
    who = json.loads((tmp_path / "i.json").read_text())
    assert code in (0, 1) and {r["name"]: r["required"] for r in who["ranking"]} == {
        name: narrow for name, (_, narrow, _) in expected.items()}, err
    # The database's calibration still applies to everyone alike.
    with SpeakerDatabase(db, None, None, create=False) as opened:
        opened.set_calibration(Calibration(0.3, "cosine", 0.01, 0.01, 0.1, 0.05, 10, 100, "mine", time.time()))
    assert {verify(name, clips[6])[0]["threshold"] for name in expected} == {0.3}

"""dlsp.speaker.database: enrolment storage, refusal of foreign files and models, concurrent writers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dlsp.errors import DlspError
from dlsp.speaker.database import SpeakerDatabase, check_name


def _unit(rng, n, dim=8):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_enroll_stores_the_mean_direction_and_adds_later_files(tmp_path, rng):
    first, more = _unit(rng, 3), _unit(rng, 2)
    with SpeakerDatabase(tmp_path / "s.db", "model-a", 8) as db:
        db.enroll("alice", first)
        db.enroll("alice", more)
        alice = db.get("alice")
    expected = np.concatenate([first, more]).sum(0)
    np.testing.assert_allclose(alice.embedding, expected / np.linalg.norm(expected), atol=1e-6)
    assert alice.n_files == 5


def test_replace_list_and_remove(tmp_path, rng):
    with SpeakerDatabase(tmp_path / "s.db", "model-a", 8) as db:
        db.enroll("bob", _unit(rng, 4))
        new = _unit(rng, 1)
        db.enroll("bob", new, replace=True)
        db.enroll("carol", _unit(rng, 1))
        np.testing.assert_allclose(db.get("bob").embedding, new[0], atol=1e-6)
        assert [(p.name, p.n_files) for p in db.list()] == [("bob", 1), ("carol", 1)]
        db.remove("bob")
        with pytest.raises(DlspError, match=r"unknown speaker 'bob'.*enrolled: carol"):
            db.get("bob")
        with pytest.raises(DlspError, match="nothing removed"):
            db.remove("bob")


def test_database_persists_and_reopens_without_a_model(tmp_path, rng):
    with SpeakerDatabase(tmp_path / "s.db", "model-a", 8) as db:
        db.enroll("dora", _unit(rng, 2))
    with SpeakerDatabase(tmp_path / "s.db", None, None, create=False) as db:
        assert db.model_id == "model-a" and db.embedding_dim == 8
        assert [p.name for p in db.list()] == ["dora"]


def test_other_model_or_embedding_size_is_refused(tmp_path, rng):
    with SpeakerDatabase(tmp_path / "s.db", "model-a", 8) as db:
        db.enroll("erin", _unit(rng, 1))
    with pytest.raises(DlspError, match=r"made with model model-a .*not this model model-b"):
        SpeakerDatabase(tmp_path / "s.db", "model-b", 8)
    with pytest.raises(DlspError, match="8-dim"):
        SpeakerDatabase(tmp_path / "s.db", "model-a", 16)


def test_foreign_and_corrupt_files_are_refused_untouched(tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("my notes")
    with pytest.raises(DlspError, match="not an SQLite file"):
        SpeakerDatabase(text, "m", 8)
    assert text.read_text() == "my notes"
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE invoices (n INTEGER)")
    with pytest.raises(DlspError, match="not a dlsp speaker database"):
        SpeakerDatabase(other, "m", 8)
    torn = tmp_path / "torn.db"
    torn.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    with pytest.raises(DlspError, match="not a usable dlsp speaker database"):
        SpeakerDatabase(torn, "m", 8)
    with pytest.raises(DlspError, match="does not exist"):
        SpeakerDatabase(tmp_path / "missing.db", "m", 8, create=False)


def test_wrong_embedding_size_and_bad_names_are_refused(tmp_path, rng):
    with SpeakerDatabase(tmp_path / "s.db", "m", 8) as db, pytest.raises(DlspError, match="size 8"):
        db.enroll("fay", _unit(rng, 1, dim=4))
    for bad in ("", " padded", "a\nb"):
        with pytest.raises(DlspError, match="bad speaker name"):
            check_name(bad)


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from dlsp.speaker.database import SpeakerDatabase
    tag, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(len(tag))
    for i in range(n):
        # A fresh connection per enrolment, like separate 'dlsp speaker enroll' runs.
        with SpeakerDatabase(path, "model-a", 8) as db:
            db.enroll(f"{tag}-{i}", rng.standard_normal((1, 8)).astype(np.float32))
            db.enroll("shared", rng.standard_normal((1, 8)).astype(np.float32))
""")


def test_two_processes_enrolling_concurrently_lose_nothing(tmp_path):
    path, n = tmp_path / "s.db", 40
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, tag, str(path), str(n)], stderr=subprocess.PIPE)
             for tag in ("left", "right")]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    with SpeakerDatabase(path, "model-a", 8) as db:
        people = {p.name: p.n_files for p in db.list()}
    assert len(people) == 2 * n + 1
    assert people["shared"] == 2 * n  # every read-modify-write of the same name landed


def test_a_calibration_is_stored_read_back_and_checked(tmp_path, rng):
    import time

    from dlsp.speaker.database import Calibration, check_database
    from dlsp.speaker.scoring import RateTable

    table = RateTable(np.array([0.0, 1.0, 2.0]), np.array([0.5, 0.05, 0.0]), np.array([0.0, 0.1, 0.7]))
    calibration = Calibration(1.0, "asnorm-k100-abc", 0.05, 0.05, 0.1, 0.07, 45, 270, "/data/mine", time.time(),
                              table)
    path = tmp_path / "s.db"
    with SpeakerDatabase(path, "m", 8) as db:
        assert db.calibration() is None
        db.enroll("gus", _unit(rng, 1))
        db.set_calibration(calibration)
    with SpeakerDatabase(path, None, None, create=False) as db:
        back = db.calibration()
    assert back.threshold == 1.0 and back.score_id == "asnorm-k100-abc" and back.n_nontarget == 270
    assert back.enrolled_files is None  # not given (as in databases calibrated before it was recorded)
    import dataclasses

    assert Calibration.from_json(dataclasses.replace(calibration, enrolled_files=3).to_json()).enrolled_files == 3
    with pytest.raises(ValueError, match="enrolled_files"):
        Calibration.from_json(dataclasses.replace(calibration, enrolled_files=0).to_json())
    np.testing.assert_array_equal(back.table.far, table.far)
    assert check_database(path).ok
    with sqlite3.connect(path) as con:
        con.execute("UPDATE dlsp_speaker_db SET value = '{\"threshold\": NaN}' WHERE key = 'calibration'")
    with SpeakerDatabase(path, None, None, create=False) as db, pytest.raises(DlspError, match="damaged threshold"):
        db.calibration()
    assert not check_database(path).ok and "calibration" in check_database(path).problems[0]
    with SpeakerDatabase(path, "m", 8) as db:
        db.set_calibration(None)
        assert db.calibration() is None and [p.name for p in db.list()] == ["gus"]

"""The enrolment database: one SQLite file holding each enrolled person's mean embedding.

SQLite is a real embedded database: writers take the file lock in turn, so concurrent `dlsp speaker enroll`
processes each land their change (WAL journal, a 30 s busy timeout, and every read-modify-write inside one
`BEGIN IMMEDIATE` transaction so two enrolments of one name cannot overwrite each other).

Schema: `dlsp_speaker_db` (key/value: `marker`, `schema`, `model_id`, `embedding_dim`) identifies the file as
ours and records which encoder made its embeddings; `speakers` holds `name`, `embedding` (float32 sum of the
unit embeddings of every enrolled file), `n_files`, `created`, `updated`. The stored mean direction is
`embedding / |embedding|`. A file that is not ours, is corrupt, or was made by another model is refused.
`dlsp speaker calibrate` adds the key `calibration` (JSON, `Calibration`): a threshold measured on the user's
own recordings, which verify and identify use instead of the model's; older dlsp versions ignore the key.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlsp.errors import DlspError
from dlsp.speaker.scoring import RateTable

MARKER = "dlsp speaker database"
SCHEMA = "1"
BUSY_TIMEOUT_S = 30.0
_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS dlsp_speaker_db (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS speakers (
    name TEXT PRIMARY KEY,
    embedding BLOB NOT NULL,
    n_files INTEGER NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Enrolled:
    """One enrolled person: unit mean embedding and how many files it averages."""

    name: str
    embedding: np.ndarray
    n_files: int
    updated: float


@dataclass(frozen=True)
class Calibration:
    """A threshold measured on labelled recordings for one scoring (`score_id`): the lowest score whose
    false-accept rate there is at most `target_far`, with the rates measured at it and the trials' EER."""

    threshold: float
    score_id: str
    target_far: float
    far: float
    frr: float
    eer: float
    n_target: int
    n_nontarget: int
    data: str
    created: float
    table: RateTable | None = None
    # Recordings per speaker model in the trials (`calibrate --enroll N`; 1 for pairs); None: not recorded (older).
    enrolled_files: int | None = None

    def to_json(self) -> str:
        fields = {k: v for k, v in self.__dict__.items() if k != "table"}
        return json.dumps({**fields, "table": None if self.table is None else self.table.to_dict()})

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        """Parse a stored calibration; `ValueError` (or `TypeError`) when it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        numbers = ("threshold", "target_far", "far", "frr", "eer", "created")
        if any(not isinstance(data.get(k), int | float) or isinstance(data.get(k), bool)
               or not math.isfinite(data[k]) for k in numbers):
            raise ValueError("a calibration number is missing or not finite")
        if not isinstance(data.get("score_id"), str) or not isinstance(data.get("data"), str) or any(
                not isinstance(data.get(k), int) or data[k] < 0 for k in ("n_target", "n_nontarget")):
            raise ValueError("a calibration field has the wrong type")
        table = None if data.get("table") is None else RateTable.from_dict(data["table"])
        enrolled = data.get("enrolled_files")
        if enrolled is not None and (not isinstance(enrolled, int) or isinstance(enrolled, bool) or enrolled < 1):
            raise ValueError("enrolled_files must be a positive integer")
        return cls(**{k: data[k] for k in (*numbers, "score_id", "data", "n_target", "n_nontarget")},
                   table=table, enrolled_files=enrolled)


class SpeakerDatabase:
    """An open enrolment database bound to one model (id and embedding size)."""

    def __init__(self, path: str | os.PathLike[str], model_id: str | None, embedding_dim: int | None,
                 create: bool = True) -> None:
        """Open (or, with `create` and a model, create) the database at `path`.

        `model_id=None` opens an existing database for listing and removing without checking the model.
        """
        self.path = Path(path)
        create = create and model_id is not None
        self.model_id = None if model_id is None else str(model_id)
        self.embedding_dim = None if embedding_dim is None else int(embedding_dim)
        if self.path.is_dir():
            raise DlspError("is a directory, expected a speaker database file", self.path)
        exists = self.path.exists() and self.path.stat().st_size > 0
        if not exists and not create:
            raise DlspError("speaker database does not exist (enroll someone first with 'dlsp speaker enroll')",
                            self.path)
        if not exists and not self.path.parent.is_dir():
            raise DlspError("folder of the speaker database does not exist", self.path.parent)
        _refuse_foreign_header(self.path)
        try:
            self.connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise DlspError(f"cannot open speaker database ({exc})", self.path) from None
        try:
            self._setup(exists)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            self.connection.close()
            raise DlspError(f"not a usable dlsp speaker database ({_first_line(exc)})", self.path) from None
        except BaseException:
            self.connection.close()
            raise

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> SpeakerDatabase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _setup(self, exists: bool) -> None:
        con = self.connection
        con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        with self._write():
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "dlsp_speaker_db" not in tables:
                if tables or self.model_id is None:
                    raise DlspError("is an SQLite database but not a dlsp speaker database (no dlsp_speaker_db "
                                    "table); refusing to touch it", self.path)
                _create(con)
                con.executemany("INSERT INTO dlsp_speaker_db (key, value) VALUES (?, ?)", [
                    ("marker", MARKER), ("schema", SCHEMA), ("model_id", self.model_id),
                    ("embedding_dim", str(self.embedding_dim))])
        con.execute("PRAGMA journal_mode = WAL")
        self._check_meta()

    def _check_meta(self) -> None:
        meta = dict(self.connection.execute("SELECT key, value FROM dlsp_speaker_db").fetchall())
        self.meta = meta
        if meta.get("marker") != MARKER:
            raise DlspError("not a dlsp speaker database (wrong marker)", self.path)
        if meta.get("schema") != SCHEMA:
            raise DlspError(f"speaker database schema {meta.get('schema')!r} is not supported (this dlsp reads "
                            f"schema {SCHEMA})", self.path)
        if self.model_id is None:
            self.model_id = meta.get("model_id")
            self.embedding_dim = int(meta.get("embedding_dim") or 0)
        elif meta.get("model_id") != self.model_id or meta.get("embedding_dim") != str(self.embedding_dim):
            raise DlspError(f"speaker database was made with model {meta.get('model_id')} ({meta.get('embedding_dim')}"
                            f"-dim embeddings), not this model {self.model_id} ({self.embedding_dim}-dim); use "
                            "that model (--model) or a new database", self.path)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: takes the write lock up front (waits up to the busy timeout)."""
        con = self.connection
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise DlspError(f"speaker database is busy or read-only ({exc})", self.path) from None
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def enroll(self, name: str, embeddings: np.ndarray, replace: bool = False) -> Enrolled:
        """Add unit embeddings `(n, dim)` to `name` (created if new; `replace` starts it afresh)."""
        name = check_name(name)
        embeddings = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        if embeddings.shape[1] != self.embedding_dim or embeddings.shape[0] == 0:
            raise DlspError(f"expected embeddings of size {self.embedding_dim}, got shape {embeddings.shape}")
        now = time.time()
        with self._write() as con:
            row = con.execute("SELECT embedding, n_files, created FROM speakers WHERE name = ?", (name,)).fetchone()
            total, count, created = embeddings.sum(axis=0), embeddings.shape[0], now
            if row is not None and not replace:
                total = total + self._vector(row[0])
                count, created = count + int(row[1]), row[2]
            con.execute("INSERT OR REPLACE INTO speakers (name, embedding, n_files, created, updated) "
                        "VALUES (?, ?, ?, ?, ?)", (name, total.astype(np.float32).tobytes(), count, created, now))
        return Enrolled(name, _unit(total), count, now)

    def get(self, name: str) -> Enrolled:
        """The enrolled person `name`; unknown names raise `DlspError` listing a few known ones."""
        with self._damage_is_an_error():
            return self._get(name)

    def _get(self, name: str) -> Enrolled:
        row = self.connection.execute("SELECT name, embedding, n_files, updated FROM speakers WHERE name = ?",
                                      (name,)).fetchone()
        if row is None:
            known = [r[0] for r in self.connection.execute("SELECT name FROM speakers ORDER BY name LIMIT 6")]
            hint = f"enrolled: {', '.join(known[:5])}{', ...' if len(known) > 5 else ''}" if known else \
                "nobody is enrolled yet"
            raise DlspError(f"unknown speaker {name!r} ({hint})", self.path)
        return Enrolled(row[0], _unit(self._vector(row[1])), int(row[2]), float(row[3]))

    def list(self) -> list[Enrolled]:
        """Everyone enrolled, by name."""
        with self._damage_is_an_error():
            rows = self.connection.execute("SELECT name, embedding, n_files, updated FROM speakers ORDER BY name")
            return [Enrolled(r[0], _unit(self._vector(r[1])), int(r[2]), float(r[3])) for r in rows]

    @contextlib.contextmanager
    def _damage_is_an_error(self) -> Iterator[None]:
        # A damaged file fails inside SQLite or while decoding its text; either is the user's file, not a bug.
        try:
            yield
        except (sqlite3.DatabaseError, UnicodeDecodeError, TypeError, ValueError) as exc:
            raise DlspError(f"damaged speaker database ({_first_line(exc)}); check it with 'dlsp speaker "
                            "check'", self.path) from None

    def set_calibration(self, calibration: Calibration | None) -> None:
        """Store the threshold calibrated on the user's recordings (None: remove it)."""
        with self._write() as con:
            con.execute("DELETE FROM dlsp_speaker_db WHERE key = 'calibration'")
            if calibration is not None:
                con.execute("INSERT INTO dlsp_speaker_db (key, value) VALUES ('calibration', ?)",
                            (calibration.to_json(),))

    def calibration(self) -> Calibration | None:
        """The stored calibration, if any; a damaged one raises `DlspError`."""
        with self._damage_is_an_error():
            row = self.connection.execute("SELECT value FROM dlsp_speaker_db WHERE key = 'calibration'").fetchone()
        if row is None:
            return None
        try:
            return Calibration.from_json(row[0])
        except (ValueError, TypeError, KeyError) as exc:
            raise DlspError(f"damaged threshold calibration in the speaker database ({_first_line(exc)}); run "
                            "'dlsp speaker calibrate' again", self.path) from None

    def remove(self, name: str) -> None:
        """Delete `name`; unknown names raise `DlspError`."""
        with self._write() as con:
            if con.execute("DELETE FROM speakers WHERE name = ?", (name,)).rowcount == 0:
                raise DlspError(f"unknown speaker {name!r}, nothing removed", self.path)

    def _vector(self, blob: bytes) -> np.ndarray:
        vector = np.frombuffer(blob, dtype=np.float32)
        if vector.size != self.embedding_dim:
            raise DlspError(f"corrupt speaker database: an embedding has {vector.size} values, expected "
                            f"{self.embedding_dim}", self.path)
        return vector


@dataclass(frozen=True)
class DatabaseCheck:
    """What `check_database` found: the people enrolled and every problem (none for a healthy file)."""

    path: Path
    names: list[str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_database(path: str | os.PathLike[str]) -> DatabaseCheck:
    """Check a speaker database thoroughly: SQLite's `PRAGMA integrity_check`, our marker and schema, and that
    every stored embedding has the recorded size, finite values and at least one file.

    Opening replays a WAL left by a killed writer, as any reader would. Raises `DlspError` only when the file
    cannot be opened as a dlsp speaker database at all; damage is reported in `problems`.
    """
    path = Path(path)
    with SpeakerDatabase(path, None, None, create=False) as db:
        try:
            names, problems = _check_rows(db)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            names, problems = [], [f"cannot read the database ({_first_line(exc)})"]
    return DatabaseCheck(path, names, problems)


def _check_rows(db: SpeakerDatabase) -> tuple[list[str], list[str]]:
    """Names and problems of an open database (SQLite errors propagate to `check_database`)."""
    con, problems = db.connection, []
    integrity = [row[0] for row in con.execute("PRAGMA integrity_check")]
    if integrity != ["ok"]:
        problems += [f"integrity check: {line}" for line in integrity[:5]]
    names = []
    for name, blob, n_files in con.execute("SELECT name, embedding, n_files FROM speakers ORDER BY name"):
        names.append(name)
        vector = np.frombuffer(blob, dtype=np.float32) if isinstance(blob, bytes) else np.zeros(0)
        if vector.size != db.embedding_dim:
            problems.append(f"{name!r}: embedding has {vector.size} values, expected {db.embedding_dim}")
        elif not np.all(np.isfinite(vector)) or not np.any(vector):
            problems.append(f"{name!r}: embedding is not finite or is zero")
        if not isinstance(n_files, int) or n_files < 1:
            problems.append(f"{name!r}: bad file count {n_files!r}")
    try:
        db.calibration()
    except DlspError as exc:
        problems.append(exc.problem)
    return names, problems


def check_name(name: str) -> str:
    """A usable enrolment name: non-empty, printable, at most 200 characters, no surrounding spaces."""
    if not name or name != name.strip() or len(name) > 200 or not name.isprintable():
        raise DlspError(f"bad speaker name {name!r} (1-200 printable characters, no leading or trailing spaces)")
    return name


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def _create(con: sqlite3.Connection) -> None:
    for statement in _SCHEMA_SQL.split(";"):
        if statement.strip():
            con.execute(statement)


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def _refuse_foreign_header(path: Path) -> None:
    """Refuse a non-empty file that is not SQLite before sqlite3 touches it."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        with open(path, "rb") as handle:
            header = handle.read(16)
    except OSError as exc:
        raise DlspError(f"cannot read speaker database ({exc.strerror})", path) from None
    if header != b"SQLite format 3\x00":
        raise DlspError("not a dlsp speaker database (not an SQLite file); refusing to overwrite it", path)

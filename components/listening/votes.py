"""The listening room's tables: the blind pairs it played, to whom, and one row per listener's judgement.

    pairs       id, prompt, seed, seconds, kind, system/version/best_of of side a and of side b, audio files
    played      which pair was played to which listener (a vote is taken only for a pair played to its voter)
    judgements  pair, listener (pseudonymous), choice a|b, optional 1-5 rating of each side, both versions,
                prompt, seed, time
    meta        the key that signs listener ids (shared by every replica of the service)

SQLite locally (`listening.database`, a file); the cluster profile's PostgreSQL when LYRA_PG_HOST is set
(LYRA_PG_PORT, LYRA_PG_USER, LYRA_PG_PASSWORD, LYRA_PG_DB, LYRA_PG_SSLMODE, as the Dagster instance
reads them), so votes land in the platform's database. SQLAlchemy Core: one schema for both.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

import sqlalchemy as sa

from components.common.errors import LyraError

METADATA = sa.MetaData()

PAIRS = sa.Table(
    "listening_pairs", METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),          # versions | best_of
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    *(sa.Column(f"{c}_{side}", t, nullable=False) for side in "ab"
      for c, t in (("system", sa.String(16)), ("version", sa.String(128)), ("best_of", sa.Integer), ("audio", sa.String(256)))),
)

PLAYED = sa.Table(
    "listening_played", METADATA,
    sa.Column("pair_id", sa.String(32), sa.ForeignKey("listening_pairs.id"), primary_key=True),
    sa.Column("listener", sa.String(64), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

META = sa.Table(
    "listening_meta", METADATA,
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(128), nullable=False),
)

JUDGEMENTS = sa.Table(
    "listening_judgements", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pair_id", sa.String(32), sa.ForeignKey("listening_pairs.id"), nullable=False),
    sa.Column("listener", sa.String(64), nullable=False),
    sa.Column("choice", sa.String(1), nullable=False),
    sa.Column("rating_a", sa.Integer, nullable=True),
    sa.Column("rating_b", sa.Integer, nullable=True),
    sa.Column("version_a", sa.String(128), nullable=False),
    sa.Column("version_b", sa.String(128), nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("pair_id", "listener", name="one_judgement_per_listener_and_pair"),
)


class VoteError(LyraError, ValueError):
    """A vote that is refused: `status` is the HTTP status (404 unknown pair, 409 already judged)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def database_url(database: str, project: str | os.PathLike = ".") -> sa.URL:
    """The cluster's PostgreSQL from LYRA_PG_* (the password never enters a string that is logged: the
    URL object masks it), else the SQLite file `database` (relative to the project)."""
    if os.environ.get("LYRA_PG_HOST"):
        sslmode = os.environ.get("LYRA_PG_SSLMODE")
        return sa.URL.create("postgresql+psycopg2", username=os.environ.get("LYRA_PG_USER"),
                             password=os.environ.get("LYRA_PG_PASSWORD"), host=os.environ["LYRA_PG_HOST"],
                             port=int(os.environ.get("LYRA_PG_PORT") or 5432), database=os.environ.get("LYRA_PG_DB"),
                             query={"sslmode": sslmode} if sslmode else {})
    path = Path(database) if Path(database).is_absolute() else Path(project) / database
    path.parent.mkdir(parents=True, exist_ok=True)
    return sa.URL.create("sqlite", database=os.fspath(path))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class VoteStore:
    def __init__(self, url: sa.URL | str):
        self.engine = sa.create_engine(url, future=True)
        METADATA.create_all(self.engine)

    @classmethod
    def open(cls, database: str, project: str | os.PathLike = ".") -> "VoteStore":
        return cls(database_url(database, project))

    def add_pair(self, *, kind: str, prompt: str, seed: int, seconds: float, a: dict, b: dict) -> str:
        """a/b: {system, version, best_of, audio}; returns the new pair's id (random, unguessable)."""
        pair_id = secrets.token_hex(8)
        row = {"id": pair_id, "created_at": now(), "kind": kind, "prompt": prompt, "seed": seed, "seconds": seconds,
               **{f"{k}_{side}": v[k] for side, v in (("a", a), ("b", b)) for k in ("system", "version", "best_of", "audio")}}
        with self.engine.begin() as db:
            db.execute(PAIRS.insert().values(**row))
        return pair_id

    def pair(self, pair_id: str) -> dict | None:
        with self.engine.connect() as db:
            row = db.execute(PAIRS.select().where(PAIRS.c.id == pair_id)).mappings().first()
        return dict(row) if row else None

    def unjudged_pair(self, listener: str, versions: set[str], kind: str) -> dict | None:
        """A pair of this kind, of the versions served now, that this listener has not judged (oldest first)."""
        judged = sa.select(JUDGEMENTS.c.pair_id).where(JUDGEMENTS.c.listener == listener)
        where = [PAIRS.c.id.not_in(judged), PAIRS.c.kind == kind, PAIRS.c.version_a.in_(versions),
                 PAIRS.c.version_b.in_(versions)]
        if kind == "versions":
            where.append(PAIRS.c.version_a != PAIRS.c.version_b)
        with self.engine.connect() as db:
            row = db.execute(PAIRS.select().where(*where).order_by(PAIRS.c.created_at).limit(1)).mappings().first()
        return dict(row) if row else None

    def played(self, pair_id: str, listener: str) -> None:
        """Record that the pair was played to the listener (only such a pair takes their vote)."""
        with self.engine.begin() as db:
            known = db.execute(sa.select(PLAYED.c.pair_id).where(PLAYED.c.pair_id == pair_id,
                                                                 PLAYED.c.listener == listener)).first()
            if known is None:
                db.execute(PLAYED.insert().values(pair_id=pair_id, listener=listener, at=now()))

    def signing_key(self) -> bytes:
        """The key listener ids are signed with: made once, kept in the database (every replica shares it)."""
        query = sa.select(META.c.value).where(META.c.key == "listener_key")
        with self.engine.connect() as db:
            row = db.execute(query).first()
        if row is None:
            try:
                with self.engine.begin() as db:
                    db.execute(META.insert().values(key="listener_key", value=secrets.token_hex(32)))
            except sa.exc.IntegrityError:          # another replica made it first: use theirs
                pass
            with self.engine.connect() as db:
                row = db.execute(query).first()
        return bytes.fromhex(row[0])

    def vote(self, pair_id: str, listener: str, choice: str, rating_a: int | None = None,
             rating_b: int | None = None) -> int:
        if choice not in ("a", "b"):
            raise VoteError(f"choice: {choice!r} must be 'a' or 'b'")
        for name, value in (("rating_a", rating_a), ("rating_b", rating_b)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5):
                raise VoteError(f"{name}: {value!r} must be a whole number from 1 to 5")
        pair = self.pair(pair_id)
        if pair is None:
            raise VoteError(f"pair: no pair {pair_id!r}", status=404)
        with self.engine.connect() as db:
            was_played = db.execute(sa.select(PLAYED.c.pair_id).where(PLAYED.c.pair_id == pair_id,
                                                                      PLAYED.c.listener == listener)).first()
        if was_played is None:
            raise VoteError(f"pair {pair_id}: it was not played to this listener", status=403)
        row = {"pair_id": pair_id, "listener": listener, "choice": choice, "rating_a": rating_a, "rating_b": rating_b,
               "version_a": pair["version_a"], "version_b": pair["version_b"], "prompt": pair["prompt"],
               "seed": pair["seed"], "at": now()}
        try:
            with self.engine.begin() as db:
                return int(db.execute(JUDGEMENTS.insert().values(**row)).inserted_primary_key[0])
        except sa.exc.IntegrityError:
            raise VoteError(f"pair {pair_id}: this listener has judged it already", status=409) from None

    def judgements(self, since_id: int = 0) -> list[dict]:
        """Every judgement (after `since_id`) joined with its pair: systems, best-of and audio of both sides."""
        query = (sa.select(JUDGEMENTS, *(PAIRS.c[f"{c}_{s}"] for s in "ab" for c in ("system", "best_of", "audio")),
                           PAIRS.c.kind, PAIRS.c.seconds)
                 .join(PAIRS, PAIRS.c.id == JUDGEMENTS.c.pair_id).where(JUDGEMENTS.c.id > since_id)
                 .order_by(JUDGEMENTS.c.id))
        with self.engine.connect() as db:
            return [dict(r) for r in db.execute(query).mappings()]

    def count(self) -> int:
        with self.engine.connect() as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(JUDGEMENTS)).scalar_one())

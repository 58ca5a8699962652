"""The listening room's tables: the blind pairs it played and one row per listener's judgement.

    pairs       id, prompt, seed, seconds, kind, system/version/best_of of side a and of side b, audio files
    judgements  pair, listener (pseudonymous), choice a|b, optional 1-5 rating of each side, both versions,
                prompt, seed, time

SQLite locally (`serve.database`, a file); the cluster profile's PostgreSQL when LYRA_PG_HOST is set
(LYRA_PG_PORT, LYRA_PG_USER, LYRA_PG_PASSWORD, LYRA_PG_DB, as the Dagster instance reads them), so votes
land in the platform's database. SQLAlchemy Core: one schema for both.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

import sqlalchemy as sa

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


class VoteError(ValueError):
    """A vote that is refused: `status` is the HTTP status (404 unknown pair, 409 already judged)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def database_url(database: str, project: str | os.PathLike = ".") -> sa.URL:
    """The cluster's PostgreSQL from LYRA_PG_* (the password never enters a string that is logged: the
    URL object masks it), else the SQLite file `database` (relative to the project)."""
    if os.environ.get("LYRA_PG_HOST"):
        return sa.URL.create("postgresql+psycopg2", username=os.environ.get("LYRA_PG_USER"),
                             password=os.environ.get("LYRA_PG_PASSWORD"), host=os.environ["LYRA_PG_HOST"],
                             port=int(os.environ.get("LYRA_PG_PORT") or 5432), database=os.environ.get("LYRA_PG_DB"))
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

    def unjudged_pair(self, listener: str, versions: set[str]) -> dict | None:
        """A pair of the versions served now that this listener has not judged yet (oldest first)."""
        judged = sa.select(JUDGEMENTS.c.pair_id).where(JUDGEMENTS.c.listener == listener)
        query = (PAIRS.select().where(PAIRS.c.id.not_in(judged), PAIRS.c.version_a.in_(versions),
                                      PAIRS.c.version_b.in_(versions)).order_by(PAIRS.c.created_at).limit(1))
        with self.engine.connect() as db:
            row = db.execute(query).mappings().first()
        return dict(row) if row else None

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

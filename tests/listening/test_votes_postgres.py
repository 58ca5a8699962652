"""The votes in the cluster profile's database: a real PostgreSQL (Debian's, started by the test) chosen by
the same LYRA_PG_* variables the Dagster instance reads, and the password never in a URL that is printed."""

from __future__ import annotations

import pytest

from components.listening.votes import VoteError, VoteStore, database_url
from tests.infra.services import postgres
from tests.listening.test_listening import add_pair, simulated_listeners


def test_votes_land_in_postgresql_when_the_cluster_database_is_configured(tmp_path, monkeypatch):
    (tmp_path / "audio").mkdir()
    with postgres("lyra") as pg:
        for name, value in {"LYRA_PG_HOST": pg.host, "LYRA_PG_PORT": str(pg.port), "LYRA_PG_USER": pg.user,
                            "LYRA_PG_DB": pg.database, "LYRA_PG_PASSWORD": "canary-pw-1234"}.items():
            monkeypatch.setenv(name, value)
        url = database_url("ignored.sqlite", tmp_path)
        assert url.drivername == "postgresql+psycopg2" and "canary-pw-1234" not in str(url)
        store = VoteStore.open("ignored.sqlite", tmp_path)       # trust auth: the password is sent, not needed
        simulated_listeners(store, tmp_path / "audio", "lyra@v0.0.2", "lyra@v0.0.1", 8, p_candidate=0.8)
        pair = add_pair(store, tmp_path / "audio")
        store.played(pair, "someone")
        store.vote(pair, "someone", "b", rating_b=5)
        assert store.signing_key() == VoteStore.open("ignored.sqlite", tmp_path).signing_key()   # one key for all
        with pytest.raises(VoteError, match="judged it already"):
            store.vote(pair, "someone", "a")
        rows = VoteStore.open("ignored.sqlite", tmp_path).judgements()        # a second connection sees them
        assert len(rows) == 9 and rows[-1]["rating_b"] == 5 and rows[-1]["at"].tzinfo is not None
    assert not (tmp_path / "ignored.sqlite").exists()

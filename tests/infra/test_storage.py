"""The cluster profile's storage with real servers on 127.0.0.1: the Dagster instance in
PostgreSQL (with step logs in S3), and the DVC remote on S3 (SeaweedFS)."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import dagster as dg
import psycopg2

from orchestration.dvc import DvcResource
from tests.infra.services import postgres, seaweedfs_s3

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def s3_client(s3):
    return boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
                        aws_secret_access_key=s3.secret_key, region_name="us-east-1")


def test_a_materialization_lands_in_postgres_and_its_step_log_in_s3(tmp_path, monkeypatch):
    with postgres() as pg, seaweedfs_s3(tmp_path / "s3", buckets=("lyra-logs",)) as s3:
        home = tmp_path / "dagster-home"
        home.mkdir()
        shutil.copy(REPO / "infra" / "dagster" / "dagster.yaml", home / "dagster.yaml")
        for key, value in {**s3.env(), "LYRA_PG_HOST": pg.host, "LYRA_PG_PORT": str(pg.port), "LYRA_PG_USER": pg.user,
                           "LYRA_PG_PASSWORD": "", "LYRA_PG_DB": pg.database, "LYRA_LOG_BUCKET": "lyra-logs"}.items():
            monkeypatch.setenv(key, value)

        @dg.asset(name="curated_clips")
        def curated_clips(context) -> dg.MaterializeResult:
            print("decoded 66 clips, 0 quarantined")          # the step's stdout: a compute log
            return dg.MaterializeResult(metadata={"n_clips": 66})

        instance = dg.DagsterInstance.from_config(str(home))
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        # the fan-out's pool (orchestration/fanout.py) is bounded without a per-deployment step
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 64
        result = dg.materialize([curated_clips], instance=instance)
        assert result.success
        instance.dispose()

        # a fresh connection sees it: it is in the database, not in this process
        with psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, dbname=pg.database) as conn:
            with conn.cursor() as cur:
                cur.execute("select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION' "
                            "and asset_key like %s", ("%curated_clips%",))
                assert cur.fetchone()[0] == 1
                cur.execute("select count(*) from runs where run_id = %s and status = 'SUCCESS'", (result.run_id,))
                assert cur.fetchone()[0] == 1
        reopened = dg.DagsterInstance.from_config(str(home))
        event = reopened.get_latest_materialization_event(dg.AssetKey("curated_clips"))
        assert event.asset_materialization.metadata["n_clips"].value == 66
        reopened.dispose()

        objects = s3_client(s3).list_objects_v2(Bucket="lyra-logs", Prefix="compute-logs/")["Contents"]
        logs = [s3_client(s3).get_object(Bucket="lyra-logs", Key=o["Key"])["Body"].read() for o in objects]
        assert any(b"decoded 66 clips" in body for body in logs)


def sha256_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def project_s3_remote_url() -> str:
    text = (REPO / ".dvc" / "config").read_text()
    return re.search(r"\['remote \"s3\"'\]\s*\n\s*url = (\S+)", text)[1]


def test_a_committed_stage_is_pushed_to_s3_and_pulled_back_byte_for_byte(tmp_path, monkeypatch):
    """DvcResource as the cluster profile configures it (remote "s3" from the project's .dvc/config)
    pushes a stage's outputs when it commits them; `dvc pull` on a machine without them (no
    workspace copy, no cache) restores every byte."""
    repo = tmp_path / "repo"
    model = repo / "data" / "models" / "omnicodec"
    model.mkdir(parents=True)
    with seaweedfs_s3(tmp_path / "s3", buckets=("lyra-dvc",)) as s3:
        for key, value in s3.env().items():
            monkeypatch.setenv(key, value)

        def run(*cmd):
            out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, f"{' '.join(cmd)}:\n{out.stdout}\n{out.stderr}"

        run("git", "init", "-q")
        run(str(BIN / "dvc"), "init", "-q")
        run(str(BIN / "dvc"), "remote", "add", "s3", project_s3_remote_url())      # the project's remote
        (repo / "dvc.yaml").write_text("stages:\n  omnicodec:\n    cmd: lyra codec train\n"
                                       "    outs: [data/models/omnicodec]\n")
        (model / "model.safetensors").write_bytes(os.urandom(3 << 20))
        (model / "config.json").write_text('{"num_codebooks": 4}\n')
        (model / "nested").mkdir()
        (model / "nested" / "codebook.npy").write_bytes(os.urandom(100_000))
        before = sha256_tree(model)

        DvcResource(repo=str(repo), remote="s3").commit("omnicodec")
        bucket, prefix = project_s3_remote_url().removeprefix("s3://").split("/", 1)
        assert s3_client(s3).list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"] >= 4   # 3 files + manifest

        shutil.rmtree(model)
        shutil.rmtree(repo / ".dvc" / "cache")
        run(str(BIN / "dvc"), "pull", "-q", "--remote", "s3", "omnicodec")
        assert sha256_tree(model) == before


def test_the_lock_kept_with_the_data_survives_a_fresh_run_worker(tmp_path):
    """A run worker starts from the image's dvc.lock; the copy on the data volume says what is built."""
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("stages:\n  clips:\n    cmd: echo\n    outs: [data/clips]\n")
    (repo / "data" / "clips").mkdir()
    (repo / "data" / "clips" / "a.txt").write_text("clip\n")
    dvc = DvcResource(repo=str(repo), lock_copy="data/dvc.lock")
    assert not dvc.is_up_to_date("clips")
    dvc.commit("clips")
    assert (repo / "data" / "dvc.lock").read_text() == (repo / "dvc.lock").read_text()
    (repo / "dvc.lock").unlink()                         # the next run worker: the image has no lock for it
    assert dvc.is_up_to_date("clips")

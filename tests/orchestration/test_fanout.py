"""The lifecycle's fan-out (orchestration/fanout.py) through Dagster with a real launcher and stand-in stage
scripts: partitions run `partitions.concurrency` at once before the whole stage, each recorded as a
materialization of `<stage>_part`; a failed partition is named and fails the step after the others finish;
the retry runs only what is not done; the part asset itself materializes one partition and reuses a done one."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from components.partitions import partitions, read_listing
from components.pipeline import Stage
from orchestration import fanout, stage_assets
from orchestration.dvc import DvcResource
from orchestration.launchers import LocalLauncher, run_with_pipes

# part KEY: fails once if fail-KEY exists; otherwise holds a slot for a moment (to see how many run at once)
# and writes its output. whole: writes data/out with how many partition outputs it found.
SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from dagster_pipes import open_dagster_pipes
    with open_dagster_pipes() as pipes:
        if sys.argv[1:2] == ["part"]:
            key = sys.argv[2]
            with open("launched", "a") as f:
                f.write(key + "\\n")
            if Path(f"fail-{key}").exists():
                Path(f"fail-{key}").unlink()
                sys.exit(3)
            running = Path("running"); running.mkdir(exist_ok=True)
            (running / key).touch()
            time.sleep(1.5)
            Path(f"peak-{key}").write_text(str(len(list(running.iterdir()))))
            (running / key).unlink()
            Path("data/parts/toy", key).mkdir(parents=True)
            Path(f"data/parts/toy/{key}.metrics.json").write_text(json.dumps({"files_in": 2}))
        else:
            Path("data/out").mkdir(exist_ok=True)
            found = [p.name for p in Path("data/parts/toy").iterdir() if p.is_dir()]
            Path("data/out/found").write_text(str(len(found)))
            pipes.report_asset_materialization(metadata={"found": len(found)})
""")

STAGE = Stage(name="toy", group="test", description="a fanned-out toy stage", argv=(), deps=(),
              outs=("data/out",), params="toy", part_argv=("part", "{partition}"))


class ScriptLauncher(LocalLauncher):
    script: str

    def launch(self, context, stage, extras):
        return run_with_pipes(context, [sys.executable, self.script, *stage.argv], self.stage_env(stage), self.cwd,
                              stage.name, extras)


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    audio = tmp_path / "data" / "corpus" / "audio"
    audio.mkdir(parents=True)
    for i in range(10):
        (audio / f"piece{i}.wav").write_bytes(bytes([i]) * 100)
    (tmp_path / "params.yaml").write_text("profile: tiny\ntiny:\n  partitions: {count: 4, concurrency: 2}\n")
    (tmp_path / "stage.py").write_text(SCRIPT)
    monkeypatch.setattr(stage_assets, "REPO_ROOT", tmp_path)
    return tmp_path


def materialize(repo: Path, assets, instance, **kw) -> dg.ExecuteInProcessResult:
    launcher = ScriptLauncher(script=str(repo / "stage.py"), cwd=str(repo))
    return dg.materialize(assets, resources={"launcher": launcher, "dvc": DvcResource(enabled=False)},
                          instance=instance, raise_on_error=False, **kw)


def test_the_whole_stage_runs_its_partitions_two_at_once_names_a_failure_and_its_retry_runs_only_that(repo):
    keys = [p.key for p in partitions(read_listing(repo / "data" / "corpus"), 4)]
    assert len(keys) == 4
    (repo / f"fail-{keys[1]}").touch()
    instance = dg.DagsterInstance.ephemeral()
    whole = [stage_assets.stage_asset(STAGE)]

    first = materialize(repo, whole, instance)
    assert not first.success
    [failure] = [e for e in first.all_events if e.event_type_value == "STEP_FAILURE"]
    assert keys[1] in failure.event_specific_data.error.message and "1 of 4 partitions failed" in \
        failure.event_specific_data.error.message
    assert not (repo / "data" / "out").exists()                                  # the whole stage did not run
    assert max(int((repo / f"peak-{k}").read_text()) for k in keys if k != keys[1]) == 2   # two at once, not more
    assert set(instance.get_dynamic_partitions(fanout.PARTITIONS.name)) == set(keys)

    second = materialize(repo, whole, instance)
    assert second.success
    assert (repo / "launched").read_text().split().count(keys[1]) == 2
    assert len((repo / "launched").read_text().split()) == 5                    # 4, then only the failed one again
    assert (repo / "data" / "out" / "found").read_text() == "4"
    [mat] = [m for m in second.asset_materializations_for_node("toy") if m.asset_key == dg.AssetKey("toy")]
    assert mat.metadata["fanout.partitions_run"].value == 1
    assert mat.metadata["fanout.partitions_done_before"].value == 3
    assert instance.get_materialized_partitions(dg.AssetKey("toy_part")) == set(keys)


def test_a_partition_that_left_the_listing_loses_its_partition_and_its_output(repo):
    instance = dg.DagsterInstance.ephemeral()
    whole = [stage_assets.stage_asset(STAGE)]
    assert materialize(repo, whole, instance).success
    before = set(instance.get_dynamic_partitions(fanout.PARTITIONS.name))
    for path in (repo / "data" / "corpus" / "audio").iterdir():                # every file changes: new keys
        path.write_bytes(path.read_bytes() + b"x")
    assert materialize(repo, whole, instance).success
    after = set(instance.get_dynamic_partitions(fanout.PARTITIONS.name))
    assert not before & after
    assert {p.name for p in (repo / "data" / "parts" / "toy").iterdir() if p.is_dir()} == after


def test_the_part_asset_materializes_one_partition_and_reuses_it_when_made_from_the_same_inputs(repo):
    keys = [p.key for p in partitions(read_listing(repo / "data" / "corpus"), 4)]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(fanout.PARTITIONS.name, keys)
    part = stage_assets.part_asset(STAGE)
    for expected_reused in (False, True):
        result = materialize(repo, [part], instance, partition_key=keys[0])
        assert result.success
        [mat] = result.asset_materializations_for_node("toy_part")
        assert mat.metadata["reused"].value is expected_reused and mat.metadata["files_in"].value == 2
    assert (repo / "launched").read_text().split() == [keys[0]]
    assert json.loads((repo / "data" / "parts" / "toy" / f"{keys[0]}.metrics.json").read_text()) == {"files_in": 2}


def test_the_partitions_sensor_keeps_the_dynamic_partitions_equal_to_the_listings_keys(repo):
    from orchestration.defs.sensors import corpus_partitions_sensor_for

    keys = [p.key for p in partitions(read_listing(repo / "data" / "corpus"), 4)]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(fanout.PARTITIONS.name, ["0009-gone", keys[0]])
    sensor = corpus_partitions_sensor_for(repo, name="test_partitions")
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    added, deleted = result.dynamic_partitions_requests
    assert set(added.partition_keys) == set(keys[1:]) and list(deleted.partition_keys) == ["0009-gone"]
    instance.add_dynamic_partitions(fanout.PARTITIONS.name, keys[1:])
    instance.delete_dynamic_partition(fanout.PARTITIONS.name, "0009-gone")
    assert "unchanged" in sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).skip_message

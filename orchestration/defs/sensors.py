"""Re-run the lifecycle when what it is built from changes.

    stale_data_sensor   every few minutes asks DVC which stages are stale (new or changed audio, params,
                        code); if any is, one lifecycle run keyed by the staleness fingerprint
    raw_audio_sensor    watches the raw audio (the files `discover` finds: audio, sidecars and a catalogue table,
                        by name, size and mtime): a team's library folder when `corpus.source` names one (the
                        run starts at the corpus stage, which brings the files in), else the folder curation
                        reads (the run starts at curation), or an S3 source's prefix (listed each tick: names,
                        sizes, ETags; the run starts at the corpus stage, which mirrors what changed); when
                        files land, change or go, one run keyed by the fingerprint
    corpus_partitions_sensor  keeps the part assets' dynamic partitions equal to the corpus listing's keys
                        (orchestration/fanout.py); a backfill of `<stage>_part` then runs what is new
    listeners_sensor    counts the listening room's judgements (`lyra serve`); every `listening.retrain_after`
                        new ones it exports them as ORAQL's tables and runs ORAQL and what reads it, keyed
                        by the last judgement exported

Either way the same change never triggers twice, and in the run unchanged stages are no-ops. Both
start with LYRA_AUTOMATION=on (or from the UI).

    orphaned_pods_sensor  (LYRA_DEPLOYMENT=k8s, running by default there) deletes the pods and TrainJobs of
                        runs that have ended, e.g. whose run worker died (orchestration/k8s/reaper.py)
"""

import hashlib
import json
import os
from pathlib import Path

import dagster as dg

from components.pipeline import job_stages
from orchestration.defs.jobs import lifecycle_job
from orchestration.dvc import DvcResource
from orchestration.launchers import REPO_ROOT, StageLauncher

AUTOMATION = dg.DefaultSensorStatus.RUNNING if os.environ.get("LYRA_AUTOMATION") == "on" \
    else dg.DefaultSensorStatus.STOPPED
# the folder curation reads (components/pipeline.py: curated_clips' --input)
RAW_AUDIO = "data/corpus/audio"


def watched_audio(params_path: Path = REPO_ROOT / "params.yaml") -> tuple[str, str]:
    """(the folder the raw-audio sensor watches, the first stage of the run it starts), from corpus.source."""
    from components.config import load_stage_config
    from components.corpus.config import CorpusConfig
    from components.corpus.sources import parse

    source = parse(load_stage_config("corpus", CorpusConfig, params_path=params_path).source)
    if source.root is not None:        # a library on this machine: the corpus stage brings changes in
        return str(source.root), "corpus"
    if source.kind == "s3":            # a bucket: listed each tick (names, sizes, ETags), brought in by the corpus stage
        return source.spec, "corpus"
    return RAW_AUDIO, "curated_clips"


@dg.sensor(job=lifecycle_job, minimum_interval_seconds=300, default_status=AUTOMATION)
def stale_data_sensor(context: dg.SensorEvaluationContext, dvc: DvcResource):
    lifecycle = {s.name for s in job_stages("lifecycle")}     # the scaling sweep is run on request only
    stale = {name: why for name, why in dvc.stale_stages().items() if name in lifecycle}
    if not stale:
        return dg.SkipReason("every stage is up to date (dvc status)")
    fingerprint = hashlib.sha1(json.dumps(stale, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=f"stale-{fingerprint}", tags={"lyra/stale_stages": ",".join(sorted(stale))})


def raw_audio_fingerprint(folder: Path) -> tuple[str, int]:
    """(digest of every input's name, size and mtime, number of inputs) of the folder curation reads."""
    from components.curation.discover import discover

    if not folder.is_dir():
        return "missing", 0
    inputs, sidecars = discover(folder)
    h = hashlib.sha1()
    for path in sorted([i.path for i in inputs] + list(sidecars)):
        st = path.stat()
        h.update(f"{path.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16], len(inputs)


def downstream_of(first: str) -> list[dg.AssetKey]:
    """`first`, every lifecycle stage that reads it (transitively), and every registry version asset."""
    from components.pipeline import upstream
    from orchestration.defs.assets.registry import registered_models, registry_key

    lifecycle = job_stages("lifecycle")    # in dependency order; the scaling sweep is run on request only
    chosen: set[str] = {first}
    for stage in lifecycle:
        if any(u.name in chosen for u in upstream(stage)):
            chosen.add(stage.name)
    return [dg.AssetKey(s.name) for s in lifecycle if s.name in chosen] + [registry_key(m) for m in registered_models()]


def s3_fingerprint(url: str) -> tuple[str, int]:
    """(digest of every object's name, size and ETag, number of objects) under an s3:// prefix."""
    from components.curation.remote import list_objects

    objects = list_objects(url)
    return hashlib.sha1(json.dumps(objects, sort_keys=True).encode()).hexdigest()[:16], len(objects)


def raw_audio_sensor_for(folder: str, name: str = "raw_audio_sensor", first: str = "curated_clips") -> dg.SensorDefinition:
    @dg.sensor(name=name, job=lifecycle_job, minimum_interval_seconds=60, default_status=AUTOMATION,
               description=f"new, changed or removed files in {folder} -> {first} and everything after it")
    def _sensor(context: dg.SensorEvaluationContext):
        from components.curation.remote import RemoteSourceError, is_remote

        if is_remote(folder):
            try:
                fingerprint, n = s3_fingerprint(folder)
            except RemoteSourceError as exc:         # a bucket not reachable now is not a change: say why, retry
                return dg.SkipReason(str(exc))
        else:
            fingerprint, n = raw_audio_fingerprint(Path(folder) if Path(folder).is_absolute() else REPO_ROOT / folder)
        if context.cursor is None:
            context.update_cursor(fingerprint)
            return dg.SkipReason(f"watching {n} files in {folder}")
        if fingerprint == context.cursor:
            return dg.SkipReason(f"no new raw audio in {folder} ({n} files)")
        context.update_cursor(fingerprint)
        # from curation when the folder is the demo corpus's (its stage would render it again over the change)
        return dg.RunRequest(run_key=f"raw-audio-{fingerprint}", asset_selection=downstream_of(first),
                             tags={"lyra/trigger": "raw_audio", "lyra/raw_audio_files": str(n)})

    return _sensor


_watched, _first = watched_audio()
raw_audio_sensor = raw_audio_sensor_for(_watched, first=_first)


def listeners_sensor_for(project: Path = REPO_ROOT, name: str = "listeners_sensor") -> dg.SensorDefinition:
    @dg.sensor(name=name, job=lifecycle_job, minimum_interval_seconds=120, default_status=AUTOMATION,
               description="every listening.retrain_after new listener judgements -> export ORAQL's tables, re-run ORAQL on")
    def _sensor(context: dg.SensorEvaluationContext):
        from components.config import load_stage_config
        from components.listening.config import load_listening_config
        from components.listening.export import export_tables
        from components.listening.votes import VoteStore
        from components.oraql.config import OraqlConfig

        listening = load_listening_config(project)
        oraql = load_stage_config("oraql", OraqlConfig, params_path=project / "params.yaml")
        store = VoteStore.open(listening.database, project)
        since = int(context.cursor or 0)
        new = store.judgements(since_id=since)
        if len(new) < listening.retrain_after:
            return dg.SkipReason(f"{len(new)} new judgement(s); ORAQL is retrained after {listening.retrain_after}")
        export = Path(listening.export_dir)
        tables = {str(export / "pairwise.csv"), str(export / "ratings.csv")}
        if not {oraql.pairwise, oraql.ratings} & tables:
            return dg.SkipReason(f"{len(new)} new judgements, but ORAQL does not read them: set params.yaml "
                                 f"oraql.pairwise: {export / 'pairwise.csv'} (and `make dvc-yaml`)")
        written = export_tables(store.judgements(), project / listening.audio_dir, project / export)
        context.update_cursor(str(new[-1]["id"]))
        return dg.RunRequest(run_key=f"listeners-{new[-1]['id']}", asset_selection=downstream_of("oraql"),
                             tags={"lyra/trigger": "listeners", "lyra/judgements": str(sum(written.values()))})

    return _sensor


listeners_sensor = listeners_sensor_for()


def corpus_partitions_sensor_for(project: Path = REPO_ROOT, name: str = "corpus_partitions_sensor") -> dg.SensorDefinition:
    @dg.sensor(name=name, minimum_interval_seconds=60, default_status=AUTOMATION,
               description="keeps the dynamic partitions `corpus_partitions` (the part assets' partitions) equal to "
                           "the corpus listing's partition keys, so a backfill from the UI sees the current ones")
    def _sensor(context: dg.SensorEvaluationContext):
        from components import partitions
        from orchestration.fanout import PARTITIONS, partition_changes

        try:
            config = partitions.load_config(params_path=project / "params.yaml")
            keys = [p.key for p in partitions.current(project / "data" / "corpus", config)]
        except partitions.PartitionError as exc:
            return dg.SkipReason(str(exc))
        added, deleted = partition_changes(context.instance.get_dynamic_partitions(PARTITIONS.name), keys)
        if not added and not deleted:
            return dg.SkipReason(f"{len(keys)} partitions, unchanged")
        requests = ([PARTITIONS.build_add_request(added)] if added else []) \
            + ([PARTITIONS.build_delete_request(deleted)] if deleted else [])
        return dg.SensorResult(dynamic_partitions_requests=requests)

    return _sensor


corpus_partitions_sensor = corpus_partitions_sensor_for()


@dg.sensor(minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING
           if os.environ.get("LYRA_DEPLOYMENT") == "k8s" else dg.DefaultSensorStatus.STOPPED)
def orphaned_pods_sensor(context: dg.SensorEvaluationContext, launcher: StageLauncher):
    """Deletes stage pods and TrainJobs whose run has ended (a run worker that died leaves them behind)."""
    from orchestration.k8s.launcher import K8sLauncher

    if not isinstance(launcher, K8sLauncher):
        return dg.SkipReason("stages run as local processes here: no pods to look after")
    from orchestration.k8s.reaper import instance_run_status, reap

    _, core, custom = launcher._apis()
    namespace = launcher.namespace or launcher.table().namespace
    gone = reap(core, custom, namespace, instance_run_status(context.instance))
    for orphan in gone:
        context.log.warning(f"deleted {orphan.kind} {namespace}/{orphan.name}: its run {orphan.run_id} is {orphan.why}")
    return dg.SkipReason(f"deleted {len(gone)} orphaned object(s)" if gone else "no orphaned pods or TrainJobs")

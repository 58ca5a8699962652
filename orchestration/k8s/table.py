"""The per-stage Kubernetes table (infra/stages.yaml) as typed objects.

Everything a stage's pod needs that is not the stage's command lives in that one file: pool,
requests and limits, GPUs, tolerations, /dev/shm, scratch volumes, service account, secrets,
image. This module only reads and checks it; orchestration/k8s/specs.py turns it into specs.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from components.pipeline import STAGES, Stage
from components.common.errors import LyraError

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLE_PATH = REPO_ROOT / "infra" / "stages.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Toleration(_Strict):
    key: str
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Resources(_Strict):
    """A stage's (or a pool's default) resources; quantities are Kubernetes quantity strings."""

    cpu: str | None = None
    memory: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None     # default: = memory (a pod never borrows memory it may lose)
    max_memory: str | None = None       # ceiling for the OOM retries' growing memory
    gpus: int | None = None
    shm: str | None = None


class Pool(_Strict):
    node_selector: dict[str, str]
    tolerations: tuple[Toleration, ...] = ()
    priority_class: str
    defaults: Resources


class TrainJobSpec(_Strict):
    num_nodes: int = Field(ge=1)
    runtime: str = "torch-distributed"


class StageRow(Resources):
    pool: Literal["cpu", "gpu"]
    train_job: TrainJobSpec | None = None


class Scratch(_Strict):
    name: str
    mount: str
    size: str


class SecretRef(_Strict):
    secret: str
    key: str


class ConfigRef(_Strict):
    config_map: str
    key: str


class DataVolume(_Strict):
    claim: str
    mount: str


class Retries(_Strict):
    max_attempts: int = Field(ge=1)
    oom_memory_factor: float = Field(gt=1.0)


class Table(_Strict):
    image: str
    namespace: str
    working_dir: str
    service_account: str
    run_as_user: int = Field(gt=0)
    data_volume: DataVolume
    scratch: tuple[Scratch, ...]
    env: dict[str, str]
    settings: dict[str, ConfigRef] = {}
    secrets: dict[str, SecretRef]
    pools: dict[Literal["cpu", "gpu"], Pool]
    stages: dict[str, StageRow]
    retries: Retries

    @model_validator(mode="after")
    def _known_stages(self):
        known = {s.name for s in STAGES}
        unknown = sorted(set(self.stages) - known)
        if unknown:
            raise ValueError(f"rows for stages that no components/<package>/declaration.py declares: {unknown}")
        return self

    def row(self, stage: Stage) -> StageRow:
        """The stage's row over its pool's defaults (a stage without a row gets the defaults)."""
        row = self.stages.get(stage.name)
        pool = row.pool if row else stage.pool
        defaults = self.pools[pool].defaults.model_dump(exclude_none=True)
        own = row.model_dump(exclude_none=True) if row else {"pool": pool}
        return StageRow.model_validate({**defaults, **own})

    def image_for(self) -> str:
        return os.environ.get("LYRA_IMAGE") or self.image


class TableError(LyraError, ValueError):
    pass


def load_table(path: str | os.PathLike = TABLE_PATH) -> Table:
    path = Path(path)
    try:
        return Table.model_validate(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, ValidationError) as exc:
        raise TableError(f"{path}: {exc}") from exc


@functools.lru_cache(maxsize=1)
def default_table() -> Table:
    return load_table(TABLE_PATH)

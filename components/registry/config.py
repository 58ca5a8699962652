"""What the registry holds and how promotion judges it (params.yaml `registry`, typed).

Each registered model is declared by the stage that writes it (`registers=Model(...)` in
components/<package>/declaration.py): its name, evaluation stages, parents and weights. Everything
else (its folder, its data versions in dvc.lock, its params, its lineage.json) follows from that
stage, and its required checks are the blocking gates its stage and evaluations declare. params.yaml
adds what a team tunes, and may override any declared field:

    registry:
      models:
        lyra:                                      # declared by lyra_pretrain: evaluations [lyra_samples], parents [omnicodec]
          compare: {lyra_pretrain.val_loss: {higher_is_better: false, tolerance: 0.02}}
          held_out: [data/tokens]
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from components.config import StageConfig

# the order a version moves through; a version enters `candidate` when it is registered
STAGES = ("candidate", "staging", "production")


class Comparison(BaseModel):
    """One no-regression rule: the candidate may be worse than the stage's holder by at most `tolerance`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    higher_is_better: bool
    tolerance: float = Field(ge=0.0)


class ListenersRule(BaseModel):
    """`listeners_prefer`: listeners chose the candidate over the stage's holder in blind pairs (`lyra serve
    --candidate`): at least `min_judgements` judgements by at least `min_listeners` listeners, and the
    one-sided exact binomial lower bound of the share preferring the candidate, at `confidence`, above 0.5.
    Fix both counts before listening starts and read the gate once: re-checking after every vote until it
    passes raises the false-pass rate above 1 - confidence (components/listening/statistics.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_judgements: int = Field(20, ge=1)
    min_listeners: int = Field(5, ge=1)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    stage: str = Field(description="pipeline stage whose first output folder is the model")
    # deployable files, globbed in the model folder ("*.safetensors" matches the top level only, so
    # checkpoints/ with optimizer state never does): the registered artifact is what inference loads
    weights: tuple[str, ...] = ("*.safetensors", "config.json")
    evaluations: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()          # blocking gates of other stages to require too (its own are always required)
    parents: tuple[str, ...] = ()
    # "<stage>.<metric>" of a stage metrics file (data/metrics/<stage>.json) -> rule
    compare: dict[str, Comparison] = {}
    # promotion stage -> the listeners' verdict it requires (e.g. {production: {min_judgements: 30}}); none by default
    listeners_prefer: dict[str, ListenersRule] = {}
    # what identifies the held-out set two versions must share to be compared: by default every data
    # input of the model's stage and its evaluations (dvc.lock), so the same clips and the same judges
    held_out: tuple[str, ...] | None = None


class RegistryConfig(StageConfig):
    store: str = "data/registry"          # content-addressed artifacts and reports (DVC side, not git)
    # the registry's git repository (entries, audit log, GTO tags), relative to the project; overridden by
    # $LYRA_REGISTRY_REPO. The default, an ignored folder of its own, keeps `lyra demo` from committing or
    # tagging in the project's checkout; a platform team points this at a clone of its registry repository
    repo: str = ".lyra/registry"
    records: str = "registry"             # version entries and the audit log, inside that repository
    report_audio_per_source: int = Field(6, ge=0, description="audio examples copied into a report per folder")
    models: dict[str, ModelSpec] = {}

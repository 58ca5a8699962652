"""`lyra oraql train`: build the labels, train ORAQL, select on `valid`, report on `test`.

    curated clips ──ladder.py──► ~1,700 damaged / clean items ─┐
    Lyra checkpoints ──────────► generations (early < late) ───┼─► items (features + labels), split by piece
    human tables (optional) ──ratings.py──► rated items, A/B ──┘
        train (minus the held-out damage kind) ──► fit: masked MSE on the 3 heads + pairwise ranking
        valid (minus the held-out kind) ─────────► every eval_every steps; the best step is the model
        test ────────────────────────────────────► evaluate.py (+ the same for an untrained model)

Resumable: the items and a checkpoint (model, optimizer, step, history, best weights) live in
`.<out>.checkpoints/` until the run ends; rerunning the same command after a kill resumes there
and ends in the same state. A step's batch and dropout depend only on (seed, step).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from components.common.atomic import atomic_path, atomic_write_json
from components.common.reporting import stage_run
from components.oraql import evaluate
from components.oraql.config import OraqlConfig
from components.oraql.model import HEADS, Oraql
from components.common.errors import LyraError
from components.common.metrics import pick
from components.common.resume import ResumeFolder, checkpoint_folder, fingerprint
from components.common.schedules import ramped_cosine

STAGE = "oraql"


class OraqlError(LyraError, RuntimeError):
    """Input the stage cannot start from, reported as a message."""


@dataclasses.dataclass
class LabelledSet:
    """Features [N, n_mels, T] float16, labels [N, 3] (nan = unknown), A/B pairs (better, worse) indices."""

    features: np.ndarray
    labels: np.ndarray
    pairs: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.features)


def labelled_set(items: pd.DataFrame, features: np.ndarray, mask: np.ndarray, pairs: np.ndarray | None = None) -> LabelledSet:
    idx = np.flatnonzero(mask)
    remap = {int(i): j for j, i in enumerate(idx)}
    kept = np.zeros((0, 2), dtype=np.int64)
    if pairs is not None and len(pairs):
        kept = np.array([(remap[a], remap[b]) for a, b in pairs if a in remap and b in remap], dtype=np.int64).reshape(-1, 2)
    return LabelledSet(features[idx], items.loc[idx, list(HEADS)].to_numpy(dtype=np.float32), kept)


# ------------------------------------------------------------------------------- the loss
def loss_fn(logits: torch.Tensor, labels: torch.Tensor, rank_weight: float, margin: float) -> torch.Tensor:
    """Masked MSE of sigmoid(logits) on every known label + a logistic pairwise ranking loss on
    `overall` for batch pairs whose labels differ by more than `margin` (what Spearman rewards)."""
    known = torch.isfinite(labels)
    pred = torch.sigmoid(logits)
    mse = ((pred - labels.nan_to_num()) ** 2 * known).sum() / known.sum().clamp_min(1)
    if rank_weight <= 0:
        return mse
    y, s = labels[:, 0], logits[:, 0]
    ok = torch.isfinite(y)
    dy = y[:, None] - y[None, :]
    ranked = (dy > margin) & ok[:, None] & ok[None, :]
    if not ranked.any():
        return mse
    rank = F.softplus(-(s[:, None] - s[None, :])[ranked]).mean()
    return mse + rank_weight * rank


def preference_loss(model: Oraql, data: LabelledSet, rng: np.random.Generator, n: int) -> torch.Tensor | None:
    """Bradley-Terry on human A/B choices: -log sigmoid(logit(better) - logit(worse))."""
    if not len(data.pairs) or n <= 0:
        return None
    chosen = data.pairs[rng.integers(0, len(data.pairs), n)]
    device = next(model.parameters()).device
    feats = torch.from_numpy(data.features[chosen.reshape(-1)].astype(np.float32)).to(device)
    logits = model(feats)[:, 0].view(-1, 2)
    return F.softplus(-(logits[:, 0] - logits[:, 1])).mean()


@torch.no_grad()
def predict(model: Oraql, features: np.ndarray, batch: int = 64) -> np.ndarray:
    """[N, n_mels, T] -> scores [N, 3] in [0, 1]."""
    model.eval()
    device = next(model.parameters()).device
    out = [model.score_features(torch.from_numpy(features[i:i + batch].astype(np.float32)).to(device)).cpu().numpy()
           for i in range(0, len(features), batch)]
    return np.concatenate(out) if out else np.zeros((0, len(HEADS)), dtype=np.float32)


def valid_spearman(model: Oraql, data: LabelledSet) -> float:
    scores = predict(model, data.features)[:, 0]
    y = data.labels[:, 0]
    ok = np.isfinite(y)
    from scipy.stats import spearmanr

    return float(spearmanr(scores[ok], y[ok])[0]) if ok.sum() >= 3 else float("nan")


# ------------------------------------------------------------------------------- training
class Killed(RuntimeError):
    """Raised by `fit(stop_after=...)`: a test's stand-in for a kill."""


def train_step(model: Oraql, optim, train: LabelledSet, rng: np.random.Generator, cfg: OraqlConfig, device) -> float:
    """One step on a random batch, each item cropped to a random window (where damage sits varies), plus the
    pairwise preference loss on human A/B pairs where there are any. Returns the loss."""
    model.train()
    n = len(train)
    idx = rng.integers(0, n, min(cfg.batch_size, n))
    T = train.features.shape[-1]
    width = max(1, int(round(cfg.train_crop * T)))
    at = int(rng.integers(0, T - width + 1))
    feats = torch.from_numpy(train.features[idx, :, at:at + width].astype(np.float32)).to(device)
    labels = torch.from_numpy(train.labels[idx]).to(device)
    loss = loss_fn(model(feats), labels, cfg.rank_weight, cfg.rank_margin)
    pref = preference_loss(model, train, rng, cfg.batch_size // 4)
    if pref is not None:
        loss = loss + cfg.rank_weight * pref
    optim.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    return float(loss.detach())


def fit(train: LabelledSet, valid: LabelledSet, cfg: OraqlConfig, checkpoint: ResumeFolder | None = None,
        log=None, progress=lambda it, **kw: it, stop_after: int | None = None) -> tuple[Oraql, dict]:
    """Train from scratch or from `checkpoint`; returns the model of the best `valid` step and the history."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")   # the gpu profile's bigger encoder
    torch.manual_seed(cfg.seed)
    model = Oraql(cfg.model).to(device)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history = {"train": [], "valid": [], "best": None, "resumed_from_step": None}
    best_state, step = None, 0
    resumed = checkpoint.load() if checkpoint is not None else None
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optim.load_state_dict(resumed["optim"])
        history, best_state, step = resumed["history"], resumed["best_state"], int(resumed["step"])
        history["resumed_from_step"] = step
        if log:
            log.info("resumed from step %d of %d", step, cfg.steps)
    if len(train) == 0:
        raise OraqlError("no training items")
    for step in progress(range(step, cfg.steps), desc="oraql train", total=cfg.steps - step, unit="step"):
        rng = np.random.default_rng([cfg.seed, step])
        torch.manual_seed(int(rng.integers(1 << 62)))                 # dropout: a function of (seed, step)
        lr = ramped_cosine(step, cfg.lr, 20, cfg.steps)
        for group in optim.param_groups:
            group["lr"] = lr
        history["train"].append((step, train_step(model, optim, train, rng, cfg, device)))
        done = step + 1
        if (cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps:
            rho = valid_spearman(model, valid) if len(valid) else float("nan")
            history["valid"].append((done, rho))
            if history["best"] is None or (np.isfinite(rho) and rho > history["best"]["spearman"]):
                history["best"] = {"step": done, "spearman": rho}
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if log:
                log.info("step %d/%d: loss %.4f, valid Spearman %.3f (best %.3f at %d)", done, cfg.steps,
                         np.mean([l for _, l in history["train"][-cfg.eval_every:]]), rho,
                         history["best"]["spearman"], history["best"]["step"])
        if checkpoint is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
            checkpoint.save({"model": model.state_dict(), "optim": optim.state_dict(), "history": history,
                             "best_state": best_state, "step": done})
        if stop_after is not None and done >= stop_after:
            raise Killed(f"stopped after step {done}")
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.cpu().eval(), history


# ------------------------------------------------------------------------------- the stage
def input_fingerprint(cfg: OraqlConfig, paths: dict[str, Path | None]) -> str:
    """Config, code, and every table, weights and config file of the input folders."""
    files = []
    for _, path in sorted(paths.items()):
        files += [path] if path is None or path.is_file() else sorted(
            p for p in path.glob("*") if p.is_file() and p.suffix in (".parquet", ".safetensors", ".json"))
    return fingerprint(cfg, STAGE, files)


def build_items(cfg: OraqlConfig, curated: Path, codec_dir: Path | None, lyra_dir: Path | None, tokens: Path | None,
                run) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """All labelled items: (table, features [N, n_mels, T], A/B pairs as item indices)."""
    from components.oraql import ladder

    codec = None
    if codec_dir is not None:
        from components.omnicodec import load_codec

        codec = load_codec(codec_dir)
    t0 = time.perf_counter()
    items = ladder.build_ladder(curated, cfg, codec, run.progress)
    run.log.info("ladder: %d items from %d clips in %.1f s", len(items), len({i.source for i in items}),
                 time.perf_counter() - t0)
    if lyra_dir is not None and tokens is not None and codec is not None:
        t0 = time.perf_counter()
        ceiling = ladder.codec_ceiling(items)
        items += ladder.generation_items(lyra_dir, codec, tokens, cfg, ceiling, run.progress, run.log)
        run.log.info("generations (labels below the codec ceiling %.3f): %.1f s", ceiling, time.perf_counter() - t0)
    pairs = np.zeros((0, 2), dtype=np.int64)
    if cfg.ratings or cfg.pairwise:
        items, pairs = add_human_items(items, cfg)
    table = ladder.items_table(items)
    return table, np.stack([it.features for it in items]), pairs


def add_human_items(items: list, cfg: OraqlConfig) -> tuple[list, np.ndarray]:
    """Rated audio as items (overall label only) and A/B choices as pairs of items."""
    from components.common.audio import read_audio, to_mono
    from components.oraql import ladder, ratings

    index: dict[str, int] = {}

    def item_for(path: Path, split: str, piece: str, label: float) -> int:
        key = str(path)
        if key not in index:
            audio, sr = read_audio(path)
            index[key] = len(items)
            items.append(ladder.Item(item_id=f"human:{path.name}|human", source="", piece_id=piece, split=split,
                                     kind="human", strength=0.0, condition="human", fidelity=float("nan"),
                                     coherence=float("nan"), overall=label, mel_distance=float("nan"),
                                     features=ladder.features_of(to_mono(audio), sr, cfg)))
        elif np.isfinite(label):
            items[index[key]].overall = label
        return index[key]

    for rated in ratings.read_ratings(cfg.ratings) if cfg.ratings else []:
        item_for(rated.path, rated.split, rated.piece, rated.label)
    pairs = []
    for pref in ratings.read_pairwise(cfg.pairwise) if cfg.pairwise else []:
        pairs.append((item_for(pref.better, pref.split, pref.better.stem, float("nan")),
                      item_for(pref.worse, pref.split, pref.worse.stem, float("nan"))))
    return items, np.array(pairs, dtype=np.int64).reshape(-1, 2)


def scoring_speed(model: Oraql, cfg: OraqlConfig, seconds: float = 60.0) -> float:
    """Seconds of audio scored per second on one core (from audio, front-end included)."""
    from components.oraql.score import score_waveform

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        audio = np.random.default_rng(0).standard_normal(int(seconds * 24000)).astype(np.float32) * 0.05
        score_waveform(model, audio, 24000)                          # warm-up
        t0 = time.perf_counter()
        score_waveform(model, audio, 24000)
        return seconds / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)


# the stage's headline figures (its metrics file, Dagster, the gate) in the agreement report
HEADLINE = {
    **{f"{name}{suffix}": f"test.{name}.{key}" for name in ("spearman_clip", "pearson_clip", "spearman_system",
                                                            "pearson_system", "held_out_spearman")
       for suffix, key in (("", "value"), ("_ci95", "ci95"))},
    "pairwise_accuracy": "test.pairwise.value", "pairwise_accuracy_ci95": "test.pairwise.ci95",
    "untrained_spearman_clip": "untrained.spearman_clip.value",
    "untrained_held_out_spearman": "untrained.held_out_spearman.value",
    "fidelity_spearman_clip": "test_fidelity.spearman_clip.value",
    "coherence_spearman_clip": "test_coherence.spearman_clip.value",
    "n_test_items": "test.n_items", "n_test_clips": "test.n_clusters", "n_test_systems": "test.n_systems",
}


def _labelled_items(cfg: OraqlConfig, ckpt: ResumeFolder, curated: Path, codec, lyra, tokens, run):
    """The labelled items, built once per fingerprint: a resumed run reads those of the interrupted one."""
    work = ckpt.root
    cached, marker = work / "items.npz", work / "items.json"
    if marker.is_file():           # the folder belongs to this run's fingerprint: same inputs, config and code
        saved = np.load(cached, allow_pickle=False)
        table, features, pairs = pd.read_parquet(work / "items.parquet"), saved["features"], saved["pairs"]
        run.log.info("%d items from the interrupted run (same inputs, config and code)", len(table))
        return table, features, pairs
    table, features, pairs = build_items(cfg, curated, codec, lyra, tokens, run)
    with atomic_path(cached, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, features=features, pairs=pairs)
    with atomic_path(work / "items.parquet", suffix=".parquet") as tmp:
        table.to_parquet(tmp)
    atomic_write_json(marker, {"items": len(table)})       # last: the items above are complete
    return table, features, pairs


def _agreement_report(model: Oraql, table: pd.DataFrame, features: np.ndarray, split: np.ndarray, held, valid,
                      cfg: OraqlConfig) -> dict:
    """Agreement with the labels on test pieces (the trained model, each head, the same network untrained)
    and on valid."""
    test_mask = split == "test"
    test_items = table[test_mask].reset_index(drop=True)
    scores = predict(model, features[test_mask])
    torch.manual_seed(cfg.seed)
    untrained = predict(Oraql(cfg.model).eval(), features[test_mask])
    kw = dict(held_out_type=cfg.held_out_type, margin=cfg.pairwise_margin, n_boot=cfg.bootstrap, seed=cfg.seed)
    report = {
        "test": evaluate.agreement(test_items, scores[:, 0], **kw),
        "test_fidelity": evaluate.agreement(test_items, scores[:, 1], head="fidelity", **{**kw, "n_boot": 0}),
        "test_coherence": evaluate.agreement(test_items, scores[:, 2], head="coherence", **{**kw, "n_boot": 0}),
        "untrained": evaluate.agreement(test_items, untrained[:, 0], **{**kw, "n_boot": 0}),
    }
    if len(valid):
        valid_items = table[(split == "valid") & ~held].reset_index(drop=True)
        report["valid"] = evaluate.agreement(valid_items, predict(model, valid.features)[:, 0], **{**kw, "n_boot": 0})
    return report


def _write_model(out: Path, run, model: Oraql, table: pd.DataFrame, features: np.ndarray, split, report: dict,
                 metrics: dict, history: dict, cfg: OraqlConfig, inputs: dict) -> None:
    from components.oraql.plots import plot_agreement

    table = table.assign(split=split)
    all_scores = predict(model, features)
    for j, head in enumerate(HEADS):
        table[f"score_{head}"] = all_scores[:, j]
    with run.output(out, inputs={k: v for k, v in inputs.items() if v is not None}, params=cfg,
                    lineage={"metrics": metrics}) as staged:
        model.save_pretrained(staged.dir, extra={"held_out_type": cfg.held_out_type,
                                                 "selected_step": metrics["selected_step"],
                                                 "labels": "overall = fidelity x coherence on [0, 1]; see "
                                                           "components/oraql/ladder.py"})
        atomic_write_json(staged.dir / "training.json", {"history": history, "config": cfg.model_dump(mode="json")})
        atomic_write_json(staged.dir / "evaluation.json", {**report, "metrics": metrics})
        table.to_parquet(staged.dir / "items.parquet")
        plot_agreement(staged.image("agreement", "agreement.png"), table[split == "test"].reset_index(drop=True),
                       cfg.held_out_type)


def run_train_stage(cfg: OraqlConfig, curated, out, *, codec=None, lyra=None, tokens=None, metrics_path=None) -> dict:
    curated, out = Path(curated), Path(out)
    codec, lyra, tokens = (Path(p) if p else None for p in (codec, lyra, tokens))
    inputs = {"curated": curated, "codec": codec, "lyra": lyra, "tokens": tokens}
    torch.set_num_threads(cfg.threads)
    with stage_run(STAGE) as run:
        log = run.log
        started, started_cpu = time.perf_counter(), time.process_time()
        ckpt = ResumeFolder(checkpoint_folder(out), input_fingerprint(cfg, {**inputs, "curated": curated / "manifest.parquet"}),
                            log)
        table, features, pairs = _labelled_items(cfg, ckpt, curated, codec, lyra, tokens, run)
        build_s, build_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        held = table["kind"] == cfg.held_out_type
        split = table["split"].to_numpy()
        train = labelled_set(table, features, (split == "train") & ~held, pairs)
        valid = labelled_set(table, features, (split == "valid") & ~held, pairs)
        log.info("items: %d train, %d valid (held-out kind %r excluded from both), %d test; %d A/B pairs",
                 len(train), len(valid), cfg.held_out_type, int((split == "test").sum()), len(train.pairs))
        if (split == "train").sum() == 0 or (split == "test").sum() == 0:
            raise OraqlError("need items on train and test pieces")
        t0, c0 = time.perf_counter(), time.process_time()
        model, history = fit(train, valid, cfg, ckpt, log, run.progress)
        train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0

        report = _agreement_report(model, table, features, split, held, valid, cfg)
        speed = scoring_speed(model, cfg)
        log.info("test: %s", evaluate.summary_line(report["test"]))
        log.info("untrained: %s", evaluate.summary_line(report["untrained"]))
        best = history["best"]
        metrics = {
            **pick(report, HEADLINE), "held_out_type": cfg.held_out_type,
            "n_train_items": len(train), "n_valid_items": len(valid), "n_pairs_human": int(len(pairs)),
            "selected_step": best["step"] if best else cfg.steps, "valid_spearman": best["spearman"] if best else None,
            "scoring_seconds_per_second_per_core": speed,
            "items_seconds": build_s, "train_seconds": train_s, "stage_seconds": time.perf_counter() - started,
            # CPU seconds (all threads): what the stage costs on an idle machine, whatever else ran beside it
            "items_cpu_seconds": build_cpu, "train_cpu_seconds": train_cpu,
            "stage_cpu_seconds": time.process_time() - started_cpu,
        }
        _write_model(out, run, model, table, features, split, report, metrics, history, cfg, inputs)
        ckpt.remove()
        log.info("ORAQL scores %.0f s of audio per second per core; stage %.1f s (items %.1f s, training %.1f s); "
                 "CPU %.1f s (items %.1f s, training %.1f s)", speed, metrics["stage_seconds"], build_s, train_s,
                 metrics["stage_cpu_seconds"], build_cpu, train_cpu)
        run.add_path("model", out)
        run.finish(metrics, metrics_path)
    return metrics

"""`lyra judge train`: fit the conditioning judge on real music of training pieces only.

    curated manifest ──labels (instrument, collection) per clip──┐
    token shards ──codes──► OmniCodec decoder ──► audio ──► crop features ──┴──► one classifier per head
      train  pieces: fit                 valid pieces: choose C           test pieces: report, once
      ood    pieces: the collection head on timbres it never heard (instruments there are unseen classes)

The judge never sees a held-out piece while it learns, and never sees Lyra's output at all: the
sample stage applies it to generations.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from components.common.reporting import stage_run
from components.common.stats import wilson_interval
from components.judge.config import JudgeConfig
from components.judge.model import Judge, fit_head
from components.omnicodec import decoding as codec_io
from components.tokens.dataset import TokenDataset
from components.common.errors import LyraError

STAGE = "conditioning_judge"
LABELS_FILE = "clip_labels.parquet"


class JudgeError(LyraError, RuntimeError):
    """Input the judge cannot be trained from (reported as a message)."""


def clip_labels(curated: Path) -> pd.DataFrame:
    """clip_id -> split, piece_id and every head's label, from the curated manifest's metadata."""
    path = curated / "manifest.parquet"
    if not path.is_file():
        raise JudgeError(f"{path} not found: the judge reads its labels from a curated folder (`lyra curate`)")
    manifest = pd.read_parquet(path)
    missing = [c for c in ("clip_id", "split", "piece_id", "instrument", "collection") if c not in manifest.columns]
    if missing:
        raise JudgeError(f"{path} lacks column(s) {missing}: the judge needs each clip's instrument and collection")
    return manifest[["clip_id", "split", "piece_id", "instrument", "collection"]].reset_index(drop=True)


def decoded_clips(tokens: Path, split: str, codec, limit: int, batch: int, seed: int, progress) -> tuple[list[str], list[np.ndarray]]:
    """(clip ids, decoded mono audio) of up to `limit` clips of a split, a seeded choice."""
    ds = TokenDataset(tokens, split=split)
    rows = np.sort(np.random.default_rng(seed).permutation(len(ds))[:limit])
    ids, audio = [], []
    for b in progress(range(0, len(rows), batch), desc=f"decoding {split}", unit="batch"):
        clips = [ds[int(i)] for i in rows[b:b + batch]]
        audio.extend(codec_io.decode_in_batches(codec, [c.codes for c in clips], batch))
        ids.extend(c.clip_id for c in clips)
    return ids, audio


def accuracy_row(predicted: np.ndarray, truth: np.ndarray) -> dict:
    k, n = int(np.sum(predicted == truth)), len(truth)
    low, high = wilson_interval(k, n)
    return {"accuracy": k / n if n else float("nan"), "n": n, "interval95": [low, high]}


def _decoded_splits(judge: Judge, tokens: Path, curated: Path, codec, labels: pd.DataFrame, cfg: JudgeConfig,
                    progress) -> dict:
    """Per split: clip ids, judge features of the decoded audio, labels. Held-out pieces never in train."""
    data = {}
    for split in ("train", "valid", "test", "ood"):
        ids, audio = decoded_clips(tokens, split, codec, cfg.max_clips_per_split, cfg.decode_batch, cfg.seed, progress)
        unknown = [i for i in ids if i not in labels.index]
        if unknown:
            raise JudgeError(f"{len(unknown)} clip(s) of {tokens} are not in {curated}/manifest.parquet, "
                             f"e.g. {unknown[:3]}: tokens and curated folder come from different corpora")
        data[split] = {"ids": ids, "features": judge.features(audio), "labels": labels.loc[ids]}
    train_pieces = set(data["train"]["labels"]["piece_id"])
    held_pieces = {p for s in ("valid", "test", "ood") for p in data[s]["labels"]["piece_id"]}
    if train_pieces & held_pieces:   # the split is by piece; a judge that saw a held-out piece is no judge
        raise JudgeError(f"pieces in both train and held-out splits: {sorted(train_pieces & held_pieces)[:3]}")
    return data


def label_names(values) -> np.ndarray:
    """A head's labels as names, "" where the corpus does not say (a library without instrument tags)."""
    return np.array([v if isinstance(v, str) and v.strip() and v != "None" else "" for v in values], dtype=object)


def _train_head(judge: Judge, data: dict, head: str, cfg: JudgeConfig, log) -> tuple[dict, tuple | None]:
    """One head: C chosen on valid (test is not looked at), its accuracy per split, test's confusion inputs.
    Clips without the label are left out; a head with fewer than 2 labelled classes to learn is not trained
    and says why ({"not_measurable": reason}: the library has no such tags)."""
    y_all = label_names(data["train"]["labels"][head])
    classes = sorted(set(y_all) - {""})
    if len(classes) < 2:
        reason = (f"{int((y_all != '').sum())} of {len(y_all)} training clips are tagged with their {head}"
                  + (f" (only {classes[0]!r})" if classes else "") + ": nothing to tell apart")
        log.warning("judge %s head not trained: %s", head, reason)
        return {"not_measurable": reason}, None
    code = {c: i for i, c in enumerate(classes)}

    def encoded(split):
        # labels the head never learnt (an OOD instrument) cannot be answered: left out, counted; so are untagged clips
        y = label_names(data[split]["labels"][head])
        keep = np.array([v in code for v in y], dtype=bool)
        return [f for f, k in zip(data[split]["features"], keep) if k], \
            np.array([code[v] for v in y[keep]], dtype=int), int(((~keep) & (y != "")).sum())

    X_train, t_train, _ = encoded("train")
    X_valid, t_valid, _ = encoded("valid")
    judge.classes[head] = classes
    scores = {}
    for C in cfg.c_grid:
        judge.pipelines[head] = fit_head(X_train, t_train, C, cfg.seed)
        scores[C] = float(np.mean(judge.predict(head, X_valid) == t_valid)) if len(t_valid) else 0.0
    best_c = max(cfg.c_grid, key=lambda c: (scores[c], -c))   # ties: the stronger regulariser
    judge.pipelines[head] = fit_head(X_train, t_train, best_c, cfg.seed)
    head_metrics = {"classes": classes, "C": best_c, "valid_accuracy_by_C": {str(c): s for c, s in scores.items()},
                    "train": accuracy_row(judge.predict(head, X_train), t_train)}
    for split in ("valid", "test", "ood"):
        X, t, unseen = encoded(split)
        if len(t):
            head_metrics[split] = {**accuracy_row(judge.predict(head, X), t), "unseen_class_clips": unseen,
                                   "majority_rate": float(np.bincount(t).max() / len(t))}
    X_test, t_test, _ = encoded("test")
    log.info("judge %s: %d classes, C=%g (valid %.2f); test accuracy %s", head, len(classes), best_c,
             scores[best_c], json.dumps(head_metrics.get("test", {}).get("accuracy")))
    return head_metrics, (classes, t_test, judge.predict(head, X_test)) if len(t_test) else None


def run_judge_stage(cfg: JudgeConfig, tokens, codec_dir, curated, out, metrics_path=None) -> dict:
    from components.judge.plots import plot_confusions

    tokens, codec_dir, curated, out = Path(tokens), Path(codec_dir), Path(curated), Path(out)
    with stage_run(STAGE) as run:
        start = time.perf_counter()
        labels = clip_labels(curated).set_index("clip_id")
        torch.set_num_threads(cfg.threads)
        codec = codec_io.load_codec(codec_dir)
        judge = Judge(sample_rate=codec.sample_rate, crop_seconds=cfg.crop_seconds, crops_per_clip=cfg.crops_per_clip,
                      n_mels=cfg.n_mels, classes={}, pipelines={})
        data = _decoded_splits(judge, tokens, curated, codec, labels, cfg, run.progress)
        metrics: dict = {"clips": {s: len(d["ids"]) for s, d in data.items()}, "heads": {}}
        confusion = {}
        for head in cfg.heads:
            metrics["heads"][head], test_confusion = _train_head(judge, data, head, cfg, run.log)
            if test_confusion is not None:
                confusion[head] = test_confusion
        unmeasured = {h: m["not_measurable"] for h, m in metrics["heads"].items() if "not_measurable" in m}
        if unmeasured:
            metrics["not_measurable"] = {f"judge_{h}": why for h, why in unmeasured.items()}
        metrics["seconds"] = time.perf_counter() - start
        metrics.update({f"{h}_test_accuracy": m.get("test", {}).get("accuracy") for h, m in metrics["heads"].items()
                        if h not in unmeasured})

        with run.output(out, inputs={"tokens": tokens, "codec": codec_dir, "curated": curated}, params=cfg,
                        lineage={"metrics": metrics}) as staged:
            judge.save(staged.dir)
            labels.reset_index().to_parquet(staged.dir / LABELS_FILE, index=False)
            plot_confusions(staged.image("confusion_test", "confusion_test.png"), confusion)
        run.add_path("judge", out)
        run.finish(metrics, metrics_path)
    return metrics

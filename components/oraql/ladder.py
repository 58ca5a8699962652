"""ORAQL's graded labels: a ladder of damaged versions of curated clips, plus Lyra generations.

For each source clip (a few per split, spread over pieces; the split is the curated manifest's,
so every version of a clip stays on its piece's side):

    clean crop (5 s) ──► real                                      fidelity 1, coherence 1
                     ├─► OmniCodec with 3 / 2 / 1 codebooks ─┐
                     ├─► noise, clipping, band_limit,        ├─ fidelity = exp(-d / fidelity_from_mel),
                     │   dropouts, warp (3-4 strengths each) ┘  d = log10-mel L1 distance to the clean crop
                     └─► shuffle, loop, tempo_jump (strength s) ── coherence = 1 - (1 - coherence_floor) * s
    overall = fidelity * coherence

and, with prompts from the token shards' captions of each split:

    Lyra at initialisation, at its best checkpoint and at its last
        overall = ceiling * (early + (late - early) * progress)
        ceiling  = the median label of the deepest codec rung on training clips (what a real clip sounds like
                   after OmniCodec, which every generation goes through; 1 without a codec)
        progress = (L_uniform - L) / (L_uniform - L_best): the checkpoint's held-out loss L (training.json),
                   0 at initialisation, 1 at the best checkpoint
    so real (1) > codec round trip (ceiling) > late > early.

Items are kept as ORAQL features (log-mel, see model.py), not audio: ~64 KB each.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from components.common.audio import resample
from components.oraql import degrade
from components.oraql.config import OraqlConfig, SIGNAL_KINDS, STRUCTURAL_KINDS
from components.oraql.model import LOG_MEL_SCALE, log_mel_features
from components.common.errors import LyraError


class LadderError(LyraError, ValueError):
    """Inputs a ladder cannot be built from (no manifest, a split without clips...)."""


@dataclasses.dataclass
class Item:
    item_id: str
    source: str             # the clean clip it was made from ("" for generations)
    piece_id: str
    split: str
    kind: str               # real | codec | noise | ... | lyra
    strength: float         # the knob (SNR dB, cut-off Hz, share...; for lyra: training step)
    condition: str          # kind@strength, or lyra@checkpoint: the "system" of per-system metrics
    fidelity: float         # nan = not known (generations, human ratings)
    coherence: float
    overall: float
    mel_distance: float     # the full-reference measure behind `fidelity` (nan where none)
    features: np.ndarray    # [n_mels, frames] float16 log-mel at the model's rate

    def row(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "features"}


# ------------------------------------------------------------------------------------ labels
def mel_distances(damaged_features: np.ndarray, clean_features: np.ndarray) -> np.ndarray:
    """[V, M, T] x [M, T] ORAQL features (model.log_mel_features) -> [V] mean absolute difference of
    their log10 mel spectrograms (64 mels, 1024-point frames, 20 ms hop, 16 kHz): the full-reference
    measure behind `fidelity`, 0 for identical audio. (Both are level-matched before the spectrogram.)"""
    diff = np.abs(damaged_features.astype(np.float32) - clean_features[None].astype(np.float32))
    return diff.mean(axis=(1, 2)).astype(float) * LOG_MEL_SCALE


def fidelity_label(distance: float, scale: float) -> float:
    return float(math.exp(-distance / scale))


def coherence_label(strength: float, floor: float) -> float:
    return float(1.0 - (1.0 - floor) * min(max(strength, 0.0), 1.0))


def generation_label(loss: float | None, best_loss: float, uniform_loss: float, early: float, late: float) -> float:
    """A Lyra checkpoint's label from its held-out loss (None = at initialisation)."""
    if loss is None:
        return early
    progress = (uniform_loss - loss) / max(uniform_loss - best_loss, 1e-9)
    return float(early + (late - early) * min(max(progress, 0.0), 1.0))


# ----------------------------------------------------------------------------------- sources
def bar_seconds(row) -> float:
    """One bar at the clip's tempo and metre (4/4 at 120 bpm = 2 s when unknown); 1-4 s."""
    tempo = getattr(row, "tempo_bpm", None)
    meter = str(getattr(row, "meter", "") or "")
    try:
        beats = int(meter.split("/")[0]) if "/" in meter else 4
        seconds = beats * 60.0 / float(tempo) if tempo and float(tempo) > 0 else 2.0
    except (TypeError, ValueError):
        seconds = 2.0
    return float(min(max(seconds, 1.0), 4.0))


def choose_sources(manifest: pd.DataFrame, per_split: dict[str, int], seed: int) -> pd.DataFrame:
    """per_split[split] source crops of each split: clips round-robin over its pieces (varied music); a
    split with fewer clips than asked gives its clips again as further crops (column `crop`: 0, 1, ...),
    each with its own start and its own draws of damage."""
    rng = np.random.default_rng(seed)
    chosen = []
    for split, n in per_split.items():
        rows = manifest[manifest["split"] == split]
        if n <= 0:
            continue
        if rows.empty:
            raise LadderError(f"the curated manifest has no {split!r} clips")
        by_piece = {p: list(rng.permutation(g.index.to_numpy())) for p, g in rows.groupby("piece_id", sort=True)}
        pieces = list(rng.permutation(sorted(by_piece)))
        order: list = []
        while any(by_piece.values()):
            for p in pieces:
                if by_piece[p]:
                    order.append(by_piece[p].pop())
        picked = [order[i % len(order)] for i in range(n)]
        chosen.append(manifest.loc[picked].assign(crop=[i // len(order) for i in range(n)]))
    return pd.concat(chosen).reset_index(drop=True)


def source_name(row) -> str:
    """The clip id, with `#k` for its k-th further crop."""
    crop = int(getattr(row, "crop", 0) or 0)
    return str(row.clip_id) + (f"#{crop}" if crop else "")


def _read(curated: Path, row) -> tuple[np.ndarray, int]:
    import soundfile as sf

    data, file_sr = sf.read(str(curated / row.path), dtype="float32", always_2d=True)
    return data.mean(axis=1), int(file_sr)


# ------------------------------------------------------------------------------------ ladder
def build_ladder(curated: str | Path, cfg: OraqlConfig, codec=None, progress=lambda it, **kw: it) -> list[Item]:
    """Every rung for every chosen source clip (codec rungs only when a codec is given). Damage is
    done at ORAQL's rate (16 kHz); the codec codes the clip at its own rate."""
    curated = Path(curated)
    manifest_path = curated / "manifest.parquet"
    if not manifest_path.is_file():
        raise LadderError(f"{curated}: no manifest.parquet; run `lyra curate` first")
    manifest = pd.read_parquet(manifest_path)
    missing = {"clip_id", "path", "split", "piece_id"} - set(manifest.columns)
    if missing:
        raise LadderError(f"{manifest_path}: missing columns {sorted(missing)}")
    sources = choose_sources(manifest, cfg.sources, cfg.seed)
    sr = cfg.model.sample_rate
    n = int(round(cfg.clip_seconds * sr))
    items: list[Item] = []
    for_codec: list[tuple[object, np.ndarray, np.ndarray]] = []
    for i, row in enumerate(progress(list(sources.itertuples()), desc="oraql ladder", unit="clip")):
        audio, file_sr = _read(curated, row)
        audio16 = resample(audio, file_sr, sr)
        if len(audio16) < n // 2:
            continue                                             # too short to crop a whole rung from
        rng = np.random.default_rng([cfg.seed, i])
        # room for a tempo jump's faster tail (x1.6 over 3/4 of the crop) where the clip allows it
        start = int(rng.integers(0, max(1, len(audio16) - int(1.5 * n))))
        clean = degrade._clean(audio16, start, n)
        bar = bar_seconds(row)
        rungs = [("real", 0.0, clean)]
        for kind in SIGNAL_KINDS:
            if kind != "codec":
                rungs += [(kind, s, degrade.SIGNAL[kind](audio16, start, n, s, np.random.default_rng([cfg.seed, i, 7]), sr))
                          for s in cfg.ladder.strengths(kind)]
        for kind in STRUCTURAL_KINDS:
            kw = {"bar_s": bar} if kind in ("shuffle", "loop") else {}
            rungs += [(kind, s, degrade.STRUCTURAL[kind](audio16, start, n, s, np.random.default_rng([cfg.seed, i, 11]),
                                                         sr, **kw)) for s in cfg.ladder.strengths(kind)]
        items += label_rungs(row, rungs, clean, sr, cfg)
        if codec is not None and _gets_codec(i, cfg.ladder.codec_share):
            csr = int(codec.sample_rate)
            t0 = int(round(start / sr * file_sr))
            for_codec.append((row, clean, resample(audio[t0:t0 + int(round(cfg.clip_seconds * file_sr))], file_sr, csr)))
    if codec is not None:
        items.extend(codec_rungs(codec, for_codec, cfg, progress))
    return items


def _gets_codec(i: int, share: float) -> bool:
    """Source i gets codec rungs: an even spread of `share` of the sources (0, 1/share, 2/share...)."""
    return share > 0 and math.floor(i * share) != math.floor((i - 1) * share) if i else share > 0


def label_rungs(row, rungs: list[tuple[str, float, np.ndarray]], clean: np.ndarray, sr: int, cfg: OraqlConfig) -> list[Item]:
    """Labels + features for one clip's rungs [(kind, strength, audio at sr)], all in one batch."""
    audio = np.stack([clean] + [a for _, _, a in rungs])
    feats = log_mel_features(torch.from_numpy(audio), cfg.model).numpy()
    dists = mel_distances(feats[1:], feats[0])
    feats = feats[1:].astype(np.float16)
    out = []
    for (kind, strength, _), f, d in zip(rungs, feats, dists):
        if kind in STRUCTURAL_KINDS:
            fid, coh, d = 1.0, coherence_label(strength, cfg.coherence_floor), float("nan")
        else:
            fid, coh = (1.0, 1.0) if kind == "real" else (fidelity_label(d, cfg.fidelity_from_mel), 1.0)
        condition = "real" if kind == "real" else f"{kind}@{strength:g}"
        out.append(Item(item_id=f"{source_name(row)}|{condition}", source=source_name(row), piece_id=str(row.piece_id),
                        split=str(row.split), kind=kind, strength=float(strength), condition=condition, fidelity=fid,
                        coherence=coh, overall=fid * coh, mel_distance=float(d), features=f))
    return out


@torch.no_grad()
def codec_rungs(codec, for_codec: list, cfg: OraqlConfig, progress, batch: int = 8) -> list[Item]:
    """OmniCodec at each configured depth: encode once with every codebook, decode the first q."""
    out = []
    sr, csr, K = cfg.model.sample_rate, int(codec.sample_rate), int(codec.num_codebooks)
    n = int(round(cfg.clip_seconds * sr))
    depths = [q for q in cfg.ladder.codec_quantizers if 1 <= q <= K]
    for b in progress(range(0, len(for_codec), batch), desc="oraql codec rungs", unit="batch"):
        group = for_codec[b:b + batch]
        length = max(len(c) for _, _, c in group)
        wav = torch.from_numpy(np.stack([np.pad(c, (0, length - len(c))) for _, _, c in group]))[:, None]
        codes = codec.encode(wav)
        decoded = {q: codec.decode(codes[:, :q]).float()[:, 0, :length].numpy() for q in depths}
        for j, (row, clean, _) in enumerate(group):
            rungs = [("codec", float(q), degrade.level_match(degrade._clean(resample(decoded[q][j], csr, sr), 0, n), clean))
                     for q in depths]
            out += label_rungs(row, rungs, clean, sr, cfg)
    return out


def features_of(audio: np.ndarray, sr: int, cfg: OraqlConfig) -> np.ndarray:
    """ORAQL features of one clip-length crop (padded if shorter) of mono audio at `sr`."""
    mcfg = cfg.model
    x = resample(np.asarray(audio, dtype=np.float32), sr, mcfg.sample_rate)
    n = int(round(cfg.clip_seconds * mcfg.sample_rate))
    x = np.pad(x[:n], (0, max(0, n - len(x))))
    return log_mel_features(torch.from_numpy(x)[None], mcfg)[0].numpy().astype(np.float16)


# ------------------------------------------------------------------------------- generations
@dataclasses.dataclass
class Checkpoint:
    name: str               # init | step<N>
    step: int
    held_out_loss: float | None
    state: dict | None      # None = the saved (selected) model's own weights


def lyra_checkpoints(lyra_dir: Path) -> tuple[list[Checkpoint], float]:
    """Early to late: initialisation, the selected (best held-out) model, the last step if different;
    and the best held-out loss. Losses come from training.json's `valid` history."""
    info = json.loads((lyra_dir / "training.json").read_text())
    history, metrics = info["history"], info["metrics"]
    losses = {int(s): float(l) for s, l in history.get("valid", [])}
    selected = int(metrics["selected_step"])
    best = losses.get(selected, metrics.get("val_loss"))           # the selection split's loss of the saved model
    if best is None:
        raise LadderError(f"{lyra_dir / 'training.json'} records no held-out loss for step {selected}")
    best = float(best)
    out = [Checkpoint("init", 0, None, {}), Checkpoint(f"step{selected}", selected, best, None)]
    last = int(metrics["steps"])
    marker = lyra_dir / "checkpoints" / "latest.json"
    if last != selected and marker.is_file():
        tag = json.loads(marker.read_text())["tag"]
        state = _deepspeed_weights(lyra_dir / "checkpoints" / tag)
        if state is not None:
            out.append(Checkpoint(f"step{last}", last, losses.get(last), state))
    return out, best


def _deepspeed_weights(folder: Path) -> dict | None:
    """The full fp32 weights of a DeepSpeed checkpoint (ZeRO 0-2 keep them in mp_rank_00; else None)."""
    path = folder / "mp_rank_00_model_states.pt"
    if not path.is_file():
        return None
    module = torch.load(path, map_location="cpu", weights_only=False).get("module") or {}
    if not module or any(v.numel() == 0 for v in module.values()):     # ZeRO-3: partitioned, placeholders here
        return None
    return {k: v.float() for k, v in module.items()}


def codec_ceiling(items: list[Item]) -> float:
    """Median overall label of the deepest codec rung on training clips (1.0 when there is none)."""
    codec = [it for it in items if it.kind == "codec" and it.split == "train"]
    if not codec:
        return 1.0
    deepest = max(it.strength for it in codec)
    return float(np.median([it.overall for it in codec if it.strength == deepest]))


def generation_items(lyra_dir: str | Path, codec, tokens: str | Path, cfg: OraqlConfig, ceiling: float = 1.0,
                     progress=lambda it, **kw: it, log=None) -> list[Item]:
    """Lyra's music at each checkpoint, from captions of each split's clips (one batch per checkpoint)."""
    from components.omnicodec import decoding as codec_io
    from components.lyra.config import GenerateConfig
    from components.lyra.generation import generate_codes, load_model, sampling_params
    from components.tokens.dataset import TokenDataset

    lyra_dir = Path(lyra_dir)
    prompts = []                                     # (split, clip)
    for split, n in cfg.generation_prompts.items():
        if n <= 0:
            continue
        ds = TokenDataset(tokens, split=split)
        rng = np.random.default_rng([cfg.seed, len(prompts)])
        prompts += [(split, ds[int(i)]) for i in sorted(rng.permutation(len(ds))[:n])]
    if not prompts:
        return []
    model = load_model(lyra_dir)
    selected_state = {k: v.clone() for k, v in model.state_dict().items()}
    checkpoints, best = lyra_checkpoints(lyra_dir)
    uniform = math.log(model.config.output_vocab)
    params = sampling_params(GenerateConfig(cfg=cfg.generation_cfg, end_not_before=1.0))
    text = np.stack([clip.text_embeddings[0] for _, clip in prompts])
    sr = int(codec.sample_rate)
    items = []
    for ckpt in progress(checkpoints, desc="oraql generations", unit="checkpoint"):
        if ckpt.state == {}:                                         # initialisation: a fresh model, same config
            torch.manual_seed(cfg.seed)
            model.load_state_dict(type(model)(model.config).state_dict())
        else:
            model.load_state_dict(ckpt.state if ckpt.state is not None else selected_state)
        label = ceiling * generation_label(ckpt.held_out_loss, best, uniform, cfg.generation_label_early,
                                           cfg.generation_label_late)
        generated, _ = generate_codes(model, text, cfg.clip_seconds, params, seed=cfg.seed + ckpt.step)
        audios = codec_io.decode_pieces(codec, generated.codes, generated.lengths)
        if log:
            log.info("lyra %s (held-out loss %s): %d generations, label %.3f", ckpt.name,
                     "n/a" if ckpt.held_out_loss is None else f"{ckpt.held_out_loss:.3f}", len(audios), label)
        for (split, clip), audio in zip(prompts, audios):
            condition = f"lyra@{ckpt.name}"
            items.append(Item(item_id=f"{clip.clip_id}|{condition}", source="", piece_id=clip.piece_id, split=split,
                              kind="lyra", strength=float(ckpt.step), condition=condition, fidelity=float("nan"),
                              coherence=float("nan"), overall=label, mel_distance=float("nan"),
                              features=features_of(audio, sr, cfg)))
    model.load_state_dict(selected_state)
    return items


def items_table(items: list[Item]) -> pd.DataFrame:
    return pd.DataFrame([it.row() for it in items])

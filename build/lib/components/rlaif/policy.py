"""Lyra as a TRL policy: GRPO over K parallel codebooks, at TRL's own extension points.

TRL's GRPOTrainer assumes a causal LM over one token stream. Lyra predicts K codes per delayed
step, so the adapter gives TRL one stream and keeps the music on Lyra's side:

    prompt    one id per rollout: the row of the prompt table (caption embedding + asked length)
    completion the generated frames flattened frame-major, codebook k's code c as id k*(V+1) + c,
              then END (id V: codebook 0's END) if the piece ended before the asked length

        frames (K=2)   k=0  a b c        ->   ids  a  B'  b  C'  c  D'  END      (X' = V+1 + X)
                       k=1  B C D

    rollout_func                      -> Lyra's Sampler with exact sampling (temperature 1, no top-k/p, no
                                          guidance: the policy's own distribution, whose log-probs GRPO's
                                          ratio and KL need)
    _get_per_token_logps_and_entropies -> sampling.code_log_probs: each id's log-prob is its code's under
                                          the policy (the same windows, END rules and masks as the sampler),
                                          so the flattened ids line up with the per-code [B, T, K] grid

Everything else (group-relative advantages, clipping, the KL penalty to the reference model
re-created by path through the Auto classes, logging, checkpoints) is TRL's.
TRL 1.16 is pinned; test_policy.py fails if these methods move.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from einops import rearrange
from trl import GRPOTrainer

from components.common.seeds import torch_generator
from components.lyra.conditioners import Conditions
from components.lyra.model import LyraForMusicGeneration
from components.lyra.sampling import Sampler, SamplingParams, code_log_probs

EXACT = SamplingParams(temperature=1.0, top_k=0, top_p=0.0, cfg=1.0, decode_weights="model")
OVERRIDDEN = ("_get_per_token_logps_and_entropies",)       # GRPOTrainer methods this module replaces
USED = ("_generate", "_generate_and_score_completions", "_compute_loss", "_calculate_rewards")   # and relies on


@dataclasses.dataclass(frozen=True)
class CodeVocabulary:
    """Codes of K codebooks <-> one id stream (see the module docstring)."""

    num_codebooks: int
    codebook_size: int

    @property
    def stride(self) -> int:             # ids per codebook: V codes + END
        return self.codebook_size + 1

    @property
    def end_id(self) -> int:
        return self.codebook_size        # codebook 0's END

    @property
    def pad_id(self) -> int:
        return self.num_codebooks * self.stride

    @property
    def size(self) -> int:
        return self.pad_id + 1

    def encode(self, codes: np.ndarray, length: int) -> list[int]:
        """[K, T] codes of one piece and its length (frames before END; T if it did not end) -> ids."""
        K, T = codes.shape
        ids = (np.asarray(codes[:, :length], dtype=np.int64) + np.arange(K)[:, None] * self.stride).T.reshape(-1)
        return ids.tolist() + ([self.end_id] if length < T else [])

    def decode(self, ids: torch.Tensor, mask: torch.Tensor, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [B, L], mask [B, L] (1 = a completion id) -> codes [B, K, n_frames], lengths [B]."""
        K, B = self.num_codebooks, ids.shape[0]
        n = mask.sum(dim=1)
        lengths = torch.div(n, K, rounding_mode="floor")
        ended = n % K == 1
        if bool(((n % K > 1) | (lengths > n_frames) | (ended & (lengths >= n_frames))).any()):
            raise ValueError(f"completions of {n.tolist()} ids are not whole frames of {K} codes (+ END) "
                             f"within {n_frames} frames")
        grid = torch.zeros(B, n_frames * K, dtype=torch.long, device=ids.device)
        width = min(ids.shape[1], n_frames * K)
        grid[:, :width] = ids[:, :width] * mask[:, :width]
        codes = rearrange(grid, "b (t k) -> b k t", k=K) % self.stride
        valid = torch.arange(n_frames, device=ids.device)[None] < lengths[:, None]
        return codes * valid[:, None], lengths

    def tokenizer(self):
        """A word-level tokenizer over the ids (TRL decodes completions to text for its logs)."""
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        from tokenizers.pre_tokenizers import WhitespaceSplit
        from transformers import PreTrainedTokenizerFast

        vocab = {f"k{k}:{'end' if c == self.codebook_size else c}": k * self.stride + c
                 for k in range(self.num_codebooks) for c in range(self.stride)}
        vocab["<pad>"] = self.pad_id
        model = Tokenizer(WordLevel(vocab, unk_token="<pad>"))
        model.pre_tokenizer = WhitespaceSplit()
        return PreTrainedTokenizerFast(tokenizer_object=model, pad_token="<pad>", eos_token="k0:end",
                                       unk_token="<pad>")


@dataclasses.dataclass
class PromptTable:
    """The prompts rollouts are conditioned on: caption text -> row (embedding, asked seconds)."""

    captions: list[str]
    embeddings: np.ndarray           # [n, text_dim]
    seconds: float                   # every rollout asks for this length
    instruments: list[str | None] | None = None   # held-out prompts: the instrument of the clip the caption
    #                                               came from (what the conditioning judge should hear)

    def __post_init__(self):
        self.row = {c: i for i, c in enumerate(self.captions)}
        if len(self.row) != len(self.captions):
            raise ValueError("prompt captions must be distinct")

    def conditions(self, rows, device=None) -> Conditions:
        rows = np.asarray(rows, dtype=np.int64)
        return Conditions.build(self.embeddings[rows], seconds_total=self.seconds, device=device)

    def rows_of(self, prompts: list[str]) -> list[int]:
        missing = [p for p in prompts if p not in self.row]
        if missing:
            raise KeyError(f"prompts not in the prompt table: {missing[:3]}")
        return [self.row[p] for p in prompts]


def n_frames(model: LyraForMusicGeneration, seconds: float) -> int:
    return max(1, int(round(seconds * model.config.frame_rate)))


class LyraRollout:
    """GRPO's `rollout_func`: exact samples from the current policy, as flattened ids.

    Each call draws from a generator seeded by (seed, rollout number), so a run resumed from a
    checkpoint draws what the uninterrupted run drew."""

    def __init__(self, table: PromptTable, vocab: CodeVocabulary, seed: int):
        self.table, self.vocab, self.seed = table, vocab, seed
        self.calls = 0

    def __call__(self, prompts: list[str], trainer) -> dict:
        model = trainer.accelerator.unwrap_model(trainer.model)
        device = next(model.parameters()).device
        rows = self.table.rows_of(prompts)
        step = trainer.state.global_step if trainer.model.training else -1 - self.calls
        generator = torch_generator(self.seed, step + 1, device=device)
        self.calls += 1
        was_training = model.training
        model.eval()
        out = Sampler(model, EXACT).generate(self.table.conditions(rows, device), n_frames(model, self.table.seconds),
                                              generator=generator, record_log_probs=True)
        model.train(was_training)
        codes, lengths = out.codes.cpu().numpy(), out.lengths.cpu().tolist()
        completion_ids = [self.vocab.encode(codes[i], lengths[i]) for i in range(len(rows))]
        logprobs = [rearrange(out.log_probs[i].cpu(), "k t -> (t k)")[:len(ids)].tolist()
                    for i, ids in enumerate(completion_ids)]
        return {"prompt_ids": [[r] for r in rows], "completion_ids": completion_ids, "logprobs": logprobs,
                "codes": [codes[i, :, :lengths[i]] for i in range(len(rows))]}


class LyraGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose per-token log-probs are Lyra's per-code log-probs (see the module docstring)."""

    def __init__(self, *args, prompt_table: PromptTable, vocab: CodeVocabulary, **kwargs):
        self.prompt_table, self.vocab = prompt_table, vocab
        super().__init__(*args, **kwargs)

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **unused):
        """input_ids [B, P + C] = one prompt id (left) + the completion's ids -> log-probs [B, C] (and entropies)."""
        if any(v is not None for v in unused.values()):
            raise ValueError(f"Lyra takes no multimodal inputs, got {[k for k, v in unused.items() if v is not None]}")
        if input_ids.shape[1] != logits_to_keep + 1:
            raise ValueError(f"expected one prompt id before {logits_to_keep} completion ids, got {input_ids.shape[1]} ids")
        lyra = self.accelerator.unwrap_model(model)
        T = n_frames(lyra, self.prompt_table.seconds)
        rows = input_ids[:, -logits_to_keep - 1]                                   # the prompt id (length-1 prompts)
        completion, mask = input_ids[:, -logits_to_keep:], attention_mask[:, -logits_to_keep:]
        batch_size = batch_size or input_ids.shape[0]
        logps, entropies = [], []
        for start in range(0, input_ids.shape[0], batch_size):
            part = slice(start, start + batch_size)
            codes, lengths = self.vocab.decode(completion[part], mask[part], T)
            scored = code_log_probs(lyra, codes, lengths, self.prompt_table.conditions(rows[part].cpu(), codes.device),
                                    EXACT, with_entropy=compute_entropy)
            flat = rearrange(scored.per_code, "b t k -> b (t k)")
            logps.append(_fit(flat, logits_to_keep))
            if compute_entropy:
                entropies.append(_fit(rearrange(scored.entropy, "b t k -> b (t k)"), logits_to_keep))
        return torch.cat(logps), (torch.cat(entropies) if compute_entropy else None), None


def _fit(x: torch.Tensor, width: int) -> torch.Tensor:
    """[B, T*K] -> [B, width]: TRL pads completions to the batch's longest, at most T*K ids."""
    if x.shape[1] >= width:
        return x[:, :width]
    return torch.nn.functional.pad(x, (0, width - x.shape[1]))

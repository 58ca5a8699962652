"""Generating codes: KV-cached decoding, classifier-free guidance, top-k / top-p, windowed continuation.

One step of the loop (B pieces; with guidance the model runs 2B rows, conditional first):

    logits [2B, K, V+1] --lerp(uncond, cond, cfg)--> [B, K, V+1] --top-k/top-p, T--> tokens [B, K]
        tokens: codebook k holds frame s-k; codebooks before their first frame, after the
        window's last, or inside a known prompt are overwritten, then the tokens go back in.

Pieces longer than the training window are generated window by window: the last
`overlap * window` frames of the piece so far are the next window's prompt, and the timing
prefix tells the model where in the piece the new window starts.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from components.lyra.delay import build_delay_pattern, revert_delay_pattern
from components.lyra.decoder import StepDecoder
from components.lyra.model import KVCache, LyraForMusicGeneration


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0        # 0 = greedy
    top_k: int = 250                # 0 = off
    top_p: float = 0.0              # 0 = off
    cfg: float = 3.0                # 1 = no unconditional pass
    allow_end: bool = True          # may a piece end (END token) before the requested length?
    end_not_before: float = 0.0     # ...but only once this share of the requested frames exists
    continuation_overlap: float = 0.5
    decode_weights: str = "model"   # "model" (exact) or "int8" (weight-only int8 steps; see decoder.py)


@dataclasses.dataclass
class Generated:
    codes: torch.Tensor             # [B, K, n_frames] (frames after a piece's end are garbage: use lengths)
    lengths: torch.Tensor           # [B] frames before END (n_frames when the piece did not end)
    steps: int                      # decoder steps run, over all windows (for frames/s accounting)


def sample_tokens(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> torch.Tensor:
    """[B, K, V] logits -> [B, K] ids: temperature, then top-k, then top-p (nucleus), then a draw.

    Cheap on purpose (it runs every step): top-k without sorting unless top-p needs the order,
    and the draw by inverse CDF (one uniform number per row; ~6x cheaper than torch.multinomial
    on CPU).
    """
    if params.temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / params.temperature if params.temperature != 1.0 else logits
    nucleus = params.top_p > 0
    if params.top_k > 0:
        values, indices = torch.topk(logits, min(params.top_k, logits.shape[-1]), dim=-1, sorted=nucleus)
    elif nucleus:
        values, indices = torch.sort(logits, dim=-1, descending=True)
    else:
        values, indices = logits, None
    probs = torch.softmax(values, dim=-1)
    if nucleus:
        # keep the smallest prefix whose mass reaches top_p (the first token always survives)
        outside = (probs.cumsum(dim=-1) - probs) >= params.top_p
        probs = probs.masked_fill(outside, 0.0)
    cdf = probs.cumsum(dim=-1)
    u = torch.rand((*cdf.shape[:-1], 1), generator=generator, device=cdf.device, dtype=cdf.dtype) * cdf[..., -1:]
    choice = torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.shape[-1] - 1)   # first cdf > u
    if indices is None:
        return choice.squeeze(-1)
    return torch.gather(indices, -1, choice).squeeze(-1)


def guide(logits: torch.Tensor, B: int, scale: float, end: int | None) -> torch.Tensor:
    """Classifier-free guidance of [2B, K, V+1] logits (conditional rows first) -> [B, K, V+1].

    Guidance sharpens *what* is played; *when* the piece ends stays the conditional model's call
    (timing is in both halves, and amplifying their small END differences ends pieces early): the
    END logit is set so that P(END) equals the conditional P(END) exactly.
    """
    cond, uncond = logits[:B], logits[B:]
    guided = torch.lerp(uncond, cond, scale)                     # uncond + scale * (cond - uncond)
    if end is not None:
        c0, g0 = cond[:, 0], guided[:, 0]
        g0[:, end] = c0[:, end] - torch.logsumexp(c0[:, :end], -1) + torch.logsumexp(g0[:, :end], -1)
    return guided


class Sampler:
    """Generates codes for a batch of pieces with one preallocated KV cache, window by window."""

    def __init__(self, model: LyraForMusicGeneration, params: SamplingParams):
        self.model, self.params, self.config = model, params, model.config
        self.decoder = StepDecoder(model, weights=params.decode_weights)
        self.device = next(model.parameters()).device
        self.dtype = self.decoder.dtype
        cfg = self.config
        # additive masks on logits: only codebook 0 may end a piece, and only where allowed
        self.end_bias = torch.zeros(cfg.num_codebooks, cfg.output_vocab, device=self.device)
        self.end_bias[1:, cfg.end_id] = -math.inf
        self.no_end_bias = self.end_bias.clone()
        self.no_end_bias[0, cfg.end_id] = -math.inf

    @torch.inference_mode()
    def generate(
        self,
        text_embedding: torch.Tensor,          # [B, text_dim]
        seconds_total: torch.Tensor,           # [B] the piece length the model is told
        n_frames: int,                         # frames to generate (at most)
        *,
        prompt: torch.Tensor | None = None,    # [B, K, T0] frames the piece starts with
        seconds_start: float = 0.0,            # where frame 0 sits in the piece
        generator: torch.Generator | None = None,
        unconditional: bool = False,           # ignore the text (the "null" prefix, no guidance)
    ) -> Generated:
        cfg, params = self.config, self.params
        B, K = text_embedding.shape[0], cfg.num_codebooks
        guided = params.cfg != 1.0 and not unconditional
        text_embedding = text_embedding.to(self.device, torch.float32)
        seconds_total = seconds_total.to(self.device, torch.float32)
        n_prompt = 0 if prompt is None else prompt.shape[-1]
        frames = torch.zeros(B, K, max(n_frames, n_prompt), dtype=torch.long, device=self.device)
        if prompt is not None:
            frames[:, :, :n_prompt] = prompt.to(self.device)
        never = torch.iinfo(torch.long).max
        ended_at = torch.full((B,), never, dtype=torch.long, device=self.device)   # frame index of END
        window = cfg.window_frames
        overlap = int(window * params.continuation_overlap)
        cache = KVCache(cfg, 2 * B if guided else B, cfg.max_positions, device=self.device, dtype=self.dtype)
        earliest_end = math.ceil(params.end_not_before * n_frames) if params.allow_end else never
        produced, steps = n_prompt, 0
        while produced < n_frames:
            # the window: the known frames (the prompt at first, then the last `overlap` frames), then new ones
            keep = min(n_prompt if produced == n_prompt else overlap, produced, window - 1)
            first = produced - keep
            new = min(window - keep, n_frames - produced)
            start = torch.full((B,), seconds_start + first / cfg.frame_rate, device=self.device)
            cache.reset()
            steps += self._window(cache, frames[:, :, first:produced + new], keep, text_embedding, start,
                                  seconds_total, ended_at, first, generator, guided, unconditional, earliest_end)
            produced += new
            if params.allow_end and bool((ended_at < never).all()):
                break
        lengths = ended_at.clamp(max=n_frames)
        return Generated(codes=frames[:, :, :n_frames], lengths=lengths, steps=steps)

    def _window(self, cache, window_frames, n_known, text, seconds_start, seconds_total, ended_at, first, generator,
                guided: bool, unconditional: bool, earliest_end: int) -> int:
        """Fill window_frames[:, :, n_known:] ([B, K, n]) in place; returns the decoder steps taken."""
        cfg, params = self.config, self.params
        B, K, n = window_frames.shape
        special, end = cfg.special_id, cfg.end_id
        # the window in delayed layout (step s, codebook k = frame s-k), known frames filled in
        delayed = torch.full((B, K, n + K - 1), special, dtype=torch.long, device=self.device)
        if n_known:
            delayed[:, :, :n_known + K - 1] = build_delay_pattern(window_frames[:, :, :n_known], special)
        # prefill: prefix, then BOS and the known steps (inputs = delayed columns shifted right by one)
        inputs = torch.cat([torch.full((B, K, 1), special, dtype=torch.long, device=self.device),
                            delayed[:, :, :n_known]], dim=-1)
        drop = torch.ones(B, dtype=torch.bool, device=self.device) if unconditional else None
        if guided:
            inputs, text = torch.cat([inputs, inputs]), torch.cat([text, text])
            seconds_start, seconds_total = torch.cat([seconds_start, seconds_start]), torch.cat([seconds_total, seconds_total])
            drop = torch.arange(2 * B, device=self.device) >= B          # second half: no text
        logits = self.model(inputs, text, seconds_start, seconds_total, drop, cache=cache).logits[:, :, -1]
        codebook = torch.arange(K, device=self.device)
        guide_end = end if params.allow_end else None
        any_ended = bool((ended_at < first + n_known).any())
        steps = 0
        for s in range(n_known, n + K - 1):
            if guided:
                logits = guide(logits, B, params.cfg, guide_end)
            bias = self.end_bias if first + s >= earliest_end else self.no_end_bias
            tokens = sample_tokens(logits.float() + bias, params, generator)
            k_known = s - n_known + 1              # codebooks >= this are known (prompt, or before frame 0)
            if k_known < K:
                tokens[:, k_known:] = delayed[:, k_known:, s]
            k_past = s - n + 1                     # codebooks < this are past the window's last frame
            if k_past > 0:
                tokens[:, :k_past] = special
            if params.allow_end and (any_ended or bool((tokens[:, 0] == end).any())):
                any_ended = True                   # from now on: END after a piece's last frame, SPECIAL beyond
                frame = first + s - codebook                                  # piece frame held by each codebook
                just_ended = (tokens[:, 0] == end) & (ended_at > first + s)
                ended_at.copy_(torch.where(just_ended, first + s, ended_at))
                tokens = torch.where(frame[None] == ended_at[:, None], end, tokens)
                tokens = torch.where(frame[None] > ended_at[:, None], special, tokens)
            delayed[:, :, s] = tokens
            steps += 1
            if s == n + K - 2:
                break
            logits = self.decoder.step(torch.cat([tokens, tokens]) if guided else tokens, cache)
        window_frames[:, :, n_known:] = revert_delay_pattern(delayed)[:, :, n_known:]
        return steps

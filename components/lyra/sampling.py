"""Generating codes: KV-cached decoding, classifier-free guidance, top-k / top-p, windowed continuation.

One step of the loop (B pieces; with guidance the model runs 2B rows, conditional first):

    logits [2B, K, V+1] --lerp(uncond, cond, cfg)--> [B, K, V+1] --top-k/top-p, T--> tokens [B, K]
        tokens: codebook k holds frame s-k; codebooks before their first frame, after the
        window's last, or inside a known prompt are overwritten, then the tokens go back in.

Pieces longer than the training window are generated window by window: the last
`overlap * window` frames of the piece so far are the next window's prompt, and the timing
prefix tells the model where in the piece the new window starts.

`code_log_probs` scores given codes exactly as the sampler draws them (the same windows, the
same END rules, every drawn code once): with exact sampling (temperature 1, no top-k/p, no
guidance) its log-probabilities are those of the sampler's distribution, and they are
differentiable (what RLAIF's policy gradient needs).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from einops import rearrange

from components.lyra.conditioners import Conditions
from components.lyra.delay import build_delay_pattern, revert_delay_pattern, shift_right
from components.lyra.decoder import StepDecoder
from components.lyra.model import KVCache, LyraForMusicGeneration


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0        # 0 = greedy
    top_k: int = 250                # 0 = off
    top_p: float = 0.0              # 0 = off
    cfg: float = 3.0                # 1 = no unconditional pass (the text's scale when a reference is given too)
    cfg_reference: float = 3.0      # the reference's own guidance scale (models with a reference conditioner)
    allow_end: bool = True          # may a piece end (END token) before the requested length?
    end_not_before: float = 0.0     # ...but only once this share of the requested frames exists
    continuation_overlap: float = 0.5
    decode_weights: str = "model"   # "model" (exact) or "int8" (weight-only int8 steps; see decoder.py)

    @property
    def exact(self) -> bool:
        """Draws from the model's own distribution (what `code_log_probs` scores)."""
        return (self.temperature == 1.0 and self.top_k == 0 and self.top_p == 0.0 and self.cfg == 1.0
                and self.decode_weights == "model")


@dataclasses.dataclass
class Generated:
    codes: torch.Tensor             # [B, K, n_frames] (frames after a piece's end are garbage: use lengths)
    lengths: torch.Tensor           # [B] frames before END (n_frames when the piece did not end)
    steps: int                      # decoder steps run, over all windows (for frames/s accounting)
    log_probs: torch.Tensor | None = None   # [B, K, n_frames] log-prob of each drawn code (0 where none was
    #                                         drawn: prompt, forced END/padding); only with record_log_probs


def uniforms(shape: tuple[int, ...], generator, device, dtype) -> torch.Tensor:
    """U[0, 1) of `shape` [B, ...] from one generator, or from one generator per row (a list of B, as
    `lyra serve` batches requests with their own seeds). A run of consecutive rows given the same generator
    is drawn in one call, exactly as that generator alone fills a batch of those rows (on any device)."""
    if not isinstance(generator, (list, tuple)):
        return torch.rand(shape, generator=generator, device=device, dtype=dtype)
    parts, start = [], 0
    for end in range(1, len(generator) + 1):
        if end == len(generator) or generator[end] is not generator[start]:
            parts.append(torch.rand((end - start, *shape[1:]), generator=generator[start], device=device, dtype=dtype))
            start = end
    return torch.cat(parts)


def sample_tokens(logits: torch.Tensor, params: SamplingParams, generator) -> torch.Tensor:
    """[B, K, V] logits -> [B, K] ids: temperature, then top-k, then top-p (nucleus), then a draw.

    Cheap on purpose (it runs every step): top-k without sorting unless top-p needs the order,
    and the draw by inverse CDF (one uniform number per row; ~6x cheaper than torch.multinomial
    on CPU). `generator`: a torch.Generator, None, or one per row (see `uniforms`).
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
    u = uniforms((*cdf.shape[:-1], 1), generator, cdf.device, cdf.dtype) * cdf[..., -1:]
    choice = torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.shape[-1] - 1)   # first cdf > u
    if indices is None:
        return choice.squeeze(-1)
    return torch.gather(indices, -1, choice).squeeze(-1)


def guidance_branches(conditions: Conditions, params: SamplingParams) -> tuple[list[Conditions], list[float]]:
    """The batches one guided step runs, conditional first, and the scale of each difference.

    Conditions are dropped one at a time, text first, then the reference (MusicGen-Style's double
    guidance, one scale per condition):

        text + reference:  [full, reference only, none]   guided = none + s_ref (ref - none) + s_text (full - ref)
        one of them:       [full, none]                    guided = none + s (full - none)
        neither / cfg 1:   [full]                          no guidance
    """
    scale = {"text": params.cfg, "reference": params.cfg_reference}
    branches, scales = [conditions], []
    for name in ("text", "reference"):
        if conditions.has(name) and scale[name] != 1.0:
            branches.append(branches[-1].drop(name))
            scales.append(scale[name])
    return branches, scales


def guide(logits: torch.Tensor, B: int, scale, end: int | None) -> torch.Tensor:
    """Classifier-free guidance of [n B, K, V+1] logits (n batches of B rows, conditional first, see
    `guidance_branches`) -> [B, K, V+1]; `scale` is one number (n = 2) or the n - 1 scales.

    Guidance sharpens *what* is played; *when* the piece ends stays the conditional model's call
    (timing is in both halves, and amplifying their small END differences ends pieces early): the
    END logit is set so that P(END) equals the conditional P(END) exactly.
    """
    scales = [scale] if isinstance(scale, (int, float)) else list(scale)
    parts = [logits[i * B:(i + 1) * B] for i in range(len(scales) + 1)]
    cond = parts[0]
    if len(scales) == 1:
        guided = torch.lerp(parts[1], cond, scales[0])           # uncond + scale * (cond - uncond)
    else:
        guided = parts[-1].clone()
        for i, s in enumerate(scales):
            guided += s * (parts[i] - parts[i + 1])
    if end is not None:
        c0, g0 = cond[:, 0], guided[:, 0]
        g0[:, end] = c0[:, end] - torch.logsumexp(c0[:, :end], -1) + torch.logsumexp(g0[:, :end], -1)
    return guided


def windows(n_frames: int, n_prompt: int, window: int, overlap: int):
    """(first, keep, new) per window: it starts at piece frame `first`, its first `keep` frames are
    known (the prompt, then the previous window's last `overlap` frames) and `new` are generated."""
    produced = n_prompt
    while produced < n_frames:
        keep = min(n_prompt if produced == n_prompt else overlap, produced, window - 1)
        new = min(window - keep, n_frames - produced)
        yield produced - keep, keep, new
        produced += new


class EndRule:
    """Where a piece may end: additive masks on logits [K, V+1]. Only codebook 0 may be END (the other
    codebooks' END follows from it), and only from frame `earliest` on (never without allow_end)."""

    NEVER = torch.iinfo(torch.long).max

    def __init__(self, config, params: SamplingParams, n_frames: int, device):
        self.earliest = math.ceil(params.end_not_before * n_frames) if params.allow_end else self.NEVER
        self.may_end = torch.zeros(config.num_codebooks, config.output_vocab, device=device)
        self.may_end[1:, config.end_id] = -math.inf
        self.may_not_end = self.may_end.clone()
        self.may_not_end[0, config.end_id] = -math.inf

    def bias(self, frame: int) -> torch.Tensor:
        """[K, V+1] for the step whose codebook 0 is piece frame `frame`."""
        return self.may_end if frame >= self.earliest else self.may_not_end

    def biases(self, frames: torch.Tensor) -> torch.Tensor:
        """[S, K, V+1] for steps whose codebook 0 is piece frame frames[s]."""
        return torch.where((frames >= self.earliest)[:, None, None], self.may_end, self.may_not_end)


class Sampler:
    """Generates codes for a batch of pieces with one preallocated KV cache, window by window."""

    def __init__(self, model: LyraForMusicGeneration, params: SamplingParams):
        self.model, self.params, self.config = model, params, model.config
        self.decoder = StepDecoder(model, weights=params.decode_weights)
        self.device = next(model.parameters()).device
        self.dtype = self.decoder.dtype

    @torch.inference_mode()
    def generate(
        self,
        conditions: Conditions,                # text and timing of B pieces (seconds_start: where frame 0 sits)
        n_frames: int,                         # frames to generate (at most)
        *,
        prompt: torch.Tensor | None = None,    # [B, K, T0] frames the piece starts with
        generator: torch.Generator | list[torch.Generator] | None = None,   # or one per piece
        record_log_probs: bool = False,        # also return each drawn code's log-prob (exact sampling only)
    ) -> Generated:
        """Conditions with every droppable condition dropped (`conditions.unconditional()`) sample the
        unconditional model, without guidance."""
        cfg, params = self.config, self.params
        if record_log_probs and not params.exact:
            raise ValueError("log-probs of drawn codes are recorded for exact sampling only "
                             "(temperature 1, top_k 0, top_p 0, cfg 1, model weights)")
        B, K = conditions.batch_size, cfg.num_codebooks
        conditions = conditions.to(self.device)
        branches, scales = guidance_branches(conditions, params)
        if record_log_probs and len(branches) > 1:
            raise ValueError("log-probs of drawn codes are recorded without guidance only (cfg_reference 1 too)")
        n_prompt = 0 if prompt is None else prompt.shape[-1]
        frames = torch.zeros(B, K, max(n_frames, n_prompt), dtype=torch.long, device=self.device)
        if prompt is not None:
            frames[:, :, :n_prompt] = prompt.to(self.device)
        log_probs = torch.zeros(frames.shape, device=self.device) if record_log_probs else None
        never = EndRule.NEVER
        ended_at = torch.full((B,), never, dtype=torch.long, device=self.device)   # frame index of END
        window = cfg.window_frames
        cache = KVCache(cfg, len(branches) * B, cfg.max_positions, device=self.device, dtype=self.dtype)
        end_rule = EndRule(cfg, params, n_frames, self.device)
        steps = 0
        for first, keep, new in windows(n_frames, n_prompt, window, int(window * params.continuation_overlap)):
            start = (conditions.seconds_start.double() + first / cfg.frame_rate).float()
            cache.reset()
            part = slice(first, first + keep + new)
            steps += self._window(cache, frames[:, :, part], keep, [b.with_start(start) for b in branches], ended_at,
                                  first, generator, scales, end_rule, None if log_probs is None else log_probs[:, :, part])
            if params.allow_end and bool((ended_at < never).all()):
                break
        lengths = ended_at.clamp(max=n_frames)
        return Generated(codes=frames[:, :, :n_frames], lengths=lengths, steps=steps,
                         log_probs=None if log_probs is None else log_probs[:, :, :n_frames])

    def _window(self, cache, window_frames, n_known, branches: list[Conditions], ended_at, first, generator,
                scales: list[float], end_rule: EndRule, log_probs) -> int:
        """Fill window_frames[:, :, n_known:] ([B, K, n]) in place (and log_probs, if given); returns
        the decoder steps taken."""
        cfg, params = self.config, self.params
        B, K, n = window_frames.shape
        special, end = cfg.special_id, cfg.end_id
        # the window in delayed layout (step s, codebook k = frame s-k), known frames filled in
        delayed = torch.full((B, K, n + K - 1), special, dtype=torch.long, device=self.device)
        if n_known:
            delayed[:, :, :n_known + K - 1] = build_delay_pattern(window_frames[:, :, :n_known], special)
        drawn_log_probs = None if log_probs is None else torch.zeros(delayed.shape, device=self.device)
        # prefill: prefix, then BOS and the known steps (inputs = delayed columns shifted right by one)
        inputs = torch.cat([torch.full((B, K, 1), special, dtype=torch.long, device=self.device),
                            delayed[:, :, :n_known]], dim=-1)
        n_branches = len(branches)
        if n_branches > 1:
            inputs = inputs.repeat(n_branches, 1, 1)
        logits = self.model(inputs, Conditions.cat(branches) if n_branches > 1 else branches[0],
                            cache=cache).logits[:, :, -1]
        codebook = torch.arange(K, device=self.device)
        guide_end = end if params.allow_end else None
        any_ended = bool((ended_at < first + n_known).any())
        steps = 0
        for s in range(n_known, n + K - 1):
            if n_branches > 1:
                logits = guide(logits, B, scales, guide_end)
            logits = logits.float() + end_rule.bias(first + s)
            tokens = sample_tokens(logits, params, generator)
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
            if drawn_log_probs is not None:
                frame = first + s - codebook
                drawn = (codebook < k_known) & (codebook >= k_past)
                drawn = drawn[None] & ((frame[None] < ended_at[:, None]) | ((frame[None] == ended_at[:, None]) & (codebook[None] == 0)))
                chosen = torch.log_softmax(logits, -1).gather(-1, tokens.clamp(max=end)[..., None])[..., 0]
                drawn_log_probs[:, :, s] = torch.where(drawn, chosen, 0.0)
            steps += 1
            if s == n + K - 2:
                break
            logits = self.decoder.step(tokens.repeat(n_branches, 1) if n_branches > 1 else tokens, cache)
        window_frames[:, :, n_known:] = revert_delay_pattern(delayed)[:, :, n_known:]
        if log_probs is not None:
            log_probs[:, :, n_known:] = revert_delay_pattern(drawn_log_probs)[:, :, n_known:]
        return steps


# ------------------------------------------------------------------------------------ scoring
@dataclasses.dataclass
class CodeLogProbs:
    per_code: torch.Tensor          # [B, T, K] log p of each drawn code (0 where none is drawn)
    drawn: torch.Tensor             # [B, T, K] bool: the codes the sampler draws (not prompt, forced END or padding)
    entropy: torch.Tensor | None = None   # [B, T, K] entropy (nats) of each drawn code's distribution (with_entropy)

    @property
    def total(self) -> torch.Tensor:
        """[B] log-probability of each whole sequence."""
        return self.per_code.sum(dim=(1, 2))


def frames_with_ends(codes: torch.Tensor, lengths: torch.Tensor, end: int, special: int) -> torch.Tensor:
    """[B, K, T] codes as the sampler leaves them: END at frame `length` (when < T), SPECIAL after."""
    frame = torch.arange(codes.shape[-1], device=codes.device)[None, None, :]
    length = lengths.to(codes.device)[:, None, None]
    return torch.where(frame == length, end, torch.where(frame > length, special, codes))


def code_log_probs(model: LyraForMusicGeneration, codes: torch.Tensor, lengths: torch.Tensor, conditions: Conditions,
                   params: SamplingParams, *, n_prompt: int = 0, with_entropy: bool = False) -> CodeLogProbs:
    """Log-probabilities of generated codes under the model, as the sampler drew them; differentiable.

        codes [B, K, T] (T = the frames asked for; the first n_prompt were given), lengths [B]
        (frames before END, T if none), conditions of frame 0 -> CodeLogProbs [B, T, K]

    Each window is one forward pass over what the sampler saw (its prompt frames, the timing of its
    first frame), scoring the frames it drew; a piece's END is scored on codebook 0 of the frame
    after its last (and may only fall where params allow it). No guidance, temperature or top-k/p:
    these are the model's own probabilities, the sampler's when `params.exact`.
    """
    cfg = model.config
    B, K, T = codes.shape
    device = codes.device
    special, end = cfg.special_id, cfg.end_id
    full = frames_with_ends(codes, lengths, end, special)
    lengths = lengths.to(device)
    end_rule = EndRule(cfg, params, T, device)
    codebook = torch.arange(K, device=device)
    per_code = [torch.zeros(B, K, min(n_prompt, T), device=device)]
    entropy = [torch.zeros(B, K, min(n_prompt, T), device=device)]
    drawn_parts = [torch.zeros(B, K, min(n_prompt, T), dtype=torch.bool, device=device)]
    window = cfg.window_frames
    for first, keep, new in windows(T, n_prompt, window, int(window * params.continuation_overlap)):
        n = keep + new
        frame = first + keep + torch.arange(new, device=device)                          # piece frames drawn here
        drawn = (frame[None, None, :] < lengths[:, None, None]) | (
            (frame[None, None, :] == lengths[:, None, None]) & (codebook[None, :, None] == 0))   # [B, K, new]
        drawn_parts.append(drawn)
        if not bool(drawn.any()):           # every piece ended before this window (the sampler stopped)
            per_code.append(torch.zeros(B, K, new, device=device))
            entropy.append(torch.zeros(B, K, new, device=device))
            continue
        delayed = build_delay_pattern(full[:, :, first:first + n], special)               # [B, K, n+K-1]
        start = (conditions.seconds_start.to(device).double() + first / cfg.frame_rate).float()
        logits = model(shift_right(delayed, special), conditions.to(device).with_start(start)).logits.float()
        bias = end_rule.biases(first + torch.arange(n + K - 1, device=device))            # [S, K, V+1]
        log_p = torch.log_softmax(logits + rearrange(bias, "s k v -> k s v")[None], dim=-1)
        chosen = log_p.gather(-1, delayed.clamp(max=end)[..., None])[..., 0]            # [B, K, S]
        per_code.append(torch.where(drawn, revert_delay_pattern(chosen)[:, :, keep:], 0.0))
        if with_entropy:        # masked entries (p = 0, log p = -inf) contribute 0, not nan
            h = -(log_p.exp() * log_p.clamp_min(torch.finfo(log_p.dtype).min)).sum(-1)     # [B, K, S]
            entropy.append(torch.where(drawn, revert_delay_pattern(h)[:, :, keep:], 0.0))
    per_code = torch.cat(per_code, dim=-1)[:, :, :T]
    drawn = torch.cat(drawn_parts, dim=-1)[:, :, :T]
    return CodeLogProbs(per_code=rearrange(per_code, "b k t -> b t k"), drawn=rearrange(drawn, "b k t -> b t k"),
                        entropy=rearrange(torch.cat(entropy, dim=-1)[:, :, :T], "b k t -> b t k") if with_entropy else None)

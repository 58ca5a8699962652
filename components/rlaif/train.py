"""`lyra rlaif train`: post-train Lyra with GRPO (TRL) against a reward model; evaluate on held-out prompts.

    pretrained Lyra --LyraGRPOTrainer (policy.py: exact rollouts, per-code log-probs)--> post-trained Lyra
        prompts: distinct training captions (+ a prompt file); held out: valid captions (watched during
                 training, where the config was chosen) and test captions (scored once, for the result)
        reward:  a batched callable on decoded audio (realism.py until ORAQL; see rewards.py)
        KL:      beta * KL(policy || pretrained) in the loss (TRL re-creates the reference from the path)

Checkpoints are TRL's (HF Trainer's `checkpoint-N` folders, optimizer, RNG and rollout seeds) in
`.<out>.checkpoints/` beside the output, with the run's fingerprint: a killed run rerun with the same
command resumes from its last checkpoint; one of another config or input starts afresh.
The output folder (written atomically): the post-trained model (config.json + model.safetensors),
rlaif.json (history of reward and KL per step, evaluation, config), reward_kl.png, lineage.json.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from components.common.atomic import atomic_write_json
from components.common.reporting import stage_run
from components.rlaif.config import RLAIFConfig
from components.rlaif.policy import CodeVocabulary, LyraGRPOTrainer, LyraRollout, PromptTable, n_frames
from components.rlaif.rewards import AudioReward, as_trl_reward, load_audio_scorer
from components.common.errors import LyraError
from components.common.resume import ResumeFolder, checkpoint_folder, fingerprint

STAGE = "lyra_rlaif"


class RLAIFError(LyraError, RuntimeError):
    """Input the stage cannot start from (reported as a message)."""


def prepare_policy(model_dir: str | os.PathLike):
    """The pretrained model, loaded by path (so TRL can re-create it as the reference), ready for TRL."""
    from transformers import GenerationConfig

    from components.lyra.model import LyraForMusicGeneration

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise RLAIFError(f"{model_dir} holds no Lyra model (no config.json); run `lyra lm train` first")
    model = LyraForMusicGeneration.from_pretrained(model_dir, dtype=torch.float32)
    model.generation_config = GenerationConfig()          # TRL writes its pad/eos ids there
    return model


def distinct_captions(tokens: Path, split: str) -> tuple[list[str], np.ndarray, list[str]]:
    """(captions, embeddings [n, text_dim], the clip each caption was first seen on)."""
    from components.tokens.dataset import TokenDataset

    ds = TokenDataset(tokens, split=split)
    captions, embeddings, clip_ids = [], [], []
    for i in range(len(ds)):
        clip = ds[i]
        if clip.captions and clip.captions[0] not in captions:
            captions.append(clip.captions[0])
            embeddings.append(np.asarray(clip.text_embeddings[0], dtype=np.float32))
            clip_ids.append(clip.clip_id)
    return captions, (np.stack(embeddings) if embeddings else np.zeros((0, ds.text_dim), np.float32)), clip_ids


def held_out_table(cfg: RLAIFConfig, tokens: Path, split: str, exclude: set[str], instrument_of: dict[str, str]) -> PromptTable:
    """Up to `eval_prompts` distinct captions of `split` that are not in `exclude`, with their clips' instruments."""
    captions, embeddings, clip_ids = distinct_captions(tokens, split)
    keep = [i for i, c in enumerate(captions) if c not in exclude][:cfg.eval_prompts]
    if not keep:
        raise RLAIFError(f"{tokens} has no {split} captions (apart from training prompts) to evaluate on")
    return PromptTable([captions[i] for i in keep], embeddings[keep], cfg.seconds,
                       instruments=[instrument_of.get(clip_ids[i]) for i in keep])


def prompt_tables(cfg: RLAIFConfig, tokens: Path, instrument_of: dict[str, str] | None = None
                  ) -> tuple[PromptTable, PromptTable, PromptTable]:
    """(training prompts, valid prompts, test prompts).

    valid prompts are watched during training (the monitor) and are what the config (beta, steps) was
    chosen on; test prompts are scored once, after training, for the reported result and the gate."""
    captions, embeddings, _ = distinct_captions(tokens, "train")
    if cfg.prompt_file:
        path = Path(cfg.prompt_file)
        if not path.is_file():
            raise RLAIFError(f"prompt file {path} does not exist")
        extra = [line.strip() for line in path.read_text().splitlines() if line.strip() and line.strip() not in captions]
        if extra:
            from components.lyra.text import encode_prompts

            captions, embeddings = captions + extra, np.concatenate([embeddings, encode_prompts(extra)])
    if not captions:
        raise RLAIFError(f"{tokens} has no training captions to prompt with")
    instrument_of = instrument_of or {}
    valid = held_out_table(cfg, tokens, "valid", set(captions), instrument_of)
    test = held_out_table(cfg, tokens, "test", set(captions) | set(valid.captions), instrument_of)
    return PromptTable(captions, embeddings, cfg.seconds), valid, test


def build_reward(cfg: RLAIFConfig, codec, tokens: Path, seconds: float, log):
    if cfg.reward != "realism":
        return AudioReward(codec, load_audio_scorer(cfg.reward, cfg.reward_model))
    from components.rlaif.realism import MelRealism
    from components.tokens.dataset import TokenDataset

    train = TokenDataset(tokens, split="train")
    rows = np.sort(np.random.default_rng(cfg.seed).permutation(len(train))[:cfg.realism_clips])
    max_frames = int(round(seconds * codec.frame_rate))
    audio = AudioReward(codec, None).audio([np.asarray(train[int(i)].codes[:, :max_frames]) for i in rows])
    log.info("realism reward fitted on %d real clips (%.1f s each, decoded by the codec)", len(audio), seconds)
    return AudioReward(codec, MelRealism.fit(audio, codec.sample_rate))


def run_fingerprint(cfg: RLAIFConfig, model_dir: Path, codec_dir: Path, tokens: Path) -> str:
    """What a checkpoint must match to be resumed: config, code, pretrained model, codec, tokens."""
    return fingerprint(cfg, STAGE, (model_dir / "model.safetensors", codec_dir / "config.json", tokens / "meta.json",
                                    tokens / "index.parquet"))


def checkpoint_dir(out: Path, digest: str, log=None) -> tuple[Path, str | None]:
    """The checkpoint folder (another run's set aside) and the checkpoint to resume from, if any.

    The Trainer writes a checkpoint folder in place, its trainer_state.json last: a folder without
    one was cut short by a kill and is removed (its predecessor is resumed)."""
    root = ResumeFolder(checkpoint_folder(out), digest, log).root
    complete = []
    for folder in root.glob("checkpoint-*"):
        if (folder / "trainer_state.json").is_file():
            complete.append(folder)
        else:
            shutil.rmtree(folder)
    last = max(complete, key=lambda f: int(f.name.rsplit("-", 1)[1]), default=None)
    return root, None if last is None else str(last)


def history_of(log_history: list[dict]) -> dict:
    keys = {"reward": "reward", "reward_std": "reward_std", "kl": "kl", "entropy": "entropy", "loss": "loss",
            "length": "completions/mean_length"}
    rows = [h for h in log_history if "reward" in h]
    history = {name: [(int(h["step"]), float(h[key])) for h in rows if key in h] for name, key in keys.items()}
    history["held_out"] = [(int(h["step"]), {k.split("/", 1)[1]: v for k, v in h.items() if k.startswith("held_out/")})
                           for h in log_history if any(k.startswith("held_out/") for k in h)]
    return history


def monitor_callback(table: PromptTable, reward, codec, cfg: RLAIFConfig, judge=None):
    """Every `monitor_every` steps (and at the start): the independent measures on a few valid prompts,
    kept in the trainer's log history (so a resumed run keeps the earlier points)."""
    from transformers import TrainerCallback

    from components.rlaif.evaluate import monitor

    class Monitor(TrainerCallback):
        def _record(self, state, model):
            if any(h.get("step") == state.global_step and "held_out/reward" in h for h in state.log_history):
                return
            was_training = model.training
            values = monitor(model.eval(), table, reward, codec, prompts=cfg.monitor_prompts, samples=2, seed=cfg.seed,
                             judge=judge)
            model.train(was_training)
            state.log_history.append({"step": state.global_step, **{f"held_out/{k}": v for k, v in values.items()}})

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if state.global_step == 0:                # (a resumed run has its earlier points in the log history)
                self._record(state, model)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % cfg.monitor_every == 0 or state.global_step == state.max_steps:
                self._record(state, model)

    return Monitor()


def load_judge(judge_dir: Path | None):
    """(the judge, clip_id -> instrument of the clips it labelled), or (None, {}) without a judge folder."""
    if judge_dir is None:
        return None, {}
    import pandas as pd

    from components.judge.train import LABELS_FILE
    from components.rlaif.evaluate import JudgeCheck

    if not (judge_dir / LABELS_FILE).is_file():
        raise RLAIFError(f"{judge_dir} holds no judge labels ({LABELS_FILE} missing); run `lyra judge train`")
    from components.judge.model import Judge
    from components.judge.train import label_names

    if JudgeCheck.HEAD not in Judge.load(judge_dir).classes:     # trained on a library without instrument tags
        return None, {}
    labels = pd.read_parquet(judge_dir / LABELS_FILE)
    names = label_names(labels[JudgeCheck.HEAD])
    return JudgeCheck(judge_dir), {str(c): n for c, n in zip(labels["clip_id"], names) if n}


def grpo_trainer(cfg: RLAIFConfig, policy, model_dir: Path, codec, reward, prompts: tuple, root: Path, judge):
    """TRL's GRPO trainer on Lyra's rollouts: the training prompts in a seeded order, the reward (plus prompt
    adherence when weighted), the held-out monitor on valid prompts."""
    from datasets import Dataset
    from trl import GRPOConfig

    train_prompts, valid_prompts, _ = prompts
    vocab = CodeVocabulary(policy.config.num_codebooks, policy.config.codebook_size)
    args = GRPOConfig(
        output_dir=str(root), use_cpu=not torch.cuda.is_available(), seed=cfg.seed, max_steps=cfg.steps,
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations, num_generations=cfg.num_generations,
        learning_rate=cfg.lr, lr_scheduler_type="constant", warmup_steps=0, beta=cfg.beta,
        max_grad_norm=cfg.max_grad_norm, num_iterations=cfg.num_iterations, scale_rewards=cfg.scale_rewards,
        logging_steps=1, save_strategy="steps", save_steps=cfg.checkpoint_every, save_total_limit=2,
        report_to=[], activation_checkpointing=False, bf16=False, disable_dropout=True, disable_tqdm=True,
        dataloader_num_workers=0, reward_weights=[1.0, cfg.adherence_weight] if cfg.adherence_weight else None)
    n_rows = cfg.steps * cfg.prompts_per_step
    order = np.random.default_rng(cfg.seed).permutation(np.resize(np.arange(len(train_prompts.captions)), n_rows))
    dataset = Dataset.from_dict({"prompt": [train_prompts.captions[i] for i in order]})
    reward_funcs = [as_trl_reward(reward, cfg.reward.split(":")[-1])]
    if cfg.adherence_weight:
        from components.rlaif.adherence import PromptAdherence

        reward_funcs.append(as_trl_reward(PromptAdherence(prepare_policy(model_dir), train_prompts), "prompt_adherence"))
    return LyraGRPOTrainer(model=policy, reward_funcs=reward_funcs, args=args, train_dataset=dataset,
                           processing_class=vocab.tokenizer(), rollout_func=LyraRollout(train_prompts, vocab, cfg.seed),
                           prompt_table=train_prompts, vocab=vocab,
                           callbacks=[monitor_callback(valid_prompts, reward, codec, cfg, judge)]
                           if cfg.monitor_every else None)


def training_summary(cfg: RLAIFConfig, history: dict, metrics: dict, resume: str | None) -> dict:
    return {
        "eval_split": cfg.eval_split, "steps": cfg.steps, "beta": cfg.beta, "reward_model": cfg.reward,
        "adherence_weight": cfg.adherence_weight, "resumed_from": Path(resume).name if resume else None,
        "train_reward_first": history["reward"][0][1] if history["reward"] else None,
        "train_reward_last": history["reward"][-1][1] if history["reward"] else None,
        "train_kl_last": history["kl"][-1][1] if history["kl"] else None,
        "max_kl_per_code": cfg.max_kl_per_code, "within_kl_bound": metrics["kl_nats_per_code"] <= cfg.max_kl_per_code,
        "improved": bool(metrics["reward_gain_ci_excludes_zero"]),
    }


def log_evaluation(log, metrics: dict, cfg: RLAIFConfig) -> None:
    log.info("held-out reward %.4f -> %.4f (gain %.4f, 95%% CI [%.4f, %.4f]); KL %.3f nats/code (bound %.3f); "
             "best-of-%d at that KL %.4f; diversity %.3f -> %.3f; silent %.2f -> %.2f; "
             "judge hears the instrument %.2f -> %.2f (n=%d, p(worse)=%.3g)",
             metrics["reward_pretrained"], metrics["reward_post_trained"], metrics["reward_gain"],
             *metrics["reward_gain_ci95"], metrics["kl_nats_per_code"], cfg.max_kl_per_code, metrics["best_of_n"],
             metrics["reward_best_of_n"], metrics["diversity_pretrained"], metrics["diversity_post_trained"],
             metrics["silent_fraction_pretrained"], metrics["silent_fraction_post_trained"],
             metrics["judge_instrument_accuracy_pretrained"], metrics["judge_instrument_accuracy_post_trained"],
             metrics["judge_n"], metrics["judge_p_post_worse"])
    if "independent_kad_difference" in metrics:
        log.info("independent evaluator (musicnn): KAD to real %s clips %.2f -> %.2f (post - pre %.2f, 95%% CI "
                 "[%.2f, %.2f], n=%d); adherence %s", cfg.eval_split, metrics["independent_kad_pretrained"],
                 metrics["independent_kad_post_trained"], metrics["independent_kad_difference"],
                 *metrics["independent_kad_difference_interval95"], metrics["independent_n"],
                 "%.3f -> %.3f (p(worse)=%.3g, n=%d)" % (metrics["independent_adherence_pretrained"],
                                                         metrics["independent_adherence_post_trained"],
                                                         metrics["independent_adherence_p_post_worse"],
                                                         metrics["independent_adherence_n"])
                 if "independent_adherence_n" in metrics else "not measured (no instrument the tagger has)")


def run_rlaif(cfg: RLAIFConfig, model_dir, codec_dir, tokens, out, metrics_path=None, judge_dir=None) -> dict:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    # TRL 1.16 calls a transformers property renamed in 5.x once per step: one line of noise per step in the log
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    import trl  # noqa: F401  (TRL loads with the settings above, before any seed is set)

    from components.omnicodec import decoding as codec_io
    from components.evaluation.real_sets import codec_round_trip
    from components.rlaif.evaluate import IndependentCheck, evaluate
    from components.tokens.dataset import TokenDataset
    from components.rlaif.plots import plot_reward_and_kl

    model_dir, codec_dir, tokens, out = Path(model_dir), Path(codec_dir), Path(tokens), Path(out)
    judge_dir = None if judge_dir is None else Path(judge_dir)
    if not (tokens / "meta.json").is_file():
        raise RLAIFError(f"{tokens} is not a token-shard folder (no meta.json); run `lyra tokens build` first")
    with stage_run(STAGE) as run:
        log = run.log
        torch.manual_seed(cfg.seed)
        policy = prepare_policy(model_dir)
        codec = codec_io.load_codec(codec_dir)
        codec_io.check_compatible(codec, policy.config)
        judge, instrument_of = load_judge(judge_dir)
        prompts = train_prompts, valid_prompts, test_prompts = prompt_tables(cfg, tokens, instrument_of)
        reward = build_reward(cfg, codec, tokens, cfg.seconds, log)
        root, resume = checkpoint_dir(out, run_fingerprint(cfg, model_dir, codec_dir, tokens), log)
        log.info("GRPO: %d steps x %d prompts x %d rollouts of %.1f s (%d frames); beta %.3g; %d training prompts, "
                 "%d valid, %d test%s", cfg.steps, cfg.prompts_per_step, cfg.num_generations, cfg.seconds,
                 n_frames(policy, cfg.seconds), cfg.beta, len(train_prompts.captions), len(valid_prompts.captions),
                 len(test_prompts.captions), f"; resuming from {Path(resume).name}" if resume else "")
        trainer = grpo_trainer(cfg, policy, model_dir, codec, reward, prompts, root, judge)
        trainer.train(resume_from_checkpoint=resume)
        history = history_of(trainer.state.log_history)
        policy = trainer.accelerator.unwrap_model(trainer.model).eval()
        for step, kl in history["kl"][-5:]:
            log.info("step %d: reward %.4f, KL %.4f nats/code", step, dict(history["reward"])[step], kl)

        pretrained = prepare_policy(model_dir).eval()
        eval_prompts = test_prompts if cfg.eval_split == "test" else valid_prompts
        real = codec_round_trip(TokenDataset(tokens, split=cfg.eval_split), codec, cfg.seconds)
        n_read = len(eval_prompts.captions) * min(cfg.independent_samples, cfg.eval_samples)
        independent = IndependentCheck(real, codec.sample_rate) if min(len(real), n_read) >= 2 else None
        metrics = evaluate(pretrained, policy, eval_prompts, reward, codec, samples=cfg.eval_samples, seed=cfg.seed,
                           n_bootstrap=cfg.bootstrap, best_of_n_max=cfg.best_of_n_max, judge=judge,
                           independent=independent, independent_samples=cfg.independent_samples)
        metrics.update(training_summary(cfg, history, metrics, resume))
        if judge_dir is not None and not metrics["judge_n"]:
            metrics["not_measurable"] = {"judge_instrument": (
                "the judge has no instrument head (the corpus has too few instrument tags to train one)"
                if judge is None else f"none of the {len(eval_prompts.captions)} {cfg.eval_split} prompts' clips "
                "has an instrument tag the judge learnt")}
        log_evaluation(log, metrics, cfg)
        with run.output(out, inputs={"model": model_dir, "codec": codec_dir, "tokens": tokens,
                                     **({"judge": judge_dir} if judge_dir else {})},
                        params=cfg, lineage={"metrics": metrics}) as staged:
            policy.save_pretrained(staged.dir)
            atomic_write_json(staged.dir / "rlaif.json", {"history": history, "metrics": metrics,
                                                          "config": cfg.model_dump(mode="json"),
                                                          "train_prompts": len(train_prompts.captions),
                                                          "valid_prompts": valid_prompts.captions,
                                                          "test_prompts": test_prompts.captions})
            plot_reward_and_kl(staged.image("reward_kl", "reward_kl.png"), history, metrics)
        shutil.rmtree(root, ignore_errors=True)
        run.add_path("model", out)
        run.finish(metrics, metrics_path)
    return metrics


def main(args) -> int:
    from components.config import config_from_args

    cfg = config_from_args("rlaif", RLAIFConfig, args)
    run_rlaif(cfg, args.model, args.codec, args.tokens, args.out, args.metrics, judge_dir=args.judge)
    return 0

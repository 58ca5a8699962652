"""A static evaluation report per model version: one HTML page with everything needed to judge it.

    <store>/reports/<model>/<version>/index.html    metrics, checks, lineage, plots, audio
                                     /media/         copied plots, wav files and their spectrograms

The page needs no server (relative links only), so it opens from disk, from a DVC pull, or behind
any static file server; the registry entry and the Dagster materialization link to it.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

import numpy as np

from components.common.atomic import atomic_dir

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left;
font-size:.9em}th{background:#f3f3f3}.ok{color:#176d2c;font-weight:600}.bad{color:#b3261e;font-weight:600}
figure{display:inline-block;margin:.5em;vertical-align:top}figure img{max-width:520px}
.clip{display:inline-block;margin:.5em;width:340px;vertical-align:top}.clip img{width:340px}code{font-size:.85em}"""


def _esc(value) -> str:
    return html.escape(str(value))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return _esc(value)


def _metrics_table(metrics: dict) -> str:
    scalars = {k: v for k, v in sorted(metrics.items()) if isinstance(v, (int, float, str, bool)) or v is None}
    rest = {k: v for k, v in metrics.items() if k not in scalars}
    rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in scalars.items())
    more = (f"<details><summary>lists and tables ({len(rest)})</summary><pre>{_esc(json.dumps(rest, indent=1, default=str))}"
            "</pre></details>") if rest else ""
    return f"<table><tr><th>metric</th><th>value</th></tr>{rows}</table>{more}"


def _spectrogram_png(wav: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from components.common.audio import read_audio, to_mono
    from components.common.mel import log_mel_spectrogram

    audio, sr = read_audio(wav)
    mono = np.ascontiguousarray(to_mono(audio), dtype=np.float32)
    mel = log_mel_spectrogram(torch.from_numpy(mono), sr, n_fft=1024, n_mels=80).numpy()
    fig, ax = plt.subplots(figsize=(4.2, 1.8), dpi=90)
    ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=(0, len(mono) / sr, 0, mel.shape[0]))
    ax.set_xlabel("s", fontsize=7)
    ax.set_ylabel("mel band", fontsize=7)
    ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def _history_png(registry, entry: dict, png: Path) -> bool:
    """Each compared metric over the model's registered versions (this one last)."""
    spec = registry.spec(entry["model"])
    if not spec.compare:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    versions = [registry.entry(entry["model"], v) for v in registry.versions(entry["model"])] + [entry]
    fig, axes = plt.subplots(1, len(spec.compare), figsize=(4.5 * len(spec.compare), 2.8), dpi=90, squeeze=False)
    for ax, (key, rule) in zip(axes[0], spec.compare.items()):
        stage, _, metric = key.partition(".")
        values = [e["metrics"].get(stage, {}).get(metric) for e in versions]
        xs = [i for i, v in enumerate(values) if v is not None]
        ax.plot(xs, [values[i] for i in xs], marker="o")
        ax.set_xticks(range(len(versions)), [e["version"] for e in versions], fontsize=7, rotation=30)
        ax.set_title(f"{key} ({'higher' if rule.higher_is_better else 'lower'} is better)", fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return True


# ORAQL's own figures shown beside the independent ones (RLAIF's reward is ORAQL; best-of-n picks by it)
ORAQL_KEYS = ("reward_pretrained", "reward_post_trained", "best_of_1_mean", "best_of_8_mean")


def _is_compared(key: str, value) -> bool:
    shown = "independent" in key or key in ORAQL_KEYS
    return shown and (isinstance(value, (int, float, bool)) or (isinstance(value, list) and len(value) == 2))


def _previous(registry, entry: dict) -> dict | None:
    from components.registry.registry import _version_key

    older = [v for v in registry.versions(entry["model"]) if _version_key(v) < _version_key(entry["version"])]
    return registry.entry(entry["model"], older[-1]) if older else None


def _cell(value) -> str:
    if isinstance(value, list):
        return f"[{_fmt(value[0])}, {_fmt(value[1])}]"
    return "" if value is None else _fmt(value)


def _independent_section(registry, entry: dict, folders: list[Path]) -> str:
    """The evaluator nobody here trained (components/evaluation): the calibrated table of the version's sets
    (MusicGen-style: KAD with its interval, FAD, tag KL, adherence, Vendi) and its figures beside the previous
    registered version's, with ORAQL's where the stage has them."""
    from components.evaluation.report import table_rows

    parts = []
    for folder in folders:
        path = folder / "independent.json"
        if not path.is_file():
            continue
        rows = table_rows(json.loads(path.read_text()))
        body = "".join(f"<tr><td>{_esc(name)}</td><td>{r['n']}</td><td>{_fmt(r['kad'])} {_cell(r['kad_interval'])}</td>"
                       f"<td>{_cell(r['fad'])}</td><td>{_cell(r['kl'])}</td><td>{_cell(r['adherence'])}</td>"
                       f"<td>{_cell(r['vendi'])}</td></tr>" for name, r in rows.items())
        parts.append(f"<p>{_esc(os.path.relpath(path, registry.repo))}: every set against the real held-out clips"
                     "</p><table><tr><th>set</th><th>n</th><th>KAD x1000 [95 % interval]</th><th>FAD</th>"
                     f"<th>tag KL to the prompt's clip</th><th>adherence</th><th>Vendi</th></tr>{body}</table>")
    previous = _previous(registry, entry)
    keys = [(stage, k) for stage, m in entry["metrics"].items() for k, v in m.items() if _is_compared(k, v)]
    if keys:
        head = f"<th>{_esc(previous['version'])} (previous)</th>" if previous else "<th>previous</th>"
        body = "".join(
            f"<tr><td>{_esc(stage)}.{_esc(k)}</td><td>{_cell(entry['metrics'][stage][k])}</td>"
            f"<td>{_cell(previous['metrics'].get(stage, {}).get(k)) if previous else 'none registered'}</td></tr>"
            for stage, k in keys)
        parts.append(f"<table><tr><th>metric</th><th>{_esc(entry['version'])} (this)</th>{head}</tr>{body}</table>")
    if not parts:
        return "<p>no independent evaluation recorded for this model's stages</p>"
    return "".join(parts)


def _sources(registry, entry: dict) -> list[Path]:
    from components.pipeline import stage_by_name

    spec = registry.spec(entry["model"])
    folders = [registry.model_folder(entry["model"])]
    for stage in spec.evaluations:
        folders += [registry.repo / o for o in stage_by_name(stage).outs]
    return [f for f in folders if f.is_dir()]


def write_report(registry, entry: dict) -> Path:
    """Render the version's report into the store; the path of its index.html."""
    name, version = entry["model"], entry["version"]
    final = registry.report_path(name, version).parent
    with atomic_dir(final) as out:
        media = out / "media"
        media.mkdir()
        figures, clips = [], []
        if _history_png(registry, entry, media / "history.png"):
            figures.append(("media/history.png", "compared metrics across registered versions"))
        for folder in _sources(registry, entry):
            tag = folder.name
            for png in sorted(folder.glob("*.png")):
                shutil.copy2(png, media / f"{tag}__{png.name}")
                figures.append((f"media/{tag}__{png.name}", f"{os.path.relpath(png, registry.repo)}"))
            wavs = sorted(folder.rglob("*.wav"))[: registry.config.report_audio_per_source]
            for wav in wavs:
                stem = f"{tag}__{wav.relative_to(folder).as_posix().replace('/', '__')}"
                shutil.copy2(wav, media / stem)
                _spectrogram_png(wav, media / f"{stem}.png")
                clips.append((f"media/{stem}", f"media/{stem}.png", os.path.relpath(wav, registry.repo)))
        independent = _independent_section(registry, entry, _sources(registry, entry))
        (out / "index.html").write_text(_page(registry, entry, figures, clips, independent))
    return final / "index.html"


def _page(registry, entry: dict, figures: list, clips: list, independent: str = "") -> str:
    lineage = entry["lineage"]
    checks = "".join(
        f"<tr><td>{_esc(c)}</td><td class={'ok' if r['passed'] else 'bad'}>{'passed' if r['passed'] else 'FAILED'}</td>"
        f"<td>{_esc(', '.join(f'{k}={v}' for k, v in r['rules'].items()) or 'no rule configured')}</td>"
        f"<td>{_esc(', '.join(f'{k} {_fmt(v)}' for k, v in r.get('numbers', {}).items()))}</td></tr>"
        for c, r in entry["checks"].items()) or "<tr><td colspan=4>no blocking check configured</td></tr>"
    parents = "".join(f"<li>{_esc(p)} <a href='../../{_esc(p)}/{_esc(v['version'])}/index.html'>{_esc(v['version'])}</a>"
                      f" <code>{_esc(v['digest'][:12])}</code></li>" for p, v in lineage["parents"].items()) or "<li>none</li>"
    data = "".join(f"<tr><td>{kind[:-1]}</td><td>{_esc(k)}</td><td><code>{_esc(v)}</code></td></tr>"
                   for kind in ("deps", "outs") for k, v in lineage["data"][kind].items())
    files = "".join(f"<tr><td>{_esc(n)}</td><td>{m['bytes']:,}</td><td><code>{_esc(m['sha256'][:16])}</code></td></tr>"
                    for n, m in entry["artifact"]["files"].items())
    metrics = "".join(f"<h3>{_esc(stage)}</h3>{_metrics_table(m)}" for stage, m in entry["metrics"].items())
    figs = "".join(f"<figure><img src='{_esc(src)}' alt='{_esc(cap)}'><figcaption>{_esc(cap)}</figcaption></figure>"
                   for src, cap in figures)
    audio = "".join(f"<div class=clip><audio controls preload=none src='{_esc(wav)}'></audio>"
                    f"<img src='{_esc(spec)}' alt='spectrogram of {_esc(origin)}'><div><code>{_esc(origin)}</code></div></div>"
                    for wav, spec, origin in clips) or "<p>no audio examples in this model's folders</p>"
    return f"""<!doctype html><html><head><meta charset=utf-8><title>{_esc(entry['model'])} {_esc(entry['version'])}</title>
<style>{STYLE}</style></head><body>
<h1>{_esc(entry['model'])} {_esc(entry['version'])}</h1>
<p>registered {_esc(entry['registered_at'])} by {_esc(entry['registered_by'])} from stage <code>{_esc(lineage['stage'])}</code>
at git <code>{_esc(lineage['git_revision'])}</code>; weights <code>{_esc(entry['artifact']['digest'])}</code></p>
<h2>Blocking checks</h2><table><tr><th>check</th><th>verdict</th><th>rules</th><th>numbers</th></tr>{checks}</table>
<h2>Independent evaluation (musicnn, trained elsewhere on real recordings)</h2>{independent}
<h2>Metrics</h2>{metrics}
<h2>Plots</h2>{figs}
<h2>Audio examples</h2>{audio}
<h2>Lineage</h2>
<p>trained at git <code>{_esc(lineage['trained_at_git_revision'])}</code>, stage code version <code>{_esc(lineage['code_version'])}</code>;
held-out set <code>{_esc(entry['held_out']['digest'])}</code></p>
<h3>Parent models</h3><ul>{parents}</ul>
<h3>Data versions (dvc.lock md5)</h3><table><tr><th>read / written</th><th>path</th><th>version</th></tr>{data}</table>
<h3>Deployable files</h3><table><tr><th>file</th><th>bytes</th><th>sha256</th></tr>{files}</table>
<details><summary>params</summary><pre>{_esc(json.dumps(lineage['params'], indent=1, default=str))}</pre></details>
</body></html>
"""

"""A library grows by 10 files: curation, captioning and token encoding over their previous outputs against the
same three stages run afresh on the grown library, in one run. Prints the counts (files curated, clips analysed,
clips encoded), whether the outputs equal the fresh run's, and the times; the last line is the speed-up of the
incremental pass.

The library is the demo corpus's first 190 recordings (and their sidecars), then all 200: what a team's
nightly ingest looks like. Both stages run with the tiny profile's settings as `lyra curate` / `lyra caption`
(one worker: the 2-core machine runs them one at a time). Tokens are encoded with the demo's OmniCodec
(data/models/omnicodec), or, where there is none, a small untrained one (the counts and the equality hold; the
codes mean nothing).

    python benchmarks/incremental_ingest.py [--corpus data/corpus/audio] [--first 190] [--added 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LYRA = str(Path(sys.executable).parent / "lyra")


def lyra(*args: str) -> tuple[float, dict]:
    with tempfile.NamedTemporaryFile(suffix=".json") as metrics:
        start = time.perf_counter()
        subprocess.run([LYRA, *args, "--metrics", metrics.name], check=True, capture_output=True, text=True)
        return time.perf_counter() - start, json.loads(Path(metrics.name).read_text())


def copy_recordings(corpus: Path, names: list[str], library: Path) -> None:
    library.mkdir(parents=True, exist_ok=True)
    for name in names:
        for path in (corpus / name, (corpus / name).with_suffix(".json")):
            if path.is_file():
                shutil.copy2(path, library / path.name)


def untrained_codec(folder: Path) -> Path:
    from components.omnicodec.config import CodecModelConfig
    from components.omnicodec.model import build_codec

    build_codec(CodecModelConfig(channels=4, decoder_channels=16, latent_dim=16, num_codebooks=2, codebook_size=64),
                seed=0).save_pretrained(folder)
    return folder


def same_tokens(a: Path, b: Path) -> bool:
    from components.tokens import TokenDataset

    codes = {c.clip_id: c.codes for c in TokenDataset(a, split=None)}
    fresh = {c.clip_id: c.codes for c in TokenDataset(b, split=None)}
    return codes.keys() == fresh.keys() and all((codes[c] == fresh[c]).all() for c in fresh)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus/audio"))
    parser.add_argument("--first", type=int, default=190)
    parser.add_argument("--added", type=int, default=10)
    parser.add_argument("--codec", type=Path, default=Path("data/models/omnicodec"))
    parser.add_argument("--no-tokens", action="store_true", help="curation and captioning only")
    parser.add_argument("--curation-only", action="store_true", help="curation only (what CI's small run checks)")
    args = parser.parse_args()
    audio = sorted(p.name for p in args.corpus.iterdir() if p.suffix in (".wav", ".flac", ".ogg", ".mp3"))
    if len(audio) < args.first + args.added:
        print(f"{args.corpus} has {len(audio)} recordings; run `make demo` (or lyra corpus demo) first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        library = tmp / "library"
        copy_recordings(args.corpus, audio[:args.first], library)
        curated, captions = tmp / "curated", tmp / "captions"
        lyra("curate", "--input", str(library), "--out", str(curated))
        if args.curation_only:
            args.no_tokens = True
        else:
            lyra("caption", "--curated", str(curated), "--out", str(captions))
        codec = args.codec if (args.codec / "config.json").is_file() else untrained_codec(tmp / "codec")
        tokens = ("tokens", "build", "--codec", str(codec))
        if not args.no_tokens:
            lyra(*tokens, "--curated", str(curated), "--captions", str(captions), "--out", str(tmp / "tokens"))

        copy_recordings(args.corpus, audio[args.first:args.first + args.added], library)   # the library grows
        t_cur, m_cur = lyra("curate", "--input", str(library), "--out", str(curated))
        t_cur0, m_cur0 = lyra("curate", "--input", str(library), "--out", str(tmp / "curated_fresh"), "--afresh")
        t_cap = t_cap0 = 0.0
        if not args.curation_only:
            t_cap, m_cap = lyra("caption", "--curated", str(curated), "--out", str(captions))
            t_cap0, m_cap0 = lyra("caption", "--curated", str(tmp / "curated_fresh"), "--out", str(tmp / "captions_fresh"))
        t_tok = t_tok0 = 0.0
        if not args.no_tokens:
            t_tok, m_tok = lyra(*tokens, "--curated", str(curated), "--captions", str(captions), "--out",
                                str(tmp / "tokens"))
            t_tok0, m_tok0 = lyra(*tokens, "--curated", str(curated), "--captions", str(captions), "--out",
                                  str(tmp / "tokens_fresh"), "--set", "reuse_unchanged_shards=false")
            same_codes = same_tokens(tmp / "tokens", tmp / "tokens_fresh")

        same = all((curated / f).read_bytes() == (tmp / "curated_fresh" / f).read_bytes()
                   for f in ("manifest.parquet", "quarantine.parquet"))
        same_captions = args.curation_only or \
            (captions / "captions.parquet").read_bytes() == (tmp / "captions_fresh" / "captions.parquet").read_bytes()

    print(f"library: {args.first} recordings, then {args.first + args.added}")
    print(f"{'':24s} {'incremental':>12s} {'afresh':>12s}")
    print(f"{'curation: files decoded':24s} {m_cur['files_processed']:12d} {m_cur0['files_processed']:12d}"
          f"   (reused {m_cur['files_reused']}, removed {m_cur['files_removed']})")
    if not args.curation_only:
        print(f"{'captioning: clips analysed':24s} {m_cap['clips_analysed']:12d} {m_cap0['clips_analysed']:12d}"
              f"   (reused {m_cap['clips_analysis_reused']})")
    if not args.no_tokens:
        print(f"{'tokens: clips encoded':24s} {m_tok['clips_encoded']:12d} {m_tok0['clips_encoded']:12d}"
              f"   (codes reused {m_tok['clips_reused']}; shards {m_tok['n_shards']}, {m_tok['shards_reused']} kept whole)")
    print(f"{'curation: seconds':24s} {t_cur:12.1f} {t_cur0:12.1f}")
    if not args.curation_only:
        print(f"{'captioning: seconds':24s} {t_cap:12.1f} {t_cap0:12.1f}")
    if not args.no_tokens:
        print(f"{'tokens: seconds':24s} {t_tok:12.1f} {t_tok0:12.1f}")
    print(f"outputs equal to the fresh run: manifest and quarantine {same}, captions {same_captions}"
          + ("" if args.no_tokens else f", token codes {same_codes}" + ("" if codec == args.codec else " (untrained codec)")))
    print(f"incremental_ingest_speedup: {(t_cur0 + t_cap0 + t_tok0) / (t_cur + t_cap + t_tok):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`lyra serve`'s settings: params.yaml `serve` (typed; every default runs on a laptop)."""

from __future__ import annotations

from pydantic import Field

from components.config import StageConfig


class ServeConfig(StageConfig):
    host: str = "127.0.0.1"          # loopback unless a deployment says otherwise (the pod sets 0.0.0.0)
    port: int = Field(8765, ge=0, le=65535)   # 0: any free port
    model: str = "lyra@production"   # a registry reference (name@stage, name@vX.Y.Z) or a model folder
    candidate: str | None = None     # a second version the listening page pairs against `model`
    codec: str = "omnicodec@production"
    oraql: str = "oraql@production"  # picks among best-of-n candidates
    max_batch_rows: int = Field(16, ge=1)        # rows of one forward pass (a best-of-n request is n rows)
    batch_window_ms: float = Field(10.0, ge=0.0)  # how long the batcher waits for more requests to join
    max_seconds: float = Field(10.0, gt=0.0)     # the longest piece one request may ask for
    max_best_of: int = Field(8, ge=1)
    max_upload_bytes: int = Field(10_000_000, ge=1)   # reference songs
    max_prompt_chars: int = Field(500, ge=1)
    max_queue: int = Field(256, ge=1)            # requests waiting beyond this are answered 503 (Retry-After)
    watch_seconds: float = Field(5.0, gt=0.0)    # how often the registry is asked who holds the stage
    # the listening room (votes and the pairs' audio live where params.yaml `listening` says)
    pair_seconds: float = Field(5.0, gt=0.0)
    pair_prompts: list[str] = [                  # phrased like the demo corpus's captions
        "Baroque chorale in A minor, 4/4, about 77 bpm, in the style of Bach, played by strings; warm and calm.",
        "Song in D major, 6/8, about 120 bpm, played on the organ; bright and energetic.",
        "Late-Renaissance madrigal in D minor, 4/4, about 116 bpm, played on the harpsichord; bright and flowing.",
        "Traditional reel in G major, 2/4, about 200 bpm, played on the guitar; bright and energetic.",
        "Baroque chorale in B-flat major, 4/4, about 69 bpm, played on the piano; dark and calm.",
        "Renaissance mass movement in A minor, 4/2, about 96 bpm, sung by a choir; dark and calm.",
    ]
    reports: str = "data/registry/reports"       # served at /reports/ (every link in the UI opens over HTTP)

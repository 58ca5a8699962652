"""How a stage talks to whoever started it: logs, progress, metrics, materialization metadata.

Started by Dagster (through Dagster Pipes) the stage's logs, metadata and check results flow back
into the Dagster event log; started by hand or by `dvc repro` the same calls only log. In a
multi-process (torchrun) run only rank 0 opens the Pipes channel, so each event arrives once.

    with stage_run("curated_clips") as run:
        for f in run.progress(files, desc="decoding", unit="file"): ...
        run.add_metadata(n_clips=123, loudness_mean=-23.0)
        run.add_image("spectrograms", "out/spectrograms.png")
        run.finish(metrics, metrics_path)   # writes metrics json, reports the materialization
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, TypeVar

from tqdm.auto import tqdm

from components.common.atomic import atomic_dir, atomic_write_json
from components.common.lineage import write_lineage

T = TypeVar("T")
PIPES_ENV = "DAGSTER_PIPES_CONTEXT"


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def launched_by_dagster() -> bool:
    return PIPES_ENV in os.environ


def setup_logging(name: str) -> logging.Logger:
    level = os.environ.get("LYRA_LOG_LEVEL", "INFO").upper()
    prefix = f"[rank {rank()}] " if "WORLD_SIZE" in os.environ and os.environ["WORLD_SIZE"] != "1" else ""
    logging.basicConfig(
        level=level, stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s", datefmt="%H:%M:%S",
    )
    return logging.getLogger(f"lyra.{name}")


class _PipesHandler(logging.Handler):
    """Forward a stage's log records into the Dagster event log."""

    def __init__(self, pipes_logger: logging.Logger):
        super().__init__(level=logging.INFO)
        self._pipes_logger = pipes_logger

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self._pipes_logger.log(record.levelno, self.format(record))


def pipes_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Make any metadata dict acceptable to dagster-pipes: plain scalars stay as they are,
    `{raw_value, type}` entries pass through, other dicts/lists/tuples become JSON metadata."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, dict) and set(value) == {"raw_value", "type"}:
            out[key] = value
        elif isinstance(value, (dict, list, tuple)):
            out[key] = {"raw_value": json.loads(json.dumps(value, default=str)), "type": "json"}
        elif value is None or isinstance(value, (str, bool, int, float)):
            out[key] = value
        elif hasattr(value, "item"):  # numpy scalar
            out[key] = value.item()
        else:
            out[key] = str(value)
    return out


def md_image(png_path: str | os.PathLike, alt: str = "") -> str:
    """A markdown image with the PNG inlined, so the Dagster UI shows it without a file server."""
    data = base64.b64encode(Path(png_path).read_bytes()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{data})"


@dataclasses.dataclass
class StagedOutput:
    """A stage's output folder while it is written (see StageRun.output)."""

    dir: Path                                  # the staging folder: write everything here
    lineage: dict                              # facts lineage.json records besides inputs, params, code (e.g. metrics)
    images: dict[str, str] = dataclasses.field(default_factory=dict)   # metadata key -> file in the folder

    def image(self, key: str, name: str) -> Path:
        """Where to write a plot that the run shows in Dagster under `key` once the folder is published."""
        self.images[key] = name
        return self.dir / name


class StageRun:
    def __init__(self, name: str, pipes: Any | None):
        self.name = name
        self.log = setup_logging(name)
        self.pipes = pipes
        self.metadata: dict[str, Any] = {}
        self._reported = False
        if pipes is not None:
            handler = _PipesHandler(pipes.log)
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.log.addHandler(handler)

    @property
    def is_main(self) -> bool:
        return rank() == 0

    @property
    def extras(self) -> Mapping[str, Any]:
        """Values the orchestrator passed along (Pipes extras), empty when run by hand."""
        return dict(self.pipes.extras) if self.pipes is not None else {}

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it", **kw) -> Iterator[T]:
        """A progress bar on stderr; quieter (every 10 s) when stderr is not a terminal, e.g. under Dagster."""
        interactive = sys.stderr.isatty()
        return tqdm(
            iterable, desc=desc, total=total, unit=unit, disable=not self.is_main,
            mininterval=0.2 if interactive else 10.0, dynamic_ncols=True, **kw,
        )

    def add_metadata(self, **values: Any) -> None:
        self.metadata.update(values)

    def add_markdown(self, key: str, text: str) -> None:
        self.metadata[key] = {"raw_value": text, "type": "md"}

    def add_image(self, key: str, png_path: str | os.PathLike) -> None:
        self.add_markdown(key, md_image(png_path, alt=key))
        self.metadata[f"{key}_path"] = {"raw_value": os.fspath(png_path), "type": "path"}

    def add_path(self, key: str, path: str | os.PathLike) -> None:
        self.metadata[key] = {"raw_value": os.fspath(path), "type": "path"}

    def report_check(self, check_name: str, passed: bool, *, metadata: Mapping[str, Any] | None = None) -> None:
        """Record a self-check in the stage's metadata and log. The blocking Dagster asset checks
        live in orchestration/ and re-validate the written files, so a stage never gates itself."""
        level = logging.INFO if passed else logging.ERROR
        self.log.log(level, "check %s: %s", check_name, "passed" if passed else "FAILED")
        self.metadata[f"check_{check_name}"] = bool(passed)
        for key, value in (metadata or {}).items():
            if isinstance(value, (int, float, str, bool)):
                self.metadata[f"check_{check_name}_{key}"] = value

    @contextlib.contextmanager
    def output(self, out: str | os.PathLike, *, inputs: Mapping[str, str | os.PathLike], params: Any = None,
               lineage: Mapping[str, Any] | None = None) -> Iterator[StagedOutput]:
        """The one way a stage writes its output folder: files go into `staged.dir`; on success lineage.json is
        added (inputs with their digests, params, the stage's code version, `staged.lineage`), the folder
        replaces `out` as a whole (an exception leaves the previous `out` as it was), and the images named
        with `staged.image(...)` join the run's metadata. The metrics file comes after, with `finish`."""
        with atomic_dir(out) as staging:
            staged = StagedOutput(Path(staging), dict(lineage or {}))
            yield staged
            write_lineage(staging, stage=self.name, inputs=inputs, params=params, extra=staged.lineage)
        for key, name in staged.images.items():
            self.add_image(key, Path(out) / name)

    def finish(self, metrics: Mapping[str, Any] | None = None, metrics_path: str | os.PathLike | None = None,
               *, asset_key: str | None = None, data_version: str | None = None) -> None:
        """Write the metrics file (atomically) and report the materialization with all metadata."""
        metrics = dict(metrics or {})
        if metrics_path is not None and self.is_main:
            atomic_write_json(metrics_path, metrics)
        for key, value in metrics.items():
            if isinstance(value, (int, float, str, bool)) and key not in self.metadata:
                self.metadata[key] = value
        if self.pipes is not None and self.is_main:
            self.pipes.report_asset_materialization(metadata=pipes_metadata(self.metadata), data_version=data_version,
                                                    asset_key=asset_key)
        self._reported = True


@contextlib.contextmanager
def stage_run(name: str) -> Iterator[StageRun]:
    """Open the stage's reporting channel (Dagster Pipes when launched by Dagster, rank 0 only)."""
    if launched_by_dagster() and rank() == 0:
        from dagster_pipes import open_dagster_pipes

        with open_dagster_pipes() as pipes:
            yield StageRun(name, pipes)
    else:
        yield StageRun(name, None)

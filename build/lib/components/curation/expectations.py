"""Great Expectations suites for the curation tables (great-expectations 1.x, imported lazily: ~3 s).

    validate_manifest(df, config) -> ValidationReport    # durations, rate, loudness, ids, splits, clipping
    validate_quarantine(df)       -> ValidationReport    # known reason codes, source_file present

The orchestrator turns these into blocking Dagster asset checks (`report.success`,
`report.to_metadata()`); `lyra curate` runs them too and records the result without failing.
Each call builds an ephemeral context, so nothing is written to disk and calls do not interfere.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from typing import Any

import pandas as pd

from components.common.splits import SPLITS
from components.curation.config import CurationConfig
from components.curation.reasons import REASONS

MANIFEST_REQUIRED = ("clip_id", "path", "source_file", "piece_id", "split", "segment_index", "start_s", "duration_s",
                     "source_duration_s", "sample_rate", "loudness_lufs", "peak_dbfs", "clipped_fraction",
                     "fingerprint", "meta")
QUARANTINE_REQUIRED = ("source_file", "clip_id", "reason", "detail")
MAX_EXAMPLES = 5
_EPS = 1e-3  # durations/loudness are rounded to 4 / 3 decimals in the manifest


@dataclasses.dataclass
class ValidationReport:
    suite: str
    success: bool
    failures: list[dict]     # {"expectation", "column", "unexpected_count", "unexpected_values", "detail"}
    statistics: dict         # evaluated / successful / unsuccessful expectations, success_percent, rows

    def to_metadata(self) -> dict[str, Any]:
        """A flat dict of plain values, ready to be Dagster check/materialization metadata."""
        meta: dict[str, Any] = {"suite": self.suite, "success": self.success, "failed_expectations": len(self.failures)}
        for key, value in self.statistics.items():
            meta[key] = value
        for failure in self.failures:
            name = failure["expectation"].removeprefix("expect_")
            key = f"failed.{name}" + (f".{failure['column']}" if failure["column"] else "")
            meta[key] = failure["unexpected_count"] if failure["unexpected_count"] is not None else failure["detail"]
        if self.failures:
            meta["failures"] = json.dumps(self.failures, default=str)[:4000]
        return meta


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def _gx():
    """Import great_expectations quietly: no usage statistics, none of its ~200 INFO lines per import."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    import great_expectations.expectations  # noqa: F401  (gx.expectations)

    return gx


def _run_suite(name: str, df: pd.DataFrame, expectations: list) -> ValidationReport:
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = context.data_sources.add_pandas(f"{name}_source").add_dataframe_asset(name) \
        .add_batch_definition_whole_dataframe("whole_table")
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for expectation in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=f"{name}_validation", data=batch,
                                                                            suite=suite))
    result = definition.run(batch_parameters={"dataframe": df}, result_format="COMPLETE")

    failures = []
    for res in result.results:
        if res.success:
            continue
        config = res.expectation_config
        raised = (res.exception_info or {}).get("raised_exception")
        values = res.result.get("partial_unexpected_list") or res.result.get("unexpected_list") or []
        failures.append({
            "expectation": config.type,
            "column": config.kwargs.get("column") or ",".join(config.kwargs.get("column_list") or []) or None,
            "unexpected_count": res.result.get("unexpected_count"),
            "unexpected_values": [_plain(v) for v in values[:MAX_EXAMPLES]],
            "detail": (res.exception_info or {}).get("exception_message") if raised
            else f"observed {_plain(res.result.get('observed_value'))}" if "observed_value" in res.result else "",
        })
    stats = {k: _plain(v) for k, v in dict(result.statistics).items()}
    stats["rows"] = len(df)
    return ValidationReport(suite=name, success=bool(result.success), failures=failures, statistics=stats)


def validate_manifest(df: pd.DataFrame, config: CurationConfig | None = None) -> ValidationReport:
    """The manifest suite: what the curation stage guarantees about every clip."""
    gxe = _gx().expectations
    config = config or CurationConfig()
    low, high = config.loudness_range
    expectations = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectTableColumnsToMatchSet(column_set=list(MANIFEST_REQUIRED), exact_match=False),
        *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in MANIFEST_REQUIRED],
        gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["source_file", "segment_index"]),
        gxe.ExpectColumnValuesToMatchRegex(column="path", regex=r"^clips/[^/]+\.wav$"),
        gxe.ExpectColumnValuesToBeBetween(column="duration_s", min_value=config.min_clip_s - _EPS,
                                          max_value=config.clip_s + _EPS),
        gxe.ExpectColumnValuesToBeInSet(column="sample_rate", value_set=[config.sample_rate]),
        gxe.ExpectColumnValuesToBeBetween(column="loudness_lufs", min_value=low - _EPS, max_value=high + _EPS),
        gxe.ExpectColumnValuesToBeBetween(column="peak_dbfs", max_value=config.peak_ceiling_dbfs + 0.01),
        gxe.ExpectColumnValuesToBeBetween(column="clipped_fraction", min_value=0.0,
                                          max_value=config.max_clipped_fraction),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        gxe.ExpectColumnValuesToBeBetween(column="start_s", min_value=0.0),
    ]
    return _run_suite("manifest", df, expectations)


def validate_quarantine(df: pd.DataFrame) -> ValidationReport:
    """The quarantine suite: every row has a known reason and names its source file."""
    gxe = _gx().expectations
    expectations = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(QUARANTINE_REQUIRED), exact_match=False),
        gxe.ExpectColumnValuesToNotBeNull(column="source_file"),
        gxe.ExpectColumnValueLengthsToBeBetween(column="source_file", min_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="reason", value_set=sorted(REASONS)),
        gxe.ExpectColumnValuesToNotBeNull(column="detail"),
    ]
    return _run_suite("quarantine", df, expectations)

"""Print the reliability suite's figures (what `make reliability` ends with): test-artifacts/reliability/*.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

FIGURES = Path(os.environ.get("LYRA_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")) / "reliability"


# test module -> the fault kind its cases count towards
PARTS = {"test_disk_full": "disk full / EIO", "test_io_errors": "disk full / EIO", "test_concurrency": "concurrency",
         "test_tampering": "tampering", "test_secrets": "secrets", "test_cluster_faults": "cluster"}


def main() -> int:
    kills = sorted(FIGURES.glob("kills_*.json"))
    total = {"kills": 0, "survived": 0, "identical": 0, "half_written": 0}
    for path in kills:
        f = json.loads(path.read_text())
        print(f"kills {f['scenario']:10s} {f['kills']:4d} killed, {f['survived']:4d} reruns finished, {f['identical']:4d} "
              f"identical to an uninterrupted run, {len(f['half_written'])} half-written, {f['debris']} staging leftovers")
        for key in ("kills", "survived", "identical"):
            total[key] += f[key]
        total["half_written"] += len(f["half_written"])
    if kills:
        print(f"kills total      {total['kills']} killed, {total['survived']} survived, {total['identical']} identical, "
              f"{total['half_written']} half-written")
    junit = FIGURES / "junit.xml"           # `make reliability` writes it: cases passed per fault kind
    if junit.is_file():
        import xml.etree.ElementTree as ET

        cases: dict[str, list[int]] = {}
        for case in ET.parse(junit).iter("testcase"):
            kind = PARTS.get(case.get("classname", "").rsplit(".", 1)[-1])
            if kind is not None:
                passed = not any(child.tag in ("failure", "error", "skipped") for child in case)
                cases.setdefault(kind, [0, 0])[0] += passed
                cases[kind][1] += 1
        for kind, (passed, total) in cases.items():
            print(f"{kind:16s} {passed} of {total} cases passed")
    fuzz = FIGURES / "fuzz.json"
    if fuzz.is_file():
        counts = json.loads(fuzz.read_text())
        print("fuzz cases       " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + " (0 tracebacks: the run passed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

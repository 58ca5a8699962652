"""The Dagster code location: everything under orchestration/defs/."""

from dagster.components import load_defs

import orchestration.defs

defs = load_defs(defs_root=orchestration.defs)

"""A stage's flat metrics from its nested report, by table rather than by copying keys one by one.

    pick(report, {"spearman_clip": "test.spearman_clip.value", ...})  ->  {"spearman_clip": 0.83, ...}

The table is the stage's list of headline figures (the ones its metrics file, Dagster and the gates
read); the nested report stays beside the model for whoever wants the rest.
"""

from __future__ import annotations

from typing import Any, Mapping


def at(tree: Mapping, path: str) -> Any:
    """tree["a"]["b"]["c"] for "a.b.c" (KeyError naming the path when a step is missing)."""
    node: Any = tree
    for part in path.split("."):
        try:
            node = node[part]
        except (KeyError, TypeError) as exc:
            raise KeyError(f"{path!r}: no {part!r}") from exc
    return node


def pick(tree: Mapping, paths: Mapping[str, str]) -> dict:
    """{name: at(tree, path)} for each name -> path of the table, in the table's order."""
    return {name: at(tree, path) for name, path in paths.items()}

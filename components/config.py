"""Typed configuration: one pydantic model per stage, values from `params.yaml` profiles.

`params.yaml` holds a full `tiny` block (runs on a 2-core laptop) and, for the bigger
machines, `gpu` and `cluster` blocks that are merged on top of it:

    profile: tiny            # active profile; LYRA_PROFILE or --profile override it
    tiny:    {curation: {...}, codec: {...}, ...}
    gpu:     {codec: {batch_size: 32}}          # only what differs from tiny
    cluster: {...}

Every stage command accepts `--params PATH --profile NAME --set key=value`, so the same code
runs any profile; unknown keys are errors (extra="forbid"), not silently ignored.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from components.common.errors import LyraError

BASE_PROFILE = "tiny"
PROFILES = ("tiny", "gpu", "cluster")
DEFAULT_PARAMS_FILE = "params.yaml"


class StageConfig(BaseModel):
    """Base for every stage's config: typos in params.yaml are errors, not silent defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)


C = TypeVar("C", bound=StageConfig)


class ConfigError(LyraError, ValueError):
    """A params file, profile or override that cannot be turned into a valid stage config."""


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def find_params_file(path: str | os.PathLike | None = None) -> Path | None:
    """Explicit path, else $LYRA_PARAMS, else ./params.yaml if present, else None (code defaults)."""
    candidate = path or os.environ.get("LYRA_PARAMS")
    if candidate:
        p = Path(candidate)
        if not p.is_file():
            raise ConfigError(f"params file not found: {p}")
        return p
    p = Path(DEFAULT_PARAMS_FILE)
    return p if p.is_file() else None


def load_params(path: str | os.PathLike | None = None) -> dict:
    p = find_params_file(path)
    if p is None:
        return {}
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at top level")
    return data


def active_profile(params: dict, profile: str | None = None) -> str:
    name = profile or os.environ.get("LYRA_PROFILE") or params.get("profile") or BASE_PROFILE
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return name


def profile_values(params: dict, profile: str | None = None) -> dict:
    """The merged values of a profile: `tiny`, with the profile's block on top."""
    name = active_profile(params, profile)
    merged = params.get(BASE_PROFILE) or {}
    if name != BASE_PROFILE:
        merged = deep_merge(merged, params.get(name) or {})
    return merged


def parse_overrides(pairs: Iterable[str]) -> dict:
    """["optim.lr=3e-4", "steps=10"] -> {"optim": {"lr": 0.0003}, "steps": 10} (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {pair!r} is not KEY=VALUE")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {pair!r}: {part!r} was given a value, so it has no keys below it")
        try:
            node[leaf] = yaml.safe_load(raw)
        except yaml.YAMLError:            # e.g. --set name=' : not YAML, so the text itself (the config checks it)
            node[leaf] = raw
    return out


def load_stage_config(
    section: str,
    model: type[C],
    *,
    params_path: str | os.PathLike | None = None,
    profile: str | None = None,
    overrides: Iterable[str] = (),
    defaults: dict | None = None,
) -> C:
    """Build `model` from the `section` of the active profile over `defaults` (values declared in code), with
    KEY=VALUE overrides on top."""
    params = load_params(params_path)
    values = deep_merge(defaults or {}, profile_values(params, profile).get(section) or {})
    values = deep_merge(values, parse_overrides(overrides))
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        where = f"profile {active_profile(params, profile)!r}, section {section!r}"
        raise ConfigError(f"invalid configuration ({where}):\n{exc}") from exc


def add_config_arguments(parser) -> None:
    """The options every stage command shares."""
    parser.add_argument("--params", default=None, help="params file (default: $LYRA_PARAMS or ./params.yaml)")
    parser.add_argument("--profile", default=None, choices=PROFILES, help="profile to read (default: params.yaml's `profile`)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config value, e.g. --set steps=50 (repeatable; dotted keys reach nested values)",
    )


def config_from_args(section: str, model: type[C], args) -> C:
    return load_stage_config(section, model, params_path=args.params, profile=args.profile, overrides=args.overrides)

"""Configs are frozen dataclasses; recipes are small YAML files that fill them; `--set a.b=v` overrides them.

Every value is checked against the type of its field (so `train.lr=abc` or a typo'd key is an error that names
the closest valid key), and nothing in a recipe can execute code: YAML is read with `safe_load` and only
plain values are accepted.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dlsp.errors import DlspError
from dlsp.fileio import write_text

T = TypeVar("T")
# Recipe sections that describe how to run a config rather than the config itself.
RECIPE_ONLY_SECTIONS = ("task", "tune")
# YAML aliases share nodes, so a few lines can describe a billion values or a cycle; recipes are small.
MAX_RECIPE_VALUES = 100_000
MAX_RECIPE_DEPTH = 32


def load_recipe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML recipe as a plain mapping (safe loader: no tags, no objects)."""
    path = Path(path)
    if not path.is_file():
        raise DlspError("recipe does not exist" if not path.exists() else "recipe is not a file", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DlspError(f"not a valid YAML recipe ({str(exc).splitlines()[0]})", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DlspError("a recipe must be a mapping of sections (key: value)", path)
    _check_recipe_size(data, path)
    return data


def _check_recipe_size(data: Any, path: Path) -> None:
    """Refuse recipes whose values, with YAML aliases expanded, are too many or nested too deep (or cyclic)."""
    budget = MAX_RECIPE_VALUES
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise DlspError(f"recipe expands to more than {MAX_RECIPE_VALUES:,} values (YAML aliases?)", path)
        if depth > MAX_RECIPE_DEPTH:
            raise DlspError(f"recipe nests deeper than {MAX_RECIPE_DEPTH} levels (recursive YAML alias?)", path)
        if isinstance(value, dict):
            stack += [(item, depth + 1) for pair in value.items() for item in pair]
        elif isinstance(value, list):
            stack += [(item, depth + 1) for item in value]


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from `data`, checking keys and value types recursively."""
    if not isinstance(data, dict):
        raise DlspError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        if key not in fields:
            raise DlspError(f"unknown key {_join(where, key)!r}{_suggest(key, fields)}")
        values[key] = _coerce(value, hints[key], _join(where, key))
    return cls(**values)


def to_dict(config: Any) -> dict[str, Any]:
    """A config as plain data (for YAML, JSON and checkpoints)."""
    return _plain(dataclasses.asdict(config))


def apply_overrides(config: T, overrides: list[str]) -> T:
    """Apply `section.key=value` overrides; values are parsed as YAML scalars and type-checked."""
    data = to_dict(config)
    for item in overrides:
        if "=" not in item:
            raise DlspError(f"override {item!r} must look like section.key=value")
        dotted, text = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = data
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                valid = node.keys() if isinstance(node, dict) else []
                raise DlspError(f"unknown key {'.'.join(keys[:depth + 1])!r}{_suggest(key, valid)}")
            if depth == len(keys) - 1:
                node[key] = _parse_scalar(text)
            else:
                node = node[key]
    return from_dict(type(config), data)


def load_config(cls: type[T], recipe: str | os.PathLike[str] | None, overrides: list[str] | None = None) -> T:
    """Defaults, then the recipe, then the overrides. The recipe's `task` and `tune` sections are not part of
    the config (`dlsp tune` and `dlsp run` read them)."""
    config = cls()
    if recipe is not None:
        body = {key: value for key, value in load_recipe(recipe).items() if key not in RECIPE_ONLY_SECTIONS}
        merged = _merge(to_dict(config), body, str(recipe))
        try:
            config = from_dict(cls, merged)
        except DlspError as exc:
            raise DlspError(str(exc), recipe) from None
    return apply_overrides(config, overrides or [])


def save_config(path: str | os.PathLike[str], config: Any) -> Path:
    """Write the final config as YAML (atomically), so a run folder says exactly what ran."""
    return write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))


def config_changes(before: dict[str, Any], after: dict[str, Any], where: str = "") -> list[str]:
    """`key.path before -> after` for every value that differs between two configs as plain data (a key only one
    side has shows `(none)` on the other), in the order of `after` then `before`'s extra keys."""
    changes = []
    for key in [*after, *(k for k in before if k not in after)]:
        old, new = before.get(key, _NONE), after.get(key, _NONE)
        if isinstance(old, dict) and isinstance(new, dict):
            changes.extend(config_changes(old, new, _join(where, str(key))))
        elif old != new:
            changes.append(f"{_join(where, str(key))} {_shown(old)} -> {_shown(new)}")
    return changes


_NONE = object()


def _shown(value: Any) -> str:
    return "(none)" if value is _NONE else yaml.safe_dump(value, default_flow_style=True, width=1_000).strip()\
        .removesuffix("\n...").removesuffix("...").strip()


def _merge(base: dict[str, Any], update: dict[str, Any], where: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if key not in base:
            raise DlspError(f"unknown key {key!r}{_suggest(key, base)}", where)
        is_section = isinstance(base[key], dict) and isinstance(value, dict) and key != "args"
        merged[key] = _merge(base[key], value, where) if is_section and _is_section(base[key]) else value
    return merged


def _is_section(value: dict[str, Any]) -> bool:
    # Nested dataclasses become dicts with known keys; free-form dicts (model args) are replaced whole.
    return bool(value) and all(isinstance(k, str) for k in value)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except DlspError as exc:
                errors.append(str(exc))
        raise DlspError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise DlspError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise DlspError(f"{where}: expected a mapping, got {value!r}")
        return _plain(value)
    if hint is Any:
        return _plain(value)
    return _scalar(value, hint, where)


def _scalar(value: Any, hint: type, where: str) -> Any:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and number and float(value).is_integer():
        return int(value)
    if hint is float and number:
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        except ValueError:
            pass
    if hint is str and (isinstance(value, str) or number):
        return str(value)
    raise DlspError(f"{where}: expected {hint.__name__}, got {value!r}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise DlspError(f"unsupported value {value!r} (only numbers, strings, lists and mappings)")


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _suggest(key: Any, valid) -> str:
    # YAML keys may be numbers, booleans or null; compare them as text.
    names = sorted(str(name) for name in valid)
    close = difflib.get_close_matches(str(key), names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (valid: {', '.join(names)})"

"""YAML configuration an analyst edits: loading, validation and errors that say where.

Each config file has a pydantic model; `load_yaml` turns YAML and validation problems
into a `ConfigError` naming the file, the entry (by its `name`) and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pipelines.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _where(data: Any, loc: tuple[Any, ...]) -> str:
    """'sources[2] (meduza) → feeds[0]' for a pydantic error location."""
    out = ""
    node = data
    for key in loc:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
        if isinstance(key, int):
            out += f"[{key}]"
            if isinstance(node, dict) and node.get("name"):
                out += f" ({node['name']})"
        else:
            out += (" → " if out else "") + str(key)
    return out or "(top level)"


def load_yaml(path: Path | str, model: type[M]) -> M:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{at} invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {exc.error_count()} problem(s)"]
        for err in exc.errors():
            lines.append(f"  {_where(data, tuple(err['loc']))}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


def require_unique_names(items: list[Any], what: str) -> None:
    """Entries are referred to by name (in errors, the delivery log, the UI): no two alike."""
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"{what} name {item.name!r} is used twice")
        seen.add(item.name)


Lang = Literal["ru", "uk", "en"]

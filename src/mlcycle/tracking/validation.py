"""Input rules for tracking. Every error names the field and says what was expected and received."""

from __future__ import annotations

import numbers
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from mlcycle.errors import InvalidInputError

__all__ = [
    "MAX_KEY",
    "MAX_PARAM_VALUE",
    "MAX_TAG_VALUE",
    "check_artifact_path",
    "check_key",
    "check_metric",
    "check_name",
    "check_params",
    "check_tags",
]

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_NAME = 256
MAX_ARTIFACT_PATH = 1024
_INT64 = 2**63

_KEY_RE = re.compile(r"^[A-Za-z0-9_\-. /:]+$")
_valid_keys: set[str] = set()  # keys seen valid: the logging hot path checks each key once


def known_keys() -> set[str]:
    """Keys that passed ``check_key`` before (read-only for callers)."""
    return _valid_keys


def _bad(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", details={"field": field})


def check_key(key: Any, kind: str) -> str:
    """A metric, param or tag key: 1–250 of ``A-Z a-z 0-9 _ - . / : space``, no ``..`` segment."""
    if key in _valid_keys:
        return key
    if not isinstance(key, str):
        raise _bad(f"{kind} key", f"expected a string, got {type(key).__name__} {key!r}")
    if not key or len(key) > MAX_KEY:
        raise _bad(f"{kind} key {key[:60]!r}",
                   f"must have 1 to {MAX_KEY} characters, got {len(key)}")
    if not _KEY_RE.match(key):
        bad = sorted({c for c in key if not _KEY_RE.match(c)})
        raise _bad(
            f"{kind} key {key!r}",
            f"may use letters, digits, and _ - . / : and space; got {''.join(bad)!r}",
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise _bad(f"{kind} key {key!r}", "must not start with '/' or contain a '..' segment")
    if len(_valid_keys) < 100_000:
        _valid_keys.add(key)
    return key


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return str(value)
    return str(value)


def check_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        check_key(key, "param")
        text = _stringify(value)
        if len(text) > MAX_PARAM_VALUE:
            raise _bad(f"params.{key}", f"value has {len(text)} characters; at most "
                       f"{MAX_PARAM_VALUE} are kept. Log long values as an artifact.")
        out[key] = text
    return out


def check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        check_key(key, "tag")
        text = _stringify(value)
        if len(text) > MAX_TAG_VALUE:
            raise _bad(f"tags.{key}", f"value has {len(text)} characters; at most "
                       f"{MAX_TAG_VALUE} are kept")
        out[key] = text
    return out


def check_metric(key: Any, value: Any, step: Any) -> tuple[str, float, int]:
    """Validate one point; NaN and ±inf are valid values."""
    check_key(key, "metric")
    if isinstance(value, float):
        number = value
    elif isinstance(value, numbers.Real):  # ints, bools, NumPy scalars
        number = float(value)
    else:
        raise _bad(f"metrics.{key}", f"value must be a number, got {type(value).__name__} "
                   f"{value!r}")
    if type(step) is not int:
        if isinstance(step, numbers.Integral) and not isinstance(step, bool):
            step = int(step)
        else:
            raise _bad(f"metrics.{key}", f"step must be an integer, got {type(step).__name__} "
                       f"{step!r}")
    if not -_INT64 <= step < _INT64:
        raise _bad(f"metrics.{key}", f"step must fit in 64 bits, got {step}")
    return key, number, step


def check_name(value: Any, field: str, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise _bad(field, f"expected a string, got {type(value).__name__} {value!r}")
    if required and not value.strip():
        raise _bad(field, "must not be empty")
    if len(value) > MAX_NAME:
        raise _bad(field, f"must have at most {MAX_NAME} characters, got {len(value)}")
    if any(ord(c) < 32 for c in value):
        raise _bad(field, f"must not contain control characters, got {value!r}")
    return value


def check_artifact_path(path: Any) -> str:
    """A relative POSIX path inside the run: no absolute path, no ``..``, no backslash."""
    field = "artifact path"
    if not isinstance(path, str):
        raise _bad(field, f"expected a string, got {type(path).__name__}")
    if not path or len(path) > MAX_ARTIFACT_PATH:
        raise _bad(field, f"must have 1 to {MAX_ARTIFACT_PATH} characters, got {len(path)}")
    if "\\" in path or "\x00" in path or path.startswith("/"):
        raise _bad(field, f"must be a relative path with '/' separators, got {path!r}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise _bad(field, f"must not contain empty, '.' or '..' segments, got {path!r}")
    return posixpath.normpath(path)

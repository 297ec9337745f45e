"""Small shared types: the run status, the ``UNSET`` sentinel, value aliases."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Final, TypeAlias

__all__ = ["NON_FINITE", "UNSET", "JSONValue", "RunStatus", "Unset", "encode_float"]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


class Unset(enum.Enum):
    """The type of ``UNSET``: "leave this field alone", as opposed to ``None`` ("clear it")."""

    token = 0

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = Unset.token

#: JSON has no NaN or infinities; mlcycle writes them as these strings (JavaScript's spelling,
#: and pydantic's ``ser_json_inf_nan="strings"``) wherever it emits JSON: the API, the CLI.
NON_FINITE: Final[Mapping[str, float]] = {
    "NaN": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
}


def encode_float(value: float) -> float | str:
    """*value*, or its string spelling when it is NaN or infinite."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"

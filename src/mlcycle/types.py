"""Small shared types: the run status, the ``UNSET`` sentinel, value aliases."""

from __future__ import annotations

import enum
from typing import Final, TypeAlias

__all__ = ["UNSET", "JSONValue", "RunStatus", "Unset"]

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

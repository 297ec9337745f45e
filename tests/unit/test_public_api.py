"""The public surface: what ``mlcycle`` exports exists, and errors rebuild from their codes."""

from __future__ import annotations

import pytest

import mlcycle as mc
from mlcycle import errors


def test_everything_in_all_exists() -> None:
    missing = [name for name in mc.__all__ if not hasattr(mc, name)]
    assert missing == []
    assert callable(mc.autolog)  # not shadowed by a submodule of the same name


@pytest.mark.parametrize(
    "cls", [errors.RunNotFound, errors.ExperimentAlreadyExists, errors.InvalidFilter,
            errors.PermissionDenied, errors.StoreError, errors.GateFailed],
)
def test_every_error_rebuilds_from_its_code(cls: type[errors.MlcycleError]) -> None:
    assert errors.error_class_for(cls.code) is cls
    err = cls("boom", details={"field": "x"})
    assert err.to_dict() == {"code": cls.code, "message": "boom", "details": {"field": "x"}}


def test_codes_are_unique_and_unknown_codes_fall_back() -> None:
    def walk(c: type[errors.MlcycleError]) -> list[type[errors.MlcycleError]]:
        return [c, *(s for sub in c.__subclasses__() for s in walk(sub))]

    codes = [c.code for c in walk(errors.MlcycleError)]
    assert len(codes) == len(set(codes))
    assert errors.error_class_for("no-such-code") is errors.MlcycleError

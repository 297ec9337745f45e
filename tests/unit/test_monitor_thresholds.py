"""A monitor's thresholds: per metric, and per segment with ``metric[segment]`` keys."""

from __future__ import annotations

import pytest

from mlcycle.errors import InvalidInputError
from mlcycle.monitoring.config import Thresholds


def test_a_segment_has_its_own_limits_and_the_others_use_the_metrics() -> None:
    limits = Thresholds({"accuracy": {"warning": 0.8, "alert": 0.75},
                         "accuracy[origin EWR]": {"warning": 0.72, "alert": 0.68}})
    assert limits.level("accuracy", 0.74) == "alert"
    assert limits.level("accuracy", 0.74, "origin EWR") == "ok"
    assert limits.level("accuracy", 0.70, "origin EWR") == "warning"
    assert limits.level("accuracy", 0.74, "origin JFK") == "alert"  # no limits of its own
    assert limits.level("error_rate", 0.5, "origin EWR") == "ok"  # no limits at all


@pytest.mark.parametrize(("key", "field"), [
    ("acuracy[origin EWR]", "thresholds.acuracy[origin EWR]"),
    ("min_labelled[origin EWR]", "thresholds.min_labelled[origin EWR]"),
])
def test_a_segment_key_names_a_known_metric(key: str, field: str) -> None:
    with pytest.raises(InvalidInputError, match="unknown metric") as caught:
        Thresholds({key: {"alert": 0.5}})
    assert caught.value.details["field"] == field


def test_a_segments_warning_must_sit_on_the_right_side_of_its_alert() -> None:
    with pytest.raises(InvalidInputError, match="warning level must be above"):
        Thresholds({"accuracy[eu]": {"warning": 0.6, "alert": 0.7}})

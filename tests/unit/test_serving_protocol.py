"""Request bodies of ``/predict`` as model input columns."""

from __future__ import annotations

import pytest

from mlcycle.errors import InvalidInputError
from mlcycle.serving.protocol import parse_predict


def test_records_with_the_same_keys_in_any_order_become_columns() -> None:
    body = [{"a": 1, "b": "x"}, {"b": "y", "a": 2}, {"a": 3, "b": None}]
    assert parse_predict(body, None) == {"a": [1, 2, 3], "b": ["x", "y", None]}
    assert parse_predict([{"a": 1.5}], None) == {"a": [1.5]}


def test_records_with_different_keys_fill_the_gaps_with_nulls() -> None:
    assert parse_predict([{"a": 1, "b": 2}, {"a": 3, "c": 4}], None) == {
        "a": [1, 3], "b": [2, None], "c": [None, 4]}
    assert parse_predict([{"a": 1, "b": 2}, {"a": 3}], None) == {"a": [1, 3], "b": [2, None]}


def test_columns_form_and_bad_bodies() -> None:
    assert parse_predict({"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}, None) == {
        "a": [1, 3], "b": [2, 4]}
    with pytest.raises(InvalidInputError, match="records must be JSON objects"):
        parse_predict([{"a": 1}, [2]], None)
    with pytest.raises(InvalidInputError, match="data row 1"):
        parse_predict({"columns": ["a", "b"], "data": [[1, 2], [3]]}, None)


def test_a_repeated_request_id_keeps_one_answer_per_version() -> None:
    from mlcycle.deploy import VersionStats
    from mlcycle.serving.feedback import Label, RecentPredictions

    stable, shadow = VersionStats(), VersionStats()
    recent = RecentPredictions(capacity=10)
    for _ in range(1000):
        recent.add("same-id", stable, [1])
    recent.add("same-id", shadow, [0])
    assert len(recent._answers["same-id"]) == 2
    assert recent.observe(Label("same-id", 0, 1))
    assert (stable.feedback, stable.correct, shadow.feedback, shadow.correct) == (1, 1, 1, 0)

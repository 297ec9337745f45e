"""Turn a parsed search filter and ordering into SQLAlchemy expressions (never SQL text)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, or_, select
from sqlalchemy.sql import Select

from mlcycle.store.filter import And, Comparison, Expr, Or, OrderKey
from mlcycle.store.sql.tables import latest_metrics, params, runs, tags

__all__ = ["apply_order", "compile_filter"]

_ATTR_COLUMNS = {
    "run_id": runs.c.run_id,
    "name": runs.c.name,
    "status": runs.c.status,
    "experiment_id": runs.c.experiment_id,
    "parent_run_id": runs.c.parent_run_id,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
}


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    match op:
        case "=":
            return column == value
        case "!=":
            return column != value
        case "<":
            return column < value
        case "<=":
            return column <= value
        case ">":
            return column > value
        case ">=":
            return column >= value
        case "LIKE":
            return column.like(value)
        case "ILIKE":
            return column.ilike(value)
        case "IN":
            return column.in_(value)
        case "NOT IN":
            return column.not_in(value)
    raise ValueError(f"unknown operator {op!r}")  # the parser admits no other


def _comparison(node: Comparison) -> ColumnElement[bool]:
    if node.kind == "attribute":
        return _compare(_ATTR_COLUMNS[node.key], node.op, node.value)
    table = {"metric": latest_metrics, "param": params, "tag": tags}[node.kind]
    return exists(
        select(1).where(
            table.c.run_id == runs.c.run_id,
            table.c.key == node.key,
            _compare(table.c.value, node.op, node.value),
        )
    )


def compile_filter(expr: Expr) -> ColumnElement[bool]:
    if isinstance(expr, Comparison):
        return _comparison(expr)
    if isinstance(expr, And):
        return and_(*(compile_filter(e) for e in expr.items))
    if isinstance(expr, Or):
        return or_(*(compile_filter(e) for e in expr.items))
    raise TypeError(f"not a filter node: {expr!r}")


def apply_order(query: Select[Any], keys: list[OrderKey]) -> Select[Any]:
    """Order by *keys* (missing values last), then newest first, then run id for stability
    (descending too, so that an index on (experiment_id, start_time, run_id) yields the order)."""
    for i, key in enumerate(keys):
        if key.kind == "attribute":
            column: Any = _ATTR_COLUMNS[key.key]
        else:
            table = {"metric": latest_metrics, "param": params, "tag": tags}[key.kind]
            alias = table.alias(f"order_{i}")
            query = query.outerjoin(
                alias, and_(alias.c.run_id == runs.c.run_id, alias.c.key == key.key)
            )
            column = alias.c.value
        query = query.order_by(case((column.is_(None), 1), else_=0))
        query = query.order_by(column.desc() if key.descending else column.asc())
    return query.order_by(runs.c.start_time.desc(), runs.c.run_id.desc())

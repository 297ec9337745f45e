"""Declarative data preparation: clean rows, split them, compile the feature transforms.

A :class:`PrepareSpec` says, as data, how raw rows become training data. It has three parts:

* **row steps** (``steps``) run in order on a polars frame and may change or remove rows:
  ``drop_duplicates``, ``filter``, ``drop_where``, ``drop_nulls``, ``derive``, ``cast`` and
  ``contract``. Each step reports rows in, rows out and why rows went. A removed row is either
  counted (``action: drop``) or kept in the quarantine frame with its ``_reason``
  (``action: quarantine``), so no row disappears without a number next to it.
* **feature transforms** (``features``) never touch rows: ``impute``, ``scale``, ``encode``,
  ``passthrough`` and ``drop`` compile to one unfitted scikit-learn ``Pipeline``
  (:meth:`PrepareSpec.feature_transformer`) that :func:`prepare` fits on the train split only.
  That fitted pipeline is saved with the model and runs again at serving time, which is what
  keeps training and serving from computing features two different ways.
* **split** (``split``): random, stratified or by a time column; deterministic for a seed.

Why a spec rather than code: it is stored next to the dataset versions it produces, diffed, and
hashed; :meth:`PrepareSpec.digest` is the "code hash" in their lineage.

The same spec in YAML (``PrepareSpec.from_yaml``; errors name the line and the field)::

    target: churned
    steps:
      - {op: drop_duplicates, subset: [customer_id]}
      - {op: contract, contract: {columns: {age: {type: int, max: 120}}}, action: quarantine}
      - {op: filter, expr: "plan != 'internal'"}
      - {op: derive, name: tenure_years, expr: "tenure_days / 365.0"}
    features:
      - {op: impute, columns: [age], strategy: median}
      - {op: scale, columns: [age, tenure_years], method: standard}
      - {op: encode, columns: [plan], method: onehot}
    split: {method: time, column: signup_date, test: 0.2, validation: 0.1}

Expressions (``filter``, ``drop_where``, ``derive``) are SQL expressions evaluated by polars
(``pl.sql_expr``); ``==`` is accepted as ``=`` outside string literals.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import yaml
from blake3 import blake3
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mlcycle.datasets.segments import sql_expression
from mlcycle.errors import InvalidInputError, InvalidStateError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

__all__ = [
    "Cast",
    "ContractCheck",
    "Derive",
    "Drop",
    "DropDuplicates",
    "DropNulls",
    "DropWhere",
    "Encode",
    "FeatureStep",
    "Filter",
    "Impute",
    "Passthrough",
    "PrepareReport",
    "PrepareSpec",
    "PreparedData",
    "RowStep",
    "Scale",
    "Split",
    "StepReport",
    "prepare",
]

#: Format tag hashed with the spec, so a change to what a spec *means* can change every digest.
_SPEC_FORMAT = "mlcycle.prepare/1"

# Internal column carrying each row's position in the input, so quarantined rows can be traced
# back and splits keep the input order. Never leaves this module.
_ROW = "__mlcycle_row__"
_REMOVE = "__mlcycle_remove__"
_REASON = "_reason"
_STEP = "_step"
_ROW_OUT = "_row"
_RESERVED = frozenset({_ROW, _REMOVE, _REASON, _STEP, _ROW_OUT})

Action = Literal["drop", "quarantine"]


def _one_or_many(value: Any) -> Any:
    """Let YAML say ``columns: age`` for ``columns: [age]``."""
    return [value] if isinstance(value, str) else value


Columns = Annotated[list[str], BeforeValidator(_one_or_many), Field(min_length=1)]

def _compile(expr: str) -> pl.Expr:
    return sql_expression(expr)


def _check_expr(expr: str) -> str:
    """Parse at spec time, so a typo is reported with its YAML line, not at run time."""
    if not expr.strip():
        raise ValueError("expected a SQL expression, got an empty string")
    try:
        _compile(expr)
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"not a valid SQL expression ({exc}): {expr!r}") from exc
    return expr


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- row steps


class DropDuplicates(_Step):
    """Remove repeated rows (on *subset*, or on every column); *keep* says which copy stays."""

    op: Literal["drop_duplicates"] = "drop_duplicates"
    subset: Columns | None = None
    keep: Literal["first", "last", "none"] = "first"
    action: Action = "drop"


class Filter(_Step):
    """Keep the rows where *expr* is true; a null result counts as false, as in SQL ``WHERE``."""

    op: Literal["filter"] = "filter"
    expr: str
    action: Action = "drop"

    _expr = field_validator("expr")(_check_expr)


class DropWhere(_Step):
    """Remove the rows where *expr* is true; rows where it is null stay, as in SQL ``DELETE``."""

    op: Literal["drop_where"] = "drop_where"
    expr: str
    action: Action = "drop"

    _expr = field_validator("expr")(_check_expr)


class DropNulls(_Step):
    """Remove rows with a null in any of *columns* (any column when omitted)."""

    op: Literal["drop_nulls"] = "drop_nulls"
    columns: Columns | None = None
    action: Action = "drop"


class Derive(_Step):
    """Add (or replace) column *name* computed from *expr*; rows are unchanged."""

    op: Literal["derive"] = "derive"
    name: str = Field(min_length=1)
    expr: str

    _expr = field_validator("expr")(_check_expr)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in _RESERVED:
            raise ValueError(f"{name!r} is reserved for the quarantine frame")
        return name


CastType = Literal[
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "string", "bool", "date", "datetime", "category",
]  # fmt: skip

_CAST_TYPES: dict[str, pl.DataType] = {
    "int8": pl.Int8(),
    "int16": pl.Int16(),
    "int32": pl.Int32(),
    "int64": pl.Int64(),
    "uint8": pl.UInt8(),
    "uint16": pl.UInt16(),
    "uint32": pl.UInt32(),
    "uint64": pl.UInt64(),
    "float32": pl.Float32(),
    "float64": pl.Float64(),
    "string": pl.String(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us"),
    "category": pl.Categorical(),
}
_TRUE_WORDS = ["true", "t", "yes", "y", "1"]
_FALSE_WORDS = ["false", "f", "no", "n", "0"]


class Cast(_Step):
    """Convert *column* to *type*. A value that does not convert raises (``on_error: raise``),
    becomes null, or removes its row (``drop`` / ``quarantine``). Strings parse to ``date`` and
    ``datetime`` with *format* (a strftime pattern; inferred when omitted) and to ``bool`` from
    true/false, yes/no, t/f, y/n, 1/0."""

    op: Literal["cast"] = "cast"
    column: str
    type: CastType
    format: str | None = None
    on_error: Literal["raise", "null", "drop", "quarantine"] = "raise"


class ContractCheck(_Step):
    """Rows that break a data contract are quarantined (default) or dropped, with the reason.

    *contract* is the contract's dict form (what ``Contract.from_dict`` reads); a ``Contract``
    object is accepted and stored as its dict, so the spec stays plain data and its digest covers
    the contract's content."""

    op: Literal["contract"] = "contract"
    contract: dict[str, Any]
    action: Action = "quarantine"

    @field_validator("contract", mode="before")
    @classmethod
    def _as_dict(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return dict(value)
        for method in ("to_dict", "model_dump"):
            to_dict = getattr(value, method, None)
            if callable(to_dict):
                return to_dict()
        return value

    @field_validator("contract")
    @classmethod
    def _readable(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            from mlcycle.datasets.contracts import Contract
        except ImportError:  # the contracts module is optional here; checked again at run time
            return value
        try:
            # The canonical form, so two spellings of one contract give one digest.
            canonical: dict[str, Any] = Contract.from_dict(value).to_dict()
        except (InvalidInputError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a valid contract: {getattr(exc, 'message', exc)}") from exc
        return canonical


RowStep = Annotated[
    DropDuplicates | Filter | DropWhere | DropNulls | Derive | Cast | ContractCheck,
    Field(discriminator="op"),
]

# ---------------------------------------------------------------- feature transforms


class Impute(_Step):
    """Fill missing values, learned on the train split (``SimpleImputer``)."""

    op: Literal["impute"] = "impute"
    columns: Columns
    strategy: Literal["mean", "median", "most_frequent", "constant"] = "mean"
    fill_value: int | float | str | None = None

    @model_validator(mode="after")
    def _constant_needs_value(self) -> Impute:
        if self.strategy == "constant" and self.fill_value is None:
            raise PydanticCustomError(
                "spec_conflict",
                "{detail}",
                {"detail": "strategy 'constant' needs a fill_value", "at": ["fill_value"]},
            )
        return self


class Scale(_Step):
    """Scale numeric columns with statistics of the train split."""

    op: Literal["scale"] = "scale"
    columns: Columns
    method: Literal["standard", "minmax", "robust"] = "standard"


class Encode(_Step):
    """Encode categories. ``handle_unknown: ignore`` gives an unseen category all zeros
    (onehot) or -1 (ordinal) at serving time instead of failing the request."""

    op: Literal["encode"] = "encode"
    columns: Columns
    method: Literal["onehot", "ordinal"] = "onehot"
    handle_unknown: Literal["ignore", "error"] = "ignore"


class Passthrough(_Step):
    """Use columns as features unchanged (needed when ``remainder`` is ``drop``, the default)."""

    op: Literal["passthrough"] = "passthrough"
    columns: Columns


class Drop(_Step):
    """Keep columns out of the features (useful when ``remainder`` is ``passthrough``)."""

    op: Literal["drop"] = "drop"
    columns: Columns


FeatureStep = Annotated[Impute | Scale | Encode | Passthrough | Drop, Field(discriminator="op")]

_ROW_OPS = ("drop_duplicates", "filter", "drop_where", "drop_nulls", "derive", "cast", "contract")
_FEATURE_OPS = ("impute", "scale", "encode", "passthrough", "drop")

# ---------------------------------------------------------------- split


class Split(BaseModel):
    """How cleaned rows divide into train, validation and test.

    ``random`` shuffles with *seed*; ``stratified`` keeps the class ratios of *column* (the target
    when omitted) in every split; ``time`` sorts by *column* and puts the newest rows in test and
    the next newest in validation. Rows sharing a timestamp never straddle a cut (the later split
    takes them all), so every test row is strictly newer than every train row.

    Fallback for small classes (stratified): each class first keeps one row in train, then gives
    ``round(size * fraction)`` rows to test and validation; a class too small to reach a split
    (a class of one, say) stays out of it, and the report's ``notes`` name it. A split that
    ends up with no rows at all is an error.

    Every split keeps the input's row order. The same rows in the same order with the same
    *seed* give the same split.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["random", "stratified", "time"] = "random"
    test: float = Field(default=0.2, ge=0.0, lt=1.0)
    validation: float = Field(default=0.0, ge=0.0, lt=1.0)
    seed: int = 0
    column: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Split:
        if self.test + self.validation >= 1.0:
            raise PydanticCustomError(
                "spec_conflict",
                "{detail}",
                {
                    "detail": f"test + validation must be below 1 to leave rows for train, "
                    f"got {self.test} + {self.validation}",
                    "at": ["validation"],
                },
            )
        if self.method == "time" and self.column is None:
            raise PydanticCustomError(
                "spec_conflict",
                "{detail}",
                {"detail": "a time split needs a column", "at": ["column"]},
            )
        if self.method == "random" and self.column is not None:
            raise PydanticCustomError(
                "spec_conflict",
                "{detail}",
                {
                    "detail": "a random split takes no column (use method: stratified)",
                    "at": ["column"],
                },
            )
        return self


# ---------------------------------------------------------------- the spec


def _conflict(detail: str, at: Sequence[str | int]) -> PydanticCustomError:
    return PydanticCustomError("spec_conflict", "{detail}", {"detail": detail, "at": list(at)})


class PrepareSpec(BaseModel):
    """What :func:`prepare` does, as data.

    Build it in Python, from a dict, or from YAML; all three give equal specs::

        spec = PrepareSpec(
            target="y",
            steps=[DropDuplicates(), Filter(expr="age >= 0")],
            features=[Impute(columns=["age"], strategy="median"), Scale(columns=["age"])],
            split=Split(method="stratified", test=0.2),
        )

    Constructing it directly raises pydantic's ``ValidationError``; :meth:`from_dict` and
    :meth:`from_yaml` raise :class:`~mlcycle.errors.InvalidInputError` naming field and line.
    ``remainder`` says what happens to columns no feature transform names: ``drop`` (default,
    so a model only sees what the spec declares) or ``passthrough``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[RowStep] = Field(default_factory=list)
    features: list[FeatureStep] = Field(default_factory=list)
    remainder: Literal["drop", "passthrough"] = "drop"
    target: str | None = None
    split: Split | None = Split()

    @field_validator("features")
    @classmethod
    def _one_role_per_column(cls, features: list[FeatureStep]) -> list[FeatureStep]:
        # A column gets at most one imputer and at most one of scale/encode/passthrough/drop;
        # anything else has no single meaning once compiled.
        imputed: dict[str, int] = {}
        role: dict[str, int] = {}
        for i, step in enumerate(features):
            for column in step.columns:
                if isinstance(step, Impute):
                    if column in imputed:
                        raise _conflict(
                            f"{column!r} is already imputed by features[{imputed[column]}]",
                            [i, "columns"],
                        )
                    if column in role and isinstance(features[role[column]], Passthrough | Drop):
                        raise _conflict(
                            f"{column!r} is {features[role[column]].op} in "
                            f"features[{role[column]}] and cannot also be imputed",
                            [i, "columns"],
                        )
                    imputed[column] = i
                    continue
                if column in role:
                    raise _conflict(
                        f"{column!r} already has a transform ({features[role[column]].op} in "
                        f"features[{role[column]}]); a column takes one of "
                        "scale, encode, passthrough, drop",
                        [i, "columns"],
                    )
                if column in imputed and isinstance(step, Passthrough | Drop):
                    raise _conflict(
                        f"{column!r} is imputed by features[{imputed[column]}] and cannot also "
                        f"be {step.op}",
                        [i, "columns"],
                    )
                role[column] = i
        return features

    @model_validator(mode="after")
    def _target_and_split(self) -> PrepareSpec:
        if self.target is not None:
            for i, step in enumerate(self.features):
                if self.target in step.columns:
                    raise _conflict(
                        f"the target {self.target!r} cannot be a feature",
                        ["features", i, "columns"],
                    )
        split = self.split
        unnamed = split is not None and split.method == "stratified" and split.column is None
        if unnamed and self.target is None:
            raise _conflict("a stratified split needs a column (or a target)", ["split", "column"])
        return self

    # -- construction and serialisation

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrepareSpec:
        """Validate a plain mapping (a parsed JSON body, say); errors name the field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _invalid(exc, data, None, None) from exc

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "prepare.yaml") -> PrepareSpec:
        """Parse YAML text. Errors read ``prepare.yaml line 12: features[1].strategy: ...``.

        *source* names the file in those messages."""
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise InvalidInputError(
                f"{source}{where}: not valid YAML: {problem}",
                details={"field": None, "line": mark.line + 1 if mark is not None else None},
            ) from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidInputError(
                f"{source} line 1: expected a mapping with steps, features, split, target, "
                f"got {type(data).__name__}",
                details={"field": None, "line": 1},
            )
        _reject_duplicate_keys(node, source)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _invalid(exc, data, node, source) from exc

    def to_dict(self) -> dict[str, Any]:
        """Every field, defaults included: the canonical form that :meth:`digest` hashes."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def digest(self) -> str:
        """BLAKE3 of canonical JSON: the "code hash" of the dataset versions this spec derives.

        Defaults are part of the hash, so a spec that spells out a default and one that leaves
        it out hash the same."""
        payload = {"format": _SPEC_FORMAT, "spec": self.to_dict()}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return blake3(text.encode("utf-8")).hexdigest()

    # -- features

    def feature_columns(self) -> list[str]:
        """Columns named by the feature transforms, in order of first mention."""
        seen: dict[str, None] = {}
        for step in self.features:
            for column in step.columns:
                seen.setdefault(column, None)
        return list(seen)

    def feature_transformer(self) -> Pipeline:
        """The unfitted scikit-learn pipeline the ``features`` compile to.

        One ``ColumnTransformer`` entry per group of columns that share the same transforms; a
        column with an imputer and a scaler or encoder gets ``Pipeline([impute, scale])``, so
        imputation always comes first. Output is a pandas frame with the plain column names
        (``verbose_feature_names_out=False``), so a model's feature names match the data's.
        Imputers keep all-null columns (``keep_empty_features``) so the output columns do not
        depend on which rows happened to land in train.
        """
        try:
            from sklearn import pipeline
            from sklearn.compose import ColumnTransformer
        except ImportError as exc:  # scikit-learn is an extra; the row steps work without it
            raise InvalidStateError(
                "feature transforms need scikit-learn: pip install 'mlcycle[sklearn]'"
            ) from exc
        groups: dict[tuple[int | None, int | None], list[str]] = {}
        for column in self.feature_columns():
            imputer: int | None = None
            main: int | None = None
            for i, step in enumerate(self.features):
                if column in step.columns:
                    if isinstance(step, Impute):
                        imputer = i
                    else:
                        main = i
            groups.setdefault((imputer, main), []).append(column)

        entries: list[tuple[str, Any, list[str]]] = []
        for (imputer, main), columns in groups.items():
            indices = [i for i in (imputer, main) if i is not None]
            name = "_".join(f"{self.features[i].op}{i}" for i in indices)
            chain = [(self.features[i].op, _estimator(self.features[i])) for i in indices]
            estimator = chain[0][1] if len(chain) == 1 else pipeline.Pipeline(chain)
            entries.append((name, estimator, columns))

        column_transformer = ColumnTransformer(
            entries, remainder=self.remainder, verbose_feature_names_out=False
        )
        return pipeline.Pipeline([("features", column_transformer)]).set_output(transform="pandas")


def _estimator(step: FeatureStep) -> Any:
    from sklearn import impute
    from sklearn import preprocessing as pre

    if isinstance(step, Impute):
        return impute.SimpleImputer(
            strategy=step.strategy, fill_value=step.fill_value, keep_empty_features=True
        )
    if isinstance(step, Scale):
        scaler = {
            "standard": pre.StandardScaler,
            "minmax": pre.MinMaxScaler,
            "robust": pre.RobustScaler,
        }
        return scaler[step.method]()
    if isinstance(step, Encode):
        if step.method == "onehot":
            return pre.OneHotEncoder(handle_unknown=step.handle_unknown, sparse_output=False)
        if step.handle_unknown == "ignore":
            return pre.OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        return pre.OrdinalEncoder()
    if isinstance(step, Passthrough):
        return "passthrough"
    return "drop"


# ---------------------------------------------------------------- spec errors


def _reject_duplicate_keys(node: yaml.Node | None, source: str) -> None:
    """PyYAML keeps the last of two equal keys without a word; a spec typo should not vanish."""
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise InvalidInputError(
                        f"{source} line {key.start_mark.line + 1}: {key.value}: "
                        "appears twice in the same mapping",
                        details={"field": key.value, "line": key.start_mark.line + 1},
                    )
                seen.add(key.value)
            _reject_duplicate_keys(value, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, source)


_FIELD_NAMES = sorted(
    {
        name
        for model in (
            PrepareSpec, Split, DropDuplicates, Filter, DropWhere, DropNulls, Derive, Cast,
            ContractCheck, Impute, Scale, Encode, Passthrough, Drop,
        )
        for name in model.model_fields
    }
)  # fmt: skip

_MISSING = object()


def _resolve(loc: Sequence[str | int], data: Any) -> list[str | int]:
    """Turn pydantic's error location into a path through the user's own data.

    Pydantic puts union tags (``impute``) and union member names (``list[str]``) in ``loc``;
    those are not in the user's document, so they are skipped."""
    path: list[str | int] = []
    node = data
    after_index = False
    for n, part in enumerate(loc):
        if node is _MISSING:
            break
        if isinstance(node, list):
            if isinstance(part, int) and 0 <= part < len(node):
                path.append(part)
                node = node[part]
                after_index = True
            continue
        if isinstance(node, dict):
            tag, after_index = after_index and node.get("op") == part, False
            if tag:  # the discriminator pydantic adds after a list index (op 'contract' ...)
                continue
            if part in node:
                path.append(part)
                node = node[part]
            elif n == len(loc) - 1:
                path.append(part)  # a missing field: name it
                node = _MISSING
            continue
        break  # a scalar: the rest of loc is about its type, not a place
    return path


def _format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line(path: Sequence[str | int], node: yaml.Node | None) -> int | None:
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unquote(listing: str) -> str:
    return listing.replace(" or ", ", ").replace("'", "")


def _message(error: Mapping[str, Any], path: Sequence[str | int]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "literal_error":
        return f"expected one of {_unquote(ctx['expected'])}, got {_short(error['input'])}"
    if kind == "union_tag_invalid":
        tag = ctx["tag"]
        hint = ""
        if path and path[0] == "steps" and tag in _FEATURE_OPS:
            hint = f"; {tag!r} is a feature transform: list it under features"
        elif path and path[0] == "features" and tag in _ROW_OPS:
            hint = f"; {tag!r} is a row step: list it under steps"
        return f"unknown op {tag!r}, expected one of {_unquote(ctx['expected_tags'])}{hint}"
    if kind == "union_tag_not_found":
        return "missing 'op' (what the step does)"
    if kind == "extra_forbidden":
        name = str(path[-1]) if path else "?"
        close = difflib.get_close_matches(name, _FIELD_NAMES, n=1)
        return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return "required field missing"
    if kind == "spec_conflict":
        return str(ctx["detail"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        message += f", got {_short(error['input'])}"
    return message


def _invalid(
    exc: ValidationError, data: Any, node: yaml.Node | None, source: str | None
) -> InvalidInputError:
    problems: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"]) + list((error.get("ctx") or {}).get("at", []))
        path = _resolve(loc, data)
        where = _format_path(path)
        line = _line(path, node) if node is not None else None
        text = f"{where}: {_message(error, path)}"
        if source is not None:
            text = f"{source} line {line}: {text}" if line is not None else f"{source}: {text}"
        problems.append({"field": where, "line": line, "message": text})
    first = problems[0]
    message = first["message"]
    if len(problems) > 1:
        message += "; " + "; ".join(p["message"] for p in problems[1:])
    return InvalidInputError(
        message, details={"field": first["field"], "line": first["line"], "errors": problems}
    )


# ---------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class StepReport:
    """What one row step did. ``rows_in == rows_out + dropped + quarantined`` always holds;
    ``reasons`` counts removed rows per reason (the 20 most common)."""

    index: int
    name: str
    rows_in: int
    rows_out: int
    dropped: int
    quarantined: int
    reason: str
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": self.dropped,
            "quarantined": self.quarantined,
            "reason": self.reason,
            "reasons": dict(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class PrepareReport:
    """What :func:`prepare` did to the rows, step by step, and how it split them."""

    rows_in: int
    rows_out: int
    dropped: int
    quarantined: int
    steps: list[StepReport]
    splits: dict[str, int]
    notes: list[str]
    spec_digest: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": self.dropped,
            "quarantined": self.quarantined,
            "steps": [s.to_dict() for s in self.steps],
            "splits": dict(self.splits),
            "notes": list(self.notes),
            "spec_digest": self.spec_digest,
        }

    def summary(self) -> str:
        """A plain-text table for logs and the CLI."""
        header = ("step", "rows in", "rows out", "dropped", "quarantined", "reason")
        rows = [
            (f"{s.index} {s.name}", s.rows_in, s.rows_out, s.dropped, s.quarantined, s.reason)
            for s in self.steps
        ]
        rows.append(("total", self.rows_in, self.rows_out, self.dropped, self.quarantined, ""))
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
        lines = []
        for r in [header, *rows]:
            cells = [str(r[0]).ljust(widths[0])]
            cells += [str(r[i]).rjust(widths[i]) for i in range(1, 5)]
            lines.append("  ".join([*cells, str(r[5])]).rstrip())
        lines.append("split: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()))
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------- the result


@dataclass(frozen=True, slots=True)
class PreparedData:
    """Cleaned, split rows and the feature transformer fitted on the train split.

    ``frames`` hold raw and derived columns, not transformed ones: the transformer is part of
    the model, so the same code transforms training rows and serving requests. ``quarantine``
    holds every quarantined row with ``_reason``, ``_step`` and ``_row`` (its position in the
    input), or is None when no row was quarantined.
    """

    frames: dict[str, pl.DataFrame]
    quarantine: pl.DataFrame | None
    report: PrepareReport
    transformer: Pipeline
    spec: PrepareSpec

    def _frame(self, name: str) -> pl.DataFrame:
        if name not in self.frames:
            raise InvalidInputError(
                f"name: expected one of {', '.join(self.frames)}, got {name!r}",
                details={"field": "name"},
            )
        return self.frames[name]

    def X(self, name: str = "train", *, transformed: bool = False) -> pd.DataFrame:
        """The feature input of split *name* as pandas (every column but the target).

        Raw by default, for ``make_pipeline(prepared.transformer, model)``; ``transformed=True``
        runs the fitted transformer."""
        frame = self._frame(name)
        if self.spec.target is not None:
            frame = frame.drop(self.spec.target)
        features = frame.to_pandas()
        return self.transformer.transform(features) if transformed else features

    def y(self, name: str = "train") -> pd.Series:
        """The target of split *name* as a pandas Series."""
        if self.spec.target is None:
            raise InvalidInputError(
                "target: the spec names no target, so there is no y", details={"field": "target"}
            )
        return self._frame(name)[self.spec.target].to_pandas()


# ---------------------------------------------------------------- row steps, applied


@dataclass(slots=True)
class _Outcome:
    kept: pl.DataFrame
    removed: pl.DataFrame | None  # with a _reason column
    action: Action
    reason: str


def _mark(frame: pl.DataFrame, remove: pl.Expr, reason: pl.Expr) -> tuple[pl.DataFrame, ...]:
    marked = frame.with_columns(remove.fill_null(False).alias(_REMOVE))
    kept = marked.filter(~pl.col(_REMOVE)).drop(_REMOVE)
    removed = marked.filter(pl.col(_REMOVE)).drop(_REMOVE).with_columns(reason.alias(_REASON))
    return kept, removed


def _evaluate(frame: pl.DataFrame, expr: str, where: str) -> pl.Series:
    try:
        # with_columns, not select: a constant expression broadcasts to every row.
        return frame.with_columns(_compile(expr).alias(_REMOVE))[_REMOVE]
    except pl.exceptions.PolarsError as exc:
        raise InvalidInputError(
            f"{where}.expr: cannot evaluate {expr!r}: {exc}", details={"field": f"{where}.expr"}
        ) from exc


def _boolean(frame: pl.DataFrame, expr: str, where: str) -> pl.Series:
    values = _evaluate(frame, expr, where)
    if values.dtype != pl.Boolean:
        raise InvalidInputError(
            f"{where}.expr: expected a true/false expression, {expr!r} gives {values.dtype}",
            details={"field": f"{where}.expr"},
        )
    return values


def _require(frame: pl.DataFrame, columns: Sequence[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        available = [c for c in frame.columns if c != _ROW]
        raise InvalidInputError(
            f"{where}: no column {', '.join(map(repr, missing))}; the data has "
            f"{', '.join(available)}",
            details={"field": where, "missing": missing},
        )


def _drop_duplicates(step: DropDuplicates, frame: pl.DataFrame, where: str) -> _Outcome:
    subset = step.subset or [c for c in frame.columns if c != _ROW]
    if step.subset:
        _require(frame, step.subset, f"{where}.subset")
    key = pl.struct(subset)
    remove = {
        "first": ~key.is_first_distinct(),
        "last": ~key.is_last_distinct(),
        "none": key.is_duplicated(),
    }[step.keep]
    on = f" on {', '.join(step.subset)}" if step.subset else ""
    reason = {
        "first": f"duplicate of an earlier row{on}",
        "last": f"duplicate of a later row{on}",
        "none": f"duplicated row{on} (every copy removed)",
    }[step.keep]
    kept, removed = _mark(frame, remove, pl.lit(reason))
    return _Outcome(kept, removed, step.action, reason)


def _filter(step: Filter | DropWhere, frame: pl.DataFrame, where: str) -> _Outcome:
    values = _boolean(frame, step.expr, where)
    if isinstance(step, Filter):
        reason = f"filter: {step.expr} is false or null"
        remove = ~values.fill_null(False)
    else:
        reason = f"drop_where: {step.expr}"
        remove = values.fill_null(False)
    kept, removed = _mark(frame, pl.lit(remove), pl.lit(reason))
    return _Outcome(kept, removed, step.action, reason)


def _drop_nulls(step: DropNulls, frame: pl.DataFrame, where: str) -> _Outcome:
    columns = step.columns or [c for c in frame.columns if c != _ROW]
    if step.columns:
        _require(frame, step.columns, f"{where}.columns")
    remove = pl.any_horizontal([pl.col(c).is_null() for c in columns])
    reason = pl.concat_str(
        [pl.lit("null in "), pl.concat_str(
            [pl.when(pl.col(c).is_null()).then(pl.lit(c)) for c in columns],
            separator=", ", ignore_nulls=True,
        )]
    )  # fmt: skip
    kept, removed = _mark(frame, remove, reason)
    return _Outcome(kept, removed, step.action, f"null in {', '.join(columns)}")


def _derive(step: Derive, frame: pl.DataFrame, where: str) -> _Outcome:
    values = _evaluate(frame, step.expr, where)
    return _Outcome(frame.with_columns(values.alias(step.name)), None, "drop", "")


def _cast(step: Cast, frame: pl.DataFrame, where: str) -> _Outcome:
    _require(frame, [step.column], f"{where}.column")
    source = pl.col(step.column)
    dtype = _CAST_TYPES[step.type]
    is_text = frame.schema[step.column] == pl.String
    if is_text and step.type in ("date", "datetime"):
        parse = source.str.to_date if step.type == "date" else source.str.to_datetime
        converted = parse(format=step.format, strict=False)
    elif is_text and step.type == "bool":
        word = source.str.strip_chars().str.to_lowercase()
        converted = (
            pl.when(word.is_in(_TRUE_WORDS))
            .then(pl.lit(True))
            .when(word.is_in(_FALSE_WORDS))
            .then(pl.lit(False))
            .otherwise(pl.lit(None, dtype=pl.Boolean))
        )
    else:
        converted = source.cast(dtype, strict=False)
    try:
        frame = frame.with_columns(converted.alias(_REMOVE + "value"))
    except pl.exceptions.PolarsError as exc:
        raise InvalidInputError(
            f"{where}.type: cannot cast {step.column!r} ({frame.schema[step.column]}) to "
            f"{step.type}: {exc}",
            details={"field": f"{where}.type"},
        ) from exc
    failed = source.is_not_null() & pl.col(_REMOVE + "value").is_null()
    reason = f"{step.column} does not convert to {step.type}"
    if step.on_error == "raise":
        bad = frame.filter(failed)
        if bad.height:
            examples = bad[step.column].unique(maintain_order=True).head(5).to_list()
            raise InvalidInputError(
                f"{where}: {bad.height} value(s) of {step.column!r} do not convert to "
                f"{step.type}, e.g. {examples}; set on_error to null, drop or quarantine",
                details={"field": f"{where}.column", "count": bad.height},
            )
    replace = pl.col(_REMOVE + "value").alias(step.column)
    if step.on_error in ("raise", "null"):
        return _Outcome(frame.with_columns(replace).drop(_REMOVE + "value"), None, "drop", "")
    # Removed rows keep their original value (it is the evidence), kept rows get the new type.
    kept, removed = _mark(frame, failed, pl.lit(reason))
    kept = kept.with_columns(replace).drop(_REMOVE + "value")
    action: Action = "drop" if step.on_error == "drop" else "quarantine"
    return _Outcome(kept, removed.drop(_REMOVE + "value"), action, reason)


def _contract(step: ContractCheck, frame: pl.DataFrame, where: str) -> _Outcome:
    try:
        from mlcycle.datasets.contracts import Contract
        from mlcycle.datasets.validation import row_violations
    except ImportError as exc:
        raise InvalidStateError(
            f"{where}: the contract step needs mlcycle.datasets.contracts and .validation",
            details={"field": f"{where}.contract"},
        ) from exc
    contract = Contract.from_dict(step.contract)
    violations = row_violations(frame.drop(_ROW), contract)
    if not isinstance(violations, pl.Series) or violations.len() != frame.height:
        raise InvalidStateError(
            f"{where}: row_violations must return one reason (or null) per row",
            details={"field": f"{where}.contract"},
        )
    frame = frame.with_columns(violations.cast(pl.String).alias(_REMOVE + "why"))
    why = pl.col(_REMOVE + "why")
    kept, removed = _mark(frame, why.is_not_null(), why)
    return _Outcome(
        kept.drop(_REMOVE + "why"),
        removed.drop(_REMOVE + "why"),
        step.action,
        "breaks the contract",
    )


def _apply(step: RowStep, frame: pl.DataFrame, where: str) -> _Outcome:
    match step:
        case DropDuplicates():
            return _drop_duplicates(step, frame, where)
        case Filter() | DropWhere():
            return _filter(step, frame, where)
        case DropNulls():
            return _drop_nulls(step, frame, where)
        case Derive():
            return _derive(step, frame, where)
        case Cast():
            return _cast(step, frame, where)
        case ContractCheck():
            return _contract(step, frame, where)
    raise AssertionError(f"unhandled row step {step!r}")  # pragma: no cover


# ---------------------------------------------------------------- splitting


def _count(n: int, fraction: float) -> int:
    """Round half up, the same way for every split and class."""
    return math.floor(n * fraction + 0.5)


def _split_labels(frame: pl.DataFrame, spec: PrepareSpec, notes: list[str]) -> np.ndarray:
    """One label per row: 0 train, 1 validation, 2 test."""
    split = spec.split
    assert split is not None
    n = frame.height
    labels = np.zeros(n, dtype=np.int8)
    if split.method == "random":
        n_test, n_val = _count(n, split.test), _count(n, split.validation)
        position = np.empty(n, dtype=np.int64)
        position[np.random.default_rng(split.seed).permutation(n)] = np.arange(n)
        labels[position < n_test + n_val] = 1
        labels[position < n_test] = 2
        return labels

    column = split.column or spec.target
    assert column is not None
    _require(frame, [column], "split.column")
    values = frame[column]

    if split.method == "stratified":
        key = pl.Series("key", np.random.default_rng(split.seed).random(n))
        ranked = frame.select(pl.col(column), key).select(
            rank=pl.col("key").rank("ordinal").over(column) - 1,
            size=pl.len().over(column),
        )
        size = ranked["size"].to_numpy().astype(np.int64)
        rank = ranked["rank"].to_numpy().astype(np.int64)
        # Train keeps at least one row of every class; test is served first, then validation.
        n_test = np.minimum(np.floor(size * split.test + 0.5), size - 1)
        n_val = np.minimum(np.floor(size * split.validation + 0.5), size - 1 - n_test)
        labels[rank < n_test + n_val] = 1
        labels[rank < n_test] = 2
        per_class = (
            pl.DataFrame({"cls": values, "label": labels})
            .group_by("cls")
            .agg(test=(pl.col("label") == 2).sum(), v=(pl.col("label") == 1).sum())
        )
        for name, fraction, col in (
            ("test", split.test, "test"),
            ("validation", split.validation, "v"),
        ):
            if fraction > 0:
                absent = per_class.filter(pl.col(col) == 0)["cls"].to_list()
                if absent:
                    shown = ", ".join(map(repr, absent[:10])) + (" …" if len(absent) > 10 else "")
                    notes.append(
                        f"stratified split: {len(absent)} class(es) of {column!r} too small to "
                        f"reach {name}, kept in train: {shown}"
                    )
        return labels

    # time: the newest rows go to test, the next newest to validation; ties stay together.
    nulls = values.null_count()
    if nulls:
        raise InvalidInputError(
            f"split.column: {nulls} row(s) have no {column!r}, so they cannot be placed in time; "
            f"add a drop_nulls step for it",
            details={"field": "split.column"},
        )
    ordered = values.sort()
    is_test = np.zeros(n, dtype=bool)
    n_test = _count(n, split.test)
    if n_test:
        is_test = (values >= ordered[n - n_test]).to_numpy()
    n_val = _count(n, split.validation)
    is_val = np.zeros(n, dtype=bool)
    if n_val:
        rest = values.filter(pl.Series(~is_test)).sort()
        if rest.len() >= n_val:
            is_val = ~is_test & (values >= rest[rest.len() - n_val]).to_numpy()
    labels[is_val] = 1
    labels[is_test] = 2
    extra = int(is_test.sum()) - n_test + int(is_val.sum()) - n_val
    if extra > 0:
        notes.append(f"time split: {extra} row(s) share a timestamp with a cut and moved later")
    return labels


def _split(frame: pl.DataFrame, spec: PrepareSpec, notes: list[str]) -> dict[str, pl.DataFrame]:
    split = spec.split
    if split is None:
        return {"train": frame}
    labels = pl.Series(_split_labels(frame, spec, notes))
    wanted = {"train": (0, 1.0), "validation": (1, split.validation), "test": (2, split.test)}
    frames: dict[str, pl.DataFrame] = {}
    for name, (label, fraction) in wanted.items():
        if fraction <= 0:
            continue
        part = frame.filter(labels == label)
        if part.height == 0:
            raise InvalidInputError(
                f"split: the {name} split of {frame.height} cleaned row(s) is empty "
                f"(method {split.method}, test {split.test}, validation {split.validation}); "
                "more rows or other fractions are needed",
                details={"field": "split", "split": name},
            )
        frames[name] = part
    return frames


# ---------------------------------------------------------------- prepare


def _to_polars(data: Any) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    if isinstance(data, pa.Table | pa.RecordBatch):
        frame = pl.from_arrow(data)
        assert isinstance(frame, pl.DataFrame)
        return frame
    import pandas  # a core dependency, imported only when needed

    if isinstance(data, pandas.DataFrame):
        return pl.from_pandas(data)
    raise InvalidInputError(
        f"data: expected a polars, pandas or pyarrow table, got {type(data).__name__}",
        details={"field": "data"},
    )


def _fit(spec: PrepareSpec, train: pl.DataFrame) -> Any:
    for i, step in enumerate(spec.features):
        _require(train, step.columns, f"features[{i}].columns")
    features = train.drop(spec.target) if spec.target is not None else train
    transformer = spec.feature_transformer()
    try:
        transformer.fit(features.to_pandas())
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"features: cannot fit the feature transforms on the train split: {exc}",
            details={"field": "features"},
        ) from exc
    return transformer


def prepare(
    data: pl.DataFrame | pl.LazyFrame | pa.Table | pd.DataFrame,
    spec: PrepareSpec | Mapping[str, Any],
) -> PreparedData:
    """Clean *data* with the spec's row steps, split it, and fit the feature transforms on train.

    *data* is a polars, pandas or pyarrow table. Every row of the input is accounted for:
    ``report.rows_in == report.rows_out + report.dropped + report.quarantined``.

    >>> prepared = prepare(frame, PrepareSpec.from_yaml(text))  # doctest: +SKIP
    >>> model = make_pipeline(prepared.transformer, LogisticRegression())  # doctest: +SKIP
    >>> model.fit(prepared.X("train"), prepared.y("train"))  # doctest: +SKIP
    """
    if not isinstance(spec, PrepareSpec):
        spec = PrepareSpec.from_dict(spec)
    frame = _to_polars(data)
    clash = sorted(_RESERVED & set(frame.columns))
    if clash:
        raise InvalidInputError(
            f"data: column(s) {', '.join(clash)} are reserved for the quarantine frame; "
            "rename them",
            details={"field": "data", "columns": clash},
        )

    work = frame.with_row_index(_ROW)
    rows_in = work.height
    steps: list[StepReport] = []
    quarantined: list[pl.DataFrame] = []
    for i, step in enumerate(spec.steps):
        where = f"steps[{i}]"
        before = work.height
        outcome = _apply(step, work, where)
        work = outcome.kept
        removed = outcome.removed
        gone = removed.height if removed is not None else 0
        reasons: dict[str, int] = {}
        if removed is not None and gone:
            counts = removed[_REASON].value_counts(sort=True).head(20)
            reasons = dict(zip(counts[_REASON].to_list(), counts["count"].to_list(), strict=True))
            if outcome.action == "quarantine":
                quarantined.append(removed.with_columns(pl.lit(f"{where} {step.op}").alias(_STEP)))
        steps.append(
            StepReport(
                index=i,
                name=step.op,
                rows_in=before,
                rows_out=work.height,
                dropped=gone if outcome.action == "drop" else 0,
                quarantined=gone if outcome.action == "quarantine" else 0,
                reason=outcome.reason,
                reasons=reasons,
            )
        )

    if spec.target is not None:
        _require(work, [spec.target], "target")
    if work.height == 0:
        raise InvalidInputError(
            f"steps: no rows left of {rows_in} after the row steps",
            details={"field": "steps", "report": [s.to_dict() for s in steps]},
        )
    notes: list[str] = []
    frames = {name: part.drop(_ROW) for name, part in _split(work, spec, notes).items()}
    transformer = _fit(spec, frames["train"])
    quarantine = None
    if quarantined:
        quarantine = (
            pl.concat(quarantined, how="diagonal_relaxed").rename({_ROW: _ROW_OUT}).sort(_ROW_OUT)
        )
        ordered = [c for c in quarantine.columns if c not in (_REASON, _STEP, _ROW_OUT)]
        quarantine = quarantine.select([*ordered, _REASON, _STEP, _ROW_OUT])
    n_quarantined = sum(s.quarantined for s in steps)
    report = PrepareReport(
        rows_in=rows_in,
        rows_out=work.height,
        dropped=sum(s.dropped for s in steps),
        quarantined=n_quarantined,
        steps=steps,
        splits={name: part.height for name, part in frames.items()},
        notes=notes,
        spec_digest=spec.digest(),
    )
    return PreparedData(
        frames=frames,
        quarantine=quarantine,
        report=report,
        transformer=transformer,
        spec=spec,
    )

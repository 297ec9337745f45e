"""The run search language, parsed into a small tree that each store turns into its own query.

The syntax is the one MLflow users know, plus ``or`` and parentheses::

    metrics.rmse < 0.5 and params.model = 'rf' and tags.team != 'x'
    attributes.status = 'finished' and (params.depth IN ('3', '5') or metrics.`val loss` <= 1e-3)

Prefixes: ``metrics``/``metric``, ``params``/``param``, ``tags``/``tag``,
``attributes``/``attr``/``run``. Keys with spaces or other characters go in backticks or double
quotes. Operators: ``= != < <= > >=``,
``LIKE``, ``ILIKE``, ``IN``, ``NOT IN``. A comparison on a key a run lacks is false for that run (so
``tags.team != 'x'`` matches runs that have a ``team`` tag with another value), as in MLflow.

Errors are :class:`~mlcycle.errors.InvalidFilter` with the offending token's position, and a message
that shows it with a caret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeAlias

from mlcycle.errors import InvalidFilter

__all__ = [
    "ATTRIBUTES",
    "And",
    "Comparison",
    "Expr",
    "Or",
    "OrderKey",
    "parse_filter",
    "parse_order_by",
]

Kind: TypeAlias = Literal["metric", "param", "tag", "attribute"]
Value: TypeAlias = "float | str | tuple[float | str, ...]"

_PREFIXES: dict[str, Kind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}

#: attribute name -> value type; ``run_name`` is an alias of ``name``.
ATTRIBUTES: dict[str, Literal["str", "time"]] = {
    "run_id": "str",
    "name": "str",
    "status": "str",
    "experiment_id": "str",
    "parent_run_id": "str",
    "start_time": "time",
    "end_time": "time",
}
_ATTRIBUTE_ALIASES = {"run_name": "name", "id": "run_id"}

_OPS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN")
_STRING_OPS = {"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN", "<", "<=", ">", ">="}
_NUMBER_OPS = {"=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"}


@dataclass(frozen=True, slots=True)
class Comparison:
    kind: Kind
    key: str
    op: str
    value: Value
    position: int = 0


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


Expr: TypeAlias = "Comparison | And | Or"


@dataclass(frozen=True, slots=True)
class OrderKey:
    kind: Kind
    key: str
    descending: bool = False


# --- tokens -------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?
                |inf(?:inity)?|nan)(?![\w.]))
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<dquoted>"(?:[^"\\]|\\.)*")
  | (?P<backtick>`[^`]*`)
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<dot>\.)
  | (?P<word>[A-Za-z_][\w\-/:]*)
    """,
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    pos: int


def _fail(source: str, pos: int, token: str, message: str) -> InvalidFilter:
    caret = " " * pos + "^" * max(1, len(token))
    return InvalidFilter(
        f"{message} at position {pos}:\n  {source}\n  {caret}",
        details={"position": pos, "token": token, "filter": source},
    )


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN_RE.match(source, pos)
        if m is None:
            raise _fail(source, pos, source[pos], f"unexpected character {source[pos]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, m.group(), pos))
        pos = m.end()
    return tokens


def _unquote(token: _Token) -> str:
    body = token.text[1:-1]
    if token.kind == "string":
        return re.sub(r"\\(.)|''", lambda m: m.group(1) or "'", body)
    if token.kind == "dquoted":
        return re.sub(r"\\(.)", lambda m: m.group(1), body)
    return body


# --- parser -------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.i = 0

    # helpers
    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, expected: str) -> _Token:
        tok = self.peek()
        if tok is None:
            raise _fail(self.source, len(self.source), "", f"expected {expected}, got the end")
        self.i += 1
        return tok

    def error(self, tok: _Token, message: str) -> InvalidFilter:
        return _fail(self.source, tok.pos, tok.text, message)

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.text.upper() in words

    # grammar
    def parse(self) -> Expr | None:
        if not self.tokens:
            return None
        expr = self.parse_or()
        tok = self.peek()
        if tok is not None:
            raise self.error(tok, f"expected 'and', 'or' or the end, got {tok.text!r}")
        return expr

    def parse_or(self) -> Expr:
        items = [self.parse_and()]
        while self.at_word("OR"):
            self.i += 1
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self) -> Expr:
        items = [self.parse_atom()]
        while self.at_word("AND"):
            self.i += 1
            items.append(self.parse_atom())
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_atom(self) -> Expr:
        tok = self.peek()
        if tok is not None and tok.kind == "lparen":
            self.i += 1
            expr = self.parse_or()
            close = self.next("')'")
            if close.kind != "rparen":
                raise self.error(close, f"expected ')', got {close.text!r}")
            return expr
        return self.parse_comparison()

    def parse_identifier(self) -> tuple[Kind, str, _Token]:
        head = self.next("an identifier such as metrics.rmse")
        if head.kind != "word" or head.text.lower() not in _PREFIXES:
            raise self.error(
                head,
                f"expected an identifier starting with metrics., params., tags. or attributes., "
                f"got {head.text!r}",
            )
        kind = _PREFIXES[head.text.lower()]
        dot = self.next("'.'")
        if dot.kind != "dot":
            raise self.error(dot, f"expected '.' after {head.text!r}, got {dot.text!r}")
        key_tok = self.next("a key")
        if key_tok.kind in ("backtick", "dquoted"):
            key = _unquote(key_tok)
        elif key_tok.kind in ("word", "number"):
            key = key_tok.text
            # dotted keys without quotes: metrics.val.loss
            while (t := self.peek()) is not None and t.kind == "dot":
                self.i += 1
                part = self.next("a key")
                if part.kind not in ("word", "number"):
                    raise self.error(part, f"expected a key, got {part.text!r}")
                key += "." + part.text
        else:
            raise self.error(key_tok, f"expected a key after '{head.text}.', got {key_tok.text!r}")
        if not key:
            raise self.error(key_tok, "empty key")
        if kind == "attribute":
            key = _ATTRIBUTE_ALIASES.get(key.lower(), key.lower())
            if key not in ATTRIBUTES:
                raise self.error(
                    key_tok,
                    f"unknown attribute {key!r}; expected one of {', '.join(sorted(ATTRIBUTES))}",
                )
        return kind, key, head

    def parse_op(self) -> tuple[str, _Token]:
        tok = self.next("a comparison operator")
        if tok.kind == "op":
            op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
            return op, tok
        if tok.kind == "word":
            word = tok.text.upper()
            if word == "NOT":
                nxt = self.next("IN")
                if nxt.kind == "word" and nxt.text.upper() == "IN":
                    return "NOT IN", tok
                raise self.error(nxt, f"expected IN after NOT, got {nxt.text!r}")
            if word in _OPS:
                return word, tok
        raise self.error(
            tok, f"expected an operator ({', '.join(_OPS)}), got {tok.text!r}"
        )

    def parse_scalar(self) -> tuple[float | str, _Token]:
        tok = self.next("a value")
        if tok.kind == "number":
            return float(tok.text), tok
        if tok.kind in ("string", "dquoted"):
            return _unquote(tok), tok
        raise self.error(tok, f"expected a number or a quoted string, got {tok.text!r}")

    def parse_comparison(self) -> Comparison:
        kind, key, head = self.parse_identifier()
        op, op_tok = self.parse_op()
        value: Value
        if op in ("IN", "NOT IN"):
            open_tok = self.next("'('")
            if open_tok.kind != "lparen":
                raise self.error(open_tok, f"expected '(' after {op}, got {open_tok.text!r}")
            items: list[float | str] = []
            tokens: list[_Token] = []
            while True:
                item, item_tok = self.parse_scalar()
                items.append(item)
                tokens.append(item_tok)
                sep = self.next("',' or ')'")
                if sep.kind == "rparen":
                    break
                if sep.kind != "comma":
                    raise self.error(sep, f"expected ',' or ')', got {sep.text!r}")
            for item, item_tok in zip(items, tokens, strict=True):
                self.check_value(kind, key, op, item, item_tok)
            value = tuple(self.coerce(kind, key, v, t) for v, t in zip(items, tokens, strict=True))
        else:
            scalar, val_tok = self.parse_scalar()
            self.check_value(kind, key, op, scalar, val_tok)
            value = self.coerce(kind, key, scalar, val_tok)
        if kind == "metric" and op not in _NUMBER_OPS:
            raise self.error(op_tok, f"{op} does not apply to metrics (numbers)")
        if kind != "metric" and op not in _STRING_OPS:
            raise self.error(op_tok, f"{op} does not apply to {kind}s")
        return Comparison(kind, key, op, value, head.pos)

    def check_value(self, kind: Kind, key: str, op: str, value: float | str, tok: _Token) -> None:
        if kind == "metric" and not isinstance(value, float):
            raise self.error(tok, f"metrics.{key} compares with numbers, got the string {tok.text}")
        if kind in ("param", "tag") and not isinstance(value, str):
            raise self.error(
                tok,
                f"{kind}s are strings: quote the value, e.g. {kind}s.{key} {op} '{tok.text}'",
            )

    def coerce(self, kind: Kind, key: str, value: float | str, tok: _Token) -> float | str:
        if kind == "attribute" and ATTRIBUTES[key] == "time":
            if isinstance(value, float):
                return value
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                raise self.error(
                    tok, f"attributes.{key} takes ms since the epoch or an ISO date, got {tok.text}"
                ) from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return float(int(when.timestamp() * 1000))
        if kind == "attribute" and isinstance(value, float):
            raise self.error(tok, f"attributes.{key} is a string: quote the value")
        if kind == "attribute" and key == "status":
            return value.lower() if isinstance(value, str) else value
        return value


def parse_filter(source: str | None) -> Expr | None:
    """Parse a filter string; ``None`` for an empty one. Raises InvalidFilter."""
    if source is None or not source.strip():
        return None
    return _Parser(source).parse()


def parse_order_by(clauses: list[str] | tuple[str, ...]) -> list[OrderKey]:
    """Parse ``["metrics.rmse ASC", "attributes.start_time DESC"]``."""
    keys: list[OrderKey] = []
    for clause in clauses:
        parser = _Parser(clause)
        kind, key, _ = parser.parse_identifier()
        descending = False
        tok = parser.peek()
        if tok is not None:
            if tok.kind == "word" and tok.text.upper() in ("ASC", "DESC"):
                descending = tok.text.upper() == "DESC"
                parser.i += 1
            tok = parser.peek()
            if tok is not None:
                raise parser.error(tok, f"expected ASC, DESC or the end, got {tok.text!r}")
        keys.append(OrderKey(kind, key, descending))
    return keys

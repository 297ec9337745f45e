"""What a step's cache key is made of, and nothing else.

``cache_key = BLAKE3(canonical JSON of {step name, code hash, params, input digests, step
version, mlcycle version})``. So a finished step is reused exactly when all of these match:

* **code hash**: the step function's source, and the source of every function *of the same
  module* it calls by name (and those they call, transitively), each parsed and printed back
  (``ast.unparse``) without decorators and docstrings, so comments, formatting and docstrings
  do not count. Code in other modules (libraries, your other files), classes, closures' values
  and global constants do not count either: bump ``@step(version=...)`` or run with
  ``--no-cache`` when only those changed.
* **params**: the arguments that are plain JSON (numbers, strings, booleans, ``None``, lists
  and dicts of them), defaults included, keyed by parameter name, so ``f(1)`` and ``f(x=1)``
  are the same call. NaN and infinities are told apart from ``None``.
* **input digests**: the BLAKE3 digest of each upstream output passed in, and of any argument
  that is not plain JSON (it is serialised like an output).
* the step's ``name`` and ``version``, and the installed mlcycle version (a new mlcycle may
  store outputs differently).

A step with ``cache=False``, or a run with ``cache=False`` (``--no-cache``), always runs; its
key is still recorded, so a later cached run can reuse what it made.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import inspect
import math
import textwrap
import types
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from blake3 import blake3

from mlcycle.types import JSONValue

__all__ = ["NotJSON", "cache_key", "canonical", "code_hash", "mlcycle_version"]

_hashes: weakref.WeakKeyDictionary[Callable[..., Any], str] = weakref.WeakKeyDictionary()


@functools.cache
def mlcycle_version() -> str:
    try:
        return importlib.metadata.version("mlcycle")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was not installed
        return "0+unknown"


def code_hash(fn: Callable[..., Any]) -> str:
    """The BLAKE3 hash of *fn*'s normalised source and that of the same-module functions it
    calls (computed once per function object)."""
    found = _hashes.get(fn)
    if found is None:
        parts = [_normalised_source(f) for f in _closure(fn)]
        found = blake3("\n\n".join(parts).encode()).hexdigest()
        _hashes[fn] = found
    return found


def _closure(fn: Callable[..., Any]) -> list[types.FunctionType]:
    """*fn*, then the same-module functions it reaches by name, sorted by qualified name."""
    root = _unwrap(fn)
    seen: dict[int, types.FunctionType] = {id(root): root}
    todo = [root]
    while todo:
        current = todo.pop()
        for name in _global_names(current.__code__):
            target = _unwrap(current.__globals__.get(name))
            if (isinstance(target, types.FunctionType) and id(target) not in seen
                    and target.__module__ == root.__module__):
                seen[id(target)] = target
                todo.append(target)
    rest = sorted((f for f in seen.values() if f is not root), key=lambda f: f.__qualname__)
    return [root, *rest]


def _unwrap(obj: Any) -> Any:
    inner = getattr(obj, "fn", None)  # a Step or Pipeline: the function it wraps
    return inner if isinstance(inner, types.FunctionType) else obj


def _global_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:  # nested functions, lambdas, comprehensions
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


def _normalised_source(fn: types.FunctionType) -> str:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return _bytecode_text(fn.__code__)  # no source (a REPL, exec): the bytecode
    node = next((n for n in ast.walk(tree)
                 if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)), None)
    if node is None:
        return _bytecode_text(fn.__code__)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        node.decorator_list = []
    for sub in ast.walk(node):
        body = getattr(sub, "body", None)
        if (isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            sub.body = body[1:] or [ast.Pass()]
    return ast.unparse(node)


def _bytecode_text(code: types.CodeType) -> str:
    consts = [(_bytecode_text(c) if isinstance(c, types.CodeType) else repr(c))
              for c in code.co_consts]
    return f"{code.co_code.hex()}|{code.co_names}|{consts}"


# --- canonical values -------------------------------------------------------------------------


class NotJSON(Exception):
    """The value is not plain JSON (it is treated as an input, by digest)."""


def canonical(value: Any) -> JSONValue:
    """*value* as plain JSON with a stable shape: tuples become lists, non-finite floats a
    tagged object (so NaN differs from ``None``). Raises NotJSON for anything else."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$float": "NaN" if math.isnan(value) else ("Infinity" if value > 0
                                                            else "-Infinity")}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise NotJSON
        return {k: canonical(v) for k, v in value.items()}
    raise NotJSON


def cache_key(
    *,
    step: str,
    code: str,
    params: Mapping[str, JSONValue],
    inputs: Mapping[str, str],
    version: str | None,
) -> str:
    """The BLAKE3 key a finished step is found by (see this module's docstring)."""
    doc = {
        "step": step,
        "code": code,
        "params": params,
        "inputs": inputs,
        "version": version,
        "mlcycle": mlcycle_version(),
    }
    return blake3(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()

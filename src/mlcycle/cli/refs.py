"""Turn what a user types for a run or an experiment into one id.

A run is named by its id or by a unique prefix of at least six characters (tables show eight);
an experiment by its name, its id or a unique id prefix.
"""

from __future__ import annotations

import re

from mlcycle.client import Client
from mlcycle.entities import Experiment
from mlcycle.errors import ExperimentNotFound, InvalidInputError, RunNotFound

__all__ = ["MIN_PREFIX", "resolve_experiment", "resolve_run_id", "resolve_run_ids"]

MIN_PREFIX = 6
_ID_LENGTH = 32
#: Ids are lowercase hex, so a prefix of them can go into a LIKE pattern as it is.
_PREFIX = re.compile(rf"[0-9a-f]{{{MIN_PREFIX},{_ID_LENGTH - 1}}}")
_SHOWN_MATCHES = 5


def resolve_run_id(client: Client, ref: str) -> str:
    """The id of the one run (deleted ones included) whose id is *ref* or starts with it.

    Anything that is not a hex prefix is returned as it is, for the store to look up."""
    if not _PREFIX.fullmatch(ref):
        return ref
    page = client.search_runs(
        filter=f"attributes.run_id LIKE '{ref}%'",
        max_results=_SHOWN_MATCHES,
        include_deleted=True,
    )
    ids = [run.run_id for run in page.items]
    if not ids:
        raise RunNotFound(f"no run with id or id prefix {ref!r}", details={"run_id": ref})
    if len(ids) > 1:
        more = ", ..." if page.next_page_token else ""
        raise InvalidInputError(
            f"run id prefix {ref!r} matches several runs ({', '.join(ids)}{more}): "
            "give more characters",
            details={"run_id": ref},
        )
    return ids[0]


def resolve_run_ids(client: Client, refs: list[str]) -> list[str]:
    """:func:`resolve_run_id` for each of *refs*, duplicates dropped, order kept."""
    return list(dict.fromkeys(resolve_run_id(client, ref) for ref in refs))


def resolve_experiment(client: Client, ref: str) -> Experiment:
    """The experiment named *ref*, with id *ref*, or whose id starts with *ref* (deleted
    experiments included, so that they can be restored)."""
    try:
        return client.get_experiment(ref)
    except ExperimentNotFound:
        pass
    matches = [
        exp for exp in client.list_experiments(include_deleted=True)
        if exp.name == ref or (_PREFIX.fullmatch(ref) and exp.experiment_id.startswith(ref))
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ExperimentNotFound(
            f"no experiment is named {ref!r} or has that id", details={"experiment": ref}
        )
    ids = ", ".join(exp.experiment_id for exp in matches)
    raise InvalidInputError(
        f"{ref!r} matches several experiments ({ids}): give the full id",
        details={"experiment": ref},
    )

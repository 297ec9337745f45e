"""``mlcycle lineage REF``: what made a prediction or a model version, as a tree (or JSON)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.tree import Tree

from mlcycle.cli.context import client_from
from mlcycle.cli.output import JsonFlag, console, print_json

__all__ = ["lineage"]


def lineage(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(
        metavar="REF", help="A prediction's request id, or models:/name/<version>.")],
    deployment: Annotated[str | None, typer.Option(
        "--deployment", "-d", help="Look for the prediction in this deployment's logs only.")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """The chain behind a prediction or a model version: model version, training run and
    commit, pipeline run, dataset versions and their parents, and for a retrained version the
    trigger run, the alert and the monitor result that caused it."""
    from mlcycle.lineage import trace

    chain = trace(client_from(ctx), ref, deployment=deployment).to_dict()
    if json_:
        print_json(chain)
        return
    root = Tree(f"[bold]{ref}[/]")
    node = root
    if (p := chain["prediction"]) is not None:
        node = root.add(f"prediction {p['request_id']} at {p['time']}: deployment "
                        f"[bold]{p['deployment']}[/], version {p['version']} ({p['role']}), "
                        f"{p['rows']} row(s), {p['labelled']} labelled")
    m = chain["model"]
    model = node.add(f"model [bold]{m['uri']}[/]" + (f": {m['description']}"
                                                    if m["description"] else ""))
    if (r := chain["run"]) is not None:
        model.add(f"run {r['run_id']} ({r['name']}, {r['status']}), commit "
                  f"{r['commit'] or '-'}")
    if (pr := chain["pipeline_run"]) is not None:
        model.add(f"pipeline run {pr['pipeline_run_id']} {pr['pipeline']} ({pr['status']})")
    data = model.add("datasets")
    for d in chain["datasets"]:
        _dataset(data, d)
    if (t := chain["trigger_run"]) is not None:
        run = model.add(f"trigger run {t['run_id']} of [bold]{t['trigger']}[/] "
                        f"({t['status']}, cause {t['cause'].get('kind')}): {t['reason']}")
        if t["gates"].get("summary"):
            run.add(str(t["gates"]["summary"]).splitlines()[0])
        if (a := chain["alert"]) is not None:
            alert = run.add(f"alert {a['alert_id']} of monitor {a['monitor']} at {a['time']}: "
                            f"{a['message']}")
            if (res := chain["monitor_result"]) is not None:
                alert.add(f"monitor result {res['result_id']} ({res['status']}), window "
                          f"{res['window'][0]} → {res['window'][1]}")
    for gap in chain["missing"]:
        root.add(f"[yellow]missing: {gap}[/]")
    console.print(root, soft_wrap=True)


def _dataset(parent: Tree, d: dict[str, Any]) -> None:
    role = (d.get("context") or {}).get("role")
    node = parent.add(f"{d['ref']}" + (f" ({role})" if role else "")
                      + (f", {d['rows']} rows" if d.get("rows") is not None else ""))
    for p in d.get("parents", []):
        _dataset(node, p)

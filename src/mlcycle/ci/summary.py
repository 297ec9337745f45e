"""A Markdown summary of a ``ci run`` for a pull-request comment or a job summary: the verdict,
what changed, the metrics against production, the gate table, every failed check, links."""

from __future__ import annotations

from mlcycle.ci.results import CiResult

__all__ = ["to_markdown"]

_VERDICT = {
    "released": "✅ released", "unchanged": "⏸️ nothing changed", "planned": "📝 planned",
    "data_failed": "❌ data broke its contract", "pipeline_failed": "❌ pipeline failed",
    "gates_failed": "❌ gates failed", "tests_failed": "❌ model tests failed",
    "acceptance_failed": "❌ acceptance tests failed",
    "promotion_failed": "❌ promotion failed", "locked": "⛔ locked",
}
_MARK = {"passed": "✅", "failed": "❌", "skipped": "⏭️"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def to_markdown(result: CiResult) -> str:
    lines = [f"## mlcycle ci: {result.project} — {_VERDICT[result.outcome]}", ""]
    if result.reason:
        lines += [result.reason, ""]
    if result.model_version or result.production_before:
        lines += [f"Candidate: `{result.model_version or '–'}` · production before: "
                  f"`{result.production_before or 'none'}`", ""]
    if result.changes:
        lines += ["**Changes since production**", ""]
        lines += [f"- {_cell(c)}" for c in result.changes] + [""]
    if result.metrics:
        base = result.baseline_metrics or {}
        lines += ["| metric | candidate | production | Δ |", "|---|---:|---:|---:|"]
        for key, value in sorted(result.metrics.items()):
            before = base.get(key)
            delta = "–" if before is None else f"{value - before:+.4f}"
            lines.append(f"| {key} | {_num(value)} | {_num(before)} | {delta} |")
        lines.append("")
    if result.gates:
        lines += ["| gate | status | result |", "|---|:-:|---|"]
        for gate in result.gates:
            lines.append(f"| {_cell(gate['label'])} | {_MARK[gate['status']]} | "
                         f"{_cell(gate['message'])} |")
        lines.append("")
    counts = {s: sum(c.status == s for c in result.checks) for s in _MARK}
    lines.append(f"Checks: {counts['passed']} passed, {counts['failed']} failed, "
                 f"{counts['skipped']} skipped.")
    failed = [c for c in result.checks if c.failed]
    if failed:
        lines += ["", "**Failed**", ""]
        lines += [f"- `{c.step}` {_cell(c.name)}: {_cell(c.message)}" for c in failed]
    if result.links:
        lines += ["", " · ".join(f"[{k}]({v})" if "://" in v else f"{k}: `{v}`"
                                 for k, v in result.links.items())]
    return "\n".join(lines) + "\n"

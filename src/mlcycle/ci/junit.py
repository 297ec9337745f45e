"""JUnit XML of a ``ci run``: one ``<testsuite>`` per step, one ``<testcase>`` per check, as
GitHub, GitLab and Jenkins show test reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import groupby

from mlcycle.ci.results import STEPS, CiResult

__all__ = ["to_junit"]


def to_junit(result: CiResult) -> str:
    """The report as an XML document (UTF-8 text with its declaration)."""
    checks = sorted(result.checks, key=lambda c: [s for s, _ in STEPS].index(c.step)
                    if c.step in dict(STEPS) else len(STEPS))
    root = ET.Element("testsuites", name=f"mlcycle ci run {result.project}",
                      tests=str(len(checks)),
                      failures=str(sum(c.failed for c in checks)),
                      skipped=str(sum(c.status == "skipped" for c in checks)),
                      time=f"{sum(c.seconds for c in checks):.3f}")
    for step, group in groupby(checks, key=lambda c: c.step):
        cases = list(group)
        suite = ET.SubElement(
            root, "testsuite", name=f"{result.project}.{step}", tests=str(len(cases)),
            failures=str(sum(c.failed for c in cases)), errors="0",
            skipped=str(sum(c.status == "skipped" for c in cases)),
            time=f"{sum(c.seconds for c in cases):.3f}")
        for check in cases:
            case = ET.SubElement(suite, "testcase", classname=f"{result.project}.{step}",
                                 name=check.name, time=f"{check.seconds:.3f}")
            if check.failed:
                failure = ET.SubElement(case, "failure", message=check.message[:500],
                                        type=step)
                failure.text = check.message
            elif check.status == "skipped":
                ET.SubElement(case, "skipped", message=check.message)
            elif check.message:
                ET.SubElement(case, "system-out").text = check.message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"

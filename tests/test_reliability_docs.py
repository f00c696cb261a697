"""docs/reliability.md names tests as proof: every node id on that page must
be a test pytest collects (soak tests included), and every row of its fault
matrix must name at least one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "reliability.md"
NODE_ID = re.compile(r"tests/[\w/]+\.py::\w+(?:\[[^\]`\s]+\])?")
ROWS = [
    "Serial link lost",
    "Broker down",
    "Bridge crash",
    "Power loss",
    "Watchdog reset",
    "Welded relay",
    "Relay that never closes",
    "Open thermocouple",
    "Dead ADC",
    "Tick wrap-around",
    "Garbage on the line",
    "Malformed MQTT command",
    "Retained MQTT command",
    "Command flood",
    "Bad settings file",
    "Deploying",
    "Serial port renumbered",
    "A device that says something wrong",
    "Home Assistant restarts, or floods",
    "A state Home Assistant cannot read",
    "Broker unreachable or refusing",
    "Bad configuration",
    "Two bridges with one bridge id",
    "The demo on a shared broker",
    "A flame blown out",
    "Nobody at the hob",
    "Welded relay with the flame turned down",
    "Button bounce",
]


def _matrix_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\|\s*\*\*(.+?)\*\*", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_every_test_named_in_reliability_md_exists():
    text = DOC.read_text()
    named = sorted(set(NODE_ID.findall(text)))
    assert len(named) > 30
    files = sorted({n.split("::")[0] for n in named})
    missing_files = [f for f in files if not (REPO / f).exists()]
    assert not missing_files, f"docs/reliability.md names missing files: {missing_files}"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-o", "addopts=", "-p", "no:cacheprovider", *files],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    collected = set(proc.stdout.split())
    # A parametrized test named without its parameters stands for all of them.
    functions = {c.split("[")[0] for c in collected}
    missing = [n for n in named if n not in collected and ("[" in n or n not in functions)]
    assert not missing, f"docs/reliability.md names tests pytest does not collect: {missing}\n{proc.stderr[-2000:]}"


def test_every_failure_in_the_matrix_has_a_test():
    rows = _matrix_rows(DOC.read_text())
    for name in ROWS:
        row = next((line for title, line in rows.items() if title.startswith(name)), None)
        assert row is not None, f"no row for {name!r} in the fault matrix"
        assert NODE_ID.search(row), f"the row {name!r} names no test"
    for title, line in rows.items():
        assert NODE_ID.search(line), f"the row {title!r} names no test"

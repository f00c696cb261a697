"""Scenarios: timed person actions, host commands and faults, played against
the real firmware on the simulated hob in virtual time, with expectations
checked against the physical truth and against what the device reported.

A scenario is a TOML file (format: ``sim/README.md``)::

    title = "Simmer with a 20-minute timer"
    duration = "25m"

    [[step]]
    at = "1m"
    do = "ignite left"

    [[step]]
    at = "1m10s"
    do = "timer left 20"

    [[expect]]
    valve = "closed"
    burner = "left"
    by = "21m11s"

The package, around the simulator's seams (the action language in
``hobguard_sim.actions``, the device's hooks in ``hobguard_sim.device``):

- ``spec`` — reading and checking a scenario file (:func:`load`, :func:`find`,
  :func:`library`, :func:`from_dict`);
- ``runner`` — playing it (:func:`run`) with a recorder on the device's hooks;
- ``result`` — what a run leaves (:class:`ScenarioResult`, named samples);
- ``checks`` — its expectations and the safety invariants;
- ``timeline`` — the story in words (:func:`format_timeline`).

Public API (used by ``hobguard sim``, the tests and the benchmarks):
:func:`library`, :func:`find`, :func:`load`, :func:`loads`, :func:`from_dict`,
:func:`run`, :func:`format_timeline`, :func:`invariant_checks`.
"""

from __future__ import annotations

from ..times import fmt_time
from .checks import invariant_checks
from .result import SAMPLE_FIELDS, Check, Message, Row, Sample, ScenarioResult
from .runner import RECORD_EVERY_MS, Recorder, run
from .spec import (
    ACTION_HELP,
    EVENT_TYPES,
    RESET_CAUSES,
    SCENARIO_DIR,
    Expect,
    ScenarioError,
    ScenarioSpec,
    Step,
    find,
    from_dict,
    library,
    load,
    loads,
    parse_action,
    parse_time,
)
from .timeline import format_timeline

__all__ = [
    "SCENARIO_DIR",
    "ACTION_HELP",
    "EVENT_TYPES",
    "RESET_CAUSES",
    "RECORD_EVERY_MS",
    "SAMPLE_FIELDS",
    "ScenarioError",
    "ScenarioSpec",
    "Step",
    "Expect",
    "Check",
    "Message",
    "Row",
    "Sample",
    "ScenarioResult",
    "Recorder",
    "library",
    "find",
    "load",
    "loads",
    "from_dict",
    "parse_action",
    "run",
    "format_timeline",
    "invariant_checks",
    "parse_time",
    "fmt_time",
]

"""A small stand-in for Home Assistant's automation engine, enough to run
hobguard's blueprints in tests.

What it does the way Home Assistant does it (core: helpers/template.py,
helpers/script.py, components/blueprint, components/mqtt/trigger.py):

- a blueprint is YAML with ``!input NAME`` tags; an automation made from it
  has each tag replaced by the input's value (or its default);
- a string holding ``{{``, ``{%`` or ``{#`` is a template: rendered with
  Jinja, stripped, and read back into a Python value the way Home
  Assistant's ``_parse_result`` does (``"3"`` → 3, ``"True"`` → True,
  ``"Left: …"`` stays text);
- ``trigger_variables`` are rendered first (an MQTT trigger's topic may use
  them), then a trigger is matched, then ``variables`` in order (each sees
  the ones before), then ``conditions``, then ``actions``.

Stricter than Home Assistant on purpose: an undefined name or attribute is
an error here (``StrictUndefined``), where Home Assistant logs a template
warning; and an action or condition this runner does not know fails the
test instead of being skipped.

Actions known: a service call (``action:`` with ``data``/``target``),
``delay``, ``repeat`` (``while``/``until``/``count``/``for_each``),
``choose``, ``if``/``then``/``else``, ``condition``, ``variables``,
``sequence``, ``stop``. A delay does not wait: it is recorded, and the
test's ``on_delay`` callback may change the world (states) meanwhile.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import jinja2
import yaml

# -- blueprints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """A `!input NAME` tag."""

    name: str


class BlueprintLoader(yaml.SafeLoader):
    pass


BlueprintLoader.add_constructor("!input", lambda loader, node: Input(loader.construct_scalar(node)))


def load(path: Path | str) -> dict[str, Any]:
    with open(path) as f:
        return yaml.load(f, Loader=BlueprintLoader)  # noqa: S506 (a SafeLoader with one more tag)


def inputs_used(node: Any) -> set[str]:
    if isinstance(node, Input):
        return {node.name}
    if isinstance(node, dict):
        return set().union(*(inputs_used(v) for k, v in node.items() if k != "blueprint")) if node else set()
    if isinstance(node, list):
        return set().union(*(inputs_used(v) for v in node)) if node else set()
    return set()


def declared_inputs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every input of a blueprint, sections flattened."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in (doc["blueprint"].get("input") or {}).items():
        if isinstance(spec, dict) and "input" in spec:
            out.update(spec["input"])
        else:
            out[name] = spec or {}
    return out


def substitute(doc: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The automation a person makes from the blueprint with these inputs."""
    declared = declared_inputs(doc)
    unknown = set(values) - set(declared)
    assert not unknown, f"no such inputs: {unknown}"

    def value(name: str) -> Any:
        if name in values:
            return values[name]
        assert "default" in declared[name], f"input {name!r} has no default and was not given"
        return declared[name]["default"]

    def walk(node: Any) -> Any:
        if isinstance(node, Input):
            return value(node.name)
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return {k: walk(v) for k, v in doc.items() if k != "blueprint"}


# -- the world an automation sees ---------------------------------------------------------------


@dataclass
class State:
    state: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    action: str
    data: dict[str, Any]
    target: dict[str, Any]


_NUMERIC = re.compile(r"^(-)?(?!0\d)\d+(?:\.\d+)?$")


def parse_result(text: str) -> Any:
    """What Home Assistant makes of a rendered template (template.py, _parse_result)."""
    try:
        result = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError):
        return text
    if isinstance(result, (str, complex)):
        return text
    if isinstance(result, (int, float)) and not isinstance(result, bool) and not _NUMERIC.match(text):
        return text
    return result


def is_template(value: Any) -> bool:
    return isinstance(value, str) and any(mark in value for mark in ("{{", "{%", "{#"))


class Stop(Exception):
    pass


class ConditionFailed(Exception):
    pass


@dataclass
class Run:
    """What one run of an automation did."""

    triggered: bool = False
    passed: bool = False  # its conditions held
    calls: list[Call] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)  # seconds
    variables: dict[str, Any] = field(default_factory=dict)
    steps: list[tuple[str, Any]] = field(default_factory=list)  # ("call", Call) / ("delay", s), in order


class Hass:
    """States, devices, and the template environment of one test."""

    def __init__(self, now: datetime | None = None) -> None:
        self.states: dict[str, State] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.now = now or datetime(2026, 11, 24, 18, 30, tzinfo=timezone.utc)
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.loopcontrols"])
        env.globals.update(
            states=self.state_of,
            is_state=self.is_state,
            state_attr=self.state_attr,
            device_attr=self.device_attr,
            now=lambda: self.now,
        )
        env.filters.update(device_attr=self.device_attr, tojson=json.dumps, is_state=self.is_state)
        env.tests.update(is_state=self.is_state)
        self.env = env
        self._compiled: dict[str, jinja2.Template] = {}

    # Home Assistant's template functions used by the blueprints
    def state_of(self, entity_id: str) -> str:
        state = self.states.get(entity_id)
        return state.state if state else "unknown"

    def is_state(self, entity_id: str, value: Any) -> bool:
        state = self.states.get(entity_id)
        if state is None:
            return False
        return state.state in value if isinstance(value, list) else state.state == value

    def state_attr(self, entity_id: str, name: str) -> Any:
        state = self.states.get(entity_id)
        return state.attributes.get(name) if state else None

    def device_attr(self, device_id: str, name: str) -> Any:
        return (self.devices.get(device_id) or {}).get(name)

    def set(self, entity_id: str, state: str, **attributes: Any) -> None:
        self.states[entity_id] = State(state, attributes)

    # rendering
    def render(self, value: Any, variables: dict[str, Any]) -> Any:
        """A value of an automation's config, its templates rendered."""
        if is_template(value):
            template = self._compiled.get(value)
            if template is None:
                template = self._compiled[value] = self.env.from_string(value)
            return parse_result(template.render(**variables).strip())
        if isinstance(value, dict):
            return {k: self.render(v, variables) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, variables) for v in value]
        return value

    # triggers
    def _match(self, automation: dict[str, Any], event: dict[str, Any], variables: dict[str, Any]) -> dict | None:
        for index, spec in enumerate(automation.get("triggers") or []):
            kind = spec["trigger"]
            if kind != event["trigger"]:
                continue
            trigger = {"platform": kind, "id": str(spec.get("id", index)), "idx": str(index)}
            if kind == "mqtt":
                topic_filter = self.render(spec["topic"], variables)
                if not mqtt_matches(topic_filter, event["topic"]):
                    continue
                trigger.update(topic=event["topic"], payload=event["payload"], qos=spec.get("qos", 0))
                try:
                    trigger["payload_json"] = json.loads(event["payload"])
                except ValueError:
                    pass
            elif kind == "state":
                entities = spec["entity_id"] if isinstance(spec["entity_id"], list) else [spec["entity_id"]]
                if event["entity_id"] not in entities:
                    continue
                to = spec.get("to")
                if to is not None and event["to_state"].state not in (to if isinstance(to, list) else [to]):
                    continue
                trigger.update(entity_id=event["entity_id"], from_state=event.get("from_state"),
                               to_state=event["to_state"])  # fmt: skip
            elif kind == "homeassistant":
                if spec.get("event") != event["event"]:
                    continue
                trigger["event"] = event["event"]
            elif kind == "event":
                if spec.get("event_type") != event["event_type"]:
                    continue
                trigger["event"] = {"event_type": event["event_type"], "data": event.get("data", {})}
            else:
                raise AssertionError(f"no trigger kind {kind!r} in this runner")
            return trigger
        return None

    def fire(self, automation: dict[str, Any], event: dict[str, Any], on_delay: Callable[[float], None] | None = None,
             max_steps: int = 200) -> Run:  # fmt: skip
        """One event (a trigger that happened) through one automation."""
        run = Run()
        variables: dict[str, Any] = {}
        for name, value in (automation.get("trigger_variables") or {}).items():
            variables[name] = self.render(value, variables)
        trigger = self._match(automation, event, variables)
        if trigger is None:
            return run
        run.triggered = True
        variables["trigger"] = trigger
        for name, value in (automation.get("variables") or {}).items():
            variables[name] = self.render(value, variables)
        run.variables = variables
        if not all(self.condition(c, variables) for c in automation.get("conditions") or []):
            return run
        run.passed = True
        budget = [max_steps]
        try:
            self.actions(automation.get("actions") or [], variables, run, on_delay, budget)
        except (Stop, ConditionFailed):
            pass
        return run

    def fire_state(self, automation: dict[str, Any], entity_id: str, state: str, **kwargs: Any) -> Run:
        """A state change: the state is set first, as in Home Assistant."""
        before = self.states.get(entity_id)
        self.set(entity_id, state)
        event = {"trigger": "state", "entity_id": entity_id, "from_state": before, "to_state": self.states[entity_id]}
        return self.fire(automation, event, **kwargs)

    # conditions
    def condition(self, spec: Any, variables: dict[str, Any]) -> bool:
        if isinstance(spec, str):  # the template shorthand
            return bool(self.render(spec, variables))
        kind = spec["condition"]
        if kind == "template":
            return bool(self.render(spec["value_template"], variables))
        if kind == "state":
            entities = spec["entity_id"] if isinstance(spec["entity_id"], list) else [spec["entity_id"]]
            return all(self.is_state(e, spec["state"]) for e in entities)
        if kind == "trigger":
            ids = spec["id"] if isinstance(spec["id"], list) else [spec["id"]]
            return variables["trigger"]["id"] in ids
        if kind == "and":
            return all(self.condition(c, variables) for c in spec["conditions"])
        if kind == "or":
            return any(self.condition(c, variables) for c in spec["conditions"])
        if kind == "not":
            return not any(self.condition(c, variables) for c in spec["conditions"])
        raise AssertionError(f"no condition {kind!r} in this runner")

    # actions
    def actions(self, steps: list[Any], variables: dict[str, Any], run: Run,
                on_delay: Callable[[float], None] | None, budget: list[int]) -> None:  # fmt: skip
        for step in steps if isinstance(steps, list) else [steps]:
            budget[0] -= 1
            assert budget[0] > 0, "the automation ran too many steps (an endless loop?)"
            self.action(step, variables, run, on_delay, budget)

    def action(self, step: dict[str, Any], variables: dict[str, Any], run: Run,
               on_delay: Callable[[float], None] | None, budget: list[int]) -> None:  # fmt: skip
        if "action" in step:
            call = Call(self.render(step["action"], variables), self.render(step.get("data") or {}, variables),
                        self.render(step.get("target") or {}, variables))  # fmt: skip
            run.calls.append(call)
            run.steps.append(("call", call))
        elif "delay" in step:
            spec = self.render(step["delay"], variables)
            seconds = duration_s(spec)
            run.delays.append(seconds)
            run.steps.append(("delay", seconds))
            if on_delay is not None:
                on_delay(seconds)
        elif "condition" in step:
            if not self.condition(step, variables):
                raise ConditionFailed
        elif "variables" in step:
            for name, value in step["variables"].items():
                variables[name] = self.render(value, variables)
        elif "choose" in step:
            for option in step["choose"]:
                conditions = option.get("conditions") or []
                conditions = conditions if isinstance(conditions, list) else [conditions]
                if all(self.condition(c, variables) for c in conditions):
                    self.actions(option["sequence"], variables, run, on_delay, budget)
                    return
            if "default" in step:
                self.actions(step["default"], variables, run, on_delay, budget)
        elif "if" in step:
            conditions = step["if"] if isinstance(step["if"], list) else [step["if"]]
            if all(self.condition(c, variables) for c in conditions):
                self.actions(step["then"], variables, run, on_delay, budget)
            elif "else" in step:
                self.actions(step["else"], variables, run, on_delay, budget)
        elif "repeat" in step:
            self.repeat(step["repeat"], variables, run, on_delay, budget)
        elif "sequence" in step:
            self.actions(step["sequence"], variables, run, on_delay, budget)
        elif "stop" in step:
            raise Stop
        else:
            raise AssertionError(f"no action {sorted(step)} in this runner")

    def repeat(self, spec: dict[str, Any], variables: dict[str, Any], run: Run,
               on_delay: Callable[[float], None] | None, budget: list[int]) -> None:  # fmt: skip
        def once(index: int, item: Any = None) -> None:
            inner = dict(variables, repeat={"index": index, "first": index == 1, "item": item})
            self.actions(spec["sequence"], inner, run, on_delay, budget)

        if "for_each" in spec:
            for index, item in enumerate(self.render(spec["for_each"], variables), 1):
                once(index, item)
        elif "count" in spec:
            for index in range(1, int(self.render(spec["count"], variables)) + 1):
                once(index)
        elif "while" in spec:
            index = 1
            while all(self.condition(c, dict(variables, repeat={"index": index})) for c in spec["while"]):
                once(index)
                index += 1
        elif "until" in spec:
            index = 1
            while True:
                once(index)
                if all(self.condition(c, dict(variables, repeat={"index": index})) for c in spec["until"]):
                    break
                index += 1
        else:
            raise AssertionError(f"no repeat {sorted(spec)} in this runner")


def duration_s(spec: Any) -> float:
    """A delay: {hours, minutes, seconds, milliseconds}, 'HH:MM:SS', or seconds."""
    if isinstance(spec, dict):
        units = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "milliseconds": 0.001}
        unknown = set(spec) - set(units)
        assert not unknown, f"delay with {unknown}"
        return sum(float(v) * units[k] for k, v in spec.items())
    if isinstance(spec, str) and ":" in spec:
        parts = [float(p) for p in spec.split(":")]
        return sum(p * m for p, m in zip(reversed(parts), (1, 60, 3600), strict=False))
    return float(spec)


def mqtt_matches(topic_filter: str, topic: str) -> bool:
    """MQTT's topic-filter rules (+ one level, # the rest)."""
    want, have = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)

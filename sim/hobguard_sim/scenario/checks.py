"""The checks of a scenario run: each expectation of the scenario, and the
safety invariants every run must keep, judged from the recorded result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hobguard_fw import protocol

from ..times import fmt_time
from .result import Check, ScenarioResult
from .spec import STATE_WORDS, Expect


def check_all(result: ScenarioResult) -> list[Check]:
    """Every expectation of the scenario, then the invariants."""
    return [check(e, result) for e in result.spec.expects] + invariant_checks(result)


def check(e: Expect, r: ScenarioResult) -> Check:
    text = e.describe()
    try:
        ok, detail = _CHECKERS[e.kind](e, r)
    except Exception as err:  # a checker bug must not hide as a pass
        ok, detail = False, f"could not check: {err!r}"
    return Check("expect", text, ok, detail, e.why)


def _matching_events(e: Expect, r: ScenarioResult, event_type: str, reason: str | None) -> list[dict]:
    out = []
    for ev in r.events(event_type, e.burner, e.heard):
        if reason is not None and ev.get("reason") != reason:
            continue
        if any(ev.get(k) != v for k, v in e.match.items()):
            continue
        if e.within and not e.within[0] <= ev["_t_ms"] <= e.within[1]:
            continue
        out.append(ev)
    return out


def _ev_list(events: list[dict], limit: int = 4) -> str:
    parts = [
        f"{ev.get('event_type')}{'/' + ev['reason'] if ev.get('reason') else ''} at {fmt_time(ev['_t_ms'])}"
        for ev in events[:limit]
    ]
    if len(events) > limit:
        parts.append(f"... {len(events) - limit} more")
    return ", ".join(parts)


def _near_misses(e: Expect, r: ScenarioResult, event_type: str) -> str:
    near = r.events(event_type, e.burner)
    return (
        f"; '{event_type}' events{' on ' + e.burner if e.burner else ''}: {_ev_list(near)}"
        if near
        else f"; no '{event_type}' event at all"
    )


def _counted(e: Expect, found: list[Any], listed: str) -> tuple[bool, str]:
    """An expectation with a count: exactly that many found."""
    return len(found) == e.count, f"{len(found)} found" + (f": {listed}" if found else "")


def _check_event(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    found = _matching_events(e, r, e.value, e.reason)
    if e.count is not None:
        ok, detail = _counted(e, found, _ev_list(found))
        return ok, detail if ok else detail + _near_misses(e, r, e.value)
    if found:
        return True, _ev_list(found)
    return False, "not found" + _near_misses(e, r, e.value)


def _check_no_event(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    found = _matching_events(e, r, e.value, e.reason)
    return (not found), ("none" if not found else "found " + _ev_list(found))


def _check_fault(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    found = _matching_events(e, r, "fault", e.value)
    if e.count is not None:
        return _counted(e, found, _ev_list(found))
    return (bool(found), _ev_list(found) if found else "not reported" + _near_misses(e, r, "fault"))


def _check_state(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    assert e.burner is not None and e.by_ms is not None and e.until_ms is not None
    yes, no = STATE_WORDS[e.kind]
    want = e.value == yes

    def word(sample: Any) -> str:
        return yes if getattr(sample, e.kind) else no

    s = r.samples[e.burner]
    at = r.state_at(e.burner, e.by_ms)
    if at is None:
        return False, "no record at that time"
    if getattr(at, e.kind) != want:
        # When did it get there, if ever?
        later = next((x for x in s if x.t > e.by_ms and getattr(x, e.kind) == want), None)
        when = f"; became {e.value} only at {fmt_time(later.t, decimals=3)}" if later else f"; never {e.value}"
        return False, f"{e.kind} was {word(at)} at {fmt_time(e.by_ms, decimals=3)}{when}"
    for x in s:
        if e.by_ms < x.t < e.until_ms and getattr(x, e.kind) != want:
            return False, f"{e.kind} became {word(x)} at {fmt_time(x.t, decimals=3)}"
    # when did it reach the wanted state (for the reader)
    start = None
    for x in s:
        if x.t > e.by_ms:
            break
        if getattr(x, e.kind) == want:
            start = x if start is None else start
        else:
            start = None
    return True, f"{e.value} since {fmt_time(start.t, decimals=3)}" if start is not None else "ok"


def _check_gas_never_after(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    t0 = e.value
    burners = [e.burner] if e.burner else r.spec.burners
    for b in burners:
        at = r.state_at(b, t0)
        if at is not None and at.gas_flow:
            off = next((x for x in r.samples[b] if x.t > t0 and not x.gas_flow), None)
            when = f" (stopped at {fmt_time(off.t, decimals=3)})" if off else " (never stopped)"
            return False, f"gas still flowing to {b} at {fmt_time(t0, decimals=3)}{when}"
        for x in r.samples[b]:
            if x.t > t0 and x.gas_flow:
                return False, f"gas flowed to {b} at {fmt_time(x.t, decimals=3)}"
    last_off = []
    for b in burners:
        s = r.samples[b]
        stops = [x.t for prev, x in zip(s, s[1:], strict=False) if prev.gas_flow and not x.gas_flow and x.t <= t0]
        if stops:
            last_off.append(f"{b} off since {fmt_time(stops[-1], decimals=3)}")
    return True, "; ".join(last_off) or "no gas"


def _check_reported(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    limit = e.by_ms if e.by_ms is not None else r.spec.duration_ms
    state = None
    t_state = 0
    for t, st in r.states:
        if t > limit:
            break
        state, t_state = st, t
    if state is None:
        return False, "the host heard no state from the device"
    target: dict[str, Any] | None = state
    if e.burner:
        target = next((b for b in state.get("burners", ()) if b.get("id") == e.burner), None)
        if target is None:
            return False, f"no burner {e.burner} in the state"
    want = {k: (None if v == "none" else v) for k, v in e.value.items()}
    wrong = [f"{k}={target.get(k)!r} (want {v!r})" for k, v in want.items() if target.get(k) != v]
    where = f"state heard at {fmt_time(t_state)}"
    return (not wrong), (where + ": " + ", ".join(wrong)) if wrong else where


def _check_reset(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    found = [(t, c) for t, c in r.resets if c == e.value and (not e.within or e.within[0] <= t <= e.within[1])]
    listed = ", ".join(f"{c} at {fmt_time(t)}" for t, c in r.resets) or "none"
    if e.count is not None:
        return len(found) == e.count, f"{len(found)} found; resets: {listed}"
    return bool(found), f"resets: {listed}"


def _check_error(e: Expect, r: ScenarioResult) -> tuple[bool, str]:
    found = [
        m
        for m in r.messages
        if m.frame.get("t") == "err"
        and (e.value == "any" or m.frame.get("code") == e.value)
        and (not e.within or e.within[0] <= m.t_ms <= e.within[1])
    ]
    listed = ", ".join(f"{m.frame.get('code')} at {fmt_time(m.t_ms)}" for m in found[:4])
    if len(found) > 4:
        listed += f" ... {len(found) - 4} more"
    if e.count is not None:
        return _counted(e, found, listed)
    return bool(found), listed or "no such error"


_CHECKERS: dict[str, Callable[[Expect, ScenarioResult], tuple[bool, str]]] = {
    "event": _check_event,
    "no_event": _check_no_event,
    "fault": _check_fault,
    "valve": _check_state,
    "flame": _check_state,
    "relay": _check_state,
    "gas_never_after": _check_gas_never_after,
    "reported": _check_reported,
    "reset": _check_reset,
    "error": _check_error,
}


def invariant_checks(r: ScenarioResult) -> list[Check]:
    """Safety invariants every scenario must keep, whatever its expectations."""
    checks: list[Check] = []
    # 1. Only a person opens a valve: every closed->open transition happens with the
    #    knob held, at the very millisecond a person pressed it.
    bad: list[str] = []
    for b in r.spec.burners:
        presses = set(r.presses[b])
        s = r.samples[b]
        for prev, cur in zip(s, s[1:], strict=False):
            if cur.valve and not prev.valve and (cur.knob != "held" or cur.t not in presses):
                bad.append(f"{b} at {fmt_time(cur.t, decimals=3)} (knob {cur.knob})")
    checks.append(
        Check(
            "invariant",
            "a valve only opens when a person presses its knob",
            not bad,
            ("opened without a press: " + ", ".join(bad[:5])) if bad else "",
        )
    )
    # 2. Every cut has a known reason.
    cuts = r.events("cut")
    unknown = [ev for ev in cuts if ev.get("reason") not in protocol.CUT_REASONS]
    checks.append(
        Check(
            "invariant",
            "every cut has a known reason",
            not unknown,
            ("unknown: " + _ev_list(unknown)) if unknown else f"{len(cuts)} cut(s)",
        )
    )
    # 3. The firmware never crashed.
    crashes = [ev for ev in r.events("fault") if ev.get("reason") == "crash"]
    hard = [t for t, c in r.resets if c == "hard_reset"]
    checks.append(
        Check(
            "invariant",
            "the firmware never crashed",
            not crashes and not hard,
            "; ".join(str(ev.get("detail")) for ev in crashes[:3]) if crashes else "",
        )
    )
    return checks

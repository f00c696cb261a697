"""Device events in plain words: the one renderer.

The vocabulary itself (event types, cut reasons, warning reasons, fault
codes) is defined once, in ``hobguard_fw.protocol``; this module says what
each word means to a person. The scenario timeline, ``hobguard demo``,
``hobguard deploy``'s boot report and the plots all put events into words
through it, so a new event type or reason is one entry in protocol.py plus
its words here (``tests/test_vocabulary.py`` fails until both are there,
and until Home Assistant's event entity and docs/protocol.md know it).

Part of the base package: no simulator, no plotting.

- :func:`event` — one event (a device frame or a bridge event), as a line.
- :func:`label` — the same, a few words, for a marker on a plot.
- :func:`cut_reason`, :func:`warning`, :func:`fault`, :func:`reset_cause` —
  one word of the vocabulary in words; unknown words (a newer device) come
  back as they are.
- :func:`notification` — a cut, warning, warning taken back or fault as a
  notification for a phone: title, message and level. Home Assistant's
  notification blueprint says exactly the same (its words are generated
  from the tables here by ``tools/blueprint_words.py``, and
  ``tests/test_blueprints.py`` renders it against this function).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "CUT_REASON_WORDS",
    "WARNING_WORDS",
    "FAULT_WORDS",
    "RESET_CAUSE_WORDS",
    "EVENT_WORDS",
    "event",
    "label",
    "cut_reason",
    "warning",
    "fault",
    "reset_cause",
    "SIGN_WORDS",
    "WARNING_ADVICE",
    "FAULT_ADVICE",
    "FLAME_LOST_DETAIL",
    "FLAME_LOST_CALM",
    "QUIET_CUTS",
    "notification",
]

#: Why a burner was cut (``protocol.CUT_REASONS``), completing "cut: ...".
CUT_REASON_WORDS = {
    "timer": "the timer ran out",
    "remote": "a remote command",
    "button": "the button (long press)",
    "left_on": "burner left on too long",
    "lock": "the child lock",
    "fault": "a fault",
    "reset": "still hot after a reset",
    "flame_lost": "the flame went out while the valve held (blown out, boiled over or turned off)",
    "unattended": "nobody was at the hob",
}

#: Why a device warns (``protocol.WARNING_REASONS``). With a burner: what the
#: coming cut is for; without one: what is wrong with the device's set-up.
WARNING_WORDS = {
    "timer": "the timer is running out",
    "left_on": "burning too long",
    "unattended": "nobody seen at the hob",
    "fault": "its thermocouple cannot be read while it may burn",
    "settings_invalid": "the device rejected its settings file and runs on the defaults",
    "secrets_invalid": "the secrets file is not valid: no network link",
    "network_unavailable": "this board has no network support: USB only",
    "lock_not_saved": "the child lock could not be saved: a restart would find the old setting",
}

#: Fault codes (``protocol.FAULT_CODES``).
FAULT_WORDS = {
    "sensor": "the thermocouple cannot be read",
    "cut_failed": "a cut did not put the flame out",
    "crash": "the firmware crashed and restarted",
}

#: The sign of a person that took an unattended or left-on warning back
#: (``warning_cancelled``'s ``sign``), completing "no cut: ...". ("timer" is
#: only said by firmware before review F2: a timer command is no sign of a
#: person any more.)
SIGN_WORDS = {
    "presence": "someone was seen at the hob",
    "button": "the button was pressed",
    "lit": "a burner was lit",
    "turned": "a knob was turned",
    "timer": "a timer was set",
}

#: What a person can do about a warning with a burner (a cut follows unless
#: something takes it back), by its reason.
WARNING_ADVICE = {
    "timer": "Extend the timer to keep cooking.",
    "left_on": "Press the hob's button to keep cooking.",
    "unattended": "Press the hob's button, or say you are here, to keep cooking.",
    "fault": "The gas is cut to be safe: check the thermocouple's wiring and the ADC.",
}

#: What to do about a fault, by its code.
FAULT_ADVICE = {
    "cut_failed": "Gas may still be flowing: turn the knob off by hand and have the hob checked.",
    "sensor": "Timers and remote cuts still work; a burner last seen lit is cut after a minute, with a warning first.",
}

#: A flame-loss cut, calmly: a knob turned off looks the same at the
#: thermocouple, and is cut too (harmlessly). The device's own words
#: (its ``detail``), and what they mean for the cook.
FLAME_LOST_DETAIL = "the flame went out; gas cut to be sure"
FLAME_LOST_CALM = (
    "Nothing to do if you turned it off. If not, it went out by itself (a draught, a pot boiling over) "
    "and its gas is shut: relight it when you are ready."
)

#: Cuts someone asked for: information, not an alarm.
QUIET_CUTS = ("timer", "remote", "button", "lock")

#: Reset causes the firmware reports (boot event, state).
RESET_CAUSE_WORDS = {
    "power_on": "power-on",
    "hard_reset": "hard reset (the EN/RST button or the USB reset line)",
    "watchdog": "watchdog reset (the app had stopped responding)",
    "soft_reset": "software reset (machine.reset(), as after a deployment)",
    "deep_sleep": "wake from deep sleep",
    "unknown": "reset of unknown cause",
}


def _word(table: Mapping[str, str], key: Any) -> str:
    return table.get(key, str(key)) if isinstance(key, str) else str(key)


def cut_reason(reason: Any) -> str:
    return _word(CUT_REASON_WORDS, reason)


def warning(reason: Any) -> str:
    return _word(WARNING_WORDS, reason)


def fault(code: Any) -> str:
    return _word(FAULT_WORDS, code)


def reset_cause(cause: Any) -> str:
    return _word(RESET_CAUSE_WORDS, cause)


def _names(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _on(e: Mapping[str, Any]) -> str:
    """' left' for an event about a burner, '' for the whole hob."""
    return f" {e['burner']}" if e.get("burner") else ""


def _boot(e: Mapping[str, Any]) -> str:
    words = [f"hobguard started after a {reset_cause(e.get('reset_cause', 'unknown'))}."]
    hot = [str(b) for b in e.get("hot_burners") or []]
    if hot:
        one = len(hot) == 1
        words.append(
            f"Burner {_names(hot)} {'was' if one else 'were'} burning at boot and {'has' if one else 'have'} "
            "been cut (a restart always cuts a lit burner); relight by hand."
        )
    else:
        words.append("No burner was burning.")
    if e.get("locked"):
        words.append("The child lock is on: every burner stays cut until it is turned off.")
    return " ".join(words)


def _cut(e: Mapping[str, Any]) -> str:
    flame = " (flame on)" if e.get("flame") is True else " (no flame)" if e.get("flame") is False else ""
    return f"CUT{_on(e)}: {cut_reason(e.get('reason'))}{flame}"


def _warning(e: Mapping[str, Any]) -> str:
    if e.get("burner") is None:
        errors = "; ".join(str(x) for x in e.get("errors") or [])
        return f"WARNING: {warning(e.get('reason'))}" + (f": {errors}" if errors else "")
    return f"WARNING{_on(e)}: cut in {e.get('cut_in_s')} s ({warning(e.get('reason'))})"


def _fault(e: Mapping[str, Any]) -> str:
    detail = f": {e['detail']}" if e.get("detail") else ""
    return f"FAULT{_on(e)}: {fault(e.get('reason'))} ({e.get('reason')}){detail}"


def _ignited(e: Mapping[str, Any]) -> str:
    mv = e.get("tc_mv")
    return f"{e.get('burner')}: flame detected" + (f" ({mv:.1f} mV)" if isinstance(mv, (int, float)) else "")


def _timer_set(e: Mapping[str, Any]) -> str:
    minutes = e.get("minutes")
    return f"{e.get('burner')}: timer set" + (f", {minutes:.4g} min" if isinstance(minutes, (int, float)) else "")


def _rejected(e: Mapping[str, Any]) -> str:
    detail = f" ({e['detail']})" if e.get("detail") else ""
    return f"rejected{_on(e)}: {e.get('reason')}{detail}"


def _quarantined(e: Mapping[str, Any]) -> str:
    where = f" on {e['port']}" if e.get("port") else ""
    device = e.get("device") or "a device"
    return f"QUARANTINED: {device}{where} is not served: {e.get('reason')}" + (
        f" ({e['detail']})" if e.get("detail") else ""
    )


def _update(e: Mapping[str, Any]) -> str:
    """How an install from Home Assistant's update entity ended."""
    result = str(e.get("result") or "ended").replace("_", " ")
    version = f" {e['version']}" if e.get("version") else ""
    return f"UPDATE{version}: {result}" + (f" ({e['detail']})" if e.get("detail") else "")


#: event_type -> its words. Device events (``protocol.EVENT_TYPES``) and the
#: bridge's own (``protocol.BRIDGE_EVENT_TYPES``).
EVENT_WORDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "boot": _boot,
    "cut": _cut,
    "cut_verified": lambda e: f"{e.get('burner')}: cut verified, the flame is out",
    "cut_unverified": lambda e: f"{e.get('burner')}: cut not verified ({e.get('reason')})",
    "warning": _warning,
    "warning_cancelled": lambda e: (
        f"{e.get('burner')}: warning taken back" + (f" (a sign of a person: {e['sign']})" if e.get("sign") else "")
    ),
    "fault": _fault,
    "fault_cleared": lambda e: f"{e.get('burner')}: fault cleared" + (f" ({e['reason']})" if e.get("reason") else ""),
    "ignited": _ignited,
    "flame_out": lambda e: f"{e.get('burner')}: flame out detected",
    "timer_set": _timer_set,
    "timer_cancelled": lambda e: f"{e.get('burner')}: timer cancelled",
    "lock": lambda e: "child lock " + ("ON: every burner cut" if e.get("locked") else "off"),
    "rejected": _rejected,
    "quarantined": _quarantined,
    "update": _update,
}

_QUIET_FIELDS = ("t", "event_type", "seq", "_t_ms", "_heard")


def event(message: Mapping[str, Any]) -> str:
    """One event in words. An event type this module does not know (a newer
    device) is shown with its fields."""
    kind = message.get("event_type")
    words = EVENT_WORDS.get(kind) if isinstance(kind, str) else None
    if words is not None:
        return words(message)
    fields = ", ".join(f"{k}={v}" for k, v in message.items() if k not in _QUIET_FIELDS)
    return f"{kind}: {fields}" if fields else str(kind)


def label(message: Mapping[str, Any]) -> str:
    """A few words for a marker on a plot: 'cut: timer', 'boot (watchdog)', 'lock on'."""
    kind = message.get("event_type")
    if kind == "boot":
        return f"boot ({message.get('reset_cause')})"
    if kind == "lock":
        return "lock on" if message.get("locked") else "lock off"
    reason = message.get("reason")
    return f"{kind}: {reason}" if reason else str(kind)


def _burner_name(burner: Any) -> str:
    """'Left', 'Back left' — or 'The hob' for an event about the whole hob."""
    return str(burner).replace("_", " ").capitalize() if burner else "The hob"


def notification(e: Mapping[str, Any]) -> dict[str, str] | None:
    """A cut, warning, warning taken back or fault as a notification: a
    dict with ``title``, ``message`` and ``level`` (``info``, ``warning``,
    ``alarm``); None for the other events. ``e`` is an event as the bridge
    publishes it (with ``device``)."""
    kind = e.get("event_type")
    device = e.get("device") or "hob"
    burner = e.get("burner")
    where = _burner_name(burner)
    reason = e.get("reason")
    on = " " + str(burner).replace("_", " ") if burner else ""
    if kind == "cut" and reason == "flame_lost":
        detail = e.get("detail") or FLAME_LOST_DETAIL
        return {
            "title": f"Hob {device}:{on} flame out, gas cut",
            "message": f"{where}: {detail}. {FLAME_LOST_CALM}",
            "level": "info",
        }
    if kind == "cut":
        return {
            "title": f"Hob {device}:{on} gas cut",
            "message": f"{where}: gas cut: {cut_reason(reason)}.",
            "level": "info" if reason in QUIET_CUTS else "warning",
        }
    if kind == "warning" and burner:
        advice = WARNING_ADVICE.get(reason, "") if isinstance(reason, str) else ""
        return {
            "title": f"Hob {device}:{on} gas cut in {e.get('cut_in_s')} s",
            "message": f"{where}: {warning(reason)}." + (f" {advice}" if advice else ""),
            "level": "warning",
        }
    if kind == "warning":
        errors = "; ".join(str(x) for x in e.get("errors") or [])
        said = warning(reason) + (f": {errors}" if errors else "") + "."
        return {
            "title": f"Hob {device}: check its set-up",
            "message": said[:1].upper() + said[1:],
            "level": "warning",
        }
    if kind == "warning_cancelled":
        sign = e.get("sign")
        said = f", {_word(SIGN_WORDS, sign)}" if sign else ""
        return {
            "title": f"Hob {device}:{on} warning taken back",
            "message": f"{where}: no cut{said}.",
            "level": "info",
        }
    if kind == "fault":
        detail = f" ({e['detail']})" if e.get("detail") else ""
        advice = FAULT_ADVICE.get(reason, "") if isinstance(reason, str) else ""
        return {
            "title": f"Hob {device}: FAULT{on}",
            "message": f"{where}: {fault(reason)}{detail}." + (f" {advice}" if advice else ""),
            "level": "alarm",
        }
    return None

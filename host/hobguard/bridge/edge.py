"""What a device may say, checked where it enters the bridge.

Everything a device sends ends up in MQTT topics and payloads, in Home
Assistant and in the log, so nothing it says is trusted: a frame that
decodes (prefix, CRC, JSON) is checked here field by field before the
bridge uses it. The hello reply is checked by `protocol.hello_problem`,
the rules the firmware's settings check shares; state, event and reply
frames by the functions below. Each returns None for a usable frame, or
one line saying what is wrong — never echoing the bad value, which may be
huge or hold control characters.

The rules follow what the firmware sends (docs/protocol.md) and leave room
for new fields: a key the bridge does not know is never published from a
state frame, and may ride along in an event only as a short scalar.
"""

from __future__ import annotations

from typing import Any

from hobguard_fw import protocol

TOKEN_MAX = 32  # fault codes, reset causes, gas/relay/flame values, event keys
REASON_MAX = 128
LIST_MAX = 8
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")

# Numbers in a state frame: (lowest, highest). Anything outside, NaN or
# infinite, or not a number at all, refuses the frame.
TC_MV_LIMIT = 100_000.0
UPTIME_MAX_S = 1e10
COUNT_MAX = 1e12
GUARD_MAX_S = 1e7
# A Wi-Fi signal in dBm (the ESP32 reports a signed byte; never above 0).
RSSI_RANGE = (-128, 0)


def is_token(value: Any, limit: int = TOKEN_MAX) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and all(c in _TOKEN_CHARS for c in value)


def _optional_token(value: Any) -> bool:
    return value is None or is_token(value)


def _number_in(value: Any, low: float, high: float) -> bool:
    return protocol.is_number(value) and low <= value <= high


def _optional_number_in(value: Any, low: float, high: float) -> bool:
    return value is None or _number_in(value, low, high)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool) or protocol.is_number(value) or protocol.is_text(value)


def state_problem(state: dict[str, Any], hello: dict[str, Any]) -> str | None:
    """A state frame (or the `state` of a reply) from the device `hello` named."""
    if not isinstance(state, dict):
        return "state is not an object"
    if state.get("device") != hello.get("device"):
        return "state names another device"
    if not isinstance(state.get("locked"), bool):
        return "state: locked is not true/false"
    if not _optional_token(state.get("fault")):
        return "state: fault is not a short code"
    if not _number_in(state.get("uptime_s"), 0, UPTIME_MAX_S):
        return "state: uptime_s is not a number of seconds"
    if not _optional_token(state.get("reset_cause")):
        return "state: reset_cause is not a short code"
    if not _optional_number_in(state.get("events_dropped"), 0, COUNT_MAX):
        return "state: events_dropped is not a count"
    if not _optional_number_in(state.get("unattended_cut_in_s"), 0, GUARD_MAX_S):
        return "state: unattended_cut_in_s is not a number of seconds"
    # The network link's diagnostics (only on a board with a secrets file).
    if not _optional_token(state.get("wifi")):
        return "state: wifi is not a short word"
    if not _optional_number_in(state.get("rssi"), *RSSI_RANGE):
        return "state: rssi is not a signal strength in dBm"
    for key in ("net_clients", "net_auth_failures", "net_frames_refused"):
        if not _optional_number_in(state.get(key), 0, COUNT_MAX):
            return f"state: {key} is not a count"
    burners = state.get("burners")
    known = hello.get("burners") or []
    if not isinstance(burners, list) or len(burners) > len(known):
        return "state: burners is not a list of this hob's burners"
    timer_max_s = float(hello.get("timer_max_min") or 0) * 60
    seen: list[str] = []
    for index, burner in enumerate(burners, 1):
        where = f"state: burner {index}"
        if not isinstance(burner, dict):
            return f"{where} is not an object"
        name = burner.get("id")
        if not isinstance(name, str) or name not in known or name in seen:
            return f"{where} is not one of the burners the device said hello with"
        seen.append(name)
        for key in ("gas", "relay", "flame"):
            if not is_token(burner.get(key)):
                return f"{where}: {key} is not a short word"
        if not _optional_number_in(burner.get("tc_mv"), -TC_MV_LIMIT, TC_MV_LIMIT):
            return f"{where}: tc_mv is not a finite number of millivolts"
        if not _optional_number_in(burner.get("timer_remaining_s"), 0, timer_max_s):
            return f"{where}: timer_remaining_s is not a number from 0 to the device's timer_max_min"
        if not _optional_number_in(burner.get("left_on_cut_in_s"), 0, GUARD_MAX_S):
            return f"{where}: left_on_cut_in_s is not a number of seconds"
        if not _optional_token(burner.get("last_cut_reason")):
            return f"{where}: last_cut_reason is not a short code"
        if not isinstance(burner.get("cutting", False), bool):
            return f"{where}: cutting is not true/false"
        if not _optional_token(burner.get("fault")):
            return f"{where}: fault is not a short code"
    return None


def event_problem(event: dict[str, Any], hello: dict[str, Any]) -> str | None:
    """An event frame: a known event type, a burner of this hob, and only
    short scalars (or short lists of them) under short lower-case keys."""
    event_type = event.get("event_type")
    if event_type not in protocol.EVENT_TYPES:
        return "event: event_type is not one of protocol.EVENT_TYPES"
    burner = event.get("burner")
    if burner is not None and burner not in (hello.get("burners") or []):
        return "event: burner is not one of the burners the device said hello with"
    reason = event.get("reason")
    if reason is not None and not protocol.is_text(reason, REASON_MAX):
        return "event: reason is not a short line of text"
    for key, value in event.items():
        if not is_token(key):
            return "event: a field name is not a short lower-case word"
        if isinstance(value, list):
            if len(value) > LIST_MAX or not all(_scalar(item) for item in value):
                return f"event: {key} is not a short list of numbers or short text"
        elif not _scalar(value):
            return f"event: {key} is not a number, true/false, null or a short line of text"
    return None


def error_reply_problem(frame: dict[str, Any]) -> str | None:
    """An `err` reply: a short code and a line of text."""
    if not is_token(frame.get("code")):
        return "error reply: code is not a short code"
    message = frame.get("msg")
    if message is not None and not protocol.is_text(message):
        return "error reply: msg is not a short line of text"
    return None

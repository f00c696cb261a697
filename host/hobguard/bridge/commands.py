"""MQTT commands, checked before anything reaches a device: which topics
are commands, what payload each takes, and the device command it becomes.

Pure functions over topic levels and payload bytes: the bridge (service.py)
calls `parse_command` for every message under `<base>/<device>/`, and either
sends the `Command` or publishes the `Rejection` as a `rejected` event. The
contract these follow: docs/contract.md ("MQTT").
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

from hobguard_fw import protocol

# Longest command payload taken; every valid payload is far shorter.
MAX_PAYLOAD = 64

# -- commands, as data ---------------------------------------------------------
#
# topic suffix → (payload kind, device command). Device-level topics are
# `<base>/<device>/<suffix>`, burner-level ones `<base>/<device>/<burner>/<suffix>`.
# Payload kinds:  close: exactly "CLOSE";  on_off: exactly "ON" or "OFF";
# minutes: a plain number, 0 < m <= timer_max_min;  minutes_or_zero: the
# same or 0 (cancels);  any: any short UTF-8 payload;  on: exactly "ON";
# install: exactly "install". A command in BRIDGE_ACTIONS is the bridge's
# own job, not a device command.
DEVICE_COMMANDS: dict[str, tuple[str, str]] = {
    # A person is at the hob now (a motion or occupancy sensor): feeds the
    # device's unattended-cooking guard (docs/guards.md). An instant, not a
    # state: there is no OFF.
    "presence/set": ("on", "presence"),
    "gas/set": ("close", "cut"),
    "lock/set": ("on_off", "lock"),
    "fault/clear": ("any", "clear_fault"),  # extension: clears every burner's cut fault
    # Home Assistant's update entity: install the firmware the bridge ships,
    # over its network link to the device (firmware.py, docs/updates.md).
    "firmware/install": ("install", "update"),
}
BRIDGE_ACTIONS = ("update",)
BURNER_COMMANDS: dict[str, tuple[str, str]] = {
    "gas/set": ("close", "cut"),
    "timer/set": ("minutes_or_zero", "timer_set"),
    "timer/extend": ("minutes", "timer_extend"),
    "timer/cancel": ("any", "timer_cancel"),
    "fault/clear": ("any", "clear_fault"),  # extension: acknowledge a cut_failed fault
}

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$", re.ASCII)
_NOT_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


@dataclass
class Command:
    device_cmd: str
    args: dict[str, Any]
    burner: str | None


@dataclass
class Rejection:
    reason: str  # short, machine-readable
    detail: str  # one sentence for people
    burner: str | None = None


# Topics under `<base>/<device>/` that bridges publish (theirs, or ours seen
# again): never commands. Everything else there is taken as a command.
OUTPUT_SUFFIXES = (("availability",), ("state",), ("event",), ("firmware",))


def is_output(suffix: list[str]) -> bool:
    """`suffix`: the topic levels after `<base>/<device>/`."""
    return tuple(suffix) in OUTPUT_SUFFIXES or (len(suffix) == 2 and suffix[1] == "state")


def command_subscriptions(root: str) -> list[str]:
    """The command topics of one device (`root` = `<base>/<device>`)."""
    return [f"{root}/{suffix}" for suffix in DEVICE_COMMANDS] + [f"{root}/+/{suffix}" for suffix in BURNER_COMMANDS]


def subscriptions(base: str, status_topic: str | None) -> list[str]:
    """What the bridge subscribes to: everything under the base topic, so a
    mistyped command topic or a command for a device nobody serves gets an
    answer too (the bridge's own messages do not come back: no-local), and
    Home Assistant's status topic. One filter per topic at most: a broker
    speaking MQTT 5 delivers a message once per matching subscription."""
    topics = [f"{base}/#"]
    if status_topic and not status_topic.startswith(base + "/"):
        topics.append(status_topic)
    return topics


def command_suggestion(suffix: list[str], burners: list[str]) -> str:
    """' (did you mean left/timer/set?)' for a mistyped command topic, or ''."""
    given = "/".join(suffix)
    valid = list(DEVICE_COMMANDS) + [f"{b}/{c}" for b in burners for c in BURNER_COMMANDS]
    longer = [v for v in valid if v.startswith(given + "/")]
    close = longer or difflib.get_close_matches(given, valid, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_payload(kind: str, payload: bytes, timer_max_min: float) -> Any:
    """The value of a payload of `kind`, or a Rejection saying what is wrong."""
    if len(payload) > MAX_PAYLOAD:
        return Rejection("too_long", f"payload is {len(payload)} bytes; at most {MAX_PAYLOAD} are taken")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection("not_utf8", "payload is not UTF-8 text")
    if kind == "any":
        return text
    if not text:
        return Rejection("empty", "payload is empty")
    if text != text.strip():
        return Rejection("whitespace", "payload has leading or trailing white space")
    if kind == "close":
        if text == "CLOSE":
            return True
        if text.upper() == "OPEN":
            return Rejection("open_refused", "hobguard never opens gas: only a person at the knob can")
        return Rejection("bad_payload", "expected CLOSE")
    if kind == "install":
        return True if text == "install" else Rejection("bad_payload", "expected install")
    if kind == "on":
        if text == "ON":
            return True
        if text == "OFF":
            return Rejection("bad_payload", "expected ON (a person is at the hob now); presence has no OFF")
        return Rejection("bad_payload", "expected ON")
    if kind == "on_off":
        if text in ("ON", "OFF"):
            return text == "ON"
        return Rejection("bad_payload", "expected ON or OFF")
    if kind in ("minutes", "minutes_or_zero"):
        if text.lower() in _NOT_FINITE:
            return Rejection("not_finite", "minutes must be a finite number")
        if text[0] in '{["' or text in ("true", "false", "null"):
            return Rejection("not_a_number", "expected a plain number of minutes, not JSON")
        if not _NUMBER.match(text):
            return Rejection("not_a_number", "expected a plain number of minutes")
        value = float(text)
        if not math.isfinite(value):
            return Rejection("not_finite", "minutes must be a finite number")
        low_ok = value >= 0 if kind == "minutes_or_zero" else value > 0
        if not low_ok or value > timer_max_min:
            if kind == "minutes_or_zero":
                detail = f"minutes must be from 0 to {timer_max_min:g} (0 cancels the timer)"
            else:
                detail = f"minutes must be more than 0 and at most {timer_max_min:g}"
            return Rejection("out_of_range", detail)
        if value != 0 and protocol.timer_too_short(value):
            # As the device (review F11): under one second is refused; sent
            # on, 1e-50 would read as 0.0 on a 32-bit-float board.
            cancel = ", or 0 to cancel the timer" if kind == "minutes_or_zero" else ""
            return Rejection("out_of_range", f"minutes must be at least 1/60 (one second){cancel}")
        return int(value) if value == int(value) else value
    raise ValueError(f"unknown payload kind {kind!r}")


def parse_command(
    rest: list[str], payload: bytes, retain: bool, burners: list[str], timer_max_min: float
) -> Command | Rejection:
    """Check one MQTT command: `rest` is the topic after `<base>/<device>/`."""
    burner = rest[0] if len(rest) == 3 and protocol.is_burner_id(rest[0]) else None
    if retain:
        return Rejection("retained", "retained command ignored: commands must be live, not replayed", burner)
    if len(rest) == 2:
        spec = DEVICE_COMMANDS.get("/".join(rest))
    elif len(rest) == 3:
        spec = BURNER_COMMANDS.get("/".join(rest[1:]))
        if spec is not None and burner not in burners:
            shown = rest[0][:32]
            return Rejection("unknown_burner", f"no burner {shown!r} on this hob (have {', '.join(burners)})", None)
    else:
        spec = None
    if spec is None:
        shown = "/".join(rest)[:100]
        return Rejection("unknown_command", f"no command topic {shown!r}{command_suggestion(rest, burners)}", burner)
    kind, device_cmd = spec
    value = parse_payload(kind, payload, timer_max_min)
    if isinstance(value, Rejection):
        value.burner = burner
        return value
    args: dict[str, Any] = {}
    if burner is not None:
        args["burner"] = burner
    if device_cmd in ("timer_set", "timer_extend"):
        args["minutes"] = value
    elif device_cmd == "lock":
        args["on"] = value
    return Command(device_cmd, args, burner)


def describe(command: Command) -> str:
    """The device command in one short phrase for the log: cut(burner=left)."""
    args = " ".join(f"{k}={v}" for k, v in command.args.items())
    if not args and command.device_cmd in ("cut", "clear_fault"):
        args = "all burners"
    return f"{command.device_cmd}({args})"

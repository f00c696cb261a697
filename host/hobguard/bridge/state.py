"""From the device's frames to what the bridge publishes: the device
state, the burner states and the events (pure functions, time passed in).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from hobguard_fw import protocol, settings_rules

# A host-computed timer deadline moves only when it drifts more than this,
# so Home Assistant's end-time sensor does not flicker with every state frame.
DEADLINE_JITTER_S = 2.0
# The same for the boot time computed from the device's uptime (the two
# clocks drift apart by a second or two a day).
BOOT_JITTER_S = 5.0
# A Wi-Fi signal reading moves by a dB or two from one state frame to the
# next; the published value follows only a change of at least this much,
# so the retained device state is not sent again with every heartbeat.
RSSI_JITTER_DB = 3

# -- state mapping (pure) --------------------------------------------------------

# From the device's state frame into `<base>/<device>/state`. The device's
# uptime_s is not published as such: it changes with every heartbeat, so the
# retained state would be sent again every time. `booted_at` (host time of
# the boot, from uptime_s) says the same and stays put.
DEVICE_STATE_KEYS = ("locked", "fault", "reset_cause", "events_dropped", "unattended_cut_in_s")
# The unattended guard's setting, as the settings check bounds it (minutes).
UNATTENDED_MIN_RANGE = settings_rules._LIMITS["unattended_min"][1:]
# The network link's diagnostics: in the device's state frames only on a
# board with a secrets file (docs/protocol.md), and published only then.
NETWORK_STATE_KEYS = ("wifi", "rssi", "net_clients", "net_auth_failures", "net_frames_refused")
BURNER_STATE_KEYS = (
    "gas",
    "relay",
    "flame",
    "tc_mv",
    "timer_remaining_s",
    "left_on_cut_in_s",
    "last_cut_reason",
    "cutting",
    "fault",
)


def boot_time(uptime_s: Any, now: datetime, previous: str | None = None) -> str | None:
    """When the device booted, host time (ISO 8601 with offset), from its
    uptime; `previous` is kept while it is within BOOT_JITTER_S."""
    if not protocol.is_number(uptime_s) or uptime_s < 0:
        return None
    when = (now - timedelta(seconds=uptime_s)).replace(microsecond=0)
    if previous:
        try:
            if abs((datetime.fromisoformat(previous) - when).total_seconds()) < BOOT_JITTER_S:
                return previous
        except ValueError:
            pass
    return when.isoformat()


def deadline(remaining: Any, now: datetime, before: str | None = None) -> str | None:
    """When something `remaining` seconds from `now` happens, host time (ISO
    8601 with offset), or None; `before` is kept while the new time is
    within DEADLINE_JITTER_S of it."""
    if not protocol.is_number(remaining) or not 0 <= remaining <= 1e8:
        return None
    when = (now + timedelta(seconds=remaining)).replace(microsecond=0)
    if before:
        try:
            if abs((datetime.fromisoformat(before) - when).total_seconds()) < DEADLINE_JITTER_S:
                return before
        except ValueError:
            pass
    return when.isoformat()


def guard_settings(hello: dict[str, Any]) -> dict[str, Any]:
    """The guards' settings the device said hello with, for Home Assistant's
    diagnostics: `unattended_min` (0: that guard is off) and
    `flame_loss_cut`; None for what a device did not say (older firmware)
    or said wrong (the bridge publishes nothing it has not checked)."""
    minutes = hello.get("unattended_min")
    low, high = UNATTENDED_MIN_RANGE
    flame_loss = hello.get("flame_loss_cut")
    return {
        "unattended_min": minutes if protocol.is_number(minutes) and low <= minutes <= high else None,
        "flame_loss_cut": flame_loss if isinstance(flame_loss, bool) else None,
    }


def has_network(frame: dict[str, Any]) -> bool:
    """Whether a device state frame comes from a board with a network link."""
    return "wifi" in frame


def signal(rssi: Any, previous: Any = None) -> Any:
    """The Wi-Fi signal to publish (dBm, or None while there is none):
    `previous` is kept while the reading stays within RSSI_JITTER_DB."""
    if not protocol.is_number(rssi):
        return None
    if protocol.is_number(previous) and abs(rssi - previous) < RSSI_JITTER_DB:
        return previous
    return rssi


def device_state(
    frame: dict[str, Any],
    hello: dict[str, Any],
    port: str,
    now: datetime | None = None,
    previous: dict[str, Any] | None = None,
    frames_refused: int = 0,
) -> dict[str, Any]:
    """`<base>/<device>/state` from the device's state frame; `previous`:
    the device state published before (its boot time and signal are kept
    while the new values are within their jitter)."""
    previous = previous or {}
    state = {key: frame.get(key) for key in DEVICE_STATE_KEYS}
    now = now or local_now()
    state["booted_at"] = boot_time(frame.get("uptime_s"), now, previous.get("booted_at"))
    # The unattended guard's countdown (device level), and when it ends.
    state["unattended_cut_at"] = deadline(frame.get("unattended_cut_in_s"), now, previous.get("unattended_cut_at"))
    state.update(guard_settings(hello))
    state["frames_refused"] = frames_refused
    state["fw"] = hello.get("fw")
    state["burners"] = list(hello.get("burners") or [])
    state["port"] = port
    if has_network(frame):
        state.update({key: frame.get(key) for key in NETWORK_STATE_KEYS})
        state["rssi"] = signal(frame.get("rssi"), previous.get("rssi"))
    return state


def burner_states(
    frame: dict[str, Any], now: datetime, previous: dict[str, str | None] | None = None
) -> dict[str, dict[str, Any]]:
    """Per burner: the contract's burner state, with `timer_deadline`
    computed on the host (ISO 8601 with offset) from timer_remaining_s."""
    previous = previous or {}
    out = {}
    for burner in frame.get("burners") or []:
        if not isinstance(burner, dict) or not protocol.is_burner_id(burner.get("id")):
            continue
        state = {key: burner.get(key) for key in BURNER_STATE_KEYS}
        state["timer_deadline"] = deadline(burner.get("timer_remaining_s"), now, previous.get(burner["id"]))
        out[burner["id"]] = state
    return out


def event_payload(frame: dict[str, Any], device_id: str, now: datetime) -> dict[str, Any]:
    event = {k: v for k, v in frame.items() if k not in ("t", "_t_ms")}
    event.setdefault("burner", None)
    event.setdefault("reason", None)
    event["device"] = device_id
    event["time"] = now.replace(microsecond=0).isoformat()
    return event


def local_now() -> datetime:
    return datetime.now().astimezone()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)

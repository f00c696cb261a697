"""Device frames → the contract's state and event payloads, and the
bridge's configuration (URLs, secrets, the TOML file)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hobguard.bridge import config as config_mod
from hobguard.bridge.state import burner_states, device_state, event_payload
from hobguard.testing import bridge_namespace, bridge_on_fake_mqtt, serve_fake_device

NOW = datetime(2026, 11, 24, 18, 30, 0, tzinfo=timezone(timedelta(hours=1)))
FRAME = {
    "t": "state",
    "device": "hob-1",
    "locked": True,
    "fault": "cut_failed",
    "uptime_s": 321,
    "reset_cause": "watchdog",
    "events_dropped": 0,
    "burners": [
        {
            "id": "left",
            "gas": "open",
            "relay": "closed",
            "flame": "on",
            "tc_mv": 12.5,
            "timer_remaining_s": 90,
            "left_on_cut_in_s": None,
            "last_cut_reason": None,
            "cutting": False,
            "fault": None,
        },
        {
            "id": "right",
            "gas": "closed",
            "relay": "open",
            "flame": "off",
            "tc_mv": 0.1,
            "timer_remaining_s": None,
            "left_on_cut_in_s": None,
            "last_cut_reason": "timer",
            "cutting": True,
            "fault": "cut_failed",
        },
    ],
}


def test_device_state_holds_lock_fault_and_diagnostics() -> None:
    state = device_state(FRAME, {"fw": "0.1.0", "burners": ["left", "right"]}, "/dev/ttyUSB0", NOW)
    assert state["locked"] is True
    assert state["fault"] == "cut_failed"
    assert state["booted_at"] == "2026-11-24T18:24:39+01:00" and state["reset_cause"] == "watchdog"
    assert state["fw"] == "0.1.0" and state["port"] == "/dev/ttyUSB0"
    assert state["burners"] == ["left", "right"]
    assert state["frames_refused"] == 0


def test_the_device_state_does_not_change_with_every_heartbeat() -> None:
    """The device's uptime grows with every heartbeat; the retained device
    state must not, or it is sent again every 10 s (issue 9, item 14)."""
    hello = {"fw": "0.1.0", "burners": ["left", "right"]}
    first = device_state(FRAME, hello, "/dev/ttyUSB0", NOW)
    payloads = {json.dumps(first, sort_keys=True)}
    state = first
    for beat in range(1, 200):
        later = dict(FRAME, uptime_s=FRAME["uptime_s"] + 10 * beat)
        # The two clocks drift a little, and uptime_s is rounded down.
        now = NOW + timedelta(seconds=10 * beat + (beat % 3) * 0.4)
        state = device_state(later, hello, "/dev/ttyUSB0", now, state)
        payloads.add(json.dumps(state, sort_keys=True))
    assert len(payloads) == 1, "the retained device state changed with the heartbeat"
    # A reboot moves it.
    rebooted = device_state(dict(FRAME, uptime_s=2), hello, "/dev/ttyUSB0", NOW + timedelta(hours=1), state)
    assert rebooted["booted_at"] != state["booted_at"]


NETWORK = {"wifi": "up", "rssi": -61, "net_clients": 1, "net_auth_failures": 0, "net_frames_refused": 0}


def test_the_network_link_shows_in_the_device_state_only_on_a_board_that_has_one() -> None:
    hello = {"fw": "0.1.0", "burners": ["left", "right"]}
    usb_only = device_state(FRAME, hello, "/dev/ttyUSB0", NOW)
    assert not set(NETWORK) & set(usb_only)
    on_wifi = device_state({**FRAME, **NETWORK}, hello, "tcp://hob.lan:7343", NOW)
    assert {key: on_wifi[key] for key in NETWORK} == NETWORK
    down = device_state({**FRAME, **NETWORK, "wifi": "down", "rssi": None}, hello, "tcp://hob.lan:7343", NOW, on_wifi)
    assert down["wifi"] == "down" and down["rssi"] is None


def test_the_signal_moves_only_when_it_really_changes() -> None:
    """A reading wanders by a dB or two from frame to frame: the retained
    state is not sent again for that, but follows a real change."""
    hello = {"fw": "0.1.0", "burners": ["left", "right"]}
    state = device_state({**FRAME, **NETWORK}, hello, "p", NOW)
    for rssi in (-60, -62, -63, -59, -61, -62):
        state = device_state({**FRAME, **NETWORK, "rssi": rssi}, hello, "p", NOW, state)
        assert state["rssi"] == -61
    state = device_state({**FRAME, **NETWORK, "rssi": -70}, hello, "p", NOW, state)
    assert state["rssi"] == -70


def test_a_command_reply_keeps_the_network_diagnostics_of_the_last_state_frame(tmp_path) -> None:
    """A reply's state holds the control core's state only: the device
    state published after a command must not lose the Wi-Fi fields."""
    bridge = bridge_on_fake_mqtt(state_file=tmp_path / "state.json", base_topic="t/hobguard", no_discovery=True)
    hello = {"device": "hob-1", "burners": ["left", "right"], "fw": "0.1.0"}
    view = serve_fake_device(bridge, hello)
    frame = {**FRAME, "device": "hob-1"}

    def published() -> dict:
        return [json.loads(p.payload) for p in bridge.mqtt.published if p.topic == view.topics.state][-1]

    bridge.on_state(view.link, "hob-1", {**frame, **NETWORK})
    bridge.on_state(view.link, "hob-1", dict(frame, locked=False), reply=True)
    assert published()["locked"] is False and published()["wifi"] == "up" and published()["rssi"] == -61
    # A state frame without them (the board lost its secrets file) drops them.
    bridge.on_state(view.link, "hob-1", frame)
    assert "wifi" not in published()


def test_burner_state_has_every_contract_key() -> None:
    states = burner_states(FRAME, NOW)
    assert set(states) == {"left", "right"}
    for state in states.values():
        for key in (
            "gas",
            "relay",
            "flame",
            "tc_mv",
            "timer_remaining_s",
            "timer_deadline",
            "last_cut_reason",
            "fault",
        ):
            assert key in state
    assert states["left"]["gas"] == "open" and states["left"]["flame"] == "on"
    assert states["right"]["relay"] == "open" and states["right"]["last_cut_reason"] == "timer"


def test_timer_deadline_is_iso_with_offset_from_host_time() -> None:
    states = burner_states(FRAME, NOW)
    deadline = datetime.fromisoformat(states["left"]["timer_deadline"])
    assert deadline.utcoffset() == timedelta(hours=1)
    assert deadline == NOW + timedelta(seconds=90)
    assert states["left"]["timer_deadline"] == "2026-11-24T18:31:30+01:00"
    assert states["right"]["timer_deadline"] is None


def test_timer_deadline_does_not_flicker_with_each_frame() -> None:
    first = burner_states(FRAME, NOW)["left"]["timer_deadline"]
    # One second later the device says 88 s (rounding): the deadline holds.
    later = dict(FRAME, burners=[dict(FRAME["burners"][0], timer_remaining_s=88), FRAME["burners"][1]])
    again = burner_states(later, NOW + timedelta(seconds=1), {"left": first})["left"]["timer_deadline"]
    assert again == first
    # Extended by 10 minutes: it moves.
    longer = dict(FRAME, burners=[dict(FRAME["burners"][0], timer_remaining_s=689), FRAME["burners"][1]])
    moved = burner_states(longer, NOW + timedelta(seconds=1), {"left": first})["left"]["timer_deadline"]
    assert moved != first


def test_event_payload_has_type_burner_reason() -> None:
    event = event_payload(
        {"t": "evt", "event_type": "cut", "burner": "left", "reason": "timer", "seq": 7}, "hob-1", NOW
    )
    assert event["event_type"] == "cut" and event["burner"] == "left" and event["reason"] == "timer"
    assert event["device"] == "hob-1" and event["seq"] == 7 and "t" not in event
    boot = event_payload({"t": "evt", "event_type": "boot", "reset_cause": "power_on", "seq": 1}, "hob-1", NOW)
    assert boot["burner"] is None and boot["reason"] is None


# -- configuration -----------------------------------------------------------------------


def test_broker_url_forms() -> None:
    m = config_mod.parse_broker_url("mqtt://broker.lan")
    assert (m.host, m.port, m.tls, m.username) == ("broker.lan", 1883, False, None)
    m = config_mod.parse_broker_url("mqtts://user:p%40ss@broker.lan")
    assert (m.host, m.port, m.tls, m.username, m.password) == ("broker.lan", 8883, True, "user", "p@ss")
    m = config_mod.parse_broker_url("mqtt://u:pw@10.0.0.2:1884")
    assert m.port == 1884
    assert config_mod.parse_broker_url("localhost:1999").port == 1999
    with pytest.raises(config_mod.ConfigError):
        config_mod.parse_broker_url("http://broker")


def test_password_never_in_url_or_repr() -> None:
    m = config_mod.parse_broker_url("mqtts://user:hunter2@broker.lan:8883")
    assert "hunter2" not in m.url and "***" in m.url
    assert "hunter2" not in repr(m)
    assert config_mod.mask_url("mqtt://user:hunter2@h:1") == "mqtt://user:***@h:1"
    assert config_mod.mask_url("mqtt://h:1") == "mqtt://h:1"
    config = config_mod.build(bridge_namespace(broker="mqtt://u:hunter2@h", serial=["/dev/x"]), environ={})
    assert "hunter2" not in repr(config)


def test_password_sources_in_order(tmp_path) -> None:
    pw_file = tmp_path / "pw"
    pw_file.write_text("from-file\n")
    base = {"broker": "mqtt://u:from-url@h", "serial": ["/dev/x"]}
    assert config_mod.build(bridge_namespace(**base), environ={}).mqtt.password == "from-url"
    env = {config_mod.PASSWORD_ENV: "from-env"}
    assert config_mod.build(bridge_namespace(**base), environ=env).mqtt.password == "from-env"
    assert (
        config_mod.build(bridge_namespace(**base, password_file=str(pw_file)), environ=env).mqtt.password == "from-file"
    )
    assert (
        config_mod.build(
            bridge_namespace(**base, password="cli", password_file=str(pw_file)), environ=env
        ).mqtt.password
        == "cli"
    )


def test_config_file_and_command_line(tmp_path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(
        """
[mqtt]
broker = "mqtt://broker.lan:1884"
username = "hob"
password = "pw"
[bridge]
id = "kitchen"
base_topic = "home/hob/"
request_timeout_s = 2
[serial]
ports = ["/dev/ttyUSB0", "/dev/ttyUSB1"]
"""
    )
    data = config_mod.load_file(str(path))
    config = config_mod.build(bridge_namespace(), data, environ={})
    assert config.serial_ports == ["/dev/ttyUSB0", "/dev/ttyUSB1"]
    assert config.bridge_id == "kitchen" and config.base_topic == "home/hob"
    assert config.mqtt.username == "hob" and config.mqtt.password == "pw" and config.mqtt.port == 1884
    assert config.request_timeout_s == 2.0
    # One client id per process: two bridges never take over each other's session.
    assert config.mqtt.client_id.startswith("hobguard-bridge-kitchen-")
    assert config_mod.build(bridge_namespace(), data, environ={}).mqtt.client_id != config.mqtt.client_id
    # The command line wins.
    config = config_mod.build(
        bridge_namespace(serial=["/dev/ttyACM0"], bridge_id="hall", base_topic="x"), data, environ={}
    )
    assert config.serial_ports == ["/dev/ttyACM0"] and config.bridge_id == "hall" and config.base_topic == "x"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[mqtt]\nbrokr = 'x'\n", "unknown key"),
        ("[mqt]\n", "unknown section"),
        ("[bridge]\nrequest_timeout_s = 'soon'\n", "request_timeout_s"),
        ("[bridge]\nid = 'a b'\n", "bridge id"),
        ("[bridge]\nbase_topic = 'a/#'\n", "base_topic"),
        ("[serial]\nports = '/dev/x'\n", "ports"),
        ("not toml at all [", "config file"),
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(config_mod.ConfigError, match=message):
        config_mod.build(bridge_namespace(), config_mod.load_file(str(path)), environ={})


def test_example_config_file_is_valid(tmp_path) -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "docs" / "bridge.example.toml"
    data = config_mod.load_file(str(example))
    # The example names certificate and password files that exist only on a
    # real host: check the rest.
    data["mqtt"] = {
        k: v for k, v in data["mqtt"].items() if k not in ("ca_cert", "client_cert", "client_key", "password_file")
    }
    # ... and key files: one made here stands in for each.
    key_file = tmp_path / "hob.key"
    key_file.write_text("ab" * 32 + "\n")
    key_file.chmod(0o600)
    for table in data["device"]:
        table["key_file"] = str(key_file)
    config = config_mod.build(bridge_namespace(), data, environ={})
    assert config.serial_ports and config.mqtt.host
    assert [(d.address, d.id) for d in config.devices] == [
        ("tcp://hobguard-hob-1a2b3c.local:7343", "hob-1a2b3c"),
        ("tcp://192.168.1.41", None),
    ]


def test_the_unattended_countdown_and_the_guards_settings_are_in_the_device_state() -> None:
    """`unattended_cut_in_s` as the device said it, `unattended_cut_at` on
    the host's clock (steady within its jitter, moved by a presence), and
    the guards' settings from the hello, checked: what a device did not say
    or said wrong is null."""
    hello = {"fw": "0.1.0", "burners": ["left", "right"], "unattended_min": 15, "flame_loss_cut": True}
    counting = dict(FRAME, unattended_cut_in_s=600)
    state = device_state(counting, hello, "/dev/ttyUSB0", NOW)
    assert state["unattended_cut_in_s"] == 600
    assert state["unattended_cut_at"] == "2026-11-24T18:40:00+01:00"
    assert state["unattended_min"] == 15 and state["flame_loss_cut"] is True
    # A heartbeat later the countdown is 10 s shorter (rounded up): the end stays put.
    later = device_state(dict(FRAME, unattended_cut_in_s=591), hello, "p", NOW + timedelta(seconds=9.4), state)
    assert later["unattended_cut_at"] == state["unattended_cut_at"]
    # A presence restarts the count: the end moves.
    moved = device_state(dict(FRAME, unattended_cut_in_s=900), hello, "p", NOW + timedelta(seconds=10), later)
    assert moved["unattended_cut_at"] == "2026-11-24T18:45:10+01:00"
    # Nothing burning, or the guard off: null, both.
    idle = device_state(dict(FRAME, unattended_cut_in_s=None), hello, "p", NOW, moved)
    assert idle["unattended_cut_in_s"] is None and idle["unattended_cut_at"] is None
    # An older firmware (no such fields) and a device saying nonsense.
    old = device_state(FRAME, {"fw": "0.0.9", "burners": ["left"]}, "p", NOW)
    assert old["unattended_cut_in_s"] is None and old["unattended_cut_at"] is None
    assert old["unattended_min"] is None and old["flame_loss_cut"] is None
    for minutes, flame_loss in ((-1, "on"), (721, 1), ("15", None), (True, 0), (float("nan"), "true")):
        bad = device_state(FRAME, dict(hello, unattended_min=minutes, flame_loss_cut=flame_loss), "p", NOW)
        assert bad["unattended_min"] is None and bad["flame_loss_cut"] is None, (minutes, flame_loss)


def test_a_bad_unattended_countdown_refuses_the_frame() -> None:
    from hobguard.bridge.edge import state_problem

    hello = {"device": "hob-1", "burners": ["left", "right"], "timer_max_min": 720}
    assert state_problem(dict(FRAME, unattended_cut_in_s=840), hello) is None
    assert state_problem(dict(FRAME, unattended_cut_in_s=None), hello) is None
    for bad in (-1, 1e12, "840", True, float("nan"), [840]):
        assert state_problem(dict(FRAME, unattended_cut_in_s=bad), hello) == (
            "state: unattended_cut_in_s is not a number of seconds"
        ), bad

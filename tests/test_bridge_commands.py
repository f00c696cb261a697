"""MQTT command payloads are checked by the bridge before anything reaches
the device: every kind of bad payload, on every command topic, becomes a
`rejected` with a clear reason."""

from __future__ import annotations

import pytest
from hobguard.bridge.commands import (
    BURNER_COMMANDS,
    DEVICE_COMMANDS,
    MAX_PAYLOAD,
    Command,
    Rejection,
    command_subscriptions,
    is_output,
    parse_command,
    subscriptions,
)
from hobguard_fw import protocol
from hypothesis import given
from hypothesis import strategies as st

BURNERS = ["left", "right"]
TIMER_MAX = 720

# Every command topic, as the part after <base>/<device>/.
DEVICE_TOPICS = [suffix.split("/") for suffix in DEVICE_COMMANDS]
BURNER_TOPICS = [["left", *suffix.split("/")] for suffix in BURNER_COMMANDS]
ALL_TOPICS = DEVICE_TOPICS + BURNER_TOPICS


def kind_of(rest: list[str]) -> str:
    table = DEVICE_COMMANDS if len(rest) == 2 else BURNER_COMMANDS
    return table["/".join(rest[-2:])][0]


def check(rest: list[str], payload: bytes, retain: bool = False) -> Command | Rejection:
    return parse_command(rest, payload, retain, BURNERS, TIMER_MAX)


def topic_id(rest: list[str]) -> str:
    return "/".join(rest)


# -- good payloads ---------------------------------------------------------------

GOOD = {
    "close": (b"CLOSE", None),
    "on": (b"ON", None),
    "on_off": (b"ON", None),
    "minutes_or_zero": (b"20", None),
    "minutes": (b"10", None),
    "any": (b"PRESS", None),
    "install": (b"install", None),
}


@pytest.mark.parametrize("rest", ALL_TOPICS, ids=topic_id)
def test_a_good_payload_becomes_a_device_command(rest: list[str]) -> None:
    result = check(rest, GOOD[kind_of(rest)][0])
    assert isinstance(result, Command), result
    if len(rest) == 3:
        assert result.args["burner"] == "left"
    else:
        assert "burner" not in result.args


@pytest.mark.parametrize(
    "rest, payload, cmd, args",
    [
        (["gas", "set"], b"CLOSE", "cut", {}),
        (["left", "gas", "set"], b"CLOSE", "cut", {"burner": "left"}),
        (["lock", "set"], b"ON", "lock", {"on": True}),
        (["lock", "set"], b"OFF", "lock", {"on": False}),
        (["right", "timer", "set"], b"20", "timer_set", {"burner": "right", "minutes": 20}),
        (["right", "timer", "set"], b"0", "timer_set", {"burner": "right", "minutes": 0}),
        (["right", "timer", "set"], b"2.5", "timer_set", {"burner": "right", "minutes": 2.5}),
        (["right", "timer", "set"], b"20.0", "timer_set", {"burner": "right", "minutes": 20}),
        (["right", "timer", "set"], b"720", "timer_set", {"burner": "right", "minutes": 720}),
        (["left", "timer", "extend"], b"10", "timer_extend", {"burner": "left", "minutes": 10}),
        (["left", "timer", "cancel"], b"", "timer_cancel", {"burner": "left"}),
        (["left", "timer", "cancel"], b"anything at all", "timer_cancel", {"burner": "left"}),
        (["left", "fault", "clear"], b"CLEAR", "clear_fault", {"burner": "left"}),
        (["fault", "clear"], b"", "clear_fault", {}),
        (["firmware", "install"], b"install", "update", {}),
        (["presence", "set"], b"ON", "presence", {}),
    ],
)
def test_command_mapping(rest: list[str], payload: bytes, cmd: str, args: dict) -> None:
    result = check(rest, payload)
    assert result == Command(cmd, args, args.get("burner"))
    assert type(result.args.get("minutes", 0)) in (int, float)


# -- bad payloads, every kind, every topic ----------------------------------------------

COMMON_BAD = [
    ("retained", b"CLOSE", True),
    ("not_utf8", b"\xff\xfe\x80", False),
    ("not_utf8", b"CLOSE\xc3", False),
    ("too_long", b"1" * (MAX_PAYLOAD + 1), False),
    ("too_long", b"CLOSE" + b" " * 200, False),
]


@pytest.mark.parametrize("rest", ALL_TOPICS, ids=topic_id)
@pytest.mark.parametrize(
    "reason, payload, retain", COMMON_BAD, ids=lambda v: repr(v)[:20] if isinstance(v, bytes) else str(v)
)
def test_common_bad_payloads_rejected(rest: list[str], reason: str, payload: bytes, retain: bool) -> None:
    result = check(rest, payload, retain)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.detail
    assert result.burner == (rest[0] if len(rest) == 3 else None)


def test_retained_good_command_is_still_rejected() -> None:
    result = check(["left", "gas", "set"], b"CLOSE", retain=True)
    assert isinstance(result, Rejection) and result.reason == "retained"


BAD_BY_KIND = {
    "close": [
        (b"", "empty"),
        (b" CLOSE", "whitespace"),
        (b"CLOSE\n", "whitespace"),
        (b"\tCLOSE", "whitespace"),
        (b"close", "bad_payload"),
        (b"OPEN", "open_refused"),
        (b"open", "open_refused"),
        (b"ON", "bad_payload"),
        (b"1", "bad_payload"),
        (b'{"state":"CLOSE"}', "bad_payload"),
        (b"CLOSE\x00", "bad_payload"),
    ],
    "on_off": [
        (b"", "empty"),
        (b" ON", "whitespace"),
        (b"OFF ", "whitespace"),
        (b"on", "bad_payload"),
        (b"true", "bad_payload"),
        (b"1", "bad_payload"),
        (b'{"on":true}', "bad_payload"),
    ],
    "minutes": [
        (b"", "empty"),
        (b" 5", "whitespace"),
        (b"5\n", "whitespace"),
        (b"nan", "not_finite"),
        (b"NaN", "not_finite"),
        (b"inf", "not_finite"),
        (b"-Infinity", "not_finite"),
        (b"1e400", "not_finite"),
        (b"1e9", "out_of_range"),
        (b"99999999999999999999999", "out_of_range"),
        (b"-1", "out_of_range"),
        (b"0", "out_of_range"),
        (b"721", "out_of_range"),
        (b'{"minutes":5}', "not_a_number"),
        (b"[5]", "not_a_number"),
        (b'"5"', "not_a_number"),
        (b"true", "not_a_number"),
        (b"null", "not_a_number"),
        (b"5min", "not_a_number"),
        (b"0x10", "not_a_number"),
        (b"1_0", "not_a_number"),
        (b"five", "not_a_number"),
    ],
}
BAD_BY_KIND["install"] = [
    (b"", "empty"),
    (b" install", "whitespace"),
    (b"install\n", "whitespace"),
    (b"INSTALL", "bad_payload"),
    (b"install 0.2.0", "bad_payload"),
    (b'{"install":true}', "bad_payload"),
]
BAD_BY_KIND["on"] = [
    (b"", "empty"),
    (b" ON", "whitespace"),
    (b"ON\n", "whitespace"),
    (b"on", "bad_payload"),
    (b"OFF", "bad_payload"),  # presence is an instant: there is no OFF
    (b"true", "bad_payload"),
    (b"1", "bad_payload"),
    (b'{"presence":true}', "bad_payload"),
]
BAD_BY_KIND["minutes_or_zero"] = [(p, r) for p, r in BAD_BY_KIND["minutes"] if p != b"0"]

BAD_CASES = [(rest, payload, reason) for rest in ALL_TOPICS for payload, reason in BAD_BY_KIND.get(kind_of(rest), [])]


@pytest.mark.parametrize("rest, payload, reason", BAD_CASES, ids=[f"{topic_id(r)}:{p!r}" for r, p, _ in BAD_CASES])
def test_bad_payload_rejected_with_reason(rest: list[str], payload: bytes, reason: str) -> None:
    result = check(rest, payload)
    assert isinstance(result, Rejection), result
    assert result.reason == reason


def test_unknown_burner_rejected() -> None:
    result = check(["oven", "gas", "set"], b"CLOSE")
    assert isinstance(result, Rejection) and result.reason == "unknown_burner"
    assert "left" in result.detail


def test_unknown_command_topic_rejected() -> None:
    for rest in (["left", "timer", "pause"], ["gas", "open"], ["a", "b", "c", "d"]):
        result = check(rest, b"1")
        assert isinstance(result, Rejection) and result.reason == "unknown_command"


def test_timer_limit_comes_from_the_device() -> None:
    assert isinstance(parse_command(["left", "timer", "set"], b"30", False, BURNERS, 20), Rejection)
    assert isinstance(parse_command(["left", "timer", "set"], b"20", False, BURNERS, 20), Command)


@given(st.binary(max_size=80))
def test_no_payload_can_open_gas_or_crash(payload: bytes) -> None:
    """Whatever arrives, the result is a rejection or one of the commands
    listed; nothing raises, and a gas topic can only ever cut."""
    for rest in ALL_TOPICS:
        result = check(rest, payload)
        assert isinstance(result, (Command, Rejection))
        if isinstance(result, Command):
            assert result.device_cmd in {
                "cut", "lock", "clear_fault", "timer_set", "timer_extend", "timer_cancel", "update", "presence"
            }  # fmt: skip
            if rest[-2:] == ["gas", "set"]:
                assert payload == b"CLOSE" and result.device_cmd == "cut"


def test_subscriptions_cover_every_command_topic() -> None:
    subs = command_subscriptions("hobguard/hob-1")
    assert "hobguard/hob-1/gas/set" in subs
    assert "hobguard/hob-1/+/timer/set" in subs
    assert len(subs) == len(DEVICE_COMMANDS) + len(BURNER_COMMANDS)


def test_the_bridge_subscribes_widely_but_never_twice_to_one_topic() -> None:
    """Everything under the base topic (so a mistyped command topic and a
    command for an unknown device get an answer), with no filter that
    overlaps another: an MQTT 5 broker delivers a message once per matching
    subscription, and a command must be carried out once."""
    assert subscriptions("hobguard", "homeassistant/status") == ["hobguard/#", "homeassistant/status"]
    assert subscriptions("hobguard", "hobguard/ha/status") == ["hobguard/#"]
    assert subscriptions("hobguard", None) == ["hobguard/#"]


@pytest.mark.parametrize(
    "suffix, output",
    [(["availability"], True), (["state"], True), (["event"], True), (["left", "state"], True), (["firmware"], True),
     (["firmware", "install"], False),
     (["left", "gas", "set"], False), (["lock"], False), (["left", "timer"], False)],
)  # fmt: skip
def test_the_bridges_own_topics_are_never_taken_for_commands(suffix: list[str], output: bool) -> None:
    assert is_output(suffix) is output


def test_range_errors_read_correctly() -> None:
    """Not "minutes must be 0 and at most 720" (issue 9, item 14)."""
    result = check(["left", "timer", "set"], b"721")
    assert isinstance(result, Rejection)
    assert result.detail == "minutes must be from 0 to 720 (0 cancels the timer)"
    result = check(["left", "timer", "extend"], b"0")
    assert isinstance(result, Rejection)
    assert result.detail == "minutes must be more than 0 and at most 720"


def test_a_mistyped_topic_is_told_the_right_one() -> None:
    for rest, right in ((["left", "timer"], "left/timer/set"), (["lock"], "lock/set"), (["lefft", "gas", "set"], None)):
        result = check(rest, b"5")
        assert isinstance(result, Rejection)
        if right:
            assert result.reason == "unknown_command" and f"did you mean {right}?" in result.detail


def test_presence_says_why_off_is_refused() -> None:
    """Presence is an instant ("a person is here now"), not a switch: OFF is
    refused with words that say so, and a mistyped topic is pointed at it."""
    result = check(["presence", "set"], b"OFF")
    assert isinstance(result, Rejection) and result.reason == "bad_payload"
    assert "no OFF" in result.detail
    result = check(["presence"], b"ON")
    assert isinstance(result, Rejection) and "did you mean presence/set?" in result.detail


def test_a_timer_under_one_second_is_refused_as_the_device_refuses_it() -> None:
    """Review F11: '1e-50' would read as 0.0 on a board with 32-bit floats and
    cancel the timer; the bridge refuses under one second (protocol's
    timer_too_short, shared with the device), except an exact 0 for set."""
    for rest in (["left", "timer", "set"], ["left", "timer", "extend"]):
        for tiny in (b"1e-50", b"0.000000001", b"0.0166", b"1e-300"):
            result = check(rest, tiny)
            assert isinstance(result, Rejection), (rest, tiny, result)
            assert result.reason == "out_of_range" and "one second" in result.detail, result
        one_second = check(rest, b"0.016666666666666666")
        assert isinstance(one_second, Command) and one_second.args["minutes"] == pytest.approx(1 / 60)
    cancel = check(["left", "timer", "set"], b"0")
    assert isinstance(cancel, Command) and cancel.args["minutes"] == 0 and type(cancel.args["minutes"]) is int
    cancel = check(["left", "timer", "set"], b"0.0")  # sent on as the exact 0 the device takes as a cancel
    assert isinstance(cancel, Command) and type(cancel.args["minutes"]) is int
    assert protocol.TIMER_MIN_MIN == 1 / 60

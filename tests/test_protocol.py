"""The serial protocol under CPython: round trips, and no input line can do
anything but parse correctly or raise ProtocolError."""

import math

import pytest
from hobguard_fw import protocol
from hypothesis import given, settings
from hypothesis import strategies as st

burner_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=16)
finite_minutes = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
requests = st.one_of(
    st.tuples(st.just("cut"), st.fixed_dictionaries({"burner": burner_ids})),
    st.tuples(st.just("timer_set"), st.fixed_dictionaries({"burner": burner_ids, "minutes": finite_minutes})),
    st.tuples(st.just("lock"), st.fixed_dictionaries({"on": st.booleans()})),
    st.tuples(st.just("status"), st.just({})),
)


@given(request_id=st.integers(0, protocol.MAX_ID), req=requests)
def test_every_valid_request_round_trips(request_id, req):
    cmd, args = req
    line = protocol.request(request_id, cmd, **args)
    assert line.endswith("\n") and len(line) <= protocol.MAX_REQUEST
    assert protocol.parse_request(line.encode()) == (request_id, cmd, args)


@settings(max_examples=3000)
@given(st.binary(max_size=400))
def test_random_bytes_never_escape_as_anything_but_protocol_errors(data):
    try:
        protocol.parse_request(data)
    except protocol.ProtocolError as err:
        assert err.code in {
            protocol.E_FRAME,
            protocol.E_CRC,
            protocol.E_TOO_LONG,
            protocol.E_JSON,
            protocol.E_ID,
            protocol.E_UNKNOWN,
            protocol.E_ARG,
        }
    else:  # a random line that is a valid checksummed command: practically impossible
        pytest.fail(f"random bytes parsed as a command: {data!r}")


@settings(max_examples=3000)
@given(req=requests, position=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_a_corrupted_byte_never_yields_a_command(req, position, flip):
    cmd, args = req
    line = bytearray(protocol.request(1, cmd, **args).encode())
    index = position % (len(line) - 1)  # keep the newline
    line[index] ^= flip
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_request(bytes(line))


@pytest.mark.parametrize(
    "body, code",
    [
        ('{"id": 1, "cmd": "timer_set", "burner": "left", "minutes": NaN}', protocol.E_ARG),
        ('{"id": 1, "cmd": "timer_set", "burner": "left", "minutes": Infinity}', protocol.E_ARG),
        ('{"id": 1, "cmd": "timer_set", "burner": "left", "minutes": 1e999}', protocol.E_ARG),
        ('{"id": 1, "cmd": "timer_set", "burner": "left", "minutes": true}', protocol.E_ARG),
        ('{"id": 1, "cmd": "timer_set", "burner": "left", "minutes": "5"}', protocol.E_ARG),
        ('{"id": 1, "cmd": "timer_set", "burner": "Left", "minutes": 5}', protocol.E_ARG),
        ('{"id": 1, "cmd": "timer_set", "burner": "left"}', protocol.E_ARG),
        ('{"id": 1, "cmd": "cut", "burner": "left", "extra": 1}', protocol.E_ARG),
        ('{"id": 1, "cmd": "open_gas", "burner": "left"}', protocol.E_UNKNOWN),
        ('{"id": -1, "cmd": "cut"}', protocol.E_ID),
        ('{"id": 1.5, "cmd": "cut"}', protocol.E_ID),
        ('{"id": true, "cmd": "cut"}', protocol.E_ID),
        ('{"cmd": "cut"}', protocol.E_ID),
        ("[1, 2]", protocol.E_JSON),
        ('{"id": 1, "cmd": "lock", "on": 1}', protocol.E_ARG),
    ],
)
def test_bad_requests_get_the_right_error(body, code):
    line = protocol.PREFIX + body + " *" + protocol.checksum(body)
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.parse_request(line)
    assert caught.value.code == code


def test_no_command_can_open_gas():
    forbidden = {"open", "open_gas", "ignite", "relight", "start"}
    assert not forbidden & set(protocol.COMMANDS)


def test_line_reader_bounds_memory_and_reports_overflow_once():
    reader = protocol.LineReader(limit=16)
    out = reader.feed(b"a" * 10_000 + b"\nok\n")
    assert out == [None, b"ok"]
    assert len(reader.buffer) == 0
    out = reader.feed(b"part")
    assert out == [] and bytes(reader.buffer) == b"part"
    assert reader.feed(b"ial\n") == [b"partial"]


def test_is_number_rejects_non_finite():
    assert not protocol.is_number(math.nan)
    assert not protocol.is_number(math.inf)
    assert not protocol.is_number(True)
    assert protocol.is_number(2.5)


def test_largest_state_frame_fits_a_line():
    from hobguard_fw import core
    from hobguard_fw import settings as store

    config = store.defaults()
    config["device_id"] = "d" * 32
    config["burners"] = [
        {"id": "b" * 15 + str(i), "relay_pin": (25, 26, 27, 32)[i], "adc_address": 72 + i // 2, "adc_pair": i % 2}
        for i in range(4)
    ]
    checked, errors = store.validate(config)
    assert not errors
    snap = core.Hob(checked, 0).snapshot(0)
    for burner in snap["burners"]:
        burner.update(
            last_cut_reason="left_on",
            fault="cut_failed",
            timer_remaining_s=43200,
            tc_mv=-123.45,
            left_on_cut_in_s=7200,
            gas="unknown",
            flame="unknown",
        )
    snap.update(
        t="state",
        device=config["device_id"],
        fault="cut_failed",
        reset_cause="deep_sleep",
        uptime_s=2**31,
        events_dropped=2**31,
        unattended_cut_in_s=43200,
    )
    line = protocol.encode(snap)
    assert len(line) <= protocol.MAX_LINE
    assert protocol.decode(line) == snap

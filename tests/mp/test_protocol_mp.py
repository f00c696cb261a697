# Smoke tests of the serial protocol that run unchanged under CPython (pytest)
# and under real MicroPython (tools/mpy-wasm/run_tests.mjs): plain asserts,
# no pytest, no typing, nothing MicroPython lacks.
from hobguard_fw import protocol


def _raises_code(code, func, *args):
    try:
        func(*args)
    except protocol.ProtocolError as exc:
        assert exc.code == code, f"expected {code}, got {exc.code}"
        return exc
    raise AssertionError(f"expected ProtocolError {code}")


def test_encode_decode_round_trip():
    message = {"t": "state", "id": 7, "burners": [{"id": "left", "tc_mv": 11.5}], "locked": False}
    line = protocol.encode(message)
    assert line.startswith(protocol.PREFIX)
    assert line.endswith("\n")
    assert protocol.decode(line) == message
    assert protocol.decode(line.encode()) == message
    assert protocol.decode(line.rstrip("\n") + "\r\n") == message


def test_request_round_trip_through_parse_request():
    line = protocol.request(12, "timer_set", burner="left", minutes=2.5)
    request_id, cmd, args = protocol.parse_request(line.encode())
    assert request_id == 12
    assert cmd == "timer_set"
    assert args == {"burner": "left", "minutes": 2.5}


def test_checksum_mismatch_is_rejected():
    line = protocol.encode({"id": 1, "cmd": "ping"}).rstrip("\n")
    body, crc = line[:-8], line[-8:]
    wrong = "%08x" % ((int(crc, 16) + 1) & 0xFFFFFFFF)
    _raises_code(protocol.E_CRC, protocol.decode, body + wrong)
    # A changed body with the old checksum fails the same way.
    tampered = line.replace('"ping"', '"pong"')
    _raises_code(protocol.E_CRC, protocol.decode, tampered)


def test_unframed_lines_are_rejected():
    _raises_code(protocol.E_FRAME, protocol.decode, '{"id": 1, "cmd": "ping"}')
    _raises_code(protocol.E_FRAME, protocol.decode, 'HG1 {"id": 1}')


def test_nan_minutes_are_rejected():
    # json.dumps cannot be trusted to write NaN the same way in both
    # Pythons, so the body is written by hand and framed with its checksum.
    for bad in ("NaN", "Infinity", "-Infinity", "1e999"):
        body = '{"id": 3, "cmd": "timer_set", "burner": "left", "minutes": ' + bad + "}"
        line = protocol.PREFIX + body + " *" + protocol.checksum(body)
        try:
            protocol.parse_request(line)
        except protocol.ProtocolError as exc:
            # Either the JSON parser refuses the token or the argument check
            # refuses the value; both are rejections.
            assert exc.code in (protocol.E_ARG, protocol.E_JSON), exc.code
        else:
            raise AssertionError(f"minutes={bad} was accepted")


def test_parse_request_rejects_unknown_and_extra():
    _raises_code(protocol.E_UNKNOWN, protocol.parse_request, protocol.request(1, "open_gas"))
    _raises_code(protocol.E_ARG, protocol.parse_request, protocol.request(1, "ping", burner="left"))
    _raises_code(protocol.E_ARG, protocol.parse_request, protocol.request(1, "lock", on=1))
    _raises_code(protocol.E_ID, protocol.parse_request, protocol.request(-1, "ping"))


def test_line_reader_splits_lines():
    reader = protocol.LineReader(16)
    assert reader.feed(b"abc") == []
    assert reader.feed(b"def\nghi\n") == [b"abcdef", b"ghi"]
    assert reader.feed(b"\n") == [b""]


def test_line_reader_overflow_drops_the_line_once():
    reader = protocol.LineReader(8)
    lines = reader.feed(b"x" * 50)
    assert lines == []
    assert len(reader.buffer) <= 9
    lines = reader.feed(b"yyy\nok\n")
    assert lines == [None, b"ok"], lines
    # A line of exactly the limit still gets through.
    assert reader.feed(b"12345678\n") == [b"12345678"]


def test_hello_problem_and_is_text():
    # The hello checks the bridge applies run on the device's interpreter too.
    hello = {"proto": 1, "fw": "0.1.0", "device": "hob-1a2b3c", "burners": ["left", "right"],
             "timer_max_min": 720, "warn_before_s": 60, "heartbeat_s": 10}  # fmt: skip
    assert protocol.hello_problem(hello) is None
    bad = [("device", "hob-1\n"), ("device", "Hob"), ("device", "bridge"), ("burners", ["left", "left"]),
           ("burners", []), ("burners", ["a", "b", "c", "d", "e"]), ("proto", True), ("heartbeat_s", 0),
           ("timer_max_min", 1e300), ("fw", "x" * 40)]  # fmt: skip
    for key, value in bad:
        changed = dict(hello)
        changed[key] = value
        assert protocol.hello_problem(changed) is not None, key
    assert protocol.is_text("cut in 60 s")
    assert not protocol.is_text("a\nb") and not protocol.is_text("x" * 201) and not protocol.is_text(5)
    assert not protocol.is_text("a\u2028b") and not protocol.is_text("\x85")

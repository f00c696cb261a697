# The network link's authentication and framing (hobguard_fw/auth.py), run
# unchanged under CPython (pytest) and inside real MicroPython
# (tools/mpy-wasm/run_tests.mjs): plain asserts, no sockets, fixed nonces
# (the WebAssembly port has no os.urandom; the board and the host use it).
import hashlib

from hobguard_fw import auth, protocol

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
ND = bytes([0xD0 + (i % 16) for i in range(32)])  # the device's nonce
NC = bytes([0xC0 + (i % 16) for i in range(32)])  # the client's nonce

# RFC 4231, test cases 1-7: (key, data, HMAC-SHA-256 in hex; case 5 is
# truncated to 128 bits).
RFC4231 = (
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data."
        b" The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
)

# sha256 of the transcript of transcript() below: the same bytes must come
# out of CPython and MicroPython, and out of the independent reference
# implementation in tests/test_auth.py.
TRANSCRIPT_SHA256 = "1403e0ae125954c31face1f67d0451ae88ed5725d566da3fe4ae3c0d869e7f92"


def _hex(data):
    return "".join("%02x" % b for b in data)


def _plain(json_text):
    return protocol.PREFIX + json_text + " *" + protocol.checksum(json_text) + "\n"


def _code(func, *args):
    try:
        func(*args)
    except auth.AuthError as err:
        return err.code
    raise AssertionError("expected an AuthError")


def pair(device_key=KEY, client_key=KEY, nd=ND, nc=NC):
    """A device and a client session, authenticated to each other."""
    device = auth.Session(device_key, True, nd)
    client = auth.Session(client_key, False, nc)
    answer = client.handshake(device.greeting())
    ok = device.handshake(answer)
    assert client.handshake(ok) == ""
    return device, client


def transcript():
    device = auth.Session(KEY, True, ND)
    client = auth.Session(KEY, False, NC)
    lines = [device.greeting()]
    lines.append(client.handshake(lines[-1]))
    lines.append(device.handshake(lines[-1]))
    client.handshake(lines[-1])
    # JSON written by hand: MicroPython's dicts need not keep key order.
    lines.append(client.seal(_plain('{"id": 1, "cmd": "hello"}')))
    lines.append(device.seal(_plain('{"t": "ok", "id": 1, "device": "hob-aabbcc"}')))
    lines.append(client.seal(""))
    lines.append(device.seal(""))
    return lines


def test_hmac_matches_rfc4231():
    for key, data, expected in RFC4231:
        assert _hex(auth.hmac_sha256(key, data)).startswith(expected), expected


def test_same_compares_whole_strings():
    assert auth.same(b"abc", b"abc")
    assert not auth.same(b"abc", b"abd")
    assert not auth.same(b"abc", b"ab")
    assert auth.same(b"", b"")


def test_keys_parse_from_64_hex_digits_only():
    text = _hex(KEY)
    assert auth.parse_key(text) == KEY
    assert auth.parse_key("  " + text.upper() + "\n") == KEY
    assert auth.parse_key(text.encode()) == KEY
    for bad in ("", text[:-1], text + "0", "g" + text[1:], text[:30] + " " + text[33:]):
        try:
            auth.parse_key(bad)
        except ValueError as err:
            assert text not in str(err)
            continue
        raise AssertionError("accepted a bad key")


def test_handshake_then_frames_both_ways():
    device, client = pair()
    assert device.open and client.open
    line = client.seal(protocol.request(7, "cut", burner="left"))
    assert line.startswith("00000000 HG1 ") and line.endswith("\n")
    body = device.unseal(line)
    assert protocol.parse_request(body) == (7, "cut", {"burner": "left"})
    reply = device.seal(protocol.encode({"t": "ok", "id": 7}))
    assert protocol.decode(client.unseal(reply.encode())) == {"t": "ok", "id": 7}
    second = client.seal(protocol.request(8, "ping"))
    assert second.startswith("00000001 ")
    assert device.unseal(second) == protocol.request(8, "ping").rstrip("\n").encode()
    assert device.sent == 1 and device.received == 2


def test_keep_alive_is_an_empty_body():
    device, client = pair()
    assert device.unseal(client.seal("")) == b""
    assert client.unseal(device.seal("")) == b""


def test_transcript_is_the_same_everywhere():
    lines = transcript()
    digest = hashlib.sha256("".join(lines).encode()).digest()
    assert _hex(digest) == TRANSCRIPT_SHA256
    # The key itself never crosses the link.
    key_hex = _hex(KEY)
    for line in lines:
        assert key_hex not in line


def test_wrong_key_is_refused_by_the_device():
    device = auth.Session(KEY, True, ND)
    client = auth.Session(OTHER_KEY, False, NC)
    answer = client.handshake(device.greeting())
    assert _code(device.handshake, answer) == auth.E_AUTH_FAILED
    assert not device.open
    # Dead for good: nothing more is taken on this connection.
    assert _code(device.handshake, answer) == auth.E_HANDSHAKE
    assert _code(device.unseal, "00000000 x " + "0" * 64) == auth.E_AUTH_REQUIRED


def test_a_device_without_the_key_is_refused_by_the_client():
    # A stranger answering on the device's address cannot prove the key.
    impostor = auth.Session(OTHER_KEY, True, ND)
    real_device = auth.Session(KEY, True, ND)
    client = auth.Session(KEY, False, NC)
    answer = client.handshake(real_device.greeting())
    impostor.peer_nonce = NC  # it saw the client's nonce, but not the key
    forged = "HGA1 OK " + _hex(impostor._proof(b"hobguard-device-v1\x00")) + "\n"
    assert _code(client.handshake, forged) == auth.E_AUTH_FAILED
    assert not client.open
    assert answer.startswith("HGA1 AUTH ")


def test_anything_but_auth_is_refused_before_authenticating():
    cases = (
        (protocol.request(1, "cut"), auth.E_AUTH_REQUIRED),  # a plain command
        (b"\x00\xff\xfe garbage", auth.E_AUTH_REQUIRED),
        ("HGA1 HELLO", auth.E_AUTH_REQUIRED),
        ("HGA1 AUTH", auth.E_HANDSHAKE),
        ("HGA1 AUTH " + _hex(NC) + " zz", auth.E_HANDSHAKE),
        ("HGA1 AUTH " + _hex(NC).upper() + " " + _hex(NC), auth.E_HANDSHAKE),
        ("HGA1 AUTH " + "0" * 300, auth.E_TOO_LONG),
        ("HGA1 AUTH " + _hex(NC) + " " + _hex(NC), auth.E_AUTH_FAILED),  # a guessed proof
    )
    for line, code in cases:
        device = auth.Session(KEY, True, ND)
        assert _code(device.handshake, line) == code, line
        assert not device.open
    device = auth.Session(KEY, True, ND)
    assert _code(device.unseal, protocol.request(1, "cut")) == auth.E_AUTH_REQUIRED
    assert _code(device.seal, "x") == auth.E_AUTH_REQUIRED


def test_a_recorded_handshake_does_not_open_a_new_session():
    device1 = auth.Session(KEY, True, ND)
    client1 = auth.Session(KEY, False, NC)
    recorded = client1.handshake(device1.greeting())
    device1.handshake(recorded)
    # The next connection: the device's nonce is fresh, the old proof is useless.
    device2 = auth.Session(KEY, True, bytes(reversed(ND)))
    assert _code(device2.handshake, recorded) == auth.E_AUTH_FAILED


def test_replay_in_the_same_session_is_refused():
    device, client = pair()
    line = client.seal(protocol.request(1, "cut", burner="left"))
    assert device.unseal(line)
    assert _code(device.unseal, line) == auth.E_REPLAY
    assert not device.open
    # The session is over: even the next genuine frame is not taken.
    assert _code(device.unseal, client.seal(protocol.request(2, "ping"))) == auth.E_AUTH_REQUIRED


def test_replay_into_a_later_session_is_refused():
    device1, client1 = pair()
    recorded = client1.seal(protocol.request(1, "cut", burner="left"))
    device1.unseal(recorded)
    device2, client2 = pair(nd=bytes(reversed(ND)), nc=bytes(reversed(NC)))
    # Same counter (0), same body, but sealed with the old session's key.
    assert _code(device2.unseal, recorded) == auth.E_MAC


def test_frames_out_of_order_or_skipped_are_refused():
    device, client = pair()
    first = client.seal(protocol.request(1, "ping"))
    second = client.seal(protocol.request(2, "ping"))
    assert first
    assert _code(device.unseal, second) == auth.E_REPLAY


def test_altered_frames_are_refused():
    device, client = pair()
    line = client.seal(protocol.request(1, "timer_set", burner="left", minutes=5))
    tampered = (
        line.replace('"minutes": 5', '"minutes": 9'),  # the body
        "00000001" + line[8:],  # the counter
        line[:-3] + ("0" if line[-3] != "0" else "1") + line[-2:],  # the tag
        line[:-2] + "\n",  # a truncated tag
        line.replace(" HG1", "HG1", 1),  # the layout
    )
    for bad in tampered:
        fresh_device, fresh_client = pair()
        sealed = fresh_client.seal(protocol.request(1, "timer_set", burner="left", minutes=5))
        assert sealed == line  # same keys, nonces and counter: the same frame
        assert _code(fresh_device.unseal, bad) in (auth.E_MAC, auth.E_FRAME), bad
        assert not fresh_device.open
    assert device.unseal(line)


def test_a_frame_reflected_back_to_its_sender_is_refused():
    device, client = pair()
    own = device.seal(protocol.request(1, "cut"))
    assert _code(device.unseal, own) == auth.E_MAC
    device, client = pair()
    own = client.seal(protocol.encode({"t": "ok", "id": 1}))
    assert _code(client.unseal, own) == auth.E_MAC


def test_errors_from_the_device_end_the_client_handshake():
    client = auth.Session(KEY, False, NC)
    assert _code(client.handshake, auth.error_line(auth.E_BUSY)) == auth.E_BUSY
    client = auth.Session(KEY, False, NC)
    client.handshake(auth.Session(KEY, True, ND).greeting())
    assert _code(client.handshake, auth.error_line(auth.E_AUTH_FAILED)) == auth.E_AUTH_FAILED
    assert auth.parse_error("HGA1 ERR timeout\n") == "timeout"
    assert auth.parse_error("HG1 {}") is None

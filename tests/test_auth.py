"""The network link's authentication (hobguard_fw/auth.py) against CPython's
own `hmac`, and against a second implementation written here from the
specification in docs/protocol.md, so the known-answer transcript in
tests/mp/test_auth_mp.py (which also runs inside MicroPython) is checked by
code that does not share a line with the module it checks."""

from __future__ import annotations

import hashlib
import hmac

import mp.test_auth_mp as mp_auth
import pytest
from hobguard_fw import auth, protocol
from hypothesis import given, settings
from hypothesis import strategies as st


def _reference_transcript(key: bytes, nd: bytes, nc: bytes, bodies: list[tuple[str, str]]) -> list[str]:
    """docs/protocol.md, "The network link", implemented with hmac."""

    def mac(k: bytes, *parts: bytes) -> bytes:
        return hmac.new(k, b"".join(parts), hashlib.sha256).digest()

    session = mac(key, b"hobguard-session-v1\x00", nd, nc)
    lines = [
        f"HGA1 NONCE {nd.hex()}\n",
        f"HGA1 AUTH {nc.hex()} {mac(key, b'hobguard-client-v1' + bytes(1), nd, nc).hex()}\n",
        f"HGA1 OK {mac(key, b'hobguard-device-v1' + bytes(1), nd, nc).hex()}\n",
    ]
    counters = {"C": 0, "D": 0}
    for direction, body in bodies:
        head = f"{counters[direction]:08x} {body}"
        counters[direction] += 1
        lines.append(f"{head} {mac(session, direction.encode(), head.encode()).hex()}\n")
    return lines


def _plain(json_text: str) -> str:
    return f"HG1 {json_text} *{protocol.checksum(json_text)}"


def test_transcript_matches_an_independent_implementation():
    expected = _reference_transcript(
        mp_auth.KEY,
        mp_auth.ND,
        mp_auth.NC,
        [
            ("C", _plain('{"id": 1, "cmd": "hello"}')),
            ("D", _plain('{"t": "ok", "id": 1, "device": "hob-aabbcc"}')),
            ("C", ""),
            ("D", ""),
        ],
    )
    assert mp_auth.transcript() == expected
    assert hashlib.sha256("".join(expected).encode()).hexdigest() == mp_auth.TRANSCRIPT_SHA256


def test_rfc4231_vectors_agree_with_cpython_hmac():
    for key, data, expected in mp_auth.RFC4231:
        assert hmac.new(key, data, hashlib.sha256).hexdigest().startswith(expected)


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=200), message=st.binary(max_size=400))
def test_hmac_equals_cpython_hmac(key: bytes, message: bytes):
    assert auth.hmac_sha256(key, message) == hmac.new(key, message, hashlib.sha256).digest()


@settings(max_examples=300, deadline=None)
@given(a=st.binary(max_size=40), b=st.binary(max_size=40))
def test_same_agrees_with_compare_digest(a: bytes, b: bytes):
    assert auth.same(a, b) == hmac.compare_digest(a, b)


@settings(max_examples=400, deadline=None)
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255), data=st.data())
def test_any_changed_byte_is_refused(position: int, value: int, data):
    device, client = mp_auth.pair()
    line = client.seal(protocol.request(3, "timer_set", burner="left", minutes=12)).encode()
    position %= len(line) - 1  # the newline stays: a line is a line
    if line[position] == value:
        value ^= 1
    altered = line[:position] + bytes([value]) + line[position + 1 :]
    with pytest.raises(auth.AuthError) as caught:
        device.unseal(altered)
    assert caught.value.code in (auth.E_MAC, auth.E_FRAME)
    assert not device.open


@settings(max_examples=300, deadline=None)
@given(line=st.binary(max_size=400))
def test_random_lines_never_unseal_or_authenticate(line: bytes):
    device, _ = mp_auth.pair()
    with pytest.raises(auth.AuthError):
        device.unseal(line)
    fresh = auth.Session(mp_auth.KEY, True, mp_auth.ND)
    with pytest.raises(auth.AuthError):
        fresh.handshake(line)
    assert not fresh.open

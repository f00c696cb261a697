"""Fuzzing the device's side of the serial protocol, through the real
firmware App on the simulated hob.

More than 100,000 bad lines — random bytes, valid frames with bit flips,
truncated frames, huge lines, and frames with a correct checksum whose
content is wrong (NaN, infinities, huge numbers, wrong types, unknown
commands and burners, bad ids, extra arguments, JSON that is not an object)
— go over the simulated serial line into a running device with one burner
lit and a timer set. After every batch: the firmware is still running (no
reset, no crash event), the relays, the physics and the control core's
state are exactly as before, every line got exactly one reply and that
reply is an error (with the request id when the line had a valid one), and
the line reader's buffer is bounded.

The generator is seeded (deterministic); a hypothesis test adds shrinking
for arbitrary bytes. test_protocol.py covers the parser alone.
"""

from __future__ import annotations

import json
import math
import random
import zlib

import pytest
from hobguard_fw import protocol
from hobguard_sim.device import SimDevice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TOTAL_LINES = 100_000
BATCH = 400
WHITESPACE = b" \t\r\n\x0b\x0c"


# -- the device under test -----------------------------------------------------------


class Rig:
    """A booted simulated hob, left burner lit with a long timer, capturing
    every line the firmware writes."""

    def __init__(self, seed: int = 5) -> None:
        self.device = SimDevice(seed=seed)
        self.device.keep_frames = False
        self.replies: list[dict] = []
        self.crashes: list[str] = []
        self.device.on_output = self._output
        self.device.run_for(8_000)
        self.device.physics.ignite(0, self.device.clock.seconds)
        self.device.run_for(30_000)
        self.device.command("timer_set", burner="left", minutes=600)
        self.device.run_for(50)
        self.replies.clear()
        assert self.device.truth()[0]["flame"] and self.device.app.hob.burners[0].timer_deadline is not None

    def _output(self, text: str) -> None:
        for line in text.splitlines():
            frame = protocol.decode(line)  # the firmware only ever writes valid frames
            if frame.get("t") in ("ok", "err"):
                self.replies.append(frame)
            elif frame.get("t") == "evt" and frame.get("reason") == "crash":
                self.crashes.append(line)

    def fingerprint(self) -> tuple:
        device = self.device
        app = device.app
        assert app is not None, "the firmware is not running"
        hob = app.hob
        burners = tuple(
            (
                b.timer_deadline,
                b.timer_warned,
                b.guard_deadline,
                b.cut_until,
                b.verify_deadline,
                b.last_cut_reason,
                b.cut_fault,
                b.sensor_fault,
                b.flame,
            )
            for b in hob.burners
        )
        physics = tuple((m.relay_closed, m.valve_open, m.flame) for m in device.physics.models)
        return (
            device.boots,
            len(device.resets),
            hob.locked,
            tuple(hob.relay_closed),
            tuple(app.relays.closed),
            burners,
            hob.event_seq,
            hob.events_dropped,
            physics,
        )

    def feed(self, lines: list[bytes]) -> list[dict]:
        """Send lines (each ends in a newline); return the replies they got."""
        self.replies.clear()
        data = b"".join(lines)
        self.push(data)
        return list(self.replies)

    def push(self, data: bytes) -> None:
        """Bytes onto the line, and the firmware stepped until it has read
        them all. The firmware takes at most 512 bytes per step; on the board
        its poll() returns at once while bytes wait, but SimDevice only wakes
        it when bytes arrive, so it is woken again (an empty send) until the
        line is drained."""
        device = self.device
        device.send_line(data)
        device.run_for(1)
        for _ in range(len(data) // 256 + 10):
            if not device.link.inbound:
                break
            device.send_line(b"")
            device.run_for(1)
        assert not device.link.inbound, "the device did not read everything"
        device.run_for(2)


# -- bad lines -----------------------------------------------------------------------

GOOD = [
    protocol.request(7, "cut", burner="left"),
    protocol.request(8, "cut"),
    protocol.request(9, "timer_set", burner="left", minutes=5),
    protocol.request(10, "timer_extend", burner="right", minutes=2.5),
    protocol.request(11, "timer_cancel", burner="left"),
    protocol.request(12, "lock", on=True),
    protocol.request(13, "clear_fault"),
    protocol.request(2147483647, "timer_set", burner="right", minutes=720),
]

BAD_MINUTES = [
    "NaN", "Infinity", "-Infinity", "1e309", "-1e309", "-5", "-1e-9", "720.5", "721", "1e17", "1e18",
    "1e300", "123456789012345678901234567890", "true", "false", '"10"', "null", "[]", "{}", '"NaN"', "-0.5",
]  # fmt: skip
BAD_BURNERS = ['"LEFT"', '""', '"' + "x" * 17 + '"', '"nope"', "5", "null", '"left right"', '"l\\u00e9ft"',
               '"left\\u0000"', "[]", "true"]  # fmt: skip
BAD_IDS = ["-1", "2147483648", "1.5", '"1"', "true", "null", "NaN", "1e3", "-0.0001", "99999999999999999999"]
BAD_CMDS = ['"CUT"', '"open"', '"open_gas"', '""', "5", "null", '"reset"', '"set_relay"', '"cut "', "[]"]


def _frame(body: str) -> bytes:
    return (protocol.PREFIX + body + " *" + "%08x" % (zlib.crc32(body.encode()) & 0xFFFFFFFF) + "\n").encode()


def wrong_content(rng: random.Random) -> tuple[bytes, int | None]:
    """A frame with a correct checksum and wrong content; the request id the
    error reply must carry (None when the id itself is bad)."""
    rid = rng.randrange(0, protocol.MAX_ID + 1)
    kind = rng.randrange(9)
    if kind == 0:
        cmd = rng.choice(["timer_set", "timer_extend"])
        minutes = rng.choice(BAD_MINUTES)
        return _frame(f'{{"id": {rid}, "cmd": "{cmd}", "burner": "left", "minutes": {minutes}}}'), rid
    if kind == 1:
        cmd = rng.choice(["cut", "timer_cancel", "clear_fault"])
        return _frame(f'{{"id": {rid}, "cmd": "{cmd}", "burner": {rng.choice(BAD_BURNERS)}}}'), rid
    if kind == 2:
        on = rng.choice(["1", "0", '"true"', "null", "[]", '"on"', "NaN"])
        return _frame(f'{{"id": {rid}, "cmd": "lock", "on": {on}}}'), rid
    if kind == 3:
        bad_id = rng.choice(BAD_IDS)
        return _frame(f'{{"id": {bad_id}, "cmd": "cut", "burner": "left"}}'), None
    if kind == 4:
        return _frame(f'{{"cmd": "cut", "burner": "{rng.choice(["left", "right"])}"}}'), None
    if kind == 5:
        return _frame(f'{{"id": {rid}, "cmd": {rng.choice(BAD_CMDS)}}}'), rid
    if kind == 6:
        extra = rng.choice(['"x": 1', '"burner": "left"', '"on": true', '"minutes": 5', '"gas": "open"'])
        cmd = rng.choice(["ping", "status", "hello", "lock"]) if "on" not in extra else "ping"
        body = f'{{"id": {rid}, "cmd": "{cmd}", {extra}}}'
        if cmd == "lock":  # lock needs "on": give it a wrong one so the line is wrong either way
            body = f'{{"id": {rid}, "cmd": "lock", "on": "yes", {extra}}}'
        return _frame(body), rid
    if kind == 7:
        body = rng.choice(
            ["[]", "1", '"x"', "null", "true", '[{"id": 1, "cmd": "cut"}]', "", "{", '{"id": 1, "cmd": "cut"} x']
        )
        return _frame(body), None
    # missing required arguments
    cmd, missing = rng.choice(
        [("timer_set", '"burner": "left"'), ("timer_set", '"minutes": 5'), ("timer_extend", '"burner": "left"'),
         ("timer_cancel", ""), ("lock", "")]
    )  # fmt: skip
    body = f'{{"id": {rid}, "cmd": "{cmd}"' + (f", {missing}" if missing else "") + "}"
    return _frame(body), rid


def _is_valid_frame(line: bytes) -> bool:
    """Independent check (not the firmware's code): does this line carry a
    correctly checksummed JSON object? Only such a mutated line could be a
    real command, so the generator throws those away (practically never)."""
    text = line.rstrip(b"\r\n")
    if not text.startswith(b"HG1 ") or len(text) < 14 or text[-10:-8] != b" *":
        return False
    body = text[4:-10]
    if b"%08x" % (zlib.crc32(body) & 0xFFFFFFFF) != text[-8:]:
        return False
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


def mutated(rng: random.Random) -> bytes:
    line = bytearray(rng.choice(GOOD).encode())
    body = len(line) - 1  # never the final newline
    kind = rng.randrange(4)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(body)
            line[i] ^= 1 << rng.randrange(8)
            if line[i] == 10:
                line[i] = 11
    elif kind == 1:  # truncation
        del line[rng.randrange(1, body) : body]
    elif kind == 2:  # a byte replaced, inserted or deleted
        i = rng.randrange(body)
        op = rng.randrange(3)
        b = rng.choice([b for b in range(256) if b != 10])
        if op == 0:
            line[i] = b
        elif op == 1:
            line.insert(i, b)
        else:
            del line[i]
    else:  # two frames run together, or a frame after noise
        other = rng.choice(GOOD).encode()[:-1]
        if rng.random() < 0.5:
            line[body:body] = other
        else:
            line[0:0] = bytes(rng.randrange(11, 256) for _ in range(rng.randint(1, 8)))
    return bytes(line)


def random_line(rng: random.Random) -> bytes:
    n = rng.choice([rng.randint(1, 40), rng.randint(1, 256)])
    data = bytes(rng.choice([rng.randrange(256), rng.randrange(32, 127)]) for _ in range(n))
    data = data.replace(b"\n", b"\x0b")
    if rng.random() < 0.3:  # looks like a frame at first sight
        data = b"HG1 " + data
    return data + b"\n"


def huge_line(rng: random.Random) -> bytes:
    size = rng.choice([protocol.MAX_REQUEST + 1, protocol.MAX_REQUEST + 2, 300, 1000, 5000, 20_000, 100_000])
    start = rng.choice(GOOD).encode()[:-1]
    filler = bytes(rng.randrange(32, 127) for _ in range(64))
    return (start + filler * (size // 64 + 1))[:size] + b"\n"


def generate(rng: random.Random, count: int):
    """(line, expected request id in the reply or None, category) x count.
    Lines that are blank (no reply expected) or, against all odds, a valid
    frame are never produced."""
    made = 0
    while made < count:
        r = rng.random()
        expect_id = None
        if r < 0.30:
            line, category = random_line(rng), "random"
        elif r < 0.65:
            line, category = mutated(rng), "mutated"
        elif r < 0.995:
            (line, expect_id), category = wrong_content(rng), "content"
        else:
            line, category = huge_line(rng), "huge"
        if not line.strip(WHITESPACE):
            continue
        if category != "content" and _is_valid_frame(line):
            continue
        made += 1
        yield line, expect_id, category


# -- the tests -----------------------------------------------------------------------------


def test_a_hundred_thousand_bad_lines_change_nothing_and_each_gets_one_error():
    rig = Rig()
    before = rig.fingerprint()
    rng = random.Random(20261124)
    seen = {"random": 0, "mutated": 0, "content": 0, "huge": 0}
    codes: dict[str, int] = {}
    batch: list[tuple[bytes, int | None, str]] = []
    longest_buffer = 0

    def flush() -> None:
        nonlocal longest_buffer
        replies = rig.feed([line for line, _, _ in batch])
        assert len(replies) == len(batch), (
            f"{len(batch)} lines got {len(replies)} replies; first lines: {[b[0][:60] for b in batch[:3]]}"
        )
        for (line, expect_id, category), reply in zip(batch, replies, strict=True):
            assert reply["t"] == "err", f"{category} line {line[:120]!r} was accepted: {reply}"
            codes[reply["code"]] = codes.get(reply["code"], 0) + 1
            if expect_id is not None:
                assert reply["id"] == expect_id, f"{line!r}: reply {reply}"
        assert rig.fingerprint() == before, f"state changed after a batch ending in {batch[-1][0][:120]!r}"
        assert not rig.crashes
        longest_buffer = max(longest_buffer, len(rig.device.app.reader.buffer))
        batch.clear()

    for item in generate(rng, TOTAL_LINES):
        batch.append(item)
        seen[item[2]] += 1
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    assert sum(seen.values()) >= 100_000
    assert min(seen.values()) > 0
    # Every kind of refusal was exercised.
    for code in (protocol.E_FRAME, protocol.E_CRC, protocol.E_TOO_LONG, protocol.E_JSON, protocol.E_ID,
                 protocol.E_UNKNOWN, protocol.E_ARG, protocol.E_BURNER):  # fmt: skip
        assert codes.get(code), f"no line was refused with {code}: {codes}"
    assert longest_buffer <= protocol.MAX_REQUEST + 1
    # The device still works: a real command after all that.
    replies = rig.feed([protocol.request(42, "cut", burner="right").encode()])
    assert replies[0]["t"] == "ok" and replies[0]["id"] == 42


def test_a_flood_without_newlines_costs_bounded_memory():
    """Megabytes with no newline: the reader keeps at most one request's
    worth, and the one overlong line gets exactly one error."""
    rig = Rig(seed=6)
    before = rig.fingerprint()
    rng = random.Random(1)
    chunk = bytes(rng.randrange(11, 256) for _ in range(4096))
    for _ in range(64):  # 256 KB
        rig.push(chunk)
        assert len(rig.device.app.reader.buffer) <= protocol.MAX_REQUEST + 1
    assert rig.replies == []
    replies = rig.feed([b"\n"])
    assert [r["code"] for r in replies] == [protocol.E_TOO_LONG]
    assert rig.fingerprint() == before


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e308, -1e308, 10**40, -(10**40), 2**64])
def test_non_finite_and_huge_numbers_in_valid_frames_are_refused(value):
    rig = Rig(seed=7)
    before = rig.fingerprint()
    lines = []
    for cmd in ("timer_set", "timer_extend"):
        body = json.dumps({"id": 5, "cmd": cmd, "burner": "left", "minutes": value})  # NaN, Infinity as json does
        lines.append(_frame(body))
    lines.append(
        _frame(json.dumps({"id": value, "cmd": "cut"}))
        if not isinstance(value, int)
        else _frame(json.dumps({"id": value, "cmd": "cut"}))
    )
    replies = rig.feed(lines)
    assert [r["t"] for r in replies] == ["err", "err", "err"]
    assert [r["code"] for r in replies[:2]] == [protocol.E_ARG, protocol.E_ARG]
    assert replies[2]["code"] == protocol.E_ID
    assert rig.fingerprint() == before


_hypothesis_rig: list[Rig] = []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=300).map(lambda b: b.replace(b"\n", b"\x0b")))
def test_arbitrary_bytes_as_a_line_change_nothing(data):
    if not _hypothesis_rig:
        _hypothesis_rig.append(Rig(seed=8))
    rig = _hypothesis_rig[0]
    if not data.strip(WHITESPACE) or _is_valid_frame(data):
        return
    before = rig.fingerprint()
    replies = rig.feed([data + b"\n"])
    assert len(replies) == 1 and replies[0]["t"] == "err"
    assert rig.fingerprint() == before

"""Reliability properties over random interleavings (hypothesis), with the
real firmware on the simulated hob: person actions, host commands, a lost
serial link, resets (power loss, a hung firmware the watchdog resets),
faults and garbage on the line.

tests/test_safety_properties.py (scenario runner, physics invariants) covers
the valve/cut invariants for schedules of person actions, commands and
faults. This file drives SimDevice directly and concentrates on what resets,
link losses and the command channel do:

1. Every command is answered: a command sent while the firmware runs and
   the link is up gets exactly one reply, with its id, at once (within
   ANSWER_MS); one sent while the link is down is never answered and never
   acted on; one sent while the device is off, booting or hung is answered
   at most once. No reply ever carries an id nobody sent, none comes twice.
2. No cut without a reason, and every reason has a cause the test can see:
   `remote` only in the step that acknowledged a `cut` command, `lock` only
   with an acknowledged `lock on`, `timer` only at a deadline an
   acknowledged timer command set, `reset` only with a `boot` event,
   `left_on` only with a flame burning, left_on_min after the device last
   saw that burner light (its `ignited` event) or booted, `flame_lost`
   only with that burner's flame out, never `button`, `fault` or
   `unattended` (nobody presses the button; the guard is off).
3. Gas never flows past a timer deadline plus CUT_BOUND — across link
   losses (the device owns the timer), and across resets (a reset cuts
   every burner); while the firmware hangs, the bound is the watchdog's
   reset plus relay release and magnet drop-out. The only exception is a
   person pressing that knob (since 16 s before the deadline: the knob is
   held up to 15 s while lighting).
4. A reset (power loss, watchdog) shuts every valve within RELEASE_DROP_MS
   unless a knob is held; a hung firmware is reset by the watchdog within
   watchdog_ms.
5. A locked hob (lock acknowledged; the lock survives resets) never keeps a
   flame or gas flow on any burner, except while a person holds a knob.
6. Bounded memory: the core's event queue never overflows (events_dropped
   stays 0), the line reader's buffer stays within one request, the
   simulator's own queues stay small; the firmware never crashes (no
   `crash` event, no hard reset).

Deadlines come from the replies the test sees through the device's
output hook, which sees every byte the firmware writes (the host sees
them only while the link is up): `timer_remaining_s` in an acknowledged
timer command's state is rounded up, so deadline <= reply time + that.

Actions are words of the simulator's action language (hobguard_sim.actions:
"ignite left", "timer left 3", "link lost", "power_loss 2s", ...); the
harness learns what they did from the device's hooks (commands sent, knobs
pressed, power lost).

The harness is also used by tests/test_soak.py (7 simulated days).
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hobguard_fw import core as fw_core
from hobguard_fw import protocol
from hobguard_sim import actions
from hobguard_sim.device import SimDevice
from hobguard_sim.physics import BurnerParams
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

BURNERS = ("left", "right")
SETTINGS = {"left_on_min": 5, "warn_before_s": 30, "sample_ms": 1000, "watchdog_ms": 8000, "cut_pulse_s": 3}
P = BurnerParams()
RELEASE_DROP_MS = int((P.relay_release_s + P.drop_out_time_s) * 1000) + 1
# As in test_safety_properties.py: the cut happens in the step at the
# deadline (allow one sample period for it), then relay release + drop-out.
CUT_BOUND_MS = SETTINGS["sample_ms"] + RELEASE_DROP_MS
# A person lighting a burner holds its knob at most knob_give_up_s (+1 s).
PRESS_MS = int(P.knob_give_up_s * 1000) + 1000
# A command is handled in the step its bytes wake (ADC reads in that step
# move the simulated clock by a few ms).
ANSWER_MS = 20
# Every event the core emits in one step fits its queue many times over.
QUEUE_LIMIT = 8


@dataclass
class Sent:
    id: int
    cmd: str
    args: dict[str, Any]
    at: int
    kind: str  # "must" (answered at once), "never" (link down), "maybe" (device down/hung)
    replies: list[tuple[int, dict]] = field(default_factory=list)


class Harness:
    """A SimDevice plus the bookkeeping that checks the properties above.
    Violations are collected (raising inside the firmware's write would look
    like a firmware crash to the simulator) and asserted by check()."""

    def __init__(self, seed: int = 1, device_settings: dict[str, Any] | None = None, ticks_offset: int = 0) -> None:
        self.settings = dict(SETTINGS, **(device_settings or {}))
        self.device = SimDevice(settings=self.settings, seed=seed, ticks_offset=ticks_offset)
        self.device.keep_frames = False
        self.left_on_ms = int(self.settings["left_on_min"] * 60000)
        self.warn_ms = int(self.settings["warn_before_s"] * 1000)
        self.sensor_fault_since: dict[str, int | None] = {b: None for b in BURNERS}  # its `fault` event
        self.violations: list[str] = []
        self.sent: dict[int, Sent] = {}
        self.open_must: dict[int, Sent] = {}  # "must" commands not answered yet
        self.deadlines: dict[str, int | None] = {b: None for b in BURNERS}  # responsible timer deadline
        self.all_deadlines: dict[str, list[int]] = {b: [] for b in BURNERS}
        self.locked_since: int | None = None
        self.last_press = {b: -(10**9) for b in BURNERS}
        self.last_boot = 0
        self.lit_seen = {b: 0 for b in BURNERS}  # last "ignited" event: the core's flame_since
        self.boot_times: set[int] = set()
        self.acked: deque[tuple[int, Sent]] = deque()  # (ms, command) acknowledged lately
        self.checks: list[tuple[int, int, str, Any]] = []  # heap of (at, order, kind, data)
        self._order = 0
        self.counts: dict[str, int] = {}
        self.resets_seen = 0
        self.stale_sent = 0
        self._power_losses: list[tuple[int, int]] = []
        hooks = self.device.hooks
        hooks.output.append(self._output)
        hooks.command.append(self._sent)
        hooks.knob.append(self._pressed)
        hooks.power.append(self._power_lost)

    # -- bookkeeping ------------------------------------------------------------

    @property
    def now(self) -> int:
        return self.device.clock.ms

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _fail(self, message: str) -> None:
        self.violations.append(f"t={self.now} ms: {message}")

    def _schedule(self, at: int, kind: str, data: Any = None) -> None:
        self._order += 1
        heapq.heappush(self.checks, (at, self._order, kind, data))

    # -- what the device's hooks tell --------------------------------------------

    def _output(self, t_ms: int, text: str, heard: bool) -> None:
        for line in text.splitlines():
            try:
                frame = protocol.decode(line)
            except protocol.ProtocolError:
                self.violations.append(f"the firmware wrote a line that is not a frame: {line[:100]!r}")
                continue
            self._frame(frame, heard)

    def _sent(self, t_ms: int, rid: int, cmd: str, args: dict[str, Any]) -> None:
        device = self.device
        if device.app is None or device.hung:
            kind = "maybe" if device.link.connected else "never"
        else:
            kind = "must" if device.link.connected else "never"
        if kind == "maybe":
            self.stale_sent += 1
        sent = Sent(rid, cmd, dict(args), t_ms, kind)
        self.sent[rid] = sent
        if kind == "must":
            self.open_must[rid] = sent

    def _pressed(self, t_ms: int, index: int) -> None:
        self.last_press[BURNERS[index]] = t_ms

    def _power_lost(self, t_ms: int, duration_ms: int) -> None:
        self._power_losses.append((t_ms, t_ms + duration_ms))
        self._schedule(t_ms + RELEASE_DROP_MS, "reset", (t_ms, "power_loss"))
        for burner in BURNERS:
            if (self.deadlines[burner] or 0) > t_ms:
                self.deadlines[burner] = None  # the power loss cuts (checked) and loses the timer

    def _frame(self, frame: dict, connected: bool) -> None:
        kind = frame.get("t")
        if kind in ("ok", "err"):
            self._reply(frame, connected)
        elif kind == "evt":
            self._event(frame)

    def _reply(self, frame: dict, connected: bool) -> None:
        rid = frame.get("id")
        if rid is None:
            return  # the answer to garbage
        sent = self.sent.get(rid)
        if sent is None:
            self._fail(f"reply to an id nobody sent: {frame}")
            return
        sent.replies.append((self.now, frame))
        self.open_must.pop(rid, None)
        if len(sent.replies) > 1:
            self._fail(f"command {sent.cmd} id {rid} answered {len(sent.replies)} times")
        if sent.kind == "never":
            self._fail(f"command {sent.cmd} id {rid} sent while the link was down was answered: {frame}")
        if sent.kind == "must" and self.now - sent.at > ANSWER_MS:
            self._fail(f"command {sent.cmd} id {rid} answered after {self.now - sent.at} ms")
        if frame["t"] != "ok":
            self._count(f"err:{frame.get('code')}")
            return
        self._count(f"ok:{sent.cmd}")
        self.acked.append((self.now, sent))
        while self.acked and self.acked[0][0] < self.now - 1000:
            self.acked.popleft()
        self._effect(sent, frame)

    def _effect(self, sent: Sent, frame: dict) -> None:
        """What an acknowledged command means for the checks."""
        cmd, args = sent.cmd, sent.args
        state = frame.get("state") or {}
        remaining = {b.get("id"): b.get("timer_remaining_s") for b in state.get("burners", [])}
        if cmd in ("timer_set", "timer_extend"):
            burner = args["burner"]
            left = remaining.get(burner)
            if left is None:
                self.deadlines[burner] = None
                return
            deadline = self.now + int(left) * 1000
            self.deadlines[burner] = deadline
            self.all_deadlines[burner].append(deadline)
            self._schedule(deadline + CUT_BOUND_MS, "deadline", (burner, deadline))
        elif cmd == "timer_cancel":
            self.deadlines[args["burner"]] = None
        elif cmd == "cut":
            for burner in [args["burner"]] if "burner" in args else BURNERS:
                self.deadlines[burner] = None
                self._schedule(self.now + CUT_BOUND_MS, "cut", (burner, self.now))
        elif cmd == "lock":
            if args["on"]:
                if self.locked_since is None:
                    self.locked_since = self.now
                for burner in BURNERS:
                    self.deadlines[burner] = None
            else:
                self.locked_since = None

    def _event(self, event: dict) -> None:
        etype = event.get("event_type")
        self._count(f"evt:{etype}")
        if etype == "fault" and event.get("reason") == "crash":
            self._fail(f"firmware crash: {event}")
        if etype == "boot":
            self.boot_times = {t for t in self.boot_times if t > self.now - 1000} | {self.now}
            self.last_boot = self.now
            if self.locked_since is not None and event.get("locked") is not True:
                self._fail(f"the hob was locked but booted unlocked: {event}")
            return
        if etype == "ignited":
            self.lit_seen[event.get("burner")] = self.now
        if etype == "fault" and event.get("reason") == "sensor":
            self.sensor_fault_since[event.get("burner")] = self.now
        if etype == "fault_cleared" and event.get("reason") == "sensor":
            self.sensor_fault_since[event.get("burner")] = None
        if etype != "cut":
            return
        reason, burner = event.get("reason"), event.get("burner")
        if reason not in fw_core.REASONS:
            self._fail(f"cut without a known reason: {event}")
        elif reason == "remote":
            if not any(s.cmd == "cut" and s.args.get("burner") in (None, burner) for s in self._just_acked()):
                self._fail(f"remote cut of {burner} without an acknowledged cut command: {event}")
        elif reason == "lock":
            if not any(s.cmd == "lock" and s.args["on"] for s in self._just_acked()):
                self._fail(f"lock cut of {burner} without an acknowledged lock: {event}")
        elif reason == "timer":
            if not any(d - 1000 - ANSWER_MS <= self.now <= d + ANSWER_MS for d in self.all_deadlines[burner]):
                self._fail(f"timer cut of {burner} at no deadline set ({self.all_deadlines[burner][-3:]}): {event}")
        elif reason == "reset":
            if not any(self.now - ANSWER_MS <= t <= self.now for t in self.boot_times):
                self._fail(f"reset cut of {burner} without a boot: {event}")
        elif reason == "left_on":
            lit_at = max(self.lit_seen[burner], self.last_boot)
            truth = self.device.truth()[BURNERS.index(burner)]
            if self.now - lit_at < self.left_on_ms - ANSWER_MS:
                self._fail(f"left_on cut of {burner} {self.now - lit_at} ms after it was seen lit / boot: {event}")
            # (With its sensor in fault the device goes on with the flame it
            # last saw, review F1: a flame that went out unseen is cut
            # harmlessly.)
            if not truth["flame"] and self.sensor_fault_since[burner] is None:
                self._fail(f"left_on cut of {burner} with no flame burning: {event} {truth}")
        elif reason == "flame_lost":
            # Only a flame that has gone out (turned off, boiled over, let
            # go by its magnet): the verdict comes seconds after, and the
            # event in the step that decided it.
            truth = self.device.truth()[BURNERS.index(burner)]
            if truth["flame"]:
                self._fail(f"flame_lost cut of {burner} while its flame burns: {event} {truth}")
        elif reason == "fault":
            # Only a sensor fault that has lasted its minute and a warning
            # (review F1: a controller that cannot see a flame shuts its gas).
            since = self.sensor_fault_since[burner]
            if since is None or self.now - since < fw_core.SENSOR_FAULT_CUT_MS + self.warn_ms - ANSWER_MS:
                self._fail(
                    f"fault cut of {burner} without a sensor fault standing long enough (since {since}): {event}"
                )
        else:  # button, unattended (the guard is off here): nobody caused them
            self._fail(f"cut with reason {reason} nobody caused: {event}")

    def _just_acked(self) -> list[Sent]:
        """Commands acknowledged in this firmware step (its events are written
        after its ADC reads, a few simulated ms after its replies)."""
        return [s for t, s in self.acked if self.now - ANSWER_MS <= t <= self.now]

    # -- the physical truth ----------------------------------------------------

    def _held(self, index: int, truth: list[dict]) -> bool:
        return truth[index]["knob"] == "held"

    def _check_gas_off(self, why: str, burners=BURNERS, pressed_since: int | None = None) -> None:
        truth = self.device.truth()
        for burner in burners:
            i = BURNERS.index(burner)
            if self._held(i, truth):
                continue
            if pressed_since is not None and self.last_press[burner] >= pressed_since:
                continue
            if truth[i]["gas_flow"] or truth[i]["flame"]:
                self._fail(f"gas flows to {burner} {why}: {truth[i]}")

    def _run_check(self, kind: str, data: Any) -> None:
        device = self.device
        wdt = device.board.wdt
        if kind in ("deadline", "cut") and device.hung and device.app is not None and wdt is not None:
            # Stuck firmware: the watchdog resets it, and the reset cuts.
            self._schedule(wdt.last_feed_ms + wdt.timeout_ms + 1 + RELEASE_DROP_MS + 1, kind, data)
            return
        if kind == "deadline":
            burner, deadline = data
            if self.deadlines[burner] != deadline:
                return  # replaced, cancelled or cut before it ran out (checked as such)
            self._count("check:deadline")
            self._check_gas_off(f"past its deadline {deadline} + {CUT_BOUND_MS} ms", [burner], deadline - PRESS_MS)
            if self.deadlines[burner] == deadline:
                self.deadlines[burner] = None
        elif kind == "cut":
            burner, at = data
            self._count("check:cut")
            self._check_gas_off(f"{CUT_BOUND_MS} ms after an acknowledged cut at {at}", [burner], at - PRESS_MS)
        elif kind == "reset":
            at, cause = data
            self._count("check:reset")
            self._check_gas_off(f"{RELEASE_DROP_MS} ms after a reset ({cause}) at {at}")
        elif kind == "watchdog":
            hung_at, expires = data
            if not any(hung_at <= t <= expires and cause == "watchdog" for t, cause in device.resets):
                if not any(hung_at <= t <= expires for t, _ in self._power_losses):
                    self._fail(f"hung at {hung_at}: no watchdog reset by {expires}")
            self._count("check:watchdog")

    # -- driving -------------------------------------------------------------------

    def run_until(self, end: int) -> None:
        device = self.device
        while self.checks and self.checks[0][0] <= end:
            at, _, kind, data = heapq.heappop(self.checks)
            if at > self.now:
                device.run_until(at)
                self._after_run()
            self._run_check(kind, data)
        if end > self.now:
            device.run_until(end)
            self._after_run()
        self._locked_check()
        self._memory_check()

    def _after_run(self) -> None:
        device = self.device
        while self.resets_seen < len(device.resets):
            at, cause = device.resets[self.resets_seen]
            self.resets_seen += 1
            self._on_reset(at, cause)
        for rid, sent in list(self.open_must.items()):
            if self.now - sent.at > ANSWER_MS:
                self._fail(f"command {sent.cmd} id {rid} sent at {sent.at} with the link up never answered")
                del self.open_must[rid]

    def _on_reset(self, at: int, cause: str) -> None:
        if cause not in ("watchdog",):
            self._fail(f"unexpected reset ({cause}) at {at}: a firmware crash?")
        for burner in BURNERS:
            if self.deadlines[burner] is not None and self.deadlines[burner] > at:
                self.deadlines[burner] = None  # the reset cut the gas (checked) and lost the timer

    def _locked_check(self) -> None:
        if self.locked_since is not None and self.now >= self.locked_since + CUT_BOUND_MS:
            self._count("check:locked")
            self._check_gas_off("while the hob is locked")

    def _memory_check(self) -> None:
        device = self.device
        app = device.app
        if app is not None:
            if len(app.hob.events) > QUEUE_LIMIT:
                self._fail(f"{len(app.hob.events)} events queued in the core")
            if app.hob.events_dropped:
                self._fail(f"the core dropped {app.hob.events_dropped} events")
            if len(app.reader.buffer) > protocol.MAX_REQUEST + 1:
                self._fail(f"line reader holds {len(app.reader.buffer)} bytes")
        if len(device._queue) > 8:
            self._fail(f"the simulator has {len(device._queue)} scheduled actions")
        if len(self.checks) > 200:
            self._fail("harness: too many pending checks")

    def act(self, text: str) -> actions.Action:
        """Do one action (the action language) now."""
        device = self.device
        action = actions.parse(text, BURNERS)
        self._count(f"act:{action.verb}")
        wdt = device.board.wdt
        if action.verb == "hang" and device.app is not None and not device.hung and wdt is not None:
            expires = wdt.last_feed_ms + wdt.timeout_ms + 1
            self._schedule(expires + RELEASE_DROP_MS, "reset", (expires, "watchdog"))
            self._schedule(expires + 1, "watchdog", (self.now, expires + 1))
        action.apply(device)
        if action.who == "host" or action.verb == "garbage":
            self._wake()
        return action

    def send(self, cmd: str, **args: Any) -> Sent:
        """A host command sent now (registered through the command hook)."""
        rid = self.device.command(cmd, **args)
        self._wake()
        return self.sent[rid]

    def _wake(self) -> None:
        """Step the firmware until the line is drained (on the board, poll()
        returns at once while bytes wait; SimDevice wakes it only when bytes
        arrive)."""
        device = self.device
        if device.app is None or device.hung:
            return
        self.run_until(self.now + 1)
        for _ in range(64):
            if not device.link.inbound or device.app is None or device.hung:
                break
            device.send_line(b"")
            self.run_until(self.now + 1)

    def play(self, schedule: list[tuple[int, tuple]]) -> None:
        for gap, action in schedule:
            self.run_until(self.now + gap)
            self.act(action)
            self.check()
        self.run_until(self.now + 120_000)
        self.check()

    def check(self) -> None:
        assert not self.violations, "\n".join(self.violations[:10])


# -- schedules ---------------------------------------------------------------------------

burner = st.sampled_from(BURNERS)
gap = st.sampled_from([0, 20, 500, 2_000, 10_000, 45_000, 120_000, 330_000])
person = st.one_of(
    burner.map(lambda b: f"ignite {b}"),
    burner.map(lambda b: f"ignite {b}"),
    burner.map(lambda b: f"off {b}"),
    burner.map(lambda b: f"blowout {b}"),
)
command = st.one_of(
    st.tuples(burner, st.sampled_from([0, 0.5, 1, 3])).map(lambda a: f"timer {a[0]} {a[1]:g}"),
    st.tuples(burner, st.sampled_from([0.5, 2])).map(lambda a: f"extend {a[0]} {a[1]:g}"),
    burner.map(lambda b: f"cancel {b}"),
    burner.map(lambda b: f"cut {b}"),
    st.sampled_from(["lock on", "lock off"]),
    st.sampled_from(["cut all", "status", "ping", "clear_fault", "timer left 721"]),  # 721 min: refused
)
trouble = st.one_of(
    st.sampled_from(["link lost", "link ok", "link ok", "hang"]),
    st.sampled_from(["150ms", "2s", "20s"]).map(lambda t: f"power_loss {t}"),
    st.sampled_from([20, 200]).map(lambda n: f"garbage {n}"),
    st.sampled_from(["adc dead", "adc ok"]),
    st.tuples(st.sampled_from(["open_tc", "tc_ok", "stuck_open", "unstick"]), burner).map(" ".join),
)
action = st.one_of(person, person, command, command, command, trouble)
schedules = st.lists(st.tuples(gap, action), min_size=4, max_size=30)


# The device's tick counter starts at 0 or within an hour of its wrap-around
# at 2**30 ms (12.4 days), so timers and deadlines cross it.
ticks_offsets = st.one_of(st.just(0), st.integers((1 << 30) - 3_600_000, (1 << 30) - 1))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules, seed=st.integers(1, 1000), ticks_offset=ticks_offsets)
def test_reliability_properties_hold_for_random_interleavings(schedule, seed, ticks_offset):
    h = Harness(seed=seed, ticks_offset=ticks_offset)
    h.play(schedule)
    for key in sorted(h.counts):  # what was exercised: pytest --hypothesis-show-statistics
        if key.startswith(("check:", "known:", "err:", "evt:cut", "evt:boot")):
            event(key)
    event(
        f"commands: {sum(1 for s in h.sent.values() if s.kind == 'must')} must, "
        f"{sum(1 for s in h.sent.values() if s.kind != 'must')} other"
    )


# -- the harness catches what it must catch (so a pass means something) -------------------


def test_commands_while_the_link_is_down_are_never_answered_nor_done():
    h = Harness(seed=2)
    h.run_until(10_000)
    h.act("ignite left")
    h.run_until(h.now + 20_000)
    h.act("link lost")
    sent = h.send("cut", burner="left")
    h.run_until(h.now + 5_000)
    h.check()
    assert sent.replies == [] and h.device.truth()[0]["flame"]
    h.act("link ok")
    again = h.send("cut", burner="left")
    h.run_until(h.now + 5_000)
    h.check()
    assert len(again.replies) == 1 and not h.device.truth()[0]["gas_flow"]


def test_a_timer_still_cuts_on_time_with_the_link_down_and_through_a_hang():
    h = Harness(seed=3)
    h.run_until(10_000)
    h.act("ignite right")
    h.run_until(h.now + 20_000)
    h.send("timer_set", burner="right", minutes=1)
    h.act("link lost")
    h.run_until(h.now + 55_000)
    h.act("hang")  # hung 5 s before the deadline: the watchdog resets it 3 s after
    h.run_until(h.now + 30_000)
    h.check()
    assert h.counts.get("check:deadline") == 1 and h.counts.get("check:reset") == 1
    assert [cause for _, cause in h.device.resets] == ["watchdog"]
    assert not h.device.truth()[1]["gas_flow"]


def test_a_locked_hob_stays_locked_through_a_power_loss():
    h = Harness(seed=4)
    h.run_until(10_000)
    h.send("lock", on=True)
    h.act("power_loss 2s")
    h.run_until(h.now + 10_000)
    h.act("ignite left")  # the person tries: the magnet cannot hold with the relay open
    h.run_until(h.now + 60_000)
    h.check()
    assert h.device.app.hob.locked and not h.device.truth()[0]["gas_flow"]
    assert h.counts.get("check:locked", 0) > 0


def test_the_harness_catches_a_cut_nobody_asked_for():
    h = Harness(seed=5)
    h.run_until(10_000)
    h.device.app.hob.cut("left", "remote", h.device.time.ticks_ms())  # behind the host's back
    h.run_until(h.now + 5_000)
    assert any("without an acknowledged cut" in v for v in h.violations)


def test_the_harness_catches_gas_past_a_deadline():
    h = Harness(seed=6)
    h.run_until(10_000)
    h.act("ignite left")
    h.run_until(h.now + 20_000)
    h.send("timer_set", burner="left", minutes=0.5)
    h.device.app.hob.burners[0].timer_deadline = None  # the firmware "forgets" the timer
    h.run_until(h.now + 60_000)
    assert any("past its deadline" in v for v in h.violations)


def test_the_harness_catches_an_unanswered_command():
    h = Harness(seed=7)
    h.run_until(10_000)
    h.device.app.handle_line = lambda line, now: None  # the firmware swallows commands
    h.send("status")
    h.run_until(h.now + 1_000)
    assert any("never answered" in v for v in h.violations)


# -- regressions: firmware issues these properties found (fixed) ---------------------------


def test_a_left_on_cut_is_not_repeated_while_the_thermocouple_cools():
    """Found by the properties above: the left-on guard re-armed at the end of
    each cut pulse while the cooling thermocouple still read "flame", so the
    cut was repeated every cut_pulse_s (with a warning each time) until the
    flame was seen out."""
    device = SimDevice(settings={"left_on_min": 5, "warn_before_s": 30}, seed=1)
    device.run_for(10_000)
    device.physics.ignite(0, device.clock.seconds)
    device.run_for(400_000)
    cuts = [e for e in device.events("cut") if e["reason"] == "left_on"]
    assert len(cuts) == 1, f"{len(cuts)} left_on cuts at {[e['_t_ms'] for e in cuts]}"


def test_relighting_soon_after_a_cut_is_not_a_failed_cut():
    """Found here: a burner relit within ~13 s of a cut (before the cooling
    thermocouple fell below the flame threshold) was taken for a cut that did
    not shut the gas (cut_failed), and its relay was held open."""
    device = SimDevice(seed=2)
    device.run_for(10_000)
    device.physics.ignite(0, device.clock.seconds)
    device.run_for(60_000)
    device.command("cut", burner="left")
    device.run_for(5_000)  # the 3 s cut pulse is over: the person lights it again
    device.physics.ignite(0, device.clock.seconds)
    device.run_for(60_000)
    assert not [e for e in device.events("fault") if e.get("reason") == "cut_failed"]
    assert device.truth()[0]["flame"], "the relit burner was cut by the false fault"


def test_relighting_soon_after_a_power_loss_is_not_a_failed_cut():
    """Found here: after a reset with a hot burner, relighting it within
    verify_s raised cut_failed and held its relay open."""
    device = SimDevice(seed=3)
    device.run_for(10_000)
    device.physics.ignite(0, device.clock.seconds)
    device.run_for(60_000)
    device.power_loss(2_000)  # every magnet drops; the boot reports a reset cut of the hot burner
    device.run_for(10_000)
    device.physics.ignite(0, device.clock.seconds)  # the cook lights it again at once
    device.run_for(60_000)
    assert not [e for e in device.events("fault") if e.get("reason") == "cut_failed"]
    assert device.truth()[0]["flame"], "the relit burner was cut by the false fault"

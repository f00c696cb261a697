"""A firmware that crashes: an unhandled exception in the main loop, and
Ctrl-C from mpremote, both through the firmware's own main() on the
simulator's fakes (no second implementation of what main.py does).

- An exception: every relay opens (a burning burner's magnet drops: gas
  off), a `fault` event with reason `crash` goes out, the board resets, and
  the next boot says `hard_reset` and reports the reset cut.
- Ctrl-C (where the port cannot switch it off) and the `repl` command:
  every relay opens, the REPL gets a message, and a timer keeps
  feeding the watchdog so the REPL session is not reset under the user.
"""

from __future__ import annotations

from hobguard_fw import app as firmware_app
from hobguard_fw import protocol
from hobguard_sim.device import SimDevice
from hobguard_sim.fakes import SimReset


class Boom(RuntimeError):
    pass


def _lit_device(seed: int) -> SimDevice:
    device = SimDevice(seed=seed)
    device.run_for(8_000)
    device.physics.ignite(0, device.clock.seconds)
    device.run_for(30_000)
    assert device.truth()[0]["gas_flow"] and device.truth()[0]["relay"] == "closed"
    return device


def test_an_exception_in_the_firmware_opens_every_relay_reports_and_resets():
    device = _lit_device(seed=21)
    app = device.app
    assert app is not None
    original = app.hob.tick
    calls = {"n": 0}

    def tick(now):
        calls["n"] += 1
        if calls["n"] == 1:
            raise Boom("a bug")
        return original(now)

    app.hob.tick = tick  # the next step raises, as a firmware bug would
    device.send_line(protocol.request(1, "status").encode())  # wake it now
    device.run_for(200)
    truth = device.truth()[0]
    assert truth["relay"] == "open" and not truth["gas_flow"], truth
    crashes = [e for e in device.events("fault") if e.get("reason") == "crash"]
    assert len(crashes) == 1 and "a bug" in crashes[0]["detail"]
    assert [cause for _, cause in device.resets] == ["hard_reset"]
    device.run_for(10_000)
    boots = device.events("boot")
    assert boots[-1]["reset_cause"] == "hard_reset"
    assert device.app is not None and device.app is not app  # running again


def test_main_on_an_exception_opens_the_relays_reports_and_calls_machine_reset():
    device = _lit_device(seed=22)
    board, link = device.board, device.link
    written: list[str] = []
    link.on_write = written.append

    start = device.clock.ms
    seen_burning = []

    class FailingLink:
        """The real link; the person relights the burner once the boot's cut
        has been verified (35 s: the flame was burning when main() started),
        and wait() fails 35 s later."""

        def read(self) -> bytes:
            return link.read()

        def write(self, text: str) -> None:
            link.write(text)

        def wait(self, ms: int) -> None:
            before = device.clock.ms
            device.clock.ms += max(1, ms)
            if before < start + 35_000 <= device.clock.ms:
                device.physics.ignite(0, device.clock.seconds)
            if device.clock.ms > start + 70_000:
                seen_burning.append(device.truth()[0]["gas_flow"] and device.truth()[0]["relay"] == "closed")
                raise Boom("wait failed")

    device.app = None  # main() builds its own App on the same board
    try:
        firmware_app.main(machine=board, time_module=device.time, link=FailingLink())
    except SimReset as reset:
        assert reset.cause == "hard_reset"
    else:
        raise AssertionError("main() returned instead of resetting the board")
    assert seen_burning == [True], "the burner was not burning under main() when it failed"
    device.run_for(100)  # relay release and magnet drop-out
    truth = device.truth()[0]
    assert truth["relay"] == "open" and not truth["gas_flow"], truth
    frames = [protocol.decode(line) for text in written for line in text.splitlines() if line.startswith("HG1 ")]
    assert any(f.get("event_type") == "fault" and f.get("reason") == "crash" for f in frames)


def test_ctrl_c_opens_every_relay_and_keeps_the_watchdog_fed():
    device = _lit_device(seed=23)
    board, link = device.board, device.link
    written: list[str] = []
    link.on_write = written.append

    class CtrlCLink:
        def read(self) -> bytes:
            return link.read()

        def write(self, text: str) -> None:
            link.write(text)

        def wait(self, ms: int) -> None:
            before = device.clock.ms
            device.clock.ms += max(1, ms)
            if before < start + 35_000 <= device.clock.ms:
                device.physics.ignite(0, device.clock.seconds)
            if device.clock.ms > start + 70_000:
                seen_burning.append(device.truth()[0]["gas_flow"] and device.truth()[0]["relay"] == "closed")
                raise KeyboardInterrupt

    timers = []
    original_timer = board.Timer

    class RecordingTimer(original_timer):  # type: ignore[misc, valid-type]
        def init(self, period=1000, mode=1, callback=None):
            timers.append(callback)
            super().init(period=period, mode=mode, callback=callback)

    board.Timer = RecordingTimer
    device.app = None
    start = device.clock.ms
    seen_burning: list[bool] = []
    firmware_app.main(machine=board, time_module=device.time, link=CtrlCLink())
    assert seen_burning == [True], "the burner was not burning under main() at Ctrl-C"
    device.run_for(100)  # relay release and magnet drop-out (nothing steps the firmware now)
    truth = device.truth()[0]
    assert truth["relay"] == "open" and not truth["gas_flow"], truth
    assert any("REPL" in text for text in written)
    assert timers and timers[0] is not None
    wdt = board.wdt
    assert wdt is not None
    device.clock.ms += 60_000
    timers[0](None)  # the timer fires: the watchdog is fed, the REPL survives
    assert not wdt.expired(device.clock.ms)


# -- review F12: a Ctrl-C byte does not stop a running hob; `repl` does ---------------


def test_a_stray_ctrl_c_on_the_line_is_a_bad_line_and_the_hob_runs_on():
    """While hobguard runs, 0x03 is a plain byte (main() switches
    KeyboardInterrupt off with micropython.kbd_intr(-1)): a floating RX pin
    or a program probing the port gets an error, and the guards go on.
    (mpremote's own "\\r\\x03" ... "\\r\\x01" included.)"""
    device = _lit_device(seed=24)
    app = device.app
    device.command("timer_set", burner="left", minutes=1)
    for noise in (b"\x03", b"\r\x03", b"\r\x01", b"\x03\x03\r\n", b"\x03\n"):
        device.send_line(noise)
        device.run_for(50)
    assert device.app is app and not device.stopped_for_repl
    ping = device.command("ping")
    device.run_for(50)
    assert [f for f in device.frames if f.get("t") == "ok" and f.get("id") == ping]
    device.run_for(61_000)
    assert [e["reason"] for e in device.events("cut")][-1:] == ["timer"]
    assert not device.truth()[0]["gas_flow"]


def test_the_repl_command_stops_the_hob_for_a_developer_with_every_relay_open():
    device = _lit_device(seed=25)
    request = device.command("repl")
    device.run_for(100)
    assert [f["t"] for f in device.frames if f.get("id") == request] == ["ok"]
    assert device.stopped_for_repl and device.app is None
    truth = device.truth()[0]
    assert truth["relay"] == "open" and not truth["gas_flow"], truth
    device.power_loss(500)  # a reset (or power cycle) starts hobguard again
    device.run_for(10_000)
    assert device.app is not None and not device.stopped_for_repl


def test_the_repl_command_is_refused_over_the_network():
    device = _lit_device(seed=26)
    app = device.app
    assert app is not None
    written: list[str] = []

    class Client:
        def write(self, text: str) -> None:
            written.append(text)

    app.handle_line(protocol.request(9, "repl"), device.time.ticks_ms(), origin=Client())
    (reply,) = [protocol.decode(line) for text in written for line in text.splitlines()]
    assert reply["t"] == "err" and reply["code"] == protocol.E_STATE and reply["id"] == 9
    device.run_for(1_000)
    assert device.app is app and device.truth()[0]["gas_flow"]


def test_main_switches_ctrl_c_off_while_it_runs_and_on_again_for_the_repl(monkeypatch):
    import sys
    import types

    calls: list[int] = []
    fake = types.ModuleType("micropython")
    fake.kbd_intr = calls.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "micropython", fake)
    device = _lit_device(seed=27)
    board, link = device.board, device.link
    written: list[str] = []
    link.on_write = written.append
    start = device.clock.ms

    class DeveloperLink:
        """The USB line: 40 s after main() starts, a developer's `repl`."""

        def __init__(self) -> None:
            self.sent = False

        def read(self) -> bytes:
            if not self.sent and device.clock.ms > start + 40_000:
                self.sent = True
                assert calls == [-1], calls  # off while hobguard runs
                return protocol.request(3, "repl").encode()
            return link.read()

        def write(self, text: str) -> None:
            link.write(text)

        def wait(self, ms: int) -> None:
            device.clock.ms += max(1, min(ms, 1000))

    device.app = None  # main() builds its own App on the same board
    firmware_app.main(machine=board, time_module=device.time, link=DeveloperLink())
    assert calls == [-1, 3]  # and on again for the REPL
    frames = [protocol.decode(line) for text in written for line in text.splitlines() if line.startswith("HG1 ")]
    assert [f["t"] for f in frames if f.get("id") == 3] == ["ok"]
    assert any("REPL is yours" in text for text in written)
    device.run_for(100)
    truth = device.truth()[0]
    assert truth["relay"] == "open" and not truth["gas_flow"], truth

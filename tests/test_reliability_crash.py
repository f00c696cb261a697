"""A firmware that crashes: an unhandled exception in the main loop, and
Ctrl-C from mpremote, both through the firmware's own main() on the
simulator's fakes (no second implementation of what main.py does).

- An exception: every relay opens (a burning burner's magnet drops: gas
  off), a `fault` event with reason `crash` goes out, the board resets, and
  the next boot says `hard_reset` and reports the reset cut.
- Ctrl-C: every relay opens, the REPL gets a message, and a timer keeps
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

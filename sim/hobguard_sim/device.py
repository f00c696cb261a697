"""One simulated hob with the real firmware in the loop, in virtual time.

`SimDevice` owns a virtual clock, the physics of every burner, a fake
`machine` (the Board), a fake serial link, optionally the network link (a
fake `network` module, real sockets), and the firmware's `App`. With
`flash=DIR` the board keeps its files in DIR and every boot runs the boot
loader and the firmware found there, read afresh (flash.py), so an update
over the air changes what runs after the restart; the firmware's flash
writes then go through `Flash`, which can cut the power before any one. It
jumps from one firmware wake-up to the next (the firmware says how long it
may sleep), and from one scheduled action to the next: quiet periods cost
nothing. Faults, resets and power loss are modelled here.

Whoever wants to watch a device (the scenario recorder, a benchmark, a
test) adds observers to ``device.hooks`` (:class:`Hooks`) rather than
patching its methods.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import random
import select
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hobguard_fw import app as firmware_app
from hobguard_fw import protocol
from hobguard_fw import settings as fw_settings
from hobguard_fw import wifi as fw_wifi

from . import netports
from . import physics as phys
from .fakes import Board, Clock, FakeLink, FakeNetwork, FakeTime, SimHang, SimReset
from .flash import FIRMWARE_DIR, Flash, FlashOp, PowerCut

# Time from a reset until main.py runs again (boot ROM, MicroPython start,
# imports). A G-level guess; the relays are de-energised meanwhile.
BOOT_MS = 800


@dataclass(slots=True)
class Hooks:
    """Observers of a :class:`SimDevice`: lists of callables, called in the
    order they were added, each with the virtual time in ms first. Add one
    with ``device.hooks.coil.append(fn)``, remove it with ``.remove(fn)``.
    An observer runs inside the simulation (often inside a firmware step):
    it must not raise, and it may read the device but should not act on it
    (schedule an action with ``device.schedule`` instead)."""

    #: (t_ms, text, heard): every line the firmware wrote to the host's link,
    #: as written; heard is False when the link was down (the host lost it).
    output: list[Callable[[int, str, bool], None]] = field(default_factory=list)
    #: (t_ms, frame, heard): the same, decoded: every frame (a dict with
    #: "_t_ms"); what is not a frame is left out.
    frame: list[Callable[[int, dict[str, Any], bool], None]] = field(default_factory=list)
    #: (t_ms, burner index, energised): the firmware (or a reset) drove a relay coil.
    coil: list[Callable[[int, int, bool], None]] = field(default_factory=list)
    #: (t_ms, burner index, mV or None): the ADC converted a burner's input (None: a dead input).
    adc: list[Callable[[int, int, "float | None"], None]] = field(default_factory=list)
    #: (t_ms): after each firmware step.
    step: list[Callable[[int], None]] = field(default_factory=list)
    #: (t_ms, burner index): a person pressed a knob (the only way a valve opens).
    knob: list[Callable[[int, int], None]] = field(default_factory=list)
    #: (t_ms, cause): the chip resets ("watchdog", "hard_reset"); relays drop.
    reset: list[Callable[[int, str], None]] = field(default_factory=list)
    #: (t_ms, duration_ms): the supply goes for that long; relays drop.
    power: list[Callable[[int, int], None]] = field(default_factory=list)
    #: (t_ms, reset cause): the firmware starts.
    boot: list[Callable[[int, str], None]] = field(default_factory=list)
    #: (t_ms, up, cause): the host's link goes down or comes back (cause "serial" or "wifi").
    link: list[Callable[[int, bool, str], None]] = field(default_factory=list)
    #: (t_ms, request id, command, arguments): the host sent a command (intact or not).
    command: list[Callable[[int, int, str, dict[str, Any]], None]] = field(default_factory=list)
    #: (t_ms, bytes): bytes from the host reach the serial line (a command, garbage, a pty's read).
    received: list[Callable[[int, bytes], None]] = field(default_factory=list)
    #: (t_ms, operation): the power went just before this flash operation
    #: (``device.flash.cut_when``); the ``power`` observers hear of it next.
    flash_cut: list[Callable[[int, FlashOp], None]] = field(default_factory=list)


#: Called with every SimDevice made in this process, once it is set up: how a
#: benchmark's probes watch devices that a command line makes (bench/probes.py).
ON_NEW_DEVICE: list[Callable[["SimDevice"], None]] = []


class HobPhysics:
    """The physics of every burner, addressed by burner index (as the fakes
    address relays and ADC inputs), with ``t`` in simulated seconds."""

    FAULTS = ("welded", "stuck_open", "open_thermocouple", "adc_dead")

    def __init__(
        self, names: list[str], params: dict[str, dict[str, Any]], seed: int, hooks: Hooks | None = None
    ) -> None:
        unknown = set(params) - set(names)
        if unknown:
            raise ValueError(f"physics for unknown burner(s) {sorted(unknown)}; burners are {names}")
        self.hob = phys.Hob({n: params.get(n) for n in names}, seed=seed)
        self.models = list(self.hob)
        self.hooks = hooks if hooks is not None else Hooks()

    def _model(self, index: int, t: float) -> "phys.BurnerModel":
        model = self.models[index]
        if t > model.t:
            model.advance(t)
        return model

    def set_coil(self, index: int, energised: bool, t: float) -> None:
        model = self.models[index]
        model.set_coil(energised, max(t, model.t))
        for fn in self.hooks.coil:
            fn(int(round(t * 1000)), index, energised)

    def adc_mv(self, index: int, t: float) -> float | None:
        mv = self._model(index, t).adc_mv()
        for fn in self.hooks.adc:
            fn(int(round(t * 1000)), index, mv)
        return mv

    # -- the person and the flame

    def press_knob(self, index: int, t: float, hold_s: float | None = None) -> None:
        """A person presses the knob: until the magnet holds (or they give
        up), or for exactly hold_s."""
        model = self._model(index, t)
        model.press_knob(max(t, model.t), hold_s=hold_s)
        for fn in self.hooks.knob:
            fn(int(round(t * 1000)), index)

    def ignite(self, index: int, t: float) -> None:
        self.press_knob(index, t)

    def turn_off(self, index: int, t: float) -> None:
        self._model(index, t).turn_off(max(t, self.models[index].t))

    def turn(self, index: int, t: float, level: float, ramp_s: float = 0.0) -> None:
        self._model(index, t).turn(max(t, self.models[index].t), level, ramp_s=ramp_s)

    def blow_out(self, index: int, t: float) -> None:
        self._model(index, t).blow_out(max(t, self.models[index].t))

    def boil_over(self, index: int, t: float) -> None:
        self._model(index, t).boil_over(max(t, self.models[index].t))

    def draught(self, index: int, t: float, duration_s: float, severity: float = 1.0) -> None:
        self._model(index, t).draught(max(t, self.models[index].t), duration_s, severity=severity)

    def set_param(self, index: int, name: str, value: Any, t: float) -> None:
        self._model(index, t).set_param(name, value, max(t, self.models[index].t))

    def set_fault(self, index: int, fault: str, on: bool, t: float) -> None:
        model = self._model(index, t)
        t = max(t, model.t)
        if fault == "welded":
            model.set_relay_welded(on, t)
        elif fault == "stuck_open":
            model.set_relay_stuck_open(on, t)
        elif fault == "open_thermocouple":
            model.set_tc_open(on, t)
        elif fault == "adc_dead":
            model.set_adc_dead(on)
        else:
            raise ValueError(f"unknown fault {fault!r}; faults are {', '.join(self.FAULTS)}")

    def truth(self, t: float) -> list[dict[str, Any]]:
        return [self._model(i, t).truth() for i in range(len(self.models))]


@dataclass(order=True)
class _Scheduled:
    at_ms: int
    order: int
    action: Callable[[], None] = field(compare=False)
    label: str = field(compare=False, default="")


class SimDevice:
    """A hob, its ESP32 and the firmware, in virtual milliseconds."""

    def __init__(
        self,
        settings: dict[str, Any] | None = None,
        burner_params: dict[str, dict[str, Any]] | None = None,
        seed: int = 1,
        ticks_offset: int = 0,
        root: str | Path | None = None,
        on_frame: Callable[[dict[str, Any]], None] | None = None,
        on_output: Callable[[str], None] | None = None,
        listen: tuple[str, int] | None = None,
        key: bytes | None = None,
        virtual_wifi: bool = False,
        flash: str | Path | None = None,
        firmware: str | Path = FIRMWARE_DIR,
    ) -> None:
        candidate = fw_settings.defaults()
        candidate.update(settings or {})
        checked, errors = fw_settings.validate(candidate)
        if errors:
            raise ValueError("invalid device settings: " + "; ".join(errors))
        self.settings = checked
        self.names = [b["id"] for b in checked["burners"]]
        # The board's flash: its files, and the firmware started from them
        # (a fresh folder gets the one in `firmware`, as deploy would put it).
        self.flash: Flash | None = None
        if flash is not None:
            self.flash = Flash(flash)
            if not self.flash.has_firmware():
                self.flash.install(firmware)
            root = self.flash.folder
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hobguard-sim-")
            root = self._tmp.name
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / fw_settings.SETTINGS_FILE).write_text(json.dumps(checked))
        self.clock = Clock(ticks_offset)
        self.time = FakeTime(self.clock)
        self.hooks = Hooks()
        self.physics = HobPhysics(self.names, burner_params or {}, seed=seed, hooks=self.hooks)
        self.board = Board(
            self.clock,
            self.physics,
            [b["relay_pin"] for b in checked["burners"]],
            [(b["adc_address"], b["adc_pair"]) for b in checked["burners"]],
        )
        self.board.relay_active_high = checked["relay_active_high"]
        self.link = FakeLink(self._device_wrote, on_lost=self._device_wrote_unheard)
        # Why the host's link is down, if it is: "serial" (the cable), "wifi".
        self.link_down: set[str] = set()
        # No network code runs, yet Wi-Fi can drop: the host's link stands
        # for the network link (scenarios in virtual time, where no socket can
        # wait). Without it, wifi() needs a real network link (listen=).
        self.virtual_wifi = virtual_wifi
        self.network: FakeNetwork | None = None
        self.listen: tuple[str, int] | None = None
        if listen is not None:
            self._set_up_network(listen, key)
        self.on_frame = on_frame
        self.on_output = on_output
        self.frames: list[dict[str, Any]] = []
        self.keep_frames = True
        self.app: firmware_app.App | None = None
        self.app_module: Any = firmware_app  # the module the running App comes from
        # How long the power stays off after a cut at a flash operation.
        self.power_cut_ms = 2000
        # True while the board sits at the REPL: no copy of the firmware
        # imports (main.py found nothing else to start).
        self.stuck = False
        # True once a host's Ctrl-C stopped the firmware for the REPL (until
        # the next boot).
        self.stopped_for_repl = False
        self.powered = True
        self._power_epoch = 0
        self.hung = False
        self.boots = 0
        self.resets: list[tuple[int, str]] = []
        self._queue: list[_Scheduled] = []
        self._order = itertools.count()
        self._request_ids = itertools.count(1)
        self._line_noise = random.Random(seed + 7)
        self.next_step_ms: int | None = None
        for fn in ON_NEW_DEVICE:
            fn(self)
        self._boot("power_on")

    # -- life cycle --------------------------------------------------------

    def _boot(self, cause: str) -> None:
        self.board.cause = cause
        self.hung = False
        self.stopped_for_repl = False
        modules = None
        if self.network is not None:
            # Only the station interface is fake: the firmware's sockets are real.
            modules = {"network": self.network, "socket": socket, "select": select, "random_bytes": os.urandom}
        module: Any = firmware_app
        try:
            if self.flash is not None:
                loaded, again = self.flash.start(self.board)  # what main.py does
                if loaded is None:
                    # main.py resets the board when another copy is left to try.
                    self.stuck = not again
                    if again:
                        self._reset("hard_reset")
                    return
                module = loaded
            self.stuck = False
            self.app_module = module
            self.app = module.App(self.board, self.time, self.link, root=str(self.root) + "/", network=modules)
        except PowerCut as cut:
            self._power_cut(cut)
            return
        except SimHang:
            # It never gets further: only a watchdog armed by now (main.py's,
            # for a firmware on trial) brings the board back.
            self.app = None
            self.hung = True
            self.next_step_ms = None
            return
        except Exception as err:  # app.main() on the board: report, open every relay, reset
            module.fail(None, self.link, err)
            self._reset("hard_reset")
            return
        self.boots += 1
        self.next_step_ms = self.clock.ms
        for fn in self.hooks.boot:
            fn(self.clock.ms, cause)

    def _set_up_network(self, listen: tuple[str, int], key: bytes | None) -> None:
        """Write the board's secrets file and give it a Wi-Fi network whose
        station address is the listening host. Port 0 becomes a free port
        now, so every boot listens on the same one: one below the kernel's
        ephemeral range (netports), which nothing else is handed meanwhile."""
        host, port = listen
        if key is None or len(key) != 32:
            raise ValueError("the network link needs a 32-byte device key")
        if port == 0:
            port = netports.free_ports(host)[0]
        self.network = FakeNetwork(self.clock, address=host)
        secrets = {
            "wifi_ssid": self.network.ssid,
            "wifi_password": self.network.password,
            "key": key.hex(),
            "port": port,
        }
        checked, errors = fw_wifi.validate_secrets(secrets)
        if errors:
            raise ValueError("invalid network set-up: " + "; ".join(errors))
        path = self.root / fw_wifi.SECRETS_FILE
        path.write_text(json.dumps(checked))
        path.chmod(0o600)
        self.listen = (host, port)

    def _unplug_network(self) -> None:
        """The chip stops: its TCP connections vanish without a word."""
        app = self.app
        if app is not None and app.net is not None:
            app.net.close(None)  # pyright: ignore[reportArgumentType] -- None: no word to the peers
        if self.network is not None:
            self.network.active = False
            self.network.drop()

    def close(self) -> None:
        """Close the firmware's sockets (the end of a simulation)."""
        self._unplug_network()

    def wifi(self, on: bool) -> None:
        """The access point comes into reach or goes out of it. With
        ``virtual_wifi`` the host's link goes down with it instead."""
        if self.network is not None:
            self.network.set_radio(on)
            self.poke()
        elif self.virtual_wifi:
            self.set_link(on, "wifi")
        else:
            raise ValueError("this simulated hob has no network link (--listen)")

    def set_link(self, up: bool, cause: str = "serial") -> None:
        """The host's link (the serial line) is lost or back, for one cause:
        it carries bytes only while no cause keeps it down."""
        was = not self.link_down
        if up:
            self.link_down.discard(cause)
        else:
            self.link_down.add(cause)
        self.link.connected = not self.link_down
        if self.link.connected != was:
            for fn in self.hooks.link:
                fn(self.clock.ms, self.link.connected, cause)

    def poke(self) -> None:
        """Something arrived for the firmware (a socket): step at once."""
        if self.app is not None and not self.hung:
            self.next_step_ms = self.clock.ms

    def net_watch(self) -> tuple[list[Any], list[Any]]:
        """(readable, writable) sockets worth waking the firmware for."""
        app = self.app
        if app is None or self.hung or app.net is None:
            return [], []
        return app.net.watched()

    def _reset(self, cause: str) -> None:
        """Any reset: pins float, relays drop, the firmware starts again."""
        self.resets.append((self.clock.ms, cause))
        for fn in self.hooks.reset:
            fn(self.clock.ms, cause)
        self._unplug_network()
        self.board.power_off()
        self.link.inbound.clear()  # a UART loses what arrives while the chip resets
        self.app = None
        self.next_step_ms = None
        self._schedule_boot(cause)

    def _schedule_boot(self, cause: str) -> None:
        # A boot belongs to the power epoch it was scheduled in: a power
        # loss in between (during BOOT_MS) means the chip never got there.
        epoch = self._power_epoch
        self.schedule(self.clock.ms + BOOT_MS, lambda: self._boot_if_current(epoch, cause), "boot")

    def _boot_if_current(self, epoch: int, cause: str) -> None:
        if epoch == self._power_epoch and self.powered:
            self._boot(cause)

    def _power_cut(self, cut: PowerCut) -> None:
        """The power went at a flash operation (Flash.cut_when)."""
        for fn in self.hooks.flash_cut:
            fn(self.clock.ms, cut.op)
        self.power_loss(self.power_cut_ms)

    def power_loss(self, duration_ms: int) -> None:
        """Power goes for duration_ms. A power loss while the power is
        already off (or booting) starts a new outage: only the power-on of
        the latest one happens."""
        for fn in self.hooks.power:
            fn(self.clock.ms, duration_ms)
        self._unplug_network()
        self.board.power_off()
        self.link.inbound.clear()
        self.app = None
        self.powered = False
        self.next_step_ms = None
        self._power_epoch += 1
        epoch = self._power_epoch
        self.schedule(self.clock.ms + duration_ms, lambda: self._power_on(epoch), "power on")

    def _power_on(self, epoch: int) -> None:
        if epoch != self._power_epoch:
            return  # a later outage superseded this one
        self.powered = True
        self._schedule_boot("power_on")

    def _stopped_for_repl(self, app: Any) -> None:
        """A developer asked for the REPL (the `repl` command): what app.main()
        does on the board. Every relay opens, the watchdog is kept fed, and
        the line belongs to the REPL: the firmware runs no more until a
        reset or a power loss (the REPL itself is not simulated)."""
        app.stop()
        if app.net is not None:
            app.net.close()
        self.link.write("hobguard stopped: every burner cut; REPL is yours. machine.reset() restarts.\n")
        self.app = None
        self.next_step_ms = None
        self.stopped_for_repl = True

    def hang(self) -> None:
        """The firmware stops stepping (an endless loop): only the watchdog
        can bring it back."""
        self.hung = True

    # -- the host side of the serial line ----------------------------------

    def _device_wrote(self, text: str) -> None:
        if self.on_output is not None:
            self.on_output(text)
        for fn in self.hooks.output:
            fn(self.clock.ms, text, True)
        if not self.keep_frames and self.on_frame is None and not self.hooks.frame:
            return
        for frame in self._decode(text):
            if self.keep_frames:
                self.frames.append(frame)
            if self.on_frame is not None:
                self.on_frame(frame)
            for fn in self.hooks.frame:
                fn(frame["_t_ms"], frame, True)

    def _device_wrote_unheard(self, text: str) -> None:
        """Written while the host's link was down: lost, but observers see it."""
        for fn in self.hooks.output:
            fn(self.clock.ms, text, False)
        if self.hooks.frame:
            for frame in self._decode(text):
                for fn in self.hooks.frame:
                    fn(frame["_t_ms"], frame, False)

    def _decode(self, text: str) -> list[dict[str, Any]]:
        frames = []
        for line in text.splitlines():
            try:
                frame = protocol.decode(line)
            except protocol.ProtocolError:
                continue
            frame["_t_ms"] = self.clock.ms
            frames.append(frame)
        return frames

    def send_line(self, data: bytes) -> None:
        """Bytes from the host arrive; the device wakes at once. Bytes sent
        to a device that is off are lost, as on a real UART."""
        if self.app is None:
            return
        for fn in self.hooks.received:
            fn(self.clock.ms, data)
        self.link.feed(data)
        if self.app is not None and not self.hung:
            self.next_step_ms = self.clock.ms

    def command(self, cmd: str, **args: Any) -> int:
        """Send a host command; returns its request id."""
        return self._send_command(cmd, args, intact=True)

    def command_corrupted(self, cmd: str, **args: Any) -> int:
        """Send a host command whose CRC-32 was damaged on the way."""
        return self._send_command(cmd, args, intact=False)

    def _send_command(self, cmd: str, args: dict[str, Any], intact: bool) -> int:
        request_id = next(self._request_ids)
        line = protocol.request(request_id, cmd, **args)
        if not intact:
            body, crc = line.rstrip("\n").rsplit(" *", 1)
            line = "%s *%08x\n" % (body, int(crc, 16) ^ 0x00010000)
        for fn in self.hooks.command:
            fn(self.clock.ms, request_id, cmd, args)
        self.send_line(line.encode())
        return request_id

    def garbage(self, count: int = 200) -> None:
        noise = bytes(self._line_noise.randrange(256) for _ in range(count))
        self.send_line(noise + b"\n")

    # -- the person and the hob ---------------------------------------------

    def burner_index(self, name: str | None) -> int:
        if name is None:
            return 0
        if name not in self.names:
            raise ValueError(f"no burner {name!r}; this hob has {', '.join(self.names)}")
        return self.names.index(name)

    def press_button(self, hold_ms: int) -> None:
        pin = self.settings["button_pin"]
        if pin < 0:
            raise ValueError("this device has no button (button_pin = -1)")
        self.board.set_input(pin, 0)
        self.schedule(self.clock.ms + hold_ms, lambda: self.board.set_input(pin, 1), "button released")
        if self.app is not None and not self.hung:
            self.next_step_ms = self.clock.ms

    # -- time ----------------------------------------------------------------

    def schedule(self, at_ms: int, action: Callable[[], None], label: str = "") -> None:
        heapq.heappush(self._queue, _Scheduled(int(at_ms), next(self._order), action, label))

    def next_wake_ms(self) -> int | None:
        """When the device next does something on its own: a firmware step,
        a scheduled action, or the watchdog biting a hung firmware."""
        candidates = []
        if self._queue:
            candidates.append(self._queue[0].at_ms)
        if self.hung:  # in the loop, or before the App was made (at import)
            wdt = self.board.wdt
            if wdt is not None:
                candidates.append(wdt.last_feed_ms + wdt.timeout_ms + 1)
        elif self.app is not None and self.next_step_ms is not None:
            candidates.append(self.next_step_ms)
        return min(candidates) if candidates else None

    def run_until(self, end_ms: int) -> None:
        """Advance virtual time to end_ms, doing everything due on the way."""
        while True:
            wake = self.next_wake_ms()
            if wake is None or wake > end_ms:
                break
            if wake > self.clock.ms:
                self.clock.ms = wake
            if self._queue and self._queue[0].at_ms <= self.clock.ms:
                heapq.heappop(self._queue).action()
                continue
            if self.hung:
                wdt = self.board.wdt
                if wdt is not None and wdt.expired(self.clock.ms):
                    self._reset("watchdog")
                continue
            if self.app is None:
                continue
            self._step()
        if end_ms > self.clock.ms:
            self.clock.ms = end_ms

    def run_for(self, ms: int) -> None:
        self.run_until(self.clock.ms + ms)

    def _step(self) -> None:
        app = self.app
        assert app is not None
        try:
            wait = app.step()
        except SimReset as reset:
            self._reset(reset.cause)
            return
        except SimHang:
            self.hung = True  # the loop never comes back: the watchdog decides
            return
        except PowerCut as cut:
            self._power_cut(cut)
            return
        except KeyboardInterrupt:
            self._stopped_for_repl(app)
            return
        except Exception as err:  # a firmware bug: what main.py does on the board
            self.app_module.fail(app, self.link, err)
            self._reset("hard_reset")
            return
        for fn in self.hooks.step:
            fn(self.clock.ms)
        if self.board.wdt is not None and self.board.wdt.expired(self.clock.ms):
            self._reset("watchdog")
            return
        if self.link.inbound:
            wait = 0  # the firmware reads 512 bytes a step: on a board the rest wakes it again
        self.next_step_ms = self.clock.ms + max(1, wait)

    # -- what is true ---------------------------------------------------------

    def truth(self) -> list[dict[str, Any]]:
        return self.physics.truth(self.clock.seconds)

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [
            f for f in self.frames if f.get("t") == "evt" and (event_type is None or f.get("event_type") == event_type)
        ]

    def last_state(self) -> dict[str, Any] | None:
        for frame in reversed(self.frames):
            if frame.get("t") == "state":
                return frame
            if frame.get("t") == "ok" and isinstance(frame.get("state"), dict):
                return frame["state"]
        return None

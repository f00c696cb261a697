"""One simulated hob with the real firmware in the loop, in virtual time.

`SimDevice` owns a virtual clock, the physics of every burner, a fake
`machine` (the Board), a fake serial link, optionally the network link (a
fake `network` module, real sockets), and the firmware's `App`. It
jumps from one firmware wake-up to the next (the firmware says how long it
may sleep), and from one scheduled action to the next: quiet periods cost
nothing. Faults, resets and power loss are modelled here.
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

from . import physics as phys
from .fakes import Board, Clock, FakeLink, FakeNetwork, FakeTime, SimReset

# Time from a reset until main.py runs again (boot ROM, MicroPython start,
# imports). A G-level guess; the relays are de-energised meanwhile.
BOOT_MS = 800


class HobPhysics:
    """The physics of every burner, addressed by burner index (as the fakes
    address relays and ADC inputs)."""

    FAULTS = ("welded", "stuck_open", "open_thermocouple", "adc_dead")

    def __init__(self, names: list[str], params: dict[str, dict[str, Any]], seed: int) -> None:
        unknown = set(params) - set(names)
        if unknown:
            raise ValueError(f"physics for unknown burner(s) {sorted(unknown)}; burners are {names}")
        self.hob = phys.Hob({n: params.get(n) for n in names}, seed=seed)
        self.models = list(self.hob)

    def _model(self, index: int, t: float) -> "phys.BurnerModel":
        model = self.models[index]
        if t > model.t:
            model.advance(t)
        return model

    def set_coil(self, index: int, energised: bool, t: float) -> None:
        model = self.models[index]
        model.set_coil(energised, max(t, model.t))

    def adc_mv(self, index: int, t: float) -> float | None:
        return self._model(index, t).adc_mv()

    def ignite(self, index: int, t: float) -> None:
        self._model(index, t).press_knob(max(t, self.models[index].t))

    def turn_off(self, index: int, t: float) -> None:
        self._model(index, t).turn_off(max(t, self.models[index].t))

    def blow_out(self, index: int, t: float) -> None:
        self._model(index, t).blow_out(max(t, self.models[index].t))

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
    ) -> None:
        candidate = fw_settings.defaults()
        candidate.update(settings or {})
        checked, errors = fw_settings.validate(candidate)
        if errors:
            raise ValueError("invalid device settings: " + "; ".join(errors))
        self.settings = checked
        self.names = [b["id"] for b in checked["burners"]]
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hobguard-sim-")
            root = self._tmp.name
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / fw_settings.SETTINGS_FILE).write_text(json.dumps(checked))
        self.clock = Clock(ticks_offset)
        self.time = FakeTime(self.clock)
        self.physics = HobPhysics(self.names, burner_params or {}, seed=seed)
        self.board = Board(
            self.clock,
            self.physics,
            [b["relay_pin"] for b in checked["burners"]],
            [(b["adc_address"], b["adc_pair"]) for b in checked["burners"]],
        )
        self.board.relay_active_high = checked["relay_active_high"]
        self.link = FakeLink(self._device_wrote)
        self.network: FakeNetwork | None = None
        self.listen: tuple[str, int] | None = None
        if listen is not None:
            self._set_up_network(listen, key)
        self.on_frame = on_frame
        self.on_output = on_output
        self.frames: list[dict[str, Any]] = []
        self.keep_frames = True
        self.app: firmware_app.App | None = None
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
        self._boot("power_on")

    # -- life cycle --------------------------------------------------------

    def _boot(self, cause: str) -> None:
        self.board.cause = cause
        self.hung = False
        modules = None
        if self.network is not None:
            # Only the station interface is fake: the firmware's sockets are real.
            modules = {"network": self.network, "socket": socket, "select": select, "random_bytes": os.urandom}
        self.app = firmware_app.App(self.board, self.time, self.link, root=str(self.root) + "/", network=modules)
        self.boots += 1
        self.next_step_ms = self.clock.ms

    def _set_up_network(self, listen: tuple[str, int], key: bytes | None) -> None:
        """Write the board's secrets file and give it a Wi-Fi network whose
        station address is the listening host. Port 0 becomes a free port
        now, so every boot listens on the same one."""
        host, port = listen
        if key is None or len(key) != 32:
            raise ValueError("the network link needs a 32-byte device key")
        if port == 0:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((host, 0))
                port = probe.getsockname()[1]
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
            app.net.close(None)
        if self.network is not None:
            self.network.active = False
            self.network.drop()

    def close(self) -> None:
        """Close the firmware's sockets (the end of a simulation)."""
        self._unplug_network()

    def wifi(self, on: bool) -> None:
        """The access point comes into reach or goes out of it."""
        if self.network is None:
            raise ValueError("this simulated hob has no network link (--listen)")
        self.network.set_radio(on)
        self.poke()

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

    def power_loss(self, duration_ms: int) -> None:
        """Power goes for duration_ms. A power loss while the power is
        already off (or booting) starts a new outage: only the power-on of
        the latest one happens."""
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

    def hang(self) -> None:
        """The firmware stops stepping (an endless loop): only the watchdog
        can bring it back."""
        self.hung = True

    # -- the host side of the serial line ----------------------------------

    def _device_wrote(self, text: str) -> None:
        if self.on_output is not None:
            self.on_output(text)
        if not self.keep_frames and self.on_frame is None:
            return
        for line in text.splitlines():
            try:
                frame = protocol.decode(line)
            except protocol.ProtocolError:
                continue
            frame["_t_ms"] = self.clock.ms
            if self.keep_frames:
                self.frames.append(frame)
            if self.on_frame is not None:
                self.on_frame(frame)

    def send_line(self, data: bytes) -> None:
        """Bytes from the host arrive; the device wakes at once. Bytes sent
        to a device that is off are lost, as on a real UART."""
        if self.app is None:
            return
        self.link.feed(data)
        if self.app is not None and not self.hung:
            self.next_step_ms = self.clock.ms

    def command(self, cmd: str, **args: Any) -> int:
        request_id = next(self._request_ids)
        self.send_line(protocol.request(request_id, cmd, **args).encode())
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
        if self.app is not None:
            if self.hung:
                wdt = self.board.wdt
                if wdt is not None:
                    candidates.append(wdt.last_feed_ms + wdt.timeout_ms + 1)
            elif self.next_step_ms is not None:
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
            if self.app is None:
                continue
            if self.hung:
                wdt = self.board.wdt
                if wdt is not None and wdt.expired(self.clock.ms):
                    self._reset("watchdog")
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
        except Exception as err:  # a firmware bug: what main.py does on the board
            firmware_app.fail(app, self.link, err)
            self._reset("hard_reset")
            return
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

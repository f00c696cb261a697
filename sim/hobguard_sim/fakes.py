"""Fakes of the MicroPython modules the firmware touches: `time`, `machine`
(Pin, I2C with an ADS1115 emulated at register level, WDT, Timer, reset),
`network` (the Wi-Fi station interface only: the sockets are real), and the
serial link. The firmware's own drivers run unchanged on top of them.

Time is virtual: a `Clock` holds integer milliseconds and only moves when
the simulator (or the firmware's own `sleep_ms`) moves it.
"""

from __future__ import annotations

from typing import Callable, Protocol

TICKS_MASK = (1 << 30) - 1
TICKS_HALF = 1 << 29


class Clock:
    """Virtual milliseconds since the simulation started."""

    def __init__(self, ticks_offset: int = 0) -> None:
        self.ms = 0
        # Lets a test start the device's tick counter just before the wrap.
        self.ticks_offset = ticks_offset

    @property
    def seconds(self) -> float:
        return self.ms / 1000.0


class FakeTime:
    """The subset of MicroPython's `time` the firmware uses."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def ticks_ms(self) -> int:
        return (self.clock.ms + self.clock.ticks_offset) & TICKS_MASK

    @staticmethod
    def ticks_add(ticks: int, delta: int) -> int:
        return (ticks + delta) & TICKS_MASK

    @staticmethod
    def ticks_diff(end: int, start: int) -> int:
        return ((end - start + TICKS_HALF) & TICKS_MASK) - TICKS_HALF

    def sleep_ms(self, ms: int) -> None:
        self.clock.ms += max(0, int(ms))

    def sleep(self, seconds: float) -> None:
        self.clock.ms += max(0, int(seconds * 1000))

    def time(self) -> int:
        return self.clock.ms // 1000


class Physics(Protocol):
    """What the fakes need from the simulated hob."""

    def set_coil(self, index: int, energised: bool, t: float) -> None: ...

    def adc_mv(self, index: int, t: float) -> float | None: ...


class SimReset(Exception):
    """machine.reset() or the watchdog: the simulator reboots the device."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class SimHang(BaseException):
    """Raised by firmware code (a test's broken bundle, or
    :meth:`SimDevice.hang`'s callers) to stand for a loop that never ends:
    from there the chip does nothing until the watchdog, if one is armed,
    resets it. A BaseException, so the firmware's own ``except Exception``
    cannot catch it, as it could not leave an endless loop."""


class FakePin:
    OUT = 1
    IN = 0
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_FALLING = 2
    IRQ_RISING = 1

    def __init__(self, board: "Board", pin_id: int, mode: int = -1, pull: int = -1, value: int | None = None) -> None:
        self.board = board
        self.id = pin_id
        self.mode = mode
        self.handler: Callable | None = None
        board.pins[pin_id] = self
        if mode == self.IN:
            self.level = board.input_levels.get(pin_id, 1 if pull == self.PULL_UP else 0)
        else:
            self.level = 0
            if value is not None:
                self.value(value)

    def value(self, level: int | None = None) -> int | None:
        if level is None:
            if self.mode == self.IN:
                return self.board.input_levels.get(self.id, self.level)
            return self.level
        self.level = 1 if level else 0
        self.board.output_changed(self.id, self.level)
        return None

    def on(self) -> None:
        self.value(1)

    def off(self) -> None:
        self.value(0)

    def irq(self, handler: Callable | None = None, trigger: int = 3) -> None:
        self.handler = handler


# ADS1115 full-scale range (V) by PGA bits, and data rate (samples/s) by DR bits.
_FSR = (6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256)
_RATES = (8, 16, 32, 64, 128, 250, 475, 860)
# MUX bits -> differential pair index used by the hob (AIN0-AIN1 = 0, AIN2-AIN3 = 1).
_MUX_PAIR = {0: 0, 3: 1}


class ADS1115Model:
    """Register-level ADS1115 (TI SBAS444): the config register starts a
    single-shot conversion; OS reads 0 until the conversion time (1/DR) has
    passed; the conversion register then holds the signed 16-bit result."""

    def __init__(self, board: "Board", address: int) -> None:
        self.board = board
        self.address = address
        self.pointer = 0
        self.config = 0x8583  # power-on default
        self.conversion = 0
        self.ready_at_ms = 0.0
        self.pending_pair: int | None = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.pointer = data[0] & 0x03
        if len(data) >= 3 and self.pointer == 1:
            self.config = (data[1] << 8) | data[2]
            if self.config & 0x8000 and self.config & 0x0100:  # OS + single-shot
                rate = _RATES[(self.config >> 5) & 7]
                self.ready_at_ms = self.board.clock.ms + 1000.0 / rate
                self.pending_pair = _MUX_PAIR.get((self.config >> 12) & 7)
                self.config &= 0x7FFF  # busy

    def read(self, register: int, count: int) -> bytes:
        self.pointer = register & 0x03
        now = self.board.clock.ms
        if self.pending_pair is not None or (self.config & 0x8000) == 0:
            if now >= self.ready_at_ms:
                self._convert()
        if self.pointer == 1:
            value = self.config
        elif self.pointer == 0:
            value = self.conversion & 0xFFFF
        else:
            value = 0
        return bytes(((value >> 8) & 0xFF, value & 0xFF))[:count]

    def _convert(self) -> None:
        pair = self.pending_pair
        self.pending_pair = None
        self.config |= 0x8000
        burner = self.board.burner_for_input(self.address, pair)
        if burner is None:
            self.conversion = 0
            return
        mv = self.board.physics.adc_mv(burner, self.ready_at_ms / 1000.0)
        if mv is None:  # this input's converter is dead: the bus errors
            raise OSError(5, "EIO")
        fsr_mv = _FSR[(self.config >> 9) & 7] * 1000.0
        raw = int(round(mv / fsr_mv * 32768))
        self.conversion = max(-32768, min(32767, raw))


class FakeI2C:
    def __init__(self, board: "Board", bus_id: int = 0, scl=None, sda=None, freq: int = 400000) -> None:
        self.board = board

    def _chip(self, address: int) -> ADS1115Model:
        if self.board.adc_dead:
            raise OSError(19, "ENODEV")
        chip = self.board.adcs.get(address)
        if chip is None:
            raise OSError(19, "ENODEV")
        return chip

    def writeto(self, address: int, data) -> int:
        self._chip(address).write(bytes(data))
        return 1

    def readfrom_mem(self, address: int, register: int, count: int) -> bytes:
        return self._chip(address).read(register, count)

    def scan(self) -> list[int]:
        return [] if self.board.adc_dead else sorted(self.board.adcs)


class FakeWDT:
    def __init__(self, board: "Board", id: int = 0, timeout: int = 5000) -> None:
        self.board = board
        self.timeout_ms = timeout
        self.last_feed_ms = board.clock.ms
        board.wdt = self

    def feed(self) -> None:
        self.last_feed_ms = self.board.clock.ms

    def expired(self, now_ms: int) -> bool:
        return now_ms - self.last_feed_ms > self.timeout_ms


class FakePWM:
    """machine.PWM: records what the firmware asks for (the indicator)."""

    def __init__(self, board: "Board", pin, freq: int = 1000, duty_u16: int = 0) -> None:
        self.board = board
        self.pin_id = getattr(pin, "id", pin)
        self._freq = freq
        self._duty = duty_u16
        board.pwm[self.pin_id] = self

    def freq(self, value: int | None = None) -> int | None:
        if value is None:
            return self._freq
        self._freq = value
        return None

    def duty_u16(self, value: int | None = None) -> int | None:
        if value is None:
            return self._duty
        self._duty = value
        return None

    def deinit(self) -> None:
        self._duty = 0


class FakeTimer:
    PERIODIC = 1
    ONE_SHOT = 0

    def __init__(self, timer_id: int = 0) -> None:
        self.callback = None

    def init(self, period: int = 1000, mode: int = 1, callback=None) -> None:
        self.callback = callback

    def deinit(self) -> None:
        self.callback = None


class Board:
    """The `machine` module as one simulated ESP32 on one simulated hob.

    Pass `board` wherever the firmware expects `machine`: its attributes
    are the classes and functions the firmware calls."""

    PWRON_RESET = 1
    HARD_RESET = 2
    WDT_RESET = 3
    DEEPSLEEP_RESET = 4
    SOFT_RESET = 5
    _CAUSES = {"power_on": 1, "hard_reset": 2, "watchdog": 3, "deep_sleep": 4, "soft_reset": 5}

    def __init__(
        self,
        clock: Clock,
        physics: Physics,
        relay_pins: list[int],
        inputs: list[tuple[int, int]],
        unique_id: bytes = b"\x24\x0a\xc4\x1a\x2b\x3c",
    ) -> None:
        self.clock = clock
        self.physics = physics
        self.relay_pins = {pin: index for index, pin in enumerate(relay_pins)}
        self.inputs = {key: index for index, key in enumerate(inputs)}
        self.adcs = {address: ADS1115Model(self, address) for address, _ in inputs}
        self.adc_dead = False
        self.pins: dict[int, FakePin] = {}
        self.pwm: dict[int, FakePWM] = {}
        self.input_levels: dict[int, int] = {}
        self.wdt: FakeWDT | None = None
        self.cause = "power_on"
        self._unique_id = unique_id
        self.relay_active_high = True
        self.Pin = _bind(FakePin, self)
        self.I2C = _bind(FakeI2C, self)
        self.WDT = _bind(FakeWDT, self)
        self.PWM = _bind(FakePWM, self)
        self.Timer = FakeTimer

    # machine functions
    def reset(self) -> None:
        raise SimReset("hard_reset")

    def reset_cause(self) -> int:
        return self._CAUSES.get(self.cause, 1)

    def unique_id(self) -> bytes:
        return self._unique_id

    def freq(self, *_args) -> int:
        return 240_000_000

    # the hob side
    def burner_for_input(self, address: int, pair: int | None) -> int | None:
        if pair is None:
            return None
        return self.inputs.get((address, pair))

    def output_changed(self, pin_id: int, level: int) -> None:
        index = self.relay_pins.get(pin_id)
        if index is not None:
            # A relay module energises at the level that closes the loop.
            energised = bool(level) == self.relay_active_high
            self.physics.set_coil(index, energised, self.clock.seconds)

    def set_input(self, pin_id: int, level: int) -> None:
        """Drive an input pin (the button) and fire its interrupt."""
        old = self.input_levels.get(pin_id, 1)
        self.input_levels[pin_id] = level
        pin = self.pins.get(pin_id)
        if pin is not None and old != level and pin.handler is not None:
            pin.handler(pin)

    def power_off(self) -> None:
        """No supply: every relay coil is de-energised, whatever its polarity."""
        for index in self.relay_pins.values():
            self.physics.set_coil(index, False, self.clock.seconds)
        self.pins.clear()
        self.wdt = None


def _bind(cls, board: Board):
    """A constructor that looks like the MicroPython class but knows its board,
    with the class constants (Pin.OUT, Timer.PERIODIC, ...) still reachable."""

    class Bound(cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(board, *args, **kwargs)

    Bound.__name__ = cls.__name__.replace("Fake", "")
    return Bound


class FakeLink:
    """The device's serial line: bytes in from the host, text out to it."""

    def __init__(
        self, on_write: Callable[[str], None] | None = None, on_lost: Callable[[str], None] | None = None
    ) -> None:
        self.inbound = bytearray()
        self.on_write = on_write
        # What the device writes while the link is down: lost to the host,
        # told to this callback (the simulator's observers want to see it).
        self.on_lost = on_lost
        self.connected = True
        self.written: list[str] = []

    def feed(self, data: bytes) -> None:
        if self.connected:
            self.inbound.extend(data)

    def read(self) -> bytes:
        if not self.inbound:
            return b""
        chunk = bytes(self.inbound[:512])
        del self.inbound[:512]
        return chunk

    def write(self, text: str) -> None:
        if not self.connected:
            if self.on_lost is not None:
                self.on_lost(text)
            return
        if self.on_write is not None:
            self.on_write(text)
        else:
            self.written.append(text)

    def wait(self, ms: int) -> None:  # the simulator does the waiting
        pass


class FakeWLAN:
    """network.WLAN(network.STA_IF) on a simulated access point: connect()
    returns at once and the station has its address `join_ms` (virtual) later,
    if the access point is in reach and the name and password match."""

    def __init__(self, net: "FakeNetwork", interface_id: int = 0) -> None:
        self.net = net
        self.interface_id = interface_id

    def active(self, on: bool | None = None) -> bool | None:
        if on is None:
            return self.net.active
        self.net.active = bool(on)
        if not on:
            self.net.drop()
        return None

    def connect(self, ssid: str | None = None, password: str | None = None, *, bssid: bytes | None = None) -> None:
        net = self.net
        if not net.active:
            raise OSError("Wifi Not Started")
        net.connects += 1
        net.joining_since = net.clock.ms
        net.joined = False
        net.tried = (ssid, password)

    def disconnect(self) -> None:
        self.net.drop()

    def isconnected(self) -> bool:
        return self.net.update()

    def status(self, param: str | None = None) -> int:
        net = self.net
        joined = net.update()
        if param == "rssi":
            if not joined:
                raise OSError("not connected")
            return net.rssi
        if param is not None:
            raise ValueError("unknown status param")
        if joined:
            return net.STAT_GOT_IP
        if net.joining_since is None:
            return net.STAT_IDLE
        if not net.radio:
            return net.STAT_NO_AP_FOUND
        if net.tried != (net.ssid, net.password):
            return net.STAT_WRONG_PASSWORD
        return net.STAT_CONNECTING

    def ifconfig(self) -> tuple[str, str, str, str]:
        if not self.net.update():
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        return (self.net.address, "255.255.255.0", self.net.address, self.net.address)

    def config(self, *args, **kwargs):
        if args and args[0] == "mac":
            return b"\x24\x0a\xc4\x1a\x2b\x3c"
        if args:
            raise ValueError("unknown config param")
        return None


class FakeNetwork:
    """The `network` module with one station interface, on a simulated
    access point that the simulator can take out of reach (`radio = False`:
    the station loses its link and cannot join until it is back)."""

    STA_IF = 0
    AP_IF = 1
    STAT_IDLE = 1000
    STAT_CONNECTING = 1001
    STAT_GOT_IP = 1010
    STAT_BEACON_TIMEOUT = 200
    STAT_NO_AP_FOUND = 201
    STAT_WRONG_PASSWORD = 202

    def __init__(
        self,
        clock: Clock,
        address: str = "127.0.0.1",
        ssid: str = "hobguard-sim",
        password: str = "simulated-wifi",
        rssi: int = -58,
        join_ms: int = 600,
    ) -> None:
        self.clock = clock
        self.address = address
        self.ssid = ssid
        self.password = password
        self.rssi = rssi
        self.join_ms = join_ms
        self.radio = True
        self.active = False
        self.joined = False
        self.joining_since: int | None = None
        self.tried: tuple[str | None, str | None] = (None, None)
        self.connects = 0
        self.name = "espressif"
        self.WLAN = _bind(FakeWLAN, self)  # type: ignore[arg-type]

    def hostname(self, name: str | None = None) -> str | None:
        if name is None:
            return self.name
        if len(name.encode()) > 32:  # MicroPython's limit
            raise ValueError(name)
        self.name = name
        return None

    def update(self) -> bool:
        if (
            not self.joined
            and self.radio
            and self.active
            and self.joining_since is not None
            and self.tried == (self.ssid, self.password)
            and self.clock.ms - self.joining_since >= self.join_ms
        ):
            self.joined = True
        return self.joined

    def drop(self) -> None:
        self.joined = False
        self.joining_since = None

    def set_radio(self, on: bool) -> None:
        """The access point comes into or goes out of reach."""
        self.radio = on
        if not on:
            self.drop()

# Thin drivers between the control core and the ESP32's pins and buses.
# Each takes the `machine` and `time` modules it uses, so the simulator can
# pass its fakes and the same code runs on the board and in the simulator.
try:
    from micropython import const
except ImportError:  # CPython (host, simulator)
    const = lambda x: x  # noqa: E731


# ADS1115 registers and config bits (TI SBAS444, section 8.6).
_REG_CONVERSION = const(0)
_REG_CONFIG = const(1)
_OS_START = const(0x8000)  # write: start a single conversion; read: 1 = idle
_MUX_AIN0_AIN1 = const(0x0000)  # differential pairs
_MUX_AIN2_AIN3 = const(0x3000)
_PGA_0256 = const(0x0A00)  # full scale +-0.256 V
_MODE_SINGLE = const(0x0100)
_DR_860 = const(0x00E0)  # 860 samples/s: a conversion takes ~1.2 ms
_COMP_DISABLE = const(0x0003)
LSB_MV = 0.0078125  # 0.256 V / 32768


class ADS1115:
    """Differential thermocouple readings from one ADS1115 at the +-256 mV
    range, single-shot so two pairs share one chip."""

    def __init__(self, i2c, address, time_module):
        self.i2c = i2c
        self.address = address
        self.time = time_module
        self._buf = bytearray(3)

    def read_mv(self, pair):
        """Millivolts across pair 0 (AIN0-AIN1) or 1 (AIN2-AIN3); None if the
        chip does not answer or never finishes the conversion."""
        mux = _MUX_AIN2_AIN3 if pair else _MUX_AIN0_AIN1
        config = _OS_START | mux | _PGA_0256 | _MODE_SINGLE | _DR_860 | _COMP_DISABLE
        buf = self._buf
        try:
            buf[0] = _REG_CONFIG
            buf[1] = config >> 8
            buf[2] = config & 0xFF
            self.i2c.writeto(self.address, buf)
            for _ in range(5):
                self.time.sleep_ms(2)
                status = self.i2c.readfrom_mem(self.address, _REG_CONFIG, 2)
                if status[0] & 0x80:
                    break
            else:
                return None
            raw = self.i2c.readfrom_mem(self.address, _REG_CONVERSION, 2)
        except OSError:
            return None
        value = (raw[0] << 8) | raw[1]
        if value & 0x8000:
            value -= 0x10000
        return value * LSB_MV


class Relays:
    """One output pin per burner. `closed` means the thermocouple loop is
    closed (burner usable). Pins start at the level that opens the loop."""

    def __init__(self, machine, pins, active_high):
        self.active_high = active_high
        idle = 0 if active_high else 1
        self.pins = [machine.Pin(p, machine.Pin.OUT, value=idle) for p in pins]
        self.closed = [False] * len(pins)

    def set(self, index, closed):
        if self.closed[index] != closed:
            self.closed[index] = closed
            self.pins[index].value(1 if closed == self.active_high else 0)

    def open_all(self):
        for index in range(len(self.pins)):
            self.set(index, False)


class Button:
    """A push button to ground (internal pull-up), edges caught by an
    interrupt so the main loop may sleep a whole sample period between
    polls and still see a short press. poll() returns 'short', 'long' or
    None; a long press fires while the button is still held.

    Tick stamps (see core.STAMP_AGE_CAP): pressed_at and released_at are
    read only while a press is in progress, which the app polls every
    20 ms: pressed_at until the press turns long (long_ms <= 10 s), then
    never again for that press; released_at for DEBOUNCE_MS. A button held
    for days (stuck) sends one "long" and ages harmlessly."""

    DEBOUNCE_MS = 30

    def __init__(self, machine, time_module, pin, long_ms):
        self.time = time_module
        self.pin = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
        self.long_ms = long_ms
        self.pressed_at = None
        self.released_at = None
        self.long_sent = False
        self.pin.irq(handler=self._edge, trigger=machine.Pin.IRQ_FALLING | machine.Pin.IRQ_RISING)

    def _edge(self, pin):
        # Runs in interrupt context: no allocation, just timestamps.
        now = self.time.ticks_ms()
        if pin.value() == 0:
            if self.pressed_at is None:
                self.pressed_at = now
            self.released_at = None  # a bounce while held
        elif self.pressed_at is not None:
            self.released_at = now

    def busy(self):
        """True while a press is in progress (poll soon)."""
        return self.pressed_at is not None

    def poll(self):
        pressed_at = self.pressed_at
        if pressed_at is None:
            return None
        now = self.time.ticks_ms()
        if self.pin.value() == 0:
            # Held (or bouncing low): no release yet, whatever an edge said.
            self.released_at = None
            if not self.long_sent and self.time.ticks_diff(now, pressed_at) >= self.long_ms:
                self.long_sent = True
                return "long"
            return None
        released_at = self.released_at
        if released_at is None:
            # The pin is up but no release edge came: the interrupt missed it
            # in a bounce. Without this poll of the level the press would
            # stay "held" and turn into a long press that cuts every burner.
            self.released_at = released_at = now
        if self.time.ticks_diff(now, released_at) < self.DEBOUNCE_MS:
            return None  # may still bounce
        was_long = self.long_sent
        self.pressed_at = None
        self.released_at = None
        self.long_sent = False
        if was_long:
            return None  # already sent while held; pressed_at may be old
        held = self.time.ticks_diff(released_at, pressed_at)
        if held < self.DEBOUNCE_MS:
            return None
        return "long" if held >= self.long_ms else "short"


# Indicator patterns, blinked by the PWM hardware so the main loop never
# wakes for them: (frequency Hz, duty cycle 0..1). The ESP32's LEDC runs
# down to 1 Hz.
PATTERNS = {
    "idle": (1, 0.0),
    "timer": (1, 0.05),  # a short flash every second
    "cut": (1, 0.5),
    "locked": (2, 0.1),
    "warning": (4, 0.5),
    "fault": (1, 0.85),  # nearly steady, a short gap
}
# The buzzer (an active one, sounding while driven) joins in only for these.
_LOUD = ("warning", "fault")


class Indicator:
    """LED and optional buzzer showing the core's indicator pattern."""

    def __init__(self, machine, led_pin, buzzer_pin):
        self.led = self._pwm(machine, led_pin)
        self.buzzer = self._pwm(machine, buzzer_pin)
        self.pattern = None

    @staticmethod
    def _pwm(machine, pin):
        if pin < 0:
            return None
        return machine.PWM(machine.Pin(pin), freq=1, duty_u16=0)

    def show(self, pattern):
        if pattern == self.pattern:
            return
        self.pattern = pattern
        freq, duty = PATTERNS.get(pattern, PATTERNS["fault"])
        for output, on in ((self.led, True), (self.buzzer, pattern in _LOUD)):
            if output is not None:
                output.freq(freq)
                output.duty_u16(int(duty * 65535) if on else 0)


RESET_CAUSES = (
    ("PWRON_RESET", "power_on"),
    ("HARD_RESET", "hard_reset"),
    ("WDT_RESET", "watchdog"),
    ("DEEPSLEEP_RESET", "deep_sleep"),
    ("SOFT_RESET", "soft_reset"),
)


def reset_cause(machine):
    try:
        cause = machine.reset_cause()
    except Exception:
        return "unknown"
    for attribute, name in RESET_CAUSES:
        if getattr(machine, attribute, None) == cause:
            return name
    return "unknown"


def device_id(machine):
    try:
        raw = machine.unique_id()
    except Exception:
        return "hob-000000"
    tail = raw[-3:]
    return "hob-" + "".join("%02x" % b for b in tail)

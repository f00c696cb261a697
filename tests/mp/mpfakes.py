# Minimal fakes of machine/time/link in the Python subset MicroPython runs, so
# the firmware App itself can be started (and its heap measured) inside the
# MicroPython WebAssembly build as well as under CPython. The full simulator
# (sim/) is CPython-only; this is the small stand-in for MicroPython.
import os

_MASK = (1 << 30) - 1
_HALF = 1 << 29

try:
    import tempfile

    def fresh_root():
        return tempfile.mkdtemp() + "/"

except ImportError:
    _count = [0]

    def fresh_root():
        _count[0] += 1
        path = "/tmp/hgmp%d" % _count[0]
        for part in ("/tmp", path):
            try:
                os.mkdir(part)
            except OSError:
                pass
        return path + "/"


class Time:
    def __init__(self, start=0):
        self.now = start

    def ticks_ms(self):
        return self.now & _MASK

    def ticks_add(self, t, d):
        return (t + d) & _MASK

    def ticks_diff(self, a, b):
        return ((a - b + _HALF) & _MASK) - _HALF

    def sleep_ms(self, ms):
        self.now += ms


class Machine:
    """machine with one ADS1115 whose pairs read `self.mv[pair]` millivolts."""

    PWRON_RESET = 1
    WDT_RESET = 3

    def __init__(self, clock):
        self.clock = clock
        self.levels = {}
        self.mv = [0.0, 0.0]
        self.adc_dead = False
        self.cause = 1
        self.fed = 0
        machine = self

        class Pin:
            OUT = 1
            IN = 0
            PULL_UP = 2
            IRQ_FALLING = 2
            IRQ_RISING = 1

            def __init__(self, pin_id, mode=-1, pull=-1, value=None):
                self.id = pin_id
                if value is not None:
                    machine.levels[pin_id] = value

            def value(self, level=None):
                if level is None:
                    return machine.levels.get(self.id, 1)
                machine.levels[self.id] = level

            def irq(self, handler=None, trigger=3):
                pass

        class I2C:
            def __init__(self, bus_id, scl=None, sda=None, freq=400000):
                self.pair = 0

            def writeto(self, address, data):
                if machine.adc_dead:
                    raise OSError(19)
                if data[0] == 1:
                    self.pair = 1 if data[1] & 0x30 else 0

            def readfrom_mem(self, address, register, count):
                if machine.adc_dead:
                    raise OSError(19)
                if register == 1:
                    return bytes([0x80, 0])
                code = int(machine.mv[self.pair] / 0.0078125)
                if code < 0:
                    code += 0x10000
                return bytes([code >> 8, code & 0xFF])

        class WDT:
            def __init__(self, id=0, timeout=5000):
                pass

            def feed(self):
                machine.fed += 1

        class PWM:
            def __init__(self, pin, freq=1000, duty_u16=0):
                self.pin = pin
                self.frequency = freq
                self.duty = duty_u16
                machine.pwm[pin.id] = self

            def freq(self, value):
                self.frequency = value

            def duty_u16(self, value):
                self.duty = value

        self.pwm = {}
        self.Pin = Pin
        self.I2C = I2C
        self.WDT = WDT
        self.PWM = PWM

    def reset_cause(self):
        return self.cause

    def unique_id(self):
        return b"\x01\x02\x03\xaa\xbb\xcc"


class Link:
    def __init__(self):
        self.inbound = b""
        self.out = []

    def read(self):
        data = self.inbound
        self.inbound = b""
        return data

    def write(self, text):
        self.out.append(text)

    def wait(self, ms):
        pass

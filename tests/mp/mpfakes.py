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


class Reset(Exception):
    """machine.reset(): the test sees it as this exception."""


class Machine:
    """machine with one ADS1115 whose pairs read `self.mv[pair]` millivolts."""

    PWRON_RESET = 1
    WDT_RESET = 3

    def __init__(self, clock):
        self.clock = clock
        self.levels = {}
        self.irqs = {}
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
                machine.irqs[self.id] = (self, handler)

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

    def reset(self):
        raise Reset()

    def set_input(self, pin_id, level, edge=True):
        """Drive an input pin; its interrupt fires unless `edge` is False
        (an edge the hardware missed, e.g. in a bounce)."""
        old = self.levels.get(pin_id, 1)
        self.levels[pin_id] = level
        pin, handler = self.irqs.get(pin_id, (None, None))
        if edge and old != level and handler is not None:
            handler(pin)

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


# -- a network for the App's network link, in plain Python -------------------
# The WebAssembly port has neither `network` nor `socket`: these stand-ins
# give the firmware's netlink.py the same calls the ESP32 does (non-blocking
# sockets, select.poll, network.WLAN), so it runs, and its heap can be
# measured, inside real MicroPython. No bytes leave the process.

_EAGAIN = 11


class FakeSocket:
    AF_INET = 2
    SOCK_STREAM = 1
    SOL_SOCKET = 1
    SO_REUSEADDR = 2
    IPPROTO_TCP = 6
    TCP_NODELAY = 1

    def __init__(self, hub):
        self.hub = hub
        self.inbox = b""
        self.peer = None
        self.closed = False
        self.peer_closed = False
        self.backlog = None  # a listening socket's waiting connections
        self.address = None

    def setsockopt(self, level, option, value):
        pass

    def setblocking(self, flag):
        pass

    def bind(self, address):
        if address in self.hub.bound:
            raise OSError(98)
        self.address = address

    def listen(self, backlog=1):
        self.backlog = []
        self.hub.bound[self.address] = self

    def accept(self):
        if not self.backlog:
            raise OSError(_EAGAIN)
        return self.backlog.pop(0), ("192.168.1.9", 50000)

    def recv(self, size):
        if self.inbox:
            data = self.inbox[:size]
            self.inbox = self.inbox[size:]
            return data
        if self.peer_closed or self.closed:
            return b""
        raise OSError(_EAGAIN)

    def send(self, data):
        if self.closed:
            raise OSError(9)
        if self.peer_closed or self.peer is None:
            raise OSError(104)
        room = self.hub.window - len(self.peer.inbox)
        if room <= 0:
            raise OSError(_EAGAIN)
        data = bytes(data[:room])
        self.peer.inbox += data
        return len(data)

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.peer is not None:
            self.peer.peer_closed = True
        if self.backlog is not None:
            self.hub.bound.pop(self.address, None)

    # the fake `socket` module's one function
    def readiness(self):
        flags = 0
        if self.backlog:
            flags |= 1
        if self.inbox or self.peer_closed:
            flags |= 1
        if self.peer is not None and not self.peer_closed and len(self.peer.inbox) < self.hub.window:
            flags |= 4
        return flags


class FakePoller:
    def __init__(self):
        self.masks = {}

    def register(self, obj, mask=5):
        self.masks[id(obj)] = (obj, mask)

    def modify(self, obj, mask):
        self.masks[id(obj)] = (obj, mask)

    def unregister(self, obj):
        self.masks.pop(id(obj), None)

    def poll(self, timeout=-1):
        ready = []
        for key in self.masks:
            obj, mask = self.masks[key]
            readiness = getattr(obj, "readiness", None)
            if readiness is None:
                continue
            flags = readiness() & (mask | 24)
            if flags:
                ready.append((obj, flags))
        return ready


class FakeSelect:
    POLLIN = 1
    POLLOUT = 4
    POLLERR = 8
    POLLHUP = 16

    def poll(self):
        return FakePoller()


class FakeHub:
    """The fake `socket` module plus what a test needs to connect a client."""

    AF_INET = FakeSocket.AF_INET
    SOCK_STREAM = FakeSocket.SOCK_STREAM
    SOL_SOCKET = FakeSocket.SOL_SOCKET
    SO_REUSEADDR = FakeSocket.SO_REUSEADDR
    IPPROTO_TCP = FakeSocket.IPPROTO_TCP
    TCP_NODELAY = FakeSocket.TCP_NODELAY

    def __init__(self, window=8192):
        self.bound = {}
        self.window = window  # bytes a receiver holds before a sender must wait

    def socket(self, family=2, kind=1):
        return FakeSocket(self)

    def connect(self, address):
        """A client connection to a listening socket: the client's end."""
        server = self.bound.get(address)
        if server is None:
            raise OSError(111)  # refused
        client = FakeSocket(self)
        accepted = FakeSocket(self)
        client.peer = accepted
        accepted.peer = client
        server.backlog.append(accepted)
        return client


class FakeWlan:
    def __init__(self, net):
        self.net = net

    def active(self, on=None):
        if on is not None:
            self.net.active = on

    def connect(self, ssid, password):
        self.net.connects += 1
        self.net.tried = (ssid, password)

    def isconnected(self):
        return self.net.radio and self.net.active and self.net.tried == self.net.credentials

    def ifconfig(self):
        return ("192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1")

    def status(self, param=None):
        if param == "rssi":
            return -61
        return 1010 if self.isconnected() else 1001


class FakeNetwork:
    STA_IF = 0

    def __init__(self, ssid="Kitchen", password="a-good-password"):
        self.credentials = (ssid, password)
        self.tried = None
        self.radio = True
        self.active = False
        self.connects = 0
        self.name = None
        self.wlan = FakeWlan(self)

    def hostname(self, name=None):
        if name is None:
            return self.name
        self.name = name

    def WLAN(self, interface):
        return self.wlan


def counter_bytes(start=0):
    """A stand-in for os.urandom (absent in the WebAssembly port): distinct
    bytes on every call, which is all a test needs; never a secret."""
    state = [start]

    def random_bytes(n):
        state[0] += 1
        return bytes((state[0] * 7 + i * 13) & 0xFF for i in range(n))

    return random_bytes


def net_modules(network=None, hub=None):
    return {
        "network": network or FakeNetwork(),
        "socket": hub or FakeHub(),
        "select": FakeSelect(),
        "random_bytes": counter_bytes(),
    }


def write_secrets(root, key_hex, ssid="Kitchen", password="a-good-password", port=7343):
    import json

    with open(root + "hobguard_secrets.json", "w") as f:
        f.write(json.dumps({"wifi_ssid": ssid, "wifi_password": password, "key": key_hex, "port": port}))

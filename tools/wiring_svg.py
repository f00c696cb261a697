"""Draw docs/wiring.svg: how hobguard is wired to a two-burner gas hob.

    .venv/bin/python tools/wiring_svg.py docs/wiring.svg     (make wiring)

Plain string building, no dependencies, and deterministic: the same code and
settings give the same bytes, so a test can check that the checked-in file
is up to date. Pins, addresses and burner names come from the firmware's
default settings, so the drawing cannot disagree with them.

Layout: the ESP32 at the top left, the ADS1115 under it, one column per
burner on the right: its relay driver on top, its thermocouple loop below
(thermocouple in the flame -> relay contact -> magnet unit on the gas valve
-> back through the hob body). The relay control lines arrive from above and
the ADC sense wires from below, so no two wires cross.
"""

from __future__ import annotations

import sys
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "firmware"))

from hobguard_fw.settings import defaults  # noqa: E402

WIDTH, HEIGHT = 1500, 1010

# Colours by what a wire carries.
C_5V = "#d62728"
C_3V3 = "#e67e00"
C_GND = "#222222"
C_I2C = "#1f63b4"
C_CTRL = "#8c564b"
C_SENSE = "#8e44ad"
C_LOOP = "#1e8c3a"
C_GAS = "#9a9a9a"
C_BOX = "#f4f6f8"
C_TEXT = "#111111"
C_NOTE = "#555555"
FONT = "font-family:DejaVu Sans,Helvetica,Arial,sans-serif"


class Drawing:
    def __init__(self, width: int, height: int):
        self.width = width
        self.height = height
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def line(self, points, color=C_TEXT, width=2, dash=None) -> None:
        coords = " ".join("%d,%d" % (x, y) for x, y in points)
        extra = ' stroke-dasharray="%s"' % dash if dash else ""
        self.add(
            '<polyline points="%s" fill="none" stroke="%s" stroke-width="%g" '
            'stroke-linejoin="round" stroke-linecap="round"%s/>' % (coords, color, width, extra)
        )

    def dot(self, x, y, color=C_TEXT, r=4) -> None:
        self.add('<circle cx="%d" cy="%d" r="%d" fill="%s"/>' % (x, y, r, color))

    def ring(self, x, y, color=C_TEXT, r=4) -> None:
        self.add('<circle cx="%d" cy="%d" r="%d" fill="#ffffff" stroke="%s" stroke-width="2"/>' % (x, y, r, color))

    def rect(self, x, y, w, h, fill=C_BOX, stroke=C_TEXT, width=1.5, rx=6, dash=None) -> None:
        extra = ' stroke-dasharray="%s"' % dash if dash else ""
        self.add(
            '<rect x="%d" y="%d" width="%d" height="%d" rx="%d" fill="%s" stroke="%s" stroke-width="%g"%s/>'
            % (x, y, w, h, rx, fill, stroke, width, extra)
        )

    def text(self, x, y, content, size=13, anchor="start", weight="normal", color=C_TEXT, italic=False) -> None:
        style = FONT + (";font-style:italic" if italic else "")
        self.add(
            '<text x="%d" y="%d" font-size="%d" text-anchor="%s" font-weight="%s" fill="%s" style="%s">%s</text>'
            % (x, y, size, anchor, weight, color, style, escape(content))
        )

    def lines(self, x, y, rows, size=12, anchor="start", color=C_TEXT, step=None, italic=False) -> None:
        step = step or size + 4
        for n, row in enumerate(rows):
            self.text(x, y + n * step, row, size, anchor, color=color, italic=italic)

    def path(self, d, fill="none", stroke=C_TEXT, width=2) -> None:
        self.add(
            '<path d="%s" fill="%s" stroke="%s" stroke-width="%g" stroke-linejoin="round"/>' % (d, fill, stroke, width)
        )

    # -- symbols -------------------------------------------------------------

    def ground(self, x, y, label=None) -> None:
        """Ground symbol hanging from (x, y)."""
        self.line([(x, y), (x, y + 10)], C_GND)
        self.line([(x - 11, y + 10), (x + 11, y + 10)], C_GND)
        self.line([(x - 7, y + 15), (x + 7, y + 15)], C_GND)
        self.line([(x - 3, y + 20), (x + 3, y + 20)], C_GND)
        if label:
            self.text(x + 15, y + 18, label, 11, color=C_NOTE)

    def supply(self, x, y, label, color) -> None:
        """A supply port: the net named `label` enters at (x, y) from above."""
        self.line([(x, y), (x, y - 12)], color)
        self.line([(x - 9, y - 12), (x + 9, y - 12)], color, 2.5)
        self.text(x, y - 18, label, 12, "middle", "bold", color)

    def resistor_v(self, x, y1, y2, label, color) -> None:
        """Vertical resistor between y1 and y2 on the line at x."""
        mid = (y1 + y2) // 2
        self.line([(x, y1), (x, mid - 16)], color)
        self.rect(x - 6, mid - 16, 12, 32, fill="#ffffff", stroke=C_TEXT, rx=1)
        self.line([(x, mid + 16), (x, y2)], color)
        self.text(x + 11, mid + 4, label, 11, color=C_NOTE)

    def resistor_h(self, x1, x2, y, label, color) -> None:
        mid = (x1 + x2) // 2
        self.line([(x1, y), (mid - 15, y)], color)
        self.rect(mid - 15, y - 6, 30, 12, fill="#ffffff", stroke=C_TEXT, rx=1)
        self.line([(mid + 15, y), (x2, y)], color)
        self.text(mid, y - 10, label, 10, "middle", color=C_NOTE)

    def capacitor_v(self, x, y1, y2, label) -> None:
        """Capacitor between the horizontal lines at y1 (top) and y2."""
        mid = (y1 + y2) // 2
        self.line([(x, y1), (x, mid - 3)], C_SENSE)
        self.line([(x - 8, mid - 3), (x + 8, mid - 3)], C_TEXT, 2.5)
        self.line([(x - 8, mid + 3), (x + 8, mid + 3)], C_TEXT, 2.5)
        self.line([(x, mid + 3), (x, y2)], C_SENSE)
        self.dot(x, y1, C_SENSE, 3)
        self.dot(x, y2, C_SENSE, 3)
        self.text(x - 12, mid + 4, label, 10, "end", color=C_NOTE)

    def diode_h(self, x1, x2, y, label) -> None:
        """Diode on a horizontal line, cathode (bar) at x1 (the left end)."""
        mid = (x1 + x2) // 2
        self.line([(x1, y), (mid - 8, y)], C_5V)
        self.path(
            "M %d %d L %d %d L %d %d Z" % (mid + 8, y - 8, mid + 8, y + 8, mid - 8, y),
            fill=C_TEXT,
            stroke=C_TEXT,
            width=1,
        )
        self.line([(mid - 8, y - 8), (mid - 8, y + 8)], C_TEXT, 2.5)
        self.line([(mid + 8, y), (x2, y)], C_5V)
        self.text(mid, y - 12, label, 10, "middle", color=C_NOTE)

    def coil_h(self, x1, x2, y, color=C_5V) -> None:
        """Relay coil between x1 and x2 on a horizontal line."""
        self.rect(x1, y - 10, x2 - x1, 20, fill="#ffffff", stroke=C_TEXT, rx=2)
        self.line([(x1 + 6, y + 8), (x2 - 6, y - 8)], C_TEXT, 1.5)

    def magnet_coil_v(self, x, y1, y2) -> None:
        """The magnet unit's coil: loops on a vertical line."""
        n = 4
        step = (y2 - y1) // n
        d = "M %d %d" % (x, y1)
        for _ in range(n):
            d += " a %d %d 0 0 1 0 %d" % (step // 2, step // 2, step)
        self.path(d, stroke=C_LOOP, width=3)

    def npn(self, x, y) -> None:
        """NPN transistor, base from the right at (x+8, y); collector leaves
        at (x-12, y-15), emitter at (x-12, y+17)."""
        self.add('<circle cx="%d" cy="%d" r="17" fill="#ffffff" stroke="%s" stroke-width="1.5"/>' % (x, y, C_TEXT))
        self.line([(x + 8, y - 10), (x + 8, y + 10)], C_TEXT, 3)
        self.line([(x + 8, y - 5), (x - 12, y - 15)], C_TEXT, 1.8)
        self.line([(x + 8, y + 5), (x - 12, y + 17)], C_TEXT, 1.8)
        # emitter arrow, pointing out of the transistor
        self.path(
            "M %d %d L %d %d L %d %d Z" % (x - 12, y + 17, x - 6, y + 9, x - 2, y + 16),
            fill=C_TEXT,
            stroke=C_TEXT,
            width=1,
        )

    def flame(self, x, y) -> None:
        """A flame centred on x, its base at y."""
        outer = "M %d %d C %d %d %d %d %d %d C %d %d %d %d %d %d C %d %d %d %d %d %d Z" % (
            x - 20, y,
            x - 30, y - 25, x - 8, y - 35, x - 4, y - 62,
            x + 6, y - 40, x + 28, y - 34, x + 20, y,
            x + 10, y + 8, x - 10, y + 8, x - 20, y,
        )  # fmt: skip
        self.path(outer, fill="#ffb347", stroke="#e06000", width=1.5)
        inner = "M %d %d C %d %d %d %d %d %d C %d %d %d %d %d %d Z" % (
            x - 9, y - 2,
            x - 12, y - 16, x - 2, y - 20, x, y - 34,
            x + 5, y - 20, x + 13, y - 14, x + 9, y - 2,
        )  # fmt: skip
        self.path(inner, fill="#4a90d9", stroke="none", width=0)

    def svg(self) -> str:
        head = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">\n'
            "<title>hobguard wiring: ESP32, ADS1115, relays, thermocouples and magnet units of a gas hob</title>\n"
            '<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>\n'
            % (self.width, self.height, self.width, self.height, self.width, self.height)
        )
        return head + "\n".join(self.parts) + "\n</svg>\n"


# -- the parts ------------------------------------------------------------------

ESP = (250, 130, 260, 330)  # x, y, w, h
ADS = (250, 620, 260, 200)
LOOP_TOP, LOOP_BOTTOM = 540, 760
TRACK_Y = (860, 885, 910, 935)  # the sense wires' runs under the loops
AIN_Y = (660, 690, 720, 750)  # AIN0..AIN3 on the ADS1115's right edge
AIN_TURN_X = (680, 660, 640, 620)
CONTROL_Y = (230, 200)  # burner 0's control line runs below burner 1's


def draw_title(d: Drawing, burners) -> None:
    d.text(30, 40, "hobguard wiring: ESP32 + ADS1115 + one relay per burner", 22, weight="bold")
    names = " and ".join(b["id"] for b in burners)
    d.text(
        30, 64,
        "Burners %s, pins and addresses as in the default settings (hobguard settings example). "
        "Generated by tools/wiring_svg.py (make wiring): do not edit by hand." % names,
        12, color=C_NOTE,
    )  # fmt: skip


def draw_legend(d: Drawing) -> None:
    x, y = 1030, 96
    d.rect(x - 12, y - 18, 462, 66, fill="#ffffff", stroke="#cccccc", rx=4)
    items = [
        (C_LOOP, 4, None, "thermocouple loop (~12 mV, ~0.2 A)"),
        (C_SENSE, 2, None, "ADC sense wire (no current)"),
        (C_CTRL, 2, None, "relay control (GPIO)"),
        (C_I2C, 2, None, "I2C"),
        (C_5V, 2, None, "5 V"),
        (C_GAS, 3, "7,5", "gas (never touched)"),
    ]
    for n, (color, width, dash, label) in enumerate(items):
        cx = x + (n % 2) * 245
        cy = y + (n // 2) * 20
        d.line([(cx, cy - 4), (cx + 26, cy - 4)], color, width, dash)
        d.text(cx + 34, cy, label, 11)


def draw_power(d: Drawing) -> None:
    d.rect(30, 250, 170, 70)
    d.lines(115, 276, ["USB power supply", "5 V, 1 A"], 13, "middle")
    d.line([(200, 285), (250, 285)], C_5V, 3)
    d.text(225, 278, "USB", 10, "middle", color=C_NOTE)


def draw_esp32(d: Drawing, s) -> None:
    x, y, w, h = ESP
    d.rect(x, y, w, h)
    d.text(x + 14, y + 24, "ESP32 DevKit", 16, weight="bold")
    d.text(x + 14, y + 42, "(ESP32-WROOM-32, MicroPython)", 11, color=C_NOTE)
    burners = s["burners"]
    # control pins on the right edge, the second burner's on top
    for n, burner in enumerate(burners[:2]):
        py = CONTROL_Y[n]
        d.text(x + w - 8, py + 4, "GPIO%d  relay %s" % (burner["relay_pin"], burner["id"]), 12, "end")
        d.dot(x + w, py, C_CTRL, 3)
    d.text(x + w - 8, 279, "VIN (5 V)", 12, "end")
    d.line([(x + w, 275), (x + w + 40, 275)], C_5V)
    d.text(x + w + 44, 279, "5 V: to the relay coils", 11, color=C_5V)
    # on-board button and LED
    d.rect(x + 16, 322, 22, 16, fill="#dddddd", rx=3)
    d.add('<circle cx="%d" cy="330" r="5" fill="#555555"/>' % (x + 27))
    d.text(x + 46, 334, "BOOT button = GPIO%d (button_pin)" % s["button_pin"], 11)
    d.path("M %d 354 L %d 366 L %d 366 Z" % (x + 27, x + 20, x + 34), fill="#3a7bd5", stroke="#3a7bd5", width=1)
    d.text(x + 46, 366, "on-board LED = GPIO%d (led_pin)" % s["led_pin"], 11)
    d.text(x + 14, 394, "USB: power, and the serial link", 11, color=C_NOTE)
    d.text(x + 14, 409, "to the host (bridge, deploy)", 11, color=C_NOTE)
    # bottom pins straight down to the ADS1115
    bottom = y + h
    pins = [
        (290, "3V3", C_3V3),
        (340, "GND", C_GND),
        (400, "GPIO%d SDA" % s["i2c_sda"], C_I2C),
        (450, "GPIO%d SCL" % s["i2c_scl"], C_I2C),
    ]
    for px, label, color in pins:
        d.text(px, bottom - 8, label.split()[0], 11, "middle")
        d.line([(px, bottom), (px, ADS[1])], color, 2)
        if " " in label:
            d.text(px + 4, bottom + 40 + (12 if px == 450 else 0), label.split()[1], 11, color=color)
    d.text(462, 596, "I2C %d, %d kHz" % (s["i2c_id"], s["i2c_freq"] // 1000), 11, color=C_I2C)


def draw_ads1115(d: Drawing, s) -> None:
    x, y, w, h = ADS
    d.rect(x, y, w, h)
    for px, label in ((290, "VDD"), (340, "GND"), (400, "SDA"), (450, "SCL")):
        d.text(px, y + 16, label, 11, "middle")
    d.text(x + 14, y + 52, "ADS1115 module", 16, weight="bold")
    d.lines(x + 14, y + 72, ["16-bit ADC, range ±0.256 V", "(7.8 µV per step), differential"], 11, color=C_NOTE)
    address = s["burners"][0]["adc_address"]
    # ADDR to GND sets the address
    d.text(x + 8, y + 124, "ADDR", 11)
    d.line([(x, y + 120), (x - 25, y + 120), (x - 25, y + 150)], C_GND)
    d.ground(x - 25, y + 150)
    d.lines(x + 8, y + 142, ["ADDR to GND:", "address 0x%02X (adc_address %d)" % (address, address)], 10, color=C_NOTE)
    # sense inputs with the filter: 1 kOhm in each line, 100 nF across each pair
    for n, ay in enumerate(AIN_Y):
        d.text(x + w - 8, ay + 4, "AIN%d" % n, 11, "end")
    for pair in (0, 1):
        top, bottom = AIN_Y[2 * pair], AIN_Y[2 * pair + 1]
        d.capacitor_v(535, top, bottom, "100 nF")
    for n, ay in enumerate(AIN_Y):
        d.line([(x + w, ay), (560, ay)], C_SENSE)
        d.resistor_h(560, 600, ay, "1 kΩ" if n == 0 else "", C_SENSE)
    d.lines(
        x, 850, ["Input filter and protection: 1 kΩ in each", "sense wire, 100 nF across each pair."], 11, color=C_NOTE
    )


def draw_sense_wires(d: Drawing, columns) -> None:
    """AIN0..3 run under the loops and up to the thermocouple terminals."""
    for n, ay in enumerate(AIN_Y):
        column = columns[n // 2]
        target_x = column if n % 2 == 0 else column + 60
        turn = AIN_TURN_X[n]
        d.line([(600, ay), (turn, ay), (turn, TRACK_Y[n]), (target_x, TRACK_Y[n]), (target_x, LOOP_BOTTOM)], C_SENSE)
        d.text(target_x + (-6 if n % 2 == 0 else 6), TRACK_Y[n] - 6, "AIN%d %s" % (n, "+" if n % 2 == 0 else "−"),
               10, "end" if n % 2 == 0 else "start", color=C_SENSE)  # fmt: skip


def draw_driver(d: Drawing, x: int, burner, n: int) -> None:
    """Relay coil with its flyback diode, NPN driver, base resistor and pull-down."""
    label = "K%d" % (n + 1)
    d.supply(x + 100, 305, "5 V", C_5V)
    d.line([(x + 100, 305), (x + 100, 380), (x + 110, 380)], C_5V)
    d.dot(x + 100, 340, C_5V, 3)
    d.diode_h(x + 100, x + 210, 340, "flyback diode 1N4148")
    d.line([(x + 210, 340), (x + 210, 380)], C_5V)
    d.dot(x + 210, 380, C_CTRL, 3)
    d.coil_h(x + 110, x + 170, 380)
    d.text(x + 90, 400, "%s coil" % label, 12, "end", "bold")
    d.line([(x + 170, 380), (x + 210, 380), (x + 210, 415)], C_CTRL)
    d.npn(x + 222, 432)
    d.line([(x + 210, 449), (x + 210, 462)], C_GND)
    d.ground(x + 210, 462)
    d.lines(x + 196, 468, ["NPN", "BC337 or", "2N2222"], 10, "end", color=C_NOTE, step=11)
    # control line from the ESP32, base resistor, pull-down
    top = CONTROL_Y[n]
    d.line([(ESP[0] + ESP[2], top), (x + 250, top), (x + 250, 260)], C_CTRL)
    d.text(x + 244, top - 6, "GPIO%d (relay_pin)" % burner["relay_pin"], 11, "end", color=C_CTRL)
    d.dot(x + 250, 260, C_CTRL, 3)
    d.resistor_v(x + 250, 260, 432, "", C_CTRL)
    d.text(x + 258, 372, "1 kΩ", 11, color=C_NOTE)
    d.line([(x + 250, 432), (x + 230, 432)], C_CTRL)
    d.line([(x + 250, 260), (x + 285, 260)], C_CTRL)
    d.resistor_v(x + 285, 260, 330, "", C_CTRL)
    d.text(x + 293, 300, "10 kΩ", 11, color=C_NOTE)
    d.ground(x + 285, 330)
    d.lines(x + 262, 464, ["pull-down: relay", "off while booting"], 10, color=C_NOTE, step=12)
    # mechanical link from the coil to its contact
    d.line([(x + 140, 390), (x + 140, LOOP_TOP - 10)], C_NOTE, 1.5, "4,4")


def draw_loop(d: Drawing, x: int, burner, n: int) -> None:
    """One burner: thermocouple -> relay contact -> magnet unit -> hob body."""
    top, bottom = LOOP_TOP, LOOP_BOTTOM
    label = "K%d" % (n + 1)
    # gas valve body behind the magnet unit
    d.rect(x + 200, top + 28, 118, 170, fill="#e9ecef", stroke="#777777", rx=10)
    d.line([(x + 318, top + 150), (x + 352, top + 150)], C_GAS, 5, "7,5")
    d.lines(x + 326, top + 168, ["gas"], 11, color=C_NOTE)
    d.lines(x + 253, top + 150, ["gas valve", "+ magnet", "unit"], 10, "end", C_NOTE, 12)
    # the + conductor: thermocouple + terminal, up, across to the contact
    d.line([(x, bottom), (x, top), (x + 115, top)], C_LOOP, 4)
    d.ring(x + 115, top, C_LOOP)
    d.ring(x + 165, top, C_LOOP)
    d.line([(x + 115, top), (x + 161, top - 16)], C_TEXT, 3)  # open: normally-open contact at rest
    d.line([(x + 165, top), (x + 260, top), (x + 260, top + 60)], C_LOOP, 4)
    d.magnet_coil_v(x + 260, top + 60, top + 140)
    d.line([(x + 260, top + 140), (x + 260, bottom), (x + 60, bottom)], C_LOOP, 4)
    d.text(x + 192, top - 24, "%s contact" % label, 12, "start", "bold")
    d.text(x + 192, top - 10, "normally open", 10, "start", color=C_NOTE)
    # adapter lead: the + wire broken out to the relay contact
    d.rect(x + 95, top - 34, 90, 50, fill="none", stroke=C_NOTE, width=1.2, rx=8, dash="3,3")
    d.lines(x + 140, top + 34, ["adapter lead", "(thermocouple interrupter)", "breaks out the + wire"], 10,
            "middle", C_NOTE, 12, italic=True)  # fmt: skip
    d.text(x + 110, top + 112, "burner %s" % burner["id"], 16, "middle", "bold")
    d.text(x + 110, top + 130, "%s closed: the magnet holds" % label, 10, "middle", color=C_NOTE)
    d.text(x + 110, top + 143, "%s open: the valve shuts" % label, 10, "middle", color=C_NOTE)
    # hob body: the thermocouple sheath and the magnet unit's return
    d.text(x + 160, bottom - 8, "hob body (−)", 11, "middle", color=C_NOTE)
    d.dot(x + 200, bottom, C_LOOP, 3)
    d.ground(x + 200, bottom)
    d.lines(x + 214, bottom + 34, ["= ADS1115 GND", "(one wire)"], 10, color=C_NOTE, step=12)
    # the thermocouple: two metals meeting in the flame
    d.flame(x + 30, bottom + 74)
    d.line([(x, bottom), (x + 30, bottom + 48)], C_LOOP, 4)
    d.line([(x + 60, bottom), (x + 30, bottom + 48)], "#8d6e1f", 4)
    d.dot(x + 30, bottom + 48, C_TEXT, 4)
    d.dot(x, bottom, C_SENSE, 4)
    d.dot(x + 60, bottom, C_SENSE, 4)
    d.text(x - 8, bottom - 8, "+", 16, "end", "bold", C_LOOP)
    d.text(x + 66, bottom - 8, "−", 16, "start", "bold", C_LOOP)
    d.lines(x + 66, bottom + 56, ["thermocouple", "in the flame"], 10, color=C_NOTE, step=12)
    d.text(x + 8, bottom - 60, "measured here,", 10, color=C_SENSE)
    d.text(x + 8, bottom - 48, "upstream of %s" % label, 10, color=C_SENSE)


def draw_notes(d: Drawing, s) -> None:
    if s["relay_active_high"]:
        first = [
            "relay_active_high: true: the pin goes high to close the loop; a dead or unpowered controller",
            "leaves every contact open and the gas shuts. Closing a contact never opens gas: only the knob can.",
        ]
    else:
        first = [
            "relay_active_high: false (normally-closed wiring): the pin goes low to close the loop; a dead",
            "controller leaves the hob working without protection. Closing a contact never opens gas.",
        ]
    d.lines(
        30, 905,
        first + [
            "The switch in the loop must be ≤ 10 mΩ (gold-clad signal relay or low-Rds(on) MOSFET).",
            "Details, parts and the installation check: docs/hardware.md.",
        ],
        11, color=C_NOTE, step=15,
    )  # fmt: skip


def build(settings=None) -> str:
    s = settings or defaults()
    burners = s["burners"][:2]
    columns = [760, 1120][: len(burners)]
    d = Drawing(WIDTH, HEIGHT)
    draw_title(d, burners)
    draw_legend(d)
    draw_power(d)
    draw_esp32(d, s)
    draw_ads1115(d, s)
    for n, (x, burner) in enumerate(zip(columns, burners, strict=True)):
        draw_driver(d, x, burner, n)
        draw_loop(d, x, burner, n)
    draw_sense_wires(d, columns)
    draw_notes(d, s)
    return d.svg()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: wiring_svg.py OUTPUT.svg", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(build(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

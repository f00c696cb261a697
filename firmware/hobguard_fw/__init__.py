# hobguard firmware package (MicroPython on the ESP32; also imported by the
# host and the simulator under CPython).
VERSION = "0.1.0"

# hobguard firmware package (MicroPython on the ESP32; also imported by the
# host and the simulator under CPython).
VERSION = "0.1.0"
# The board's network set-up (Wi-Fi name and password, device key, port):
# read by wifi.py; named here so a board without one loads no network code.
SECRETS_FILE = "hobguard_secrets.json"
# Which copy of the firmware the boot loader (main.py) runs; written by the
# boot loader and by ota.py (docs/updates.md, "The marker file").
BOOT_FILE = "hobguard_boot.json"

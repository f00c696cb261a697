"""`hobguard bridge`: the service's command line. The options build a
`BridgeConfig` (config.py, with the TOML file and the environment); `run`
serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import signal
import ssl
import sys
import threading
from typing import Any

from . import config as config_mod
from .service import Bridge

log = logging.getLogger("hobguard.bridge")

EPILOG = """\
examples:
  hobguard bridge --serial /dev/ttyUSB0 --broker mqtt://localhost
  hobguard bridge --device tcp://hobguard-hob-1a2b3c.local --key-file /etc/hobguard/hob-1a2b3c.key
  hobguard bridge --device tcp://192.168.1.40 --key-file hob-a.key \\
      --device tcp://192.168.1.41:7343 --key-file hob-b.key --serial /dev/ttyUSB0
  hobguard bridge --serial /dev/ttyUSB0 --serial /dev/ttyUSB1 \\
      --broker mqtts://hobguard@broker.lan --password-file /etc/hobguard/mqtt-password \\
      --ca-cert /etc/hobguard/ca.crt --bridge-id kitchen
  hobguard --log-level debug bridge --config /etc/hobguard/bridge.toml

The password can also come from the environment variable HOBGUARD_MQTT_PASSWORD
(preferred over --password, which other users can see in the process list).
Options given here override the config file. Documentation: docs/bridge.md.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bridge",
        help="the service: devices on the network or on serial ports <-> MQTT and Home Assistant",
        description="Connects hobguard devices (on the network, tcp://, or on serial ports) to an MQTT\n"
        "broker: publishes state, events, availability and Home Assistant discovery; turns\n"
        "MQTT commands into device commands (checked first: a bad or retained command is\n"
        "rejected, never sent). Runs until stopped (SIGTERM or Ctrl-C).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--serial",
        action="append",
        metavar="PORT",
        help="serial port of a device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…; repeat for more devices "
        "(default: [serial] ports in the config file)",
    )
    p.add_argument(
        "--device",
        action="append",
        metavar="tcp://HOST[:PORT]",
        help="a device on the network (port 7343 unless given; HOST may be hobguard-<id>.local); repeat for "
        "more devices, each with its own --key-file (default: the [[device]] tables of the config file)",
    )
    p.add_argument(
        "--key-file",
        action="append",
        metavar="FILE",
        help="the key of a --device (64 hex digits, from hobguard keygen; keep it mode 0600): one per "
        "--device, in the same order",
    )
    p.add_argument(
        "--broker",
        metavar="URL",
        help="MQTT broker: mqtt://[user[:pass]@]host[:port] (port 1883) or mqtts://… for TLS "
        "(port 8883) (default: mqtt://localhost:1883)",
    )
    p.add_argument("--config", metavar="FILE", help="TOML config file (example: docs/bridge.example.toml)")
    p.add_argument(
        "--bridge-id",
        metavar="ID",
        help="this bridge's id in hobguard/bridge/ID/availability (default: the host name)",
    )
    p.add_argument("--base-topic", metavar="TOPIC", help="MQTT base topic (default: hobguard)")
    p.add_argument(
        "--discovery-prefix", metavar="PREFIX", help="Home Assistant discovery prefix (default: homeassistant)"
    )
    p.add_argument("--no-discovery", action="store_true", help="do not publish Home Assistant discovery")
    p.add_argument("--username", metavar="USER", help="MQTT user name (default: from the URL, else none)")
    p.add_argument(
        "--password", metavar="PASSWORD", help="MQTT password; visible to other local users: prefer the next two"
    )
    p.add_argument("--password-file", metavar="FILE", help="read the MQTT password from FILE (first line)")
    p.add_argument(
        "--ca-cert", metavar="FILE", help="CA certificate(s) to check the broker's TLS certificate (turns TLS on)"
    )
    p.add_argument("--client-cert", metavar="FILE", help="client certificate for TLS client authentication")
    p.add_argument("--client-key", metavar="FILE", help="private key of --client-cert")
    p.add_argument(
        "--tls-insecure",
        action="store_true",
        help="FOR TESTS ONLY: do not check that the broker's certificate names the host",
    )
    p.add_argument(
        "--state-file",
        metavar="FILE",
        help="where to remember published discovery topics, to clear stale ones "
        "(default: $STATE_DIRECTORY or ~/.local/state/hobguard/bridge-ID.json)",
    )
    p.add_argument(
        "--request-timeout",
        dest="request_timeout_s",
        type=float,
        metavar="S",
        help="seconds to wait for a device's answer before reporting a timeout (default: 5)",
    )
    p.add_argument(
        "--offline-after",
        dest="offline_after_s",
        type=float,
        metavar="S",
        help="seconds of silence after which a device is offline (default: 3 x its heartbeat, 30 s by default)",
    )
    p.add_argument("--baudrate", type=int, metavar="BAUD", help="serial speed (default: 115200)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        file_data = config_mod.load_file(args.config) if args.config else None
        config = config_mod.build(args, file_data)
    except config_mod.ConfigError as err:
        print(f"hobguard bridge: {err}", file=sys.stderr)
        return 2
    if not config.serial_ports and not config.devices:
        print(
            "hobguard bridge: no device: give --device tcp://HOST --key-file FILE (a device on the network) or "
            "--serial PORT (one on a USB cable), or [[device]] tables / [serial] ports in --config",
            file=sys.stderr,
        )
        return 2
    try:
        bridge = Bridge(config)
    except (config_mod.ConfigError, ssl.SSLError, OSError, ValueError) as err:
        # config.build has checked what it can; whatever is left is still a
        # configuration problem, said in one line (never a password: paho and
        # ssl do not put it in their messages).
        print(f"hobguard bridge: cannot start: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bridge.start()
    try:
        while not stop.wait(3600):
            pass
    finally:
        bridge.stop()
    return 0

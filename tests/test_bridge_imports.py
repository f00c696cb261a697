"""The service stands apart from the development tools: importing every
module of hobguard.bridge, and starting to build a bridge, loads neither the
simulator, nor the plotting library, nor the embedded broker of the demo.
A later `pip install hobguard` brings only the service's dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

FORBIDDEN = ("hobguard_sim", "matplotlib", "amqtt")

PROBE = """
import importlib, json, pkgutil, sys
import hobguard.bridge
names = sorted(m.name for m in pkgutil.walk_packages(hobguard.bridge.__path__, "hobguard.bridge."))
for name in names + sys.argv[1:]:
    importlib.import_module(name)
from hobguard.bridge.service import Bridge
from hobguard.testing import bridge_config
Bridge(bridge_config(serial=["/dev/null-not-opened"], state_file="/dev/null-not-written"))  # starts nothing
print(json.dumps({"modules": names, "loaded": sorted(sys.modules)}))
"""


def _loaded(*extra: str) -> tuple[list[str], list[str]]:
    paths = [str(REPO / "host"), str(REPO / "firmware"), str(REPO / "sim")]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": ":".join(paths), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    return report["modules"], report["loaded"]


def _forbidden(loaded: list[str]) -> list[str]:
    return [name for name in loaded if name.split(".")[0] in FORBIDDEN]


def test_the_bridge_loads_no_simulator_plotting_or_embedded_broker() -> None:
    modules, loaded = _loaded()
    # Every part of the service was imported (not an empty package).
    for part in ("service", "commands", "state", "announce", "discovery", "device_link", "edge", "mqtt", "netlink"):
        assert f"hobguard.bridge.{part}" in modules
    assert "paho.mqtt.client" in loaded and "serial" in loaded
    assert _forbidden(loaded) == []


def test_the_check_sees_a_forbidden_import() -> None:
    """The probe itself: a module that pulls in the simulator is caught."""
    _, loaded = _loaded("hobguard_sim.physics")
    assert "hobguard_sim" in _forbidden(loaded)

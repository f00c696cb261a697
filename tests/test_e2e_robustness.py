"""End to end, when things fail: the bridge killed and restarted (last
will), the serial port unplugged and back, the broker restarted, and a
broker that wants TLS and a password."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, SIM_DEVICE_ID, TLS_USER
from hobguard.testing import wait_for

pytestmark = pytest.mark.e2e

DEV = SIM_DEVICE_ID


def start_bridge_process(broker_url: str, port: str, base: str, prefix: str, workdir: Path, *extra: str):
    log_path = workdir / f"bridge-{len(list(workdir.glob('bridge-*.log')))}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hobguard.cli",
            "--log-level",
            "info",
            "bridge",
            "--serial",
            port,
            "--broker",
            broker_url,
            "--bridge-id",
            "proc",
            "--base-topic",
            base,
            "--discovery-prefix",
            prefix,
            "--state-file",
            str(workdir / "state.json"),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return proc, log_path


def test_bridge_killed_last_will_then_restarted(
    mosquitto, sim_device_factory, recorder_factory, topic_prefix, tmp_path
) -> None:
    sim = sim_device_factory(speed=20)
    base, prefix = f"{topic_prefix}/hobguard", f"{topic_prefix}/homeassistant"
    rec = recorder_factory(mosquitto.url, [f"{base}/#"])
    bridge_topic = f"{base}/bridge/proc/availability"
    proc, log_path = start_bridge_process(mosquitto.url, str(sim.link), base, prefix, tmp_path)
    try:
        rec.wait(lambda m: m.topic == bridge_topic and m.payload == b"online", 15, what="bridge online")
        rec.wait(lambda m: m.topic == f"{base}/{DEV}/availability" and m.payload == b"online", 15, what="device online")
        # Killed without a word: the broker publishes the last will.
        mark = rec.mark()
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        rec.wait(lambda m: m.topic == bridge_topic and m.payload == b"offline", 15, since=mark, what="last will")
        # Restarted: online again, and the device with it.
        mark = rec.mark()
        proc, log_path = start_bridge_process(mosquitto.url, str(sim.link), base, prefix, tmp_path)
        rec.wait(lambda m: m.topic == bridge_topic and m.payload == b"online", 15, since=mark, what="bridge back")
        # States again, every flame read: past the hob's boot (HobRig.wait_booted).
        for burner in ("left", "right"):
            rec.wait(
                lambda m, t=f"{base}/{DEV}/{burner}/state": (
                    m.topic == t and m.json()["relay"] == "closed" and m.json()["flame"] == "off"
                ),
                15,
                since=mark,
                what=f"{burner} state again",
            )
        # And it works: a command is carried out.
        mark = rec.mark()
        rec.publish(f"{base}/{DEV}/left/timer/set", "15")
        rec.wait(
            lambda m: m.topic == f"{base}/{DEV}/event" and m.json()["event_type"] == "timer_set",
            15,
            since=mark,
            what="timer_set event",
        )
        # A clean stop says offline for the bridge and its device, exit 0.
        mark = rec.mark()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        rec.wait(lambda m: m.topic == bridge_topic and m.payload == b"offline", 5, since=mark)
        rec.wait(lambda m: m.topic == f"{base}/{DEV}/availability" and m.payload == b"offline", 5, since=mark)
        log_text = log_path.read_text()
        assert "timer_set(burner=left minutes=15) → ok in" in log_text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serial_port_unplugged_and_back(mosquitto, rig_factory, topic_prefix, tmp_path) -> None:
    from hobguard_sim.device import SimDevice
    from hobguard_sim.realtime import PtyDevice

    link_path = tmp_path / "hob.tty"
    pty = PtyDevice(SimDevice(), speed=20, link_path=link_path)
    pty.start()
    try:
        rig = rig_factory(mosquitto.url, [str(link_path)], topic_prefix)
        rig.wait_online(DEV)
        availability = rig.topic(DEV, "availability")
        mark = rig.recorder.mark()
        pty.close_pty()  # unplugged
        rig.recorder.wait(lambda m: m.topic == availability and m.payload == b"offline", 10, since=mark)
        # A command meanwhile is rejected at once: the device is not there.
        mark2 = rig.send(DEV, "left/gas/set", "CLOSE")
        rejected = rig.wait_event(DEV, lambda e: e["event_type"] == "rejected", since=mark2)
        assert rejected["reason"] == "device_offline"
        pty.reopen_pty()  # plugged back in (a new pty behind the same link)
        rig.wait_online(DEV, since=mark2)
        rig.wait_burner(DEV, "left", lambda s: True, since=mark2)
        mark = rig.send(DEV, "left/gas/set", "CLOSE")
        cut = rig.wait_event(DEV, lambda e: e["event_type"] == "cut", since=mark)
        assert cut["burner"] == "left" and cut["reason"] == "remote"
        assert rig.bridge.links[0].stats.opens >= 2
    finally:
        pty.stop()


def test_broker_restarted_bridge_reconnects_and_republishes(
    own_mosquitto, sim_device_factory, rig_factory, topic_prefix
) -> None:
    sim = sim_device_factory(speed=20)
    rig = rig_factory(own_mosquitto.url, [str(sim.link)], topic_prefix)
    rig.wait_booted(DEV)  # past the boot: the command at the end finds the link serving
    rec = rig.recorder
    valve = f"{rig.discovery_prefix}/valve/{DEV}/left_gas/config"
    rec.wait(lambda m: m.topic == valve)
    connections = rig.bridge.mqtt.connections
    mark = rec.mark()
    own_mosquitto.restart()  # persistence off: every retained message is gone
    wait_for(lambda: rig.bridge.mqtt.connections > connections, 20, what="the bridge reconnecting")
    rec.wait(lambda m: m.topic == f"{rig.base}/bridge/e2e/availability" and m.payload == b"online", 20, since=mark)
    rec.wait(lambda m: m.topic == valve and m.payload, 20, since=mark, what="discovery re-published")
    rec.wait(lambda m: m.topic == rig.topic(DEV, "availability"), 20, since=mark, what="availability re-published")
    # The re-publishing holds the bridge's lock: a state frame after it means it is done.
    mark = rec.mark()
    rec.wait(lambda m: m.topic == rig.topic(DEV, "state"), 20, since=mark, what="a state frame after it")
    # The broker really holds them again (a fresh subscriber gets them retained).
    fresh = type(rec)(own_mosquitto.url, [f"{rig.base}/#", f"{rig.discovery_prefix}/#"])
    try:
        fresh.wait(lambda m: m.topic == valve and m.retain, 10)
        fresh.wait(lambda m: m.topic == rig.topic(DEV, "availability") and m.retain and m.payload == b"online", 10)
        fresh.wait(lambda m: m.topic == rig.topic(DEV, "right", "state") and m.retain, 10)
    finally:
        fresh.close()
    # Commands work again.
    mark = rig.send(DEV, "lock/set", "ON")
    rig.wait_event(DEV, lambda e: e["event_type"] == "lock", since=mark, timeout=15)


def test_tls_and_password(tls_mosquitto, sim_device_factory, rig_factory, topic_prefix, caplog, tmp_path) -> None:
    broker, tls = tls_mosquitto
    user, password = TLS_USER
    password_file = tmp_path / "pw"
    password_file.write_text(password + "\n")
    sim = sim_device_factory(speed=20)
    from hobguard.testing import Recorder

    url_with_user = f"mqtts://{user}:{password.replace('ä', '%C3%A4')}@127.0.0.1:{broker.port}"
    base = f"{topic_prefix}/hobguard"
    recorder = Recorder(url_with_user, [f"{base}/#"], ca=tls.ca)
    caplog.set_level(logging.DEBUG)
    rig = rig_factory(
        broker.url,
        [str(sim.link)],
        topic_prefix,
        recorder=recorder,
        username=user,
        password_file=str(password_file),
        ca_cert=str(tls.ca),
    )
    # Past the boot (as the hob fixture waits): a hello answered before the
    # device's boot event is asked again after it, and a command in between
    # is refused as device_offline.
    rig.wait_booted(DEV)
    mark = rig.send(DEV, "right/timer/set", "3")
    rig.wait_event(DEV, lambda e: e["event_type"] == "timer_set", since=mark)
    assert rig.bridge.config.mqtt.tls
    assert password not in caplog.text
    assert "mqtts://hobguard:***@127.0.0.1" in caplog.text


def test_tls_wrong_password_is_refused(tls_mosquitto, rig_factory, topic_prefix, tmp_path, caplog) -> None:
    broker, tls = tls_mosquitto
    user, password = TLS_USER
    from hobguard.testing import Recorder

    recorder = Recorder(f"mqtts://{user}:{password.replace('ä', '%C3%A4')}@127.0.0.1:{broker.port}", ["#"], ca=tls.ca)
    caplog.set_level(logging.INFO)
    rig = rig_factory(
        broker.url,
        [str(tmp_path / "no-such-port")],
        topic_prefix,
        recorder=recorder,
        username=user,
        password="wrong-password",
        ca_cert=str(tls.ca),
    )
    wait_for(lambda: "refused the login as user 'hobguard'" in caplog.text, 10, what="the refusal logged")
    assert not rig.bridge.mqtt.connected.is_set()
    assert "wrong-password" not in caplog.text
    # Said once, with what to do, not once per retry.
    time.sleep(2.5)
    assert caplog.text.count("refused the login") == 1
    assert "--password-file" in caplog.text


def test_bridge_command_line(tmp_path) -> None:
    run = [sys.executable, "-m", "hobguard.cli", "bridge"]
    help_text = subprocess.run([*run, "--help"], capture_output=True, text=True, cwd=REPO, timeout=30)
    assert help_text.returncode == 0
    for option in (
        "--serial",
        "--broker",
        "--config",
        "--bridge-id",
        "--base-topic",
        "--discovery-prefix",
        "--username",
        "--password-file",
        "--ca-cert",
        "--client-cert",
        "--client-key",
        "--tls-insecure",
    ):
        assert option in help_text.stdout
    assert "default" in help_text.stdout
    missing = subprocess.run(
        [*run, "--broker", "mqtt://127.0.0.1:1"], capture_output=True, text=True, cwd=REPO, timeout=30
    )
    assert missing.returncode == 2 and "--serial" in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt]\nbroker = 'http://x'\n")
    res = subprocess.run(
        [*run, "--config", str(bad), "--serial", "/dev/null"], capture_output=True, text=True, cwd=REPO, timeout=30
    )
    assert res.returncode == 2 and "mqtt://" in res.stderr


def test_documented_mosquitto_acl_lets_the_bridge_work_and_stops_forgery(
    sim_device_factory, rig_factory, tmp_path
) -> None:
    """docs/mosquitto-acl.example, used as is: the bridge (user
    hobguard-kitchen) serves its hob, Home Assistant (user homeassistant)
    commands it, and Home Assistant cannot forge the hob's state."""
    from hobguard.testing import MOSQUITTO, MOSQUITTO_PASSWD, Mosquitto, Recorder

    if MOSQUITTO is None or MOSQUITTO_PASSWD is None:
        pytest.skip("mosquitto is not installed")
    broker = Mosquitto(
        tmp_path / "acl-broker",
        users={"hobguard-kitchen": "bridge-pw", "homeassistant": "ha-pw"},
        acl_file=REPO / "docs" / "mosquitto-acl.example",
    )
    broker.start()
    try:
        sim = sim_device_factory(speed=20)
        ha = Recorder(f"mqtt://homeassistant:ha-pw@127.0.0.1:{broker.port}", ["hobguard/#", "homeassistant/#"])
        rig = rig_factory(
            broker.url,
            [str(sim.link)],
            "unused",
            recorder=ha,
            base="hobguard",
            discovery="homeassistant",
            bridge_id="kitchen",
            username="hobguard-kitchen",
            password="bridge-pw",
        )
        # Past the boot (the hob fixture's wait): a hello answered before the
        # device's boot event is asked again after it, and a command sent in
        # between is refused as device_offline.
        rig.wait_booted(DEV)
        ha.wait(lambda m: m.topic == f"homeassistant/valve/{DEV}/left_gas/config", what="discovery visible to HA")
        ha.wait(lambda m: m.topic == f"hobguard/{DEV}/left/state", what="state visible to HA")
        # Home Assistant commands the hob.
        mark = rig.send(DEV, "left/timer/set", "7")
        rig.wait_event(DEV, lambda e: e["event_type"] == "timer_set", since=mark)
        # Home Assistant cannot forge state or events: the broker drops them.
        mark = ha.mark()
        ha.publish(f"hobguard/{DEV}/left/state", '{"gas": "closed", "forged": true}')
        ha.publish(f"hobguard/{DEV}/event", '{"event_type": "cut", "forged": true}')
        marker = rig.send(DEV, "left/gas/set", "marker")  # a rejected event comes back after them
        rig.wait_event(DEV, lambda e: e.get("payload") == "marker", since=marker)
        assert not [m for m in ha.messages[mark:] if b"forged" in m.payload]
    finally:
        broker.stop()

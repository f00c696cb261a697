"""`hobguard demo` runs its story to the end by itself and exits 0: with the
embedded amqtt broker, and with a given broker (a throwaway Mosquitto); the
hob over the Wi-Fi link by default, over a pty with --link usb."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.e2e


def run_demo(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hobguard.cli", "demo", "--speed", "80", *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_demo_with_embedded_broker(tmp_path) -> None:
    plot = tmp_path / "demo.png"
    done = run_demo("--plot", str(plot))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for phrase in (
        "embedded broker (amqtt)",
        "The hob is on the Wi-Fi (loopback here): its firmware listens on tcp://127.0.0.1:",
        "The bridge found hob hob-1a2b3c over Wi-Fi at tcp://127.0.0.1:",
        "Home Assistant: left: flame detected",
        "Home Assistant: right: flame detected",
        "left/timer/set = 3",
        "Home Assistant: rejected right: open_refused",
        "Home Assistant: CUT right: a remote command",
        "Home Assistant: WARNING left: cut in",
        "Home Assistant: CUT left: the timer ran out",
        "Home Assistant: left: cut verified",
        "OK: 11/11 expectations met",
        "the hob over Wi-Fi.",
    ):
        assert phrase in out, phrase
    assert plot.stat().st_size > 10_000
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_with_a_given_broker_quiet(mosquitto, tmp_path, topic_prefix) -> None:
    done = run_demo("--broker", mosquitto.url, "--quiet", "--no-plot", "--base-topic", f"{topic_prefix}/hobguard")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("OK: ") and lines[0].endswith("the hob over Wi-Fi."), lines


def test_demo_over_a_usb_cable(mosquitto, topic_prefix) -> None:
    """--link usb: the old way, the hob behind a pty the bridge opens as a serial port."""
    done = run_demo("--link", "usb", "--broker", mosquitto.url, "--no-plot", "--base-topic", f"{topic_prefix}/hobguard")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The hob is on a USB cable" in done.stdout and "tcp://" not in done.stdout
    assert done.stdout.rstrip().endswith("the hob on a USB cable."), done.stdout[-300:]


def test_demo_refuses_an_unknown_link() -> None:
    done = run_demo("--link", "bluetooth")
    assert done.returncode == 2 and "--link" in done.stderr


def test_demo_on_a_shared_broker_uses_its_own_ids_and_leaves_nothing_behind(mosquitto, recorder_factory) -> None:
    """`hobguard demo --broker` next to a real hob (here: its retained
    announcement, as a bridge leaves it): the demo neither takes that hob's
    id nor touches its topics, and when it ends, nothing it announced is
    left on the broker — no ghost hob in Home Assistant."""
    import time

    from conftest import SIM_DEVICE_ID

    base, prefix = "hobguard", "homeassistant"  # the defaults, as a real installation has them
    real = {
        f"{base}/{SIM_DEVICE_ID}/availability": b"online",
        f"{base}/{SIM_DEVICE_ID}/left/state": b'{"gas": "closed", "flame": "off"}',
        f"{prefix}/valve/{SIM_DEVICE_ID}/left_gas/config": b'{"name": "Left gas"}',
        f"{base}/bridge/kitchen/availability": b"online",
    }
    owner = recorder_factory(mosquitto.url, ["test/owner/unused"])
    for topic, payload in real.items():
        owner.publish(topic, payload, retain=True)
    watcher = recorder_factory(mosquitto.url, [f"{base}/#", f"{prefix}/#"])
    try:
        done = run_demo("--broker", mosquitto.url, "--quiet", "--no-plot")
        assert done.returncode == 0, done.stdout + done.stderr
        seen = {m.topic for m in watcher.messages}
        demo_topics = seen - set(real)
        assert demo_topics, "the demo published nothing?"
        ids = {t.split("/")[1] for t in demo_topics if t.startswith(f"{base}/") and "/bridge/" not in t}
        assert len(ids) == 1 and next(iter(ids)).startswith("demo-"), ids
        assert not [m for m in watcher.messages if m.topic in real and not m.retain], (
            "the demo wrote to the hob's topics"
        )
        # What a newcomer (Home Assistant starting now) finds retained: only the real hob.
        fresh = recorder_factory(mosquitto.url, [f"{base}/#", f"{prefix}/#"])
        time.sleep(0.5)
        left = {m.topic: m.payload for m in fresh.messages if m.retain}
        assert left == real, sorted(set(left) ^ set(real))
    finally:
        for topic in real:
            owner.publish(topic, b"", retain=True)

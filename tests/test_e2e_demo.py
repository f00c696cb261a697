"""`hobguard demo` runs its story to the end by itself and exits 0: with the
embedded amqtt broker, and with a given broker (a throwaway Mosquitto)."""

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
        "event ignited: Left flame ON",
        "event ignited: Right flame ON",
        "left/timer/set = 3",
        "event rejected: Right",
        "event cut: Right gas cut, reason remote",
        "event warning: Left",
        "event cut: Left gas cut, reason timer",
        "event cut_verified: Left",
        "OK: 11/11 expectations met",
    ):
        assert phrase in out, phrase
    assert plot.stat().st_size > 10_000
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_with_a_given_broker_quiet(mosquitto, tmp_path, topic_prefix) -> None:
    done = run_demo("--broker", mosquitto.url, "--quiet", "--no-plot", "--base-topic", f"{topic_prefix}/hobguard")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("OK: ")

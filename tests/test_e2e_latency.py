"""Command latency, measured (reported, not asserted against a threshold):
from an MQTT publish of `<burner>/gas/set CLOSE` to the burner state showing
the relay open, which the bridge publishes from the device's `ok` reply.

Run `pytest -s -m e2e tests/test_e2e_latency.py` to see the figures.
"""

from __future__ import annotations

import statistics
import time

import pytest
from conftest import SIM_DEVICE_ID

pytestmark = pytest.mark.e2e

CUTS = 20


def test_command_latency_publish_to_relay_open(hob, record_property) -> None:
    rig, sim, dev = hob
    rec = rig.recorder
    topic = rig.topic(dev, "left", "state")
    latencies = []
    replies = []  # publish → the device's ok reply reaching the bridge
    replied_at: list[float] = []
    command_done = rig.bridge._command_done

    def timed(*args, **kwargs):  # same process: one monotonic clock for both ends
        replied_at.append(time.monotonic())
        return command_done(*args, **kwargs)

    rig.bridge._command_done = timed
    after_open = 0
    for _ in range(CUTS):
        # The previous cut pulse is over: the relay is closed again. Only a
        # state published after the last relay-open one says so (a heartbeat
        # sent before the device read the last CLOSE would say it too soon,
        # and a CLOSE sent during the pulse may change nothing the bridge
        # would publish again).
        rig.wait_burner(dev, "left", lambda s: s["relay"] == "closed" and not s["cutting"], since=after_open)
        mark = rec.mark()
        sent_at = rec.publish(rig.topic(dev, "left", "gas", "set"), "CLOSE")
        seen = rec.wait(lambda m: m.topic == topic and m.json()["relay"] == "open", 20, since=mark, what="relay open")
        after_open = seen.index + 1
        latencies.append((seen.at - sent_at) * 1000)
        replies.append((replied_at[-1] - sent_at) * 1000)
    assert len(latencies) == CUTS and all(lat > 0 for lat in latencies)
    assert len(replies) == CUTS and all(0 < r <= lat for r, lat in zip(replies, latencies, strict=True))
    median = statistics.median(latencies)
    record_property("latency_median_ms", round(median, 2))
    record_property("reply_median_ms", round(statistics.median(replies), 2))
    print(
        f"\ncommand latency ({CUTS} cuts of {SIM_DEVICE_ID}, simulated at 20x behind a pty):"
        f"\n  MQTT publish → device's ok reply (relay open) at the bridge: median {statistics.median(replies):.1f} ms,"
        f" min {min(replies):.1f}, max {max(replies):.1f}"
        f"\n  MQTT publish → relay-open burner state at a subscriber: median {median:.1f} ms,"
        f" min {min(latencies):.1f}, max {max(latencies):.1f}"
    )

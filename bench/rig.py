"""Processes for the bridge benchmarks: a throwaway Mosquitto on a free
port, the (instrumented) bridge, simulated devices behind ptys, and an MQTT
client that records what it sees with time.monotonic_ns() stamps
(hobguard.testing.Recorder), all in one `Rig` that stops them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from hobguard.testing import Mosquitto, Recorder, bridge_argv

from .common import REPO


def start_broker(workdir: Path, tcp_nodelay: bool = False) -> Mosquitto:
    """A started throwaway Mosquitto, by default configured as Mosquitto
    ships (Nagle on), with room for the load benchmarks' queues."""
    broker = Mosquitto(workdir, tcp_nodelay=tcp_nodelay, extra_config=("max_queued_messages 100000",))
    broker.start()
    return broker


def stop_process(proc: subprocess.Popen, quit_line: str | None = None) -> None:
    if proc.poll() is None and quit_line is not None and proc.stdin is not None:
        try:
            proc.stdin.write(quit_line + "\n")
            proc.stdin.flush()
            proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def python(*args: str, stdin: bool = False, log: Path | None = None, stdout: bool = False) -> subprocess.Popen:
    env = dict(os.environ)
    paths = [str(REPO), str(REPO / "host"), str(REPO / "firmware"), str(REPO / "sim")]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
        stderr=open(log, "w") if log else subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
    )


class Rig:
    """One benchmark's world, torn down in reverse on leaving the `with`:
    a started throwaway broker (`broker`), the processes started through
    `start`, the recording clients made through `record`."""

    def __init__(self, workdir: Path, tcp_nodelay: bool = False) -> None:
        self.workdir = workdir
        self.broker = start_broker(workdir, tcp_nodelay=tcp_nodelay)
        self._procs: list[tuple[subprocess.Popen, str | None]] = []
        self._recorders: list[Recorder] = []

    def start(self, *args: str, quit_line: str | None = None, **kw: Any) -> subprocess.Popen:
        """python(*args, **kw), stopped at the end (with `quit_line` on its stdin first)."""
        proc = python(*args, **kw)
        self._procs.append((proc, quit_line))
        return proc

    def bridge_argv(self, ports: list[str], base: str = "bench/hobguard",
                    devices: Sequence[tuple[str, Path]] = ()) -> list[str]:  # fmt: skip
        """`hobguard bridge` arguments for this rig's broker, the serial
        `ports` and the network `devices` ((tcp:// URL, key file) pairs)."""
        net = {"device": [u for u, _ in devices], "key_file": [k for _, k in devices]} if devices else {}
        return bridge_argv(broker=self.broker.url, serial=ports, bridge_id="bench", base_topic=base,
                           discovery_prefix="bench/homeassistant", state_file=self.workdir / "bridge-state.json",
                           **net)  # fmt: skip

    def record(self, topics: list[str]) -> Recorder:
        """A client recording every message on `topics` (QoS 0, stamped by time.monotonic_ns())."""
        recorder = Recorder(self.broker.url, topics, qos=0)
        self._recorders.append(recorder)
        return recorder

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: Any) -> None:
        for recorder in self._recorders:
            recorder.close()
        for proc, quit_line in reversed(self._procs):
            stop_process(proc, quit_line)
        self.broker.stop()

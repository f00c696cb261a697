"""Processes for the bridge benchmarks: a throwaway Mosquitto on a free
port, the (instrumented) bridge, simulated devices behind ptys, and an MQTT
client that records what it sees with time.monotonic_ns() stamps."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from hobguard.testing import Mosquitto

from .common import REPO


def Broker(workdir: Path, tcp_nodelay: bool = False) -> Mosquitto:
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


def bridge_args(broker: Broker, ports: list[str], workdir: Path, base: str = "bench/hobguard") -> list[str]:
    args = ["--broker", broker.url, "--bridge-id", "bench", "--base-topic", base]
    args += ["--discovery-prefix", "bench/homeassistant", "--state-file", str(workdir / "bridge-state.json")]
    for port in ports:
        args += ["--serial", port]
    return args


class Client:
    """An MQTT client recording every message with its arrival time (ns)."""

    def __init__(self, broker: Broker, subscribe: list[str]) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[int, str, bytes]] = []
        self.latest: dict[str, bytes] = {}
        self.cond = threading.Condition()
        self.connected = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{os.getpid()}")

        def on_connect(client, userdata, flags, reason, properties):  # type: ignore[no-untyped-def]
            sock = client.socket()
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.subscribe([(t, 0) for t in subscribe])
            self.connected.set()

        def on_message(client, userdata, message):  # type: ignore[no-untyped-def]
            t = time.monotonic_ns()
            with self.cond:
                self.messages.append((t, message.topic, message.payload))
                self.latest[message.topic] = message.payload
                self.cond.notify_all()

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise TimeoutError("bench MQTT client did not connect")

    def wait(self, predicate: Callable[[str, bytes], bool], since: int, timeout: float, what: str) -> int:
        """Index of the first message from `since` on that matches."""
        deadline = time.monotonic() + timeout
        with self.cond:
            index = since
            while True:
                while index < len(self.messages):
                    t, topic, payload = self.messages[index]
                    if predicate(topic, payload):
                        return index
                    index += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
                self.cond.wait(left)

    def json(self, topic: str) -> dict[str, Any] | None:
        with self.cond:
            payload = self.latest.get(topic)
        return json.loads(payload) if payload else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

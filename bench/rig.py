"""Processes for the bridge benchmarks: a throwaway Mosquitto on a free
port, the (instrumented) bridge, simulated devices behind ptys, and an MQTT
client that records what it sees with time.monotonic_ns() stamps."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .common import REPO

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Broker:
    """Mosquitto on a free localhost port (never 1883), no persistence."""

    def __init__(self, workdir: Path, tcp_nodelay: bool = False) -> None:
        if MOSQUITTO is None:
            raise RuntimeError("mosquitto is not installed (Debian package mosquitto)")
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"log_dest file {workdir / 'mosquitto.log'}\nuser {pwd.getpwuid(os.getuid()).pw_name}\n"
            "max_queued_messages 100000\n" + ("set_tcp_nodelay true\n" if tcp_nodelay else "")
        )
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_for(up, 10, "mosquitto")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc)


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

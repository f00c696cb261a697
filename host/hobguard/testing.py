"""Helpers for hobguard's own tests and benchmarks, one of each:

- `free_port`, `wait_for`: a free localhost port; polling with a deadline;
- `Mosquitto`: a throwaway broker on a free localhost port (never 1883);
- `Recorder`: a real MQTT client that subscribes and keeps every message,
  stamped with the machine-wide monotonic clock;
- `bridge_argv`, `bridge_namespace`, `bridge_config`: `hobguard bridge`
  arguments, what it parses from them, or the BridgeConfig it builds, from
  keyword arguments named like its options;
- `FakeMqtt`, `FakeLink`, `FakeMessage`, `bridge_on_fake_mqtt`,
  `serve_fake_device`: a bridge with no broker and no port, whose publishes
  and device requests are recorded, for tests that call its handlers.

Not used by the product itself; it lives here so that `tests/` and `bench/`
share one implementation.
"""

from __future__ import annotations

import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, cast

if TYPE_CHECKING:
    import argparse

    from .bridge.config import BridgeConfig
    from .bridge.device_link import DeviceLink
    from .bridge.service import Bridge, DeviceView

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or (
    "/usr/bin/mosquitto_passwd" if os.path.exists("/usr/bin/mosquitto_passwd") else None
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition", interval: float = 0.02
) -> Any:
    """Poll `predicate` until it returns something truthy; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


class Mosquitto:
    """One throwaway broker. restart() keeps the port (the broker restarts,
    clients reconnect); persistence is off, so retained messages are lost.

    tcp_nodelay: small packets go out at once (Mosquitto's default, off, adds
    ~40 ms through Nagle's algorithm and delayed ACKs)."""

    def __init__(
        self,
        workdir: Path,
        tls: TlsFiles | None = None,
        users: dict[str, str] | None = None,
        acl_file: Path | None = None,
        tcp_nodelay: bool = True,
        extra_config: tuple[str, ...] = (),
    ) -> None:
        if MOSQUITTO is None:
            raise RuntimeError("mosquitto is not installed (Debian package mosquitto)")
        self.workdir = workdir
        self.acl_file = acl_file
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.users = users or {}
        self.tcp_nodelay = tcp_nodelay
        self.extra_config = extra_config
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "mosquitto.log"
        self.conf_path = workdir / "mosquitto.conf"
        self._write_config()

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            # Running as root, mosquitto would switch to the `mosquitto` user
            # and lose access to the temp files: stay who we are.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        if self.tcp_nodelay:
            lines.append("set_tcp_nodelay true")
        if self.users:
            if MOSQUITTO_PASSWD is None:
                raise RuntimeError("mosquitto_passwd is not installed (Debian package mosquitto)")
            passwd = self.workdir / "passwd"
            passwd.write_text("")
            for user, password in self.users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), user, password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        if self.tls:
            lines += [f"cafile {self.tls.ca}", f"certfile {self.tls.cert}", f"keyfile {self.tls.key}"]
        lines += list(self.extra_config)
        self.conf_path.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert MOSQUITTO is not None  # (checked in __init__)
        proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.proc = proc

        def listening() -> bool:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                log = self.log_path.read_text() if self.log_path.exists() else ""
                raise RuntimeError(f"mosquitto exited ({proc.returncode}): {err}\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_for(listening, 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


# -- a real MQTT client that records ---------------------------------------------------


@dataclass
class Seen:
    """One message a Recorder received: `index` in its list, `at_ns` when
    it arrived (time.monotonic_ns(): one clock for every process)."""

    topic: str
    payload: bytes
    retain: bool
    index: int
    at_ns: int = field(default_factory=time.monotonic_ns)

    @property
    def at(self) -> float:
        """Arrival in time.monotonic() seconds."""
        return self.at_ns / 1e9

    @property
    def text(self) -> str:
        return self.payload.decode()

    def json(self) -> Any:
        return json.loads(self.payload)


_recorder_ids = itertools.count(1)


class Recorder:
    """A paho client that subscribes to `topics` on the broker at `url`
    (mqtt[s]://[user[:password]@]host:port; `ca`: the CA file for TLS) and
    keeps every message it receives, in order."""

    def __init__(self, url: str, topics: list[str], qos: int = 1, ca: str | Path | None = None) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        from .bridge.config import parse_broker_url

        settings = parse_broker_url(url)
        self.topics = topics
        self.qos = qos
        self.messages: list[Seen] = []
        self.latest: dict[str, Seen] = {}
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        self.disconnected = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"recorder-{os.getpid()}-{next(_recorder_ids)}"
        )
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password)
        if ca:
            self.client.tls_set(ca_certs=str(ca))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_disconnect = lambda *a: self.disconnected.set()
        self.client.connect(settings.host, settings.port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError(f"the recorder could not subscribe at {settings.url}")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        # Like the bridge: no Nagle delay behind our own PUBACKs (~40 ms per command).
        sock = client.socket()
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe([(t, self.qos) for t in self.topics])

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        at = time.monotonic_ns()
        with self.cond:
            seen = Seen(msg.topic, bytes(msg.payload), bool(msg.retain), len(self.messages), at)
            self.messages.append(seen)
            self.latest[seen.topic] = seen
            self.cond.notify_all()

    def publish(self, topic: str, payload: str | bytes, retain: bool = False, qos: int = 1) -> float:
        """Publish (and, with QoS 1, wait until the broker has it); the
        time.monotonic() just before."""
        sent_at = time.monotonic()
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(5)
        return sent_at

    def wait(self, predicate: Callable[[Seen], bool], timeout: float = 10.0, since: int = 0, what: str = "") -> Seen:
        """The first message (from index `since`) for which predicate holds;
        one that makes it raise ValueError, KeyError or TypeError does not."""
        deadline = time.monotonic() + timeout
        with self.cond:
            index = since
            while True:
                while index < len(self.messages):
                    seen = self.messages[index]
                    index += 1
                    try:
                        if predicate(seen):
                            return seen
                    except (ValueError, KeyError, TypeError):
                        pass
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "\n".join(f"  {m.topic} {m.payload[:160]!r}" for m in self.messages[-15:])
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what or 'a message'}; last:\n{tail}")
                self.cond.wait(left)

    def mark(self) -> int:
        """The index the next message will have."""
        with self.cond:
            return len(self.messages)

    def last(self, topic: str) -> Seen | None:
        with self.cond:
            return self.latest.get(topic)

    def json(self, topic: str) -> Any:
        """The last payload on `topic`, decoded; None when none came or it was empty."""
        seen = self.last(topic)
        return seen.json() if seen is not None and seen.payload else None

    def on(self, topic: str, since: int = 0) -> list[Seen]:
        with self.cond:
            return [m for m in self.messages[since:] if m.topic == topic]

    def close(self) -> None:
        # Let the network thread finish the disconnect before stopping it
        # (stopping it mid-way races on the socket inside paho).
        self.client.disconnect()
        self.disconnected.wait(2)
        self.client.loop_stop()


# -- a bridge's configuration from keyword arguments -------------------------------------


def _bridge_parser() -> argparse.ArgumentParser:
    import argparse

    from .bridge.main import register

    sub = argparse.ArgumentParser(prog="hobguard").add_subparsers()
    register(sub)
    return sub.choices["bridge"]


def bridge_argv(**options: Any) -> list[str]:
    """`hobguard bridge` arguments from keywords named like its options'
    destinations (serial, broker, bridge_id, base_topic, state_file,
    request_timeout_s, ca_cert, no_discovery, …): a list repeats the
    option, True gives a flag, None or False leaves the option out."""
    actions = {action.dest: action for action in _bridge_parser()._actions if action.option_strings}
    argv: list[str] = []
    for key, value in options.items():
        action = actions.get(key)
        if action is None or key == "help":
            raise TypeError(f"hobguard bridge has no option for {key!r}")
        flag = max(action.option_strings, key=len)
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


def bridge_namespace(**options: Any) -> argparse.Namespace:
    """What `hobguard bridge` parses from bridge_argv(**options): every
    option present, None or False where not given."""
    return _bridge_parser().parse_args(bridge_argv(**options))


def bridge_config(**options: Any) -> BridgeConfig:
    """The BridgeConfig `hobguard bridge` builds from bridge_argv(**options),
    without the environment. A keyword naming a BridgeConfig field that has
    no option (reconnect_max_s) is set afterwards. `state_file` is required
    (a test never writes the user's own); `broker` defaults to a port where
    nothing listens (a test never reaches a real broker by accident)."""
    from .bridge import config as config_mod

    if "state_file" not in options:
        raise TypeError("bridge_config needs state_file=")
    options.setdefault("broker", "mqtt://127.0.0.1:1")
    fields = {key: options.pop(key) for key in list(options) if key in ("reconnect_max_s",)}
    config = config_mod.build(bridge_namespace(**options), environ={})
    for key, value in fields.items():
        setattr(config, key, value)
    return config


# -- a bridge with no broker and no port -----------------------------------------------------


@dataclass
class FakeMessage:
    """What paho hands the bridge's on_message."""

    topic: str
    payload: bytes
    retain: bool = False
    timestamp: float = 0.0
    properties: Any = None


class Published(NamedTuple):
    topic: str
    payload: bytes
    retain: bool


class FakeMqtt:
    """Stands in for the bridge's MqttConnection: connected, MQTT 5, and
    records every publish (`published`, with the publishing thread's name
    in `threads`), checked as a broker and Home Assistant would take it
    (`violations`). `delay_s`: each publish takes that long, like a slow
    broker."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.published: list[Published] = []
        self.threads: list[str] = []
        self.violations: list[str] = []
        self.subscribed: list[str] = []
        self.instance = "fake-instance"
        self.v5 = True
        self.connected = threading.Event()
        self.connected.set()
        self._lock = threading.Lock()

    def publish(self, topic: str, payload: Any, retain: bool = False, qos: int = 1, instance: bool = False) -> None:
        from .bridge.mqtt import topic_problem

        if self.delay_s:
            time.sleep(self.delay_s)
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        problems = []
        problem = topic_problem(topic)
        if problem:
            problems.append(f"{topic!r}: {problem}")
        if len(data) > 64 * 1024:
            problems.append(f"{topic!r}: {len(data)} bytes")
        if data and not topic.endswith("/availability"):
            try:
                json.loads(data)
            except ValueError:
                problems.append(f"{topic!r}: payload is not JSON")
        with self._lock:
            self.violations += problems
            self.published.append(Published(topic, data, retain))
            self.threads.append(threading.current_thread().name)

    def count(self, topic: str) -> int:
        with self._lock:
            return sum(1 for p in self.published if p.topic == topic)

    def clear(self) -> None:
        with self._lock:
            self.published.clear()
            self.threads.clear()

    def subscribe(self, topics: list[str], qos: int = 1) -> None:
        self.subscribed += topics

    def unsubscribe(self, topics: list[str]) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self, final: list[tuple[str, str]] | None = None) -> None:
        for topic, payload in final or []:
            self.publish(topic, payload, retain=True)


class FakeLink:
    """Stands in for a DeviceLink: records each request as (cmd, args) and
    never answers. Every request must name the device it is for."""

    def __init__(self, port: str = "/dev/fake") -> None:
        self.port = port
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.since: list[float | None] = []  # each request's arrival time, as given

    def request(
        self,
        cmd: str,
        on_done: Any,
        timeout_s: float | None = None,
        *,
        for_device: str | None = None,
        since: float | None = None,
        **args: Any,
    ) -> int:
        assert for_device is not None, "every command names the device it is for"
        self.requests.append((cmd, args))
        self.since.append(since)
        return len(self.requests)

    def serves(self, device_id: str) -> bool:
        return True


def bridge_on_fake_mqtt(**options: Any) -> Bridge:
    """A Bridge built by bridge_config(**options), started nowhere, its MQTT
    connection a FakeMqtt (`bridge.mqtt`). Its handlers (`_on_message`,
    `on_hello`, `on_state`, …) can be called directly."""
    from .bridge.service import Bridge

    bridge = Bridge(bridge_config(**options))
    bridge.mqtt = FakeMqtt()  # type: ignore[assignment]
    return bridge


def serve_fake_device(bridge: Bridge, hello: dict[str, Any], link: Any = None) -> DeviceView:
    """Make `bridge` serve the device `hello` names, online, on `link` (a
    new FakeLink by default), as if it had said hello."""
    from .bridge import discovery
    from .bridge.service import DeviceView

    device = hello["device"]
    topics = discovery.Topics(bridge.base, device, bridge.config.bridge_id)
    served = cast("DeviceLink", link if link is not None else FakeLink())
    view = DeviceView(device, served, topics, hello, online=True)
    bridge.devices[device] = view
    return view

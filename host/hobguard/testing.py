"""Helpers for hobguard's own tests and benchmarks: a throwaway Mosquitto on
a free localhost port (never 1883), and polling with a deadline.

Not used by the product itself; it lives here so that `tests/` and `bench/`
share one implementation.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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

"""`hobguard sim device --listen 127.0.0.1:0 --key-file FILE` as a
subprocess, for the tests over Wi-Fi: the real firmware's network code on
real loopback sockets, its own new key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from hobguard.bridge.netlink import write_key_file

REPO = Path(__file__).resolve().parent.parent


class NetSim:
    """`hobguard sim device --listen 127.0.0.1:0 --key-file FILE`: `url` is
    its tcp:// address (the first line it prints), `pty` its USB stand-in."""

    def __init__(
        self, workdir: Path, speed: float = 20.0, settings: dict[str, Any] | None = None, args: Sequence[str] = ()
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.key_file = workdir / "hob.key"
        write_key_file(self.key_file)
        argv = [sys.executable, "-m", "hobguard.cli", "sim", "device", "--speed", str(speed)]
        argv += ["--listen", "127.0.0.1:0", "--key-file", str(self.key_file)]
        if settings is not None:
            path = workdir / "settings.json"
            path.write_text(json.dumps(settings))
            argv += ["--settings", str(path)]
        argv += list(args)  # more `sim device` options (--trace FILE, …)
        self.log_path = workdir / "sim.log"  # its stderr: `t=12.3s ACTION` for every stdin action
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=REPO
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        self.pty = self.proc.stdout.readline().strip()
        if not self.url.startswith("tcp://"):
            raise RuntimeError("sim device printed no address: " + (workdir / "sim.log").read_text())

    def act(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.act("quit")
                self.proc.wait(5)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.kill()
        self.log.close()

"""Free TCP ports for simulated hobs that listen on the loopback network.

A simulated board binds its listening port only when its simulated Wi-Fi
joins, so "port 0" is turned into a real port number before that (the
secrets file holds it, and every boot listens there again). A port taken
from the kernel's ephemeral range could meanwhile be handed out again: to a
neighbour asking for port 0, or as the local end of any outgoing connection
(the bridge's own connections to other hobs). So the ports come from below
that range, where the kernel never hands out a port by itself, starting at
a random place so that simulators in other processes rarely try the same.
"""

from __future__ import annotations

import random
import socket

FIRST = 20000  # lowest port tried


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; BSDs and macOS start higher still


def free_ports(host: str, count: int = 1) -> list[int]:
    """`count` distinct ports on `host` that are free now, below the
    ephemeral range. Raises RuntimeError when there are not that many."""
    last = max(FIRST + count, _ephemeral_start())
    span = last - FIRST
    start = random.randrange(span)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    held: list[socket.socket] = []
    try:
        for offset in range(span):
            if len(held) == count:
                break
            port = FIRST + (start + offset) % span
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            held.append(sock)
        if len(held) < count:
            raise RuntimeError(f"only {len(held)} free ports on {host} in {FIRST}..{last - 1}")
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()

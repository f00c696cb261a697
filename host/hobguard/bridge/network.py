"""Devices on the network, as the bridge reaches them: one `NetworkTransport`
per `--device tcp://HOST[:PORT]` (or `[[device]]` table), a `Transport` for
`device_link.DeviceLink` around `netlink.NetTransport` (the authenticated
client).

Everything that can block runs on the link's own thread, never on MQTT's or
another device's: the name lookup, the connect, the handshake (each bounded
by `CONNECT_TIMEOUT_S`). An address that is unreachable, slow or answers
with the wrong key delays only its own link; the link retries with back-off
(`BACKOFF_FIRST_S`, doubling, at most the bridge's `reconnect_max_s`, each
wait shortened by up to a quarter at random so that many devices lost at
once do not all come back in step).

Names: the OS resolver first (`socket.getaddrinfo`: /etc/hosts, DNS, and
`.local` where the system has mDNS — nss-mdns, systemd-resolved, macOS).
When it cannot resolve a `.local` name and python-zeroconf is installed
(`pip install 'hobguard[mdns]'`), the bridge asks by multicast DNS itself;
without it the log says which extra to install.

A connection that authenticated but then says nothing at all for
`offline_after_s` (a half-open TCP connection: the Wi-Fi dropped without a
FIN) is dropped and made again (`silent_for`, read by DeviceLink).
"""

from __future__ import annotations

import importlib
import logging
import socket
from typing import Any

from hobguard_fw import auth

from .device_link import PortTransport
from .netlink import NetLinkError, NetTransport

log = logging.getLogger("hobguard.link")

CONNECT_TIMEOUT_S = 5.0
# Commands are written by the link's writer thread (device_link), never by
# MQTT's: a device that does not take a line within this long (its socket
# buffer full: it stopped reading) fails that command and its connection is
# ended, rather than holding up the commands queued behind it.
WRITE_TIMEOUT_S = 0.5
BACKOFF_FIRST_S = 1.0
BACKOFF_JITTER = 0.25
MDNS_TIMEOUT_S = 3.0
MDNS_EXTRA = "hobguard[mdns]"

# The device's answers that mean "not this key" (or not this device).
_KEY_CODES = (auth.E_AUTH_FAILED, auth.E_MAC, auth.E_HANDSHAKE)


def is_mdns_name(host: str) -> bool:
    return host.lower().rstrip(".").endswith(".local")


class KeyRefused(NetLinkError):
    """The device at the address does not take the key (or is not the
    device the key belongs to). DeviceLink tells the bridge once per run of
    failures (`link_problem`): a `quarantined` event with this reason."""

    link_problem = auth.E_AUTH_FAILED


class MdnsUnavailable(OSError):
    """A .local name the OS cannot resolve, and no python-zeroconf."""


def resolve_mdns(host: str, timeout_s: float = MDNS_TIMEOUT_S) -> list[str]:
    """The addresses of a `.local` name, asked by multicast DNS with
    python-zeroconf (IPv4 first). Raises MdnsUnavailable without it, OSError
    when nobody answers in time."""
    try:
        zeroconf: Any = importlib.import_module("zeroconf")  # the mdns extra
    except ImportError:
        raise MdnsUnavailable(
            f"{host}: not known to the system's resolver, and {MDNS_EXTRA} is not installed"
        ) from None
    if not hasattr(zeroconf, "AddressResolver"):
        raise MdnsUnavailable(f"{host}: the installed zeroconf is older than 0.142 (no AddressResolver)")
    name = host.rstrip(".") + "."
    zc = zeroconf.Zeroconf()
    try:
        resolver = zeroconf.AddressResolver(name)
        if resolver.request(zc, int(timeout_s * 1000)):
            addresses = list(resolver.parsed_scoped_addresses())
            if addresses:
                return addresses
    finally:
        zc.close()
    raise OSError(f"{host}: no answer to a multicast DNS query within {timeout_s:g} s (is the hob on this network?)")


def resolve(host: str, port: int, timeout_s: float) -> list[str]:
    """The addresses to try for `host`, in order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        if not is_mdns_name(host):
            raise OSError(f"{host}: unknown host ({err.strerror or err})") from None
        return resolve_mdns(host, min(timeout_s, MDNS_TIMEOUT_S))
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class NetworkTransport(PortTransport):
    """One device on the network, for a DeviceLink. `name` (the link's
    port, and the `port` field of the device state) is its tcp:// URL;
    `expected_id` the device id the configuration expects there (None:
    whatever the device says)."""

    backoff_initial_s = BACKOFF_FIRST_S
    backoff_jitter = BACKOFF_JITTER

    def __init__(
        self,
        address: str,
        key: bytes,
        *,
        key_file: str | None = None,
        expected_id: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(address, self._make)
        self._key = key
        self.key_file = key_file
        self.expected_id = expected_id
        self.timeout_s = timeout_s  # None: CONNECT_TIMEOUT_S
        self._told_mdns = False

    def _make(self) -> NetTransport:
        timeout_s = CONNECT_TIMEOUT_S if self.timeout_s is None else self.timeout_s
        return NetTransport(
            self.name, self._key, timeout_s=timeout_s, write_timeout_s=WRITE_TIMEOUT_S, resolve=self._resolve
        )

    def _resolve(self, host: str, port: int, timeout_s: float) -> list[str]:
        try:
            return resolve(host, port, timeout_s)
        except MdnsUnavailable:
            if not self._told_mdns:
                self._told_mdns = True
                log.warning(
                    "%s: the system cannot resolve %s. Install the mdns extra so the bridge asks by multicast DNS "
                    "itself (pipx install '%s', or pip install '%s'), enable mDNS in the system (avahi with "
                    "nss-mdns, or systemd-resolved), or give the device's IP address",
                    self.name,
                    host,
                    MDNS_EXTRA,
                    MDNS_EXTRA,
                )
            raise

    def open(self) -> None:
        try:
            super().open()
        except NetLinkError as err:
            if err.code in _KEY_CODES:
                where = f" in {self.key_file}" if self.key_file else ""
                raise KeyRefused(
                    err.code, f"authentication failed ({err.code}): is the key{where} this device's key?"
                ) from None
            raise

    def write(self, data: bytes) -> None:
        try:
            super().write(data)
        except OSError:
            # A frame may be half sent: the connection cannot go on. The
            # reader sees it end and connects again.
            port: Any = self._port
            if port is not None:
                port.abort()
            raise

    def silent_for(self) -> float | None:
        """Seconds since the device last sent anything (None: not connected)."""
        port: Any = self._port
        return port.silent_for() if port is not None else None

"""Shared fixtures: throwaway Mosquitto brokers, a simulated hob behind a pty
(`hobguard sim device`), and an MQTT test client that records what it sees.

Brokers run on a free localhost port with a config in a temp dir, never on
1883; they are skipped (not failed) when Mosquitto is not installed.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from hobguard.testing import MOSQUITTO, MOSQUITTO_PASSWD, Mosquitto, Recorder, Seen, TlsFiles, bridge_config, wait_for

REPO = Path(__file__).resolve().parent.parent


def _need_mosquitto() -> None:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian package `mosquitto`)")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A plain broker shared by the session: anonymous, no TLS. Tests keep
    apart by using their own base topic and discovery prefix."""
    _need_mosquitto()
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker for one test (which may restart or stop it)."""
    _need_mosquitto()
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


def make_ca(workdir: Path, host: str = "localhost") -> TlsFiles:
    """A throwaway CA and a server certificate for `host` and 127.0.0.1."""
    x509 = pytest.importorskip("cryptography.x509")
    import ipaddress

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hobguard test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    workdir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(workdir / "ca.crt", workdir / "server.crt", workdir / "server.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    files.key.chmod(0o600)
    return files


TLS_USER = ("hobguard", "s3cret-pässword")


@pytest.fixture(scope="session")
def tls_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mosquitto, TlsFiles]]:
    """A broker with TLS (throwaway CA) and password authentication only."""
    _need_mosquitto()
    if MOSQUITTO_PASSWD is None:
        pytest.skip("mosquitto_passwd is not installed")
    workdir = tmp_path_factory.mktemp("mosquitto-tls")
    tls = make_ca(workdir / "ca")
    broker = Mosquitto(workdir, tls=tls, users={TLS_USER[0]: TLS_USER[1]})
    broker.start()
    yield broker, tls
    broker.stop()


# -- an MQTT client that records (hobguard.testing.Recorder) ---------------------------------


@pytest.fixture
def recorder_factory() -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def make(url: str, topics: list[str], ca: str | Path | None = None) -> Recorder:
        recorder = Recorder(url, topics, ca=ca)
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.close()


# -- the simulated hob behind a pty -------------------------------------------------------


class SimDeviceProcess:
    """`hobguard sim device` as a subprocess: the real firmware on a
    simulated hob behind a pty. `link` is a stable symlink to the pty."""

    def __init__(self, workdir: Path, speed: float = 20.0, settings: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.link = workdir / "hob.tty"
        self.trace = workdir / "trace.jsonl"
        argv = [
            sys.executable,
            "-m",
            "hobguard.cli",
            "sim",
            "device",
            "--speed",
            str(speed),
            "--link",
            str(self.link),
            "--trace",
            str(self.trace),
        ]
        if settings is not None:
            path = workdir / "settings.json"
            path.write_text(json.dumps(settings))
            argv += ["--settings", str(path)]
        self.stderr_path = workdir / "sim.log"
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=REPO
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        if not first:
            raise RuntimeError("hobguard sim device printed no pty path: " + self.stderr_path.read_text())
        self.pty = first
        wait_for(lambda: self.link.exists(), 5, what="the pty link")

    def act(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.act("quit")
                self.proc.wait(5)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


@pytest.fixture
def sim_device_factory(tmp_path: Path) -> Iterator[Callable[..., SimDeviceProcess]]:
    made: list[SimDeviceProcess] = []

    def make(speed: float = 20.0, settings: dict[str, Any] | None = None, name: str = "sim") -> SimDeviceProcess:
        workdir = tmp_path / f"{name}{len(made)}"
        workdir.mkdir()
        device = SimDeviceProcess(workdir, speed=speed, settings=settings)
        made.append(device)
        return device

    yield make
    for device in made:
        device.stop()


_prefixes = itertools.count(1)


@pytest.fixture
def topic_prefix() -> str:
    """A base topic and discovery prefix no other test uses on the shared broker."""
    return f"t{os.getpid()}x{next(_prefixes)}"


# -- a hob, a bridge and a broker, wired together -------------------------------------------


class HobRig:
    """An in-process bridge serving simulated hobs through their ptys, and a
    recorder subscribed to everything the bridge publishes."""

    def __init__(
        self,
        broker_url: str,
        ports: list[str],
        prefix: str,
        state_file: Path,
        recorder: Recorder | None = None,
        **options: Any,
    ) -> None:
        from hobguard.bridge.service import Bridge

        self.base = options.pop("base", None) or f"{prefix}/hobguard"
        self.discovery_prefix = options.pop("discovery", None) or f"{prefix}/homeassistant"
        self.recorder = recorder or Recorder(
            broker_url, [f"{self.base}/#", f"{self.discovery_prefix}/#"], ca=options.get("ca_cert")
        )
        options.setdefault("bridge_id", "e2e")
        options.setdefault("request_timeout_s", 2.0)
        self.config = bridge_config(
            serial=ports,
            broker=broker_url,
            base_topic=self.base,
            discovery_prefix=self.discovery_prefix,
            state_file=state_file,
            reconnect_max_s=2.0,
            **options,
        )
        self.bridge = Bridge(self.config)
        self.bridge.start()

    def wait_online(self, device: str, timeout: float = 15.0, since: int = 0) -> None:
        self.recorder.wait(
            lambda m: m.topic == f"{self.base}/{device}/availability" and m.payload == b"online",
            timeout,
            since=since,
            what=f"{device} online",
        )

    def wait_booted(
        self, device: str, burners: tuple[str, ...] = ("left", "right"), timeout: float = 15.0, since: int = 0
    ) -> None:
        """Online and past the device's boot, for a cold hob just started:
        every relay closed, every flame read as off. The firmware sends its
        `boot` event after its first sensor readings, which may come after
        the hello was answered; the link then asks hello again and refuses
        commands until the answer (device_offline). A state with the flame
        read comes after the boot event on the line and is held by the link
        until that answer, so once it is published the link serves."""
        self.wait_online(device, timeout, since=since)
        for burner in burners:
            self.wait_burner(
                device, burner, lambda s: s["relay"] == "closed" and s["flame"] == "off", timeout, since=since
            )

    def topic(self, device: str, *parts: str) -> str:
        return "/".join([self.base, device, *parts])

    def burner(self, device: str, burner: str) -> dict[str, Any]:
        seen = self.recorder.last(self.topic(device, burner, "state"))
        assert seen is not None, f"no state for {burner}"
        return seen.json()

    def wait_burner(
        self,
        device: str,
        burner: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 15.0,
        since: int = 0,
    ) -> Seen:
        return self.recorder.wait(
            lambda m: m.topic == self.topic(device, burner, "state") and predicate(m.json()),
            timeout,
            since=since,
            what=f"{burner} state",
        )

    def wait_event(
        self, device: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0, since: int = 0
    ) -> dict[str, Any]:
        return self.recorder.wait(
            lambda m: m.topic == self.topic(device, "event") and predicate(m.json()),
            timeout,
            since=since,
            what="event",
        ).json()

    def events(self, device: str, since: int = 0) -> list[dict[str, Any]]:
        return [m.json() for m in self.recorder.on(self.topic(device, "event"), since)]

    def send(self, device: str, suffix: str, payload: str | bytes, retain: bool = False) -> int:
        """Publish a command; returns the recorder mark from just before."""
        mark = self.recorder.mark()
        self.recorder.publish(self.topic(device, *suffix.split("/")), payload, retain=retain)
        return mark

    def stop(self) -> None:
        self.bridge.stop()


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., HobRig]]:
    made: list[HobRig] = []

    def make(broker_url: str, ports: list[str], prefix: str, **options: Any) -> HobRig:
        options.setdefault("state_file", tmp_path / f"bridge-state-{len(made)}.json")
        rig = HobRig(broker_url, ports, prefix, **options)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        try:
            rig.stop()
        except Exception:
            pass
        rig.recorder.close()


SIM_DEVICE_ID = "hob-1a2b3c"  # what the simulator's fake chip id gives


@pytest.fixture
def hob(mosquitto: Mosquitto, sim_device_factory, rig_factory, topic_prefix: str):
    """The usual end-to-end set-up: `hobguard sim device` at 20x speed, the
    bridge, the shared broker. Yields (rig, sim, device id)."""
    sim = sim_device_factory(speed=20)
    rig = rig_factory(mosquitto.url, [str(sim.link)], topic_prefix, offline_after_s=3.0)
    rig.wait_booted(SIM_DEVICE_ID)
    return rig, sim, SIM_DEVICE_ID


# -- the project as a user installs it ------------------------------------------------------


@pytest.fixture(scope="session")
def fresh_install(tmp_path_factory: pytest.TempPathFactory):
    """The wheel built from the tree, installed without extras into a fresh
    virtual environment (tests/freshvenv.py); built once per session."""
    from freshvenv import build_and_install

    return build_and_install(tmp_path_factory.mktemp("fresh-install"))

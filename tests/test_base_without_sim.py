"""The base package (hobguard) works without the simulator: every module of
it imports, the renderer of events works, and `hobguard --help` still lists
`demo` and `sim`, marked as not installed, which say what to install when
run (tests/test_install.py checks the same in a real install without
extras)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

WITHOUT_SIM = """
import importlib, importlib.abc, json, pkgutil, sys

class NoSimulator(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "hobguard_sim":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoSimulator())
import hobguard
from hobguard import cli, words

# (hobguard.__main__ is `python -m hobguard`: importing it runs the command)
modules = [m.name for m in pkgutil.walk_packages(hobguard.__path__, "hobguard.") if m.name != "hobguard.__main__"]
for name in modules:
    importlib.import_module(name)
parser = cli.build_parser()
commands = sorted(parser._subparsers._group_actions[0].choices)
helps = {a.dest: a.help for a in parser._subparsers._group_actions[0]._choices_actions}
print(json.dumps({
    "modules": modules,
    "commands": commands,
    "helps": helps,
    "words": words.event({"event_type": "cut", "burner": "left", "reason": "timer", "flame": True}),
    "sim_loaded": [m for m in sys.modules if m.startswith("hobguard_sim")],
}))
"""


def test_the_base_package_needs_no_simulator():
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SIM], capture_output=True, text=True, cwd=REPO, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert "hobguard.words" in seen["modules"] and "hobguard.cli" in seen["modules"]
    assert "demo" in seen["commands"] and "sim" in seen["commands"] and "bridge" in seen["commands"]
    assert seen["helps"]["demo"] == seen["helps"]["sim"] == "[not installed: needs hobguard[sim]]"
    assert "not installed" not in seen["helps"]["bridge"]
    assert seen["words"] == "CUT left: the timer ran out (flame on)"
    assert seen["sim_loaded"] == []


def test_without_the_simulator_demo_says_what_to_install():
    run = WITHOUT_SIM.split("import hobguard\n")[0] + "from hobguard import cli\nsys.exit(cli.main(sys.argv[1:]))\n"
    for argv in (["demo"], ["sim", "run", "simmer_timer", "--json"]):
        done = subprocess.run(
            [sys.executable, "-c", run, *argv], capture_output=True, text=True, cwd=REPO, timeout=120, check=False
        )
        assert done.returncode == 2, done.stderr
        assert "hobguard[sim]" in done.stderr and "missing: hobguard_sim" in done.stderr
        assert "Traceback" not in done.stderr


def test_with_the_simulator_demo_and_sim_are_there():
    from hobguard import cli

    commands = cli.build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"demo", "sim"} <= set(commands)

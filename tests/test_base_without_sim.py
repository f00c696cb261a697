"""The base package (hobguard) works without the simulator: every module of
it imports, the renderer of events works, and `hobguard --help` simply has
no `demo` or `sim` — as in a `pip install hobguard` without the sim extra."""

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

modules = [m.name for m in pkgutil.walk_packages(hobguard.__path__, "hobguard.")]
for name in modules:
    importlib.import_module(name)
parser = cli.build_parser()
commands = sorted(parser._subparsers._group_actions[0].choices)
print(json.dumps({
    "modules": modules,
    "commands": commands,
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
    assert "demo" not in seen["commands"] and "sim" not in seen["commands"]
    assert "bridge" in seen["commands"]
    assert seen["words"] == "CUT left: the timer ran out (flame on)"
    assert seen["sim_loaded"] == []


def test_with_the_simulator_demo_and_sim_are_there():
    from hobguard import cli

    commands = cli.build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"demo", "sim"} <= set(commands)

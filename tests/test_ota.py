"""Firmware updates over the air, on the simulator: the real firmware and its
real boot loader (main.py, run from the simulated board's flash at every
boot), the new firmware imported afresh from the files the update wrote,
real loopback sockets, virtual time. The bundles are built by the host's
own builder (hobguard update), as sources: the simulated board says it
loads only sources.

Every test checks what runs afterwards, not only what was said: the
version in hello, the copy the boot loader chose, the file the running
App's code comes from, and that the hob still cuts."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import hobguard_fw
import pytest
from conftest import REPO
from hobguard.tools import update
from hobguard_fw import auth, ota, protocol
from hobguard_sim.device import BOOT_MS, SimDevice
from hobguard_sim.flash import FlashOp
from netclient import KEY, WRONG_KEY, RawClient

FIRMWARE = REPO / "firmware"
OLD = hobguard_fw.VERSION


def firmware_copy(tmp_path: Path, version: str, app_tail: str = "") -> Path:
    """A folder laid out like firmware/: the repository's firmware with
    another VERSION, and `app_tail` appended to its app.py."""
    dest = tmp_path / f"firmware-{version}"
    shutil.copytree(FIRMWARE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    init = dest / "hobguard_fw" / "__init__.py"
    text = init.read_text()
    assert f'VERSION = "{OLD}"' in text
    init.write_text(text.replace(f'VERSION = "{OLD}"', f'VERSION = "{version}"'))
    if app_tail:
        app = dest / "hobguard_fw" / "app.py"
        app.write_text(app.read_text() + "\n" + app_tail + "\n")
    return dest


def bundle_of(folder: Path) -> update.Bundle:
    return update.build_bundle(folder / "hobguard_fw", None)


def board(tmp_path: Path, **kwargs) -> SimDevice:
    """A hob whose flash is tmp_path/flash (the repository's firmware
    deployed on it), joined, listening, past its boot pulse."""
    dev = SimDevice(listen=("127.0.0.1", 0), key=KEY, flash=tmp_path / "flash", **kwargs)
    dev.run_for(6000)
    return dev


def running_from(dev: SimDevice) -> str:
    """The folder (relative to the flash) the running App's code was read from."""
    assert dev.app is not None and dev.flash is not None
    source = Path(type(dev.app).__init__.__code__.co_filename)
    return source.parent.parent.relative_to(dev.flash.folder).as_posix()


class Host:
    """A client that speaks to the board as hobguard update does, in the
    test's virtual time."""

    def __init__(self, dev: SimDevice, key: bytes = KEY) -> None:
        self.dev = dev
        self.client = RawClient(dev)
        self.auth = self.client.authenticate(key)
        self.ids = itertools.count(100)
        self.replies: dict[int, dict] = {}

    def reply(self, request_id: int) -> dict:
        def answered() -> bool:
            for frame in self.client.frames():
                if frame.get("t") in ("ok", "err") and isinstance(frame.get("id"), int):
                    self.replies[frame["id"]] = frame
            self.client.seen.clear()  # kept here instead: a long update sends thousands
            return request_id in self.replies or self.client.closed

        self.client.wait_for(answered, what=f"the reply to {request_id}")
        if request_id not in self.replies:
            raise ConnectionResetError("the board closed the connection (it restarted, or the power went)")
        return self.replies.pop(request_id)

    def ask(self, cmd: str, **args) -> dict:
        request_id = next(self.ids)
        self.client.command(request_id, cmd, **args)
        return self.reply(request_id)

    def send(self, bundle: update.Bundle, sha256: str | None = None, change=None) -> dict:
        """The whole update; the first refusal, else ota_end's reply.
        `change(offset, data)` may alter a chunk before it is sealed."""
        begun = self.ask("ota_begin", version=bundle.version, size=bundle.size, sha256=sha256 or bundle.sha256)
        if begun["t"] != "ok":
            return begun
        step = begun["chunk"]
        waiting: list[int] = []
        offsets = list(range(0, bundle.size, step))
        for index, offset in enumerate(offsets):
            data = bundle.data[offset : offset + step]
            if change is not None:
                data = change(offset, data)
            request_id = next(self.ids)
            try:
                self.client.command(request_id, "ota_chunk", off=offset, data=_b64(data))
            except OSError as err:  # the board is gone (a power cut): like a closed connection
                raise ConnectionResetError(str(err)) from None
            waiting.append(request_id)
            while waiting and (len(waiting) >= 8 or index == len(offsets) - 1):  # eight in flight, as the host does
                reply = self.reply(waiting.pop(0))
                if reply["t"] != "ok":
                    return reply
        return self.ask("ota_end")

    def close(self) -> None:
        self.client.close()


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def follow(dev: SimDevice, host: Host | None = None, seconds: float = 30.0) -> Host:
    """Let the board restart, connect again (the client the trial needs),
    and run `seconds` of virtual time with the client answering."""
    if host is not None:
        host.close()
    dev.run_for(ota.RESTART_DELAY_MS + BOOT_MS + 4000)
    again = Host(dev)
    assert again.auth == "", again.auth
    run_with(dev, again, int(seconds))
    return again


def run_with(dev: SimDevice, host: Host, seconds: int) -> None:
    """Run `seconds` of virtual time, the client answering keep-alives."""
    for _ in range(seconds):
        dev.run_for(1000)
        host.client.frames()


def still_cuts(dev: SimDevice, host: Host) -> None:
    """The running firmware still does its job: a timer cut on command."""
    dev.physics.ignite(0, dev.clock.seconds)
    run_with(dev, host, 20)
    assert host.ask("timer_set", burner="left", minutes=1)["t"] == "ok"
    run_with(dev, host, 70)
    assert [e for e in dev.events("cut") if e.get("reason") == "timer"], dev.events()[-5:]
    assert not dev.truth()[0]["gas_flow"]


@pytest.fixture
def dev(tmp_path):
    device = board(tmp_path)
    yield device
    device.close()


# -- a good update -----------------------------------------------------------------------


def test_a_good_update_runs_the_new_code_after_the_restart(dev, tmp_path):
    assert running_from(dev) == "lib" and dev.flash.chosen == ("lib", False)
    new = bundle_of(firmware_copy(tmp_path, "9.9.9", "UPDATED = True"))
    host = Host(dev)
    assert host.ask("hello")["fw"] == OLD
    staged = host.send(new)
    assert staged["t"] == "ok" and staged["staged"] == "9.9.9" and staged["slot"] == "a", staged
    host = follow(dev, host)
    assert dev.flash.chosen == ("ota/a", True)
    assert running_from(dev) == "ota/a"
    assert getattr(__import__("sys").modules.get(type(dev.app).__module__), "UPDATED", None) is None  # not the host's
    assert host.ask("hello")["fw"] == "9.9.9"
    status = host.ask("ota_status")
    assert status["slot"] == "a" and status["build"] == new.build and status["trial"] is False, status
    assert status["last"]["result"] == "confirmed"
    still_cuts(dev, host)
    # The next update goes to the other copy; a restart keeps the confirmed one.
    newer = bundle_of(firmware_copy(tmp_path, "9.9.10"))
    assert host.send(newer)["slot"] == "b"
    host = follow(dev, host)
    assert running_from(dev) == "ota/b" and host.ask("hello")["fw"] == "9.9.10"
    dev.power_loss(2000)
    host = follow(dev, host, seconds=2)
    assert dev.flash.chosen == ("ota/b", False) and host.ask("hello")["fw"] == "9.9.10"


def test_a_usb_deployment_after_updates_runs_what_was_deployed(dev, tmp_path):
    host = Host(dev)
    assert host.send(bundle_of(firmware_copy(tmp_path, "9.9.9")))["t"] == "ok"
    host = follow(dev, host)
    assert running_from(dev) == "ota/a"
    dev.flash.install(FIRMWARE)  # what hobguard deploy's preparation and copy leave
    dev.power_loss(1000)
    host = follow(dev, host, seconds=2)
    assert running_from(dev) == "lib" and host.ask("hello")["fw"] == OLD


# -- bundles that fail a check -----------------------------------------------------------


def test_a_chunk_altered_on_the_wire_ends_the_connection_and_stages_nothing(dev, tmp_path):
    new = bundle_of(firmware_copy(tmp_path, "9.9.9"))
    host = Host(dev)
    begun = host.ask("ota_begin", version=new.version, size=new.size, sha256=new.sha256)
    assert begun["t"] == "ok"
    for offset in range(0, 10 * begun["chunk"], begun["chunk"]):
        assert host.ask("ota_chunk", off=offset, data=_b64(new.data[offset : offset + begun["chunk"]]))["t"] == "ok"
    frame = bytearray(
        host.client.seal(protocol.request(999, "ota_chunk", off=10 * begun["chunk"], data=_b64(b"x" * 3)))
    )
    frame[20] ^= 0x01  # one bit, inside the authenticated body
    host.client.send(bytes(frame))
    lines = host.client.wait_closed()
    assert b"HGA1 ERR bad_mac" in lines
    dev.run_for(1000)
    assert dev.app.net.frames_refused == 1
    assert not (dev.flash.folder / "ota" / "a").exists()  # the partial copy went with its sender
    assert not (dev.flash.folder / "hobguard_boot.json").exists()
    host = Host(dev)
    assert host.ask("ota_status")["update"] is None and host.ask("hello")["fw"] == OLD


def test_an_authenticated_chunk_with_other_bytes_is_caught_by_the_hash(dev, tmp_path):
    new = bundle_of(firmware_copy(tmp_path, "9.9.9"))
    host = Host(dev)

    def flip(offset: int, data: bytes) -> bytes:
        if offset == 129 * 100:
            return bytes([data[0] ^ 0x20]) + data[1:]
        return data

    reply = host.send(new, change=flip)
    assert reply["t"] == "err" and reply["code"] == protocol.E_UPDATE and "SHA-256" in reply["msg"], reply
    dev.run_for(5000)
    assert dev.resets == [] and not (dev.flash.folder / "hobguard_boot.json").exists()
    assert host.ask("hello")["fw"] == OLD and running_from(dev) == "lib"


def test_a_bundle_announced_with_another_hash_is_refused(dev, tmp_path):
    new = bundle_of(firmware_copy(tmp_path, "9.9.9"))
    host = Host(dev)
    reply = host.send(new, sha256="0" * 64)
    assert reply["t"] == "err" and reply["code"] == protocol.E_UPDATE and "SHA-256" in reply["msg"]
    assert host.ask("ota_begin", version="1", size=10, sha256="XYZ")["code"] == protocol.E_ARG
    dev.run_for(5000)
    assert dev.resets == [] and running_from(dev) == "lib"


# -- firmware that does not come up healthy ----------------------------------------------

BROKEN = {
    # It does not even import: the boot loader rolls back at once.
    "import": "raise RuntimeError('a module that cannot load')",
    # It imports, but the App cannot start: app.main() resets the board.
    "reset": "App.__init__ = lambda self, *a, **k: 1 / 0",
    # It runs, but its loop fails after a few seconds: a crash, a reset.
    "crash": (
        "_step = App.step\n"
        "def _failing(self):\n"
        "    if self.hob.uptime_s(self.time.ticks_ms()) > 4:\n"
        "        raise ValueError('a bug after start-up')\n"
        "    return _step(self)\n"
        "App.step = _failing"
    ),
    # It runs and cuts, but nothing can reach it over the network.
    "no_report": "from hobguard_fw import netlink\nnetlink.NetLink.poll = lambda self, now, handle_line: None",
    # It never finishes importing (an endless loop in a module): only the
    # watchdog the boot loader armed for the trial can end it.
    "hang_import": "from hobguard_sim.fakes import SimHang\nraise SimHang('a module that never finishes loading')",
    # It imports, but its start-up hangs before the App arms its own
    # watchdog (an I2C set-up that spins on a new chip).
    "hang_start": (
        "from hobguard_sim.fakes import SimHang\n"
        "def _hanging(self, *args, **kwargs):\n"
        "    raise SimHang('a start-up that never ends')\n"
        "App.__init__ = _hanging"
    ),
}
WHY = {
    "import": "import",
    "reset": "reset",
    "crash": "reset",
    "no_report": "no_report",
    "hang_import": "reset",
    "hang_start": "reset",
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_firmware_that_does_not_come_up_healthy_is_rolled_back(dev, tmp_path, kind):
    broken = bundle_of(firmware_copy(tmp_path, "6.6.6", BROKEN[kind]))
    host = Host(dev)
    assert host.send(broken)["t"] == "ok"
    host.close()
    dev.run_for(ota.TRIAL_MS + 30_000)
    host = Host(dev)
    assert host.auth == ""
    assert host.ask("hello")["fw"] == OLD
    status = host.ask("ota_status")
    assert status["slot"] == "lib" and status["trial"] is False
    assert status["last"] == {"version": "6.6.6", "build": broken.build, "result": "rolled_back", "why": WHY[kind]}
    assert running_from(dev) == "lib"
    still_cuts(dev, host)


@pytest.mark.parametrize("kind", ["hang_import", "hang_start"])
def test_a_firmware_on_trial_that_hangs_early_is_reset_by_the_boot_loaders_watchdog(dev, tmp_path, kind):
    broken = bundle_of(firmware_copy(tmp_path, "6.6.7", BROKEN[kind]))
    host = Host(dev)
    assert host.send(broken)["t"] == "ok"
    host.close()
    dev.run_for(ota.RESTART_DELAY_MS + BOOT_MS + 1000)
    # The trial was chosen and hangs; the watchdog main.py armed is running.
    assert dev.flash is not None and dev.flash.chosen is not None and dev.flash.chosen[1] is True
    assert dev.hung and dev.app is None
    assert dev.board.wdt is not None and dev.board.wdt.timeout_ms == main_loader(dev)["TRIAL_WDT_MS"]
    hung_at = dev.clock.ms
    dev.run_for(main_loader(dev)["TRIAL_WDT_MS"] + BOOT_MS + 2000)
    watchdog = [ms for ms, cause in dev.resets if cause == "watchdog" and ms >= hung_at]
    assert watchdog and watchdog[0] - hung_at <= main_loader(dev)["TRIAL_WDT_MS"] + 1
    assert not dev.hung and dev.app is not None  # the known copy runs again
    assert dev.flash.chosen == ("lib", False)
    host = Host(dev)
    assert host.auth == ""
    assert host.ask("hello")["fw"] == OLD
    assert host.ask("ota_status")["last"]["result"] == "rolled_back"


def main_loader(dev: SimDevice) -> dict:
    assert dev.flash is not None
    return dev.flash.boot_loader()


def test_the_known_copy_starts_without_the_trial_watchdog(tmp_path):
    # Only a firmware on trial gets the boot loader's watchdog: the known copy
    # starts as before and its App arms its own (watchdog_ms).
    device = board(tmp_path)
    try:
        assert device.flash is not None and device.flash.chosen == ("lib", False)
        assert device.board.wdt is not None and device.board.wdt.timeout_ms == device.settings["watchdog_ms"]
    finally:
        device.close()


# -- refusals ----------------------------------------------------------------------------


def test_an_update_is_refused_while_a_burner_burns_a_timer_runs_or_a_cut_is_under_way(dev, tmp_path):
    new = bundle_of(firmware_copy(tmp_path, "9.9.9"))
    host = Host(dev)
    dev.physics.ignite(1, dev.clock.seconds)
    run_with(dev, host, 20)
    reply = host.send(new)
    assert reply["code"] == protocol.E_STATE and "burner right is lit" in reply["msg"], reply
    dev.physics.turn_off(1, dev.clock.seconds)
    run_with(dev, host, 60)
    assert host.ask("timer_set", burner="left", minutes=30)["t"] == "ok"
    reply = host.send(new)
    assert reply["code"] == protocol.E_STATE and "timer runs on burner left" in reply["msg"], reply
    assert host.ask("timer_cancel", burner="left")["t"] == "ok"
    assert host.ask("cut", burner="right")["t"] == "ok"
    reply = host.send(new)
    assert reply["code"] == protocol.E_STATE and "burner right is being cut" in reply["msg"], reply
    run_with(dev, host, 60)
    assert host.send(new)["t"] == "ok"  # free again: accepted
    assert not dev.truth()[1]["gas_flow"]


def test_a_burner_lit_after_staging_holds_the_restart_until_it_is_off(dev, tmp_path):
    host = Host(dev)
    assert host.send(bundle_of(firmware_copy(tmp_path, "9.9.9")))["t"] == "ok"
    # The restart is due in a second; a person lighting a burner takes
    # longer than that to show a flame, so the second is widened to 30 s
    # here to let the race happen (in this board's copy of ota.py only: a
    # restart stamp further ahead than RESTART_DELAY_MS counts as stale).
    updater = dev.app.updater
    type(updater).poll.__globals__["RESTART_DELAY_MS"] = 30_000
    updater.restart_at = dev.time.ticks_add(dev.time.ticks_ms(), 30_000)
    dev.physics.ignite(0, dev.clock.seconds)
    run_with(dev, host, 120)
    assert dev.resets == [] and dev.truth()[0]["flame"]  # nobody's cooking is cut
    dev.physics.turn_off(0, dev.clock.seconds)
    dev.run_for(60_000)
    assert [cause for _, cause in dev.resets] == ["hard_reset"]
    host = follow(dev, None)
    assert host.ask("hello")["fw"] == "9.9.9"


def test_updates_over_usb_are_refused(dev, tmp_path):
    new = bundle_of(firmware_copy(tmp_path, "9.9.9"))
    dev.frames.clear()
    request_id = dev.command("ota_begin", version=new.version, size=new.size, sha256=new.sha256)
    dev.run_for(100)
    reply = [f for f in dev.frames if f.get("id") == request_id][0]
    assert reply["code"] == protocol.E_STATE and "network link" in reply["msg"]
    status_id = dev.command("ota_status")
    dev.run_for(100)
    assert [f for f in dev.frames if f.get("id") == status_id][0]["fw"] == OLD  # the status is shown on USB


def test_an_update_from_a_wrong_key_never_starts(dev, tmp_path):
    stranger = Host(dev, key=WRONG_KEY)
    assert stranger.auth == auth.E_AUTH_FAILED
    new = bundle_of(firmware_copy(tmp_path, "9.9.9"))
    # Even a frame sealed with a session of the wrong key goes nowhere.
    session = auth.Session(WRONG_KEY, False, bytes(32))
    session.session_pads = auth._pads(WRONG_KEY)  # pretend the handshake passed
    raw = RawClient(dev)
    raw.next_line()
    raw.send(session.seal(protocol.request(1, "ota_begin", version="9.9.9", size=new.size, sha256=new.sha256)))
    assert b"HGA1 ERR" in b"".join(raw.wait_closed())
    dev.run_for(5000)
    assert not (dev.flash.folder / "ota").exists() and dev.app.net.auth_failures >= 2
    assert Host(dev).ask("hello")["fw"] == OLD


def test_one_update_at_a_time(dev, tmp_path):
    new = bundle_of(firmware_copy(tmp_path, "9.9.9"))
    first, second = Host(dev), Host(dev)
    assert first.ask("ota_begin", version=new.version, size=new.size, sha256=new.sha256)["t"] == "ok"
    reply = second.ask("ota_begin", version=new.version, size=new.size, sha256=new.sha256)
    assert reply["code"] == protocol.E_STATE and "another connection" in reply["msg"]
    first.close()
    dev.run_for(1000)
    assert second.send(new)["t"] == "ok"  # the first sender is gone: its update with it


# -- a power cut at every stage ------------------------------------------------------------
#
# On a board updated twice before (copy a holds 9.9.7, copy b runs 9.9.8,
# confirmed), 9.9.9 goes to copy a, and the power goes at one moment of it: before a given flash
# operation (the operation does not happen; what was written before stays),
# or at a given moment in time. Then the power comes back, a client stays
# connected, and the board must run a whole firmware: 9.9.9 exactly when
# its staging marker was written and its trial was not cut short, else
# 9.9.8; never a half-written copy, never none.


def _op(kind: str, path: str, nth: int = 1):
    """The nth flash operation of `kind` on `path` (a prefix when it ends in /)."""
    count = itertools.count(1)

    def rule(op: FlashOp) -> bool:
        hit = op.kind == kind and (op.path.startswith(path) if path.endswith("/") else op.path == path)
        return hit and next(count) == nth

    return rule


def _nth_write(share: float):
    """A write into the new copy, `share` of the way through the bundle."""
    return ("write", share)


MARKER_TMP = "hobguard_boot.json.tmp"
# stage -> (where the power goes, the version that runs afterwards)
STAGES = {
    "emptying the free copy": (_op("remove", "ota/a/"), "9.9.8"),
    "making the copy's folders": (_op("mkdir", "ota/a/hobguard_fw"), "9.9.8"),
    "creating the first file": (_op("create", "ota/a/hobguard_fw/"), "9.9.8"),
    "the first bytes": (_nth_write(0.0), "9.9.8"),
    "half way through": (_nth_write(0.5), "9.9.8"),
    "the last bytes": (_nth_write(1.0), "9.9.8"),
    "the copy's manifest": (_op("create", "ota/a/manifest.json"), "9.9.8"),
    "the staging marker, being written": (_op("write", MARKER_TMP, 1), "9.9.8"),
    "the staging marker, being renamed": (_op("rename", MARKER_TMP, 1), "9.9.8"),
    "staged, waiting for the restart": ("after staging", "9.9.9"),
    "the boot loader counting the try, being written": (_op("write", MARKER_TMP, 2), "9.9.9"),
    "the boot loader counting the try, being renamed": (_op("rename", MARKER_TMP, 2), "9.9.9"),
    "the trial running, before it confirmed itself": ("during the trial", "9.9.8"),
    "the trial confirming itself, being written": (_op("write", MARKER_TMP, 3), "9.9.8"),
    "the trial confirming itself, being renamed": (_op("rename", MARKER_TMP, 3), "9.9.8"),
    "confirmed": ("after the confirmation", "9.9.9"),
}


def _writes_into_files(bundle: update.Bundle, step: int) -> int:
    """How many writes the board makes into the copy's files: one per
    chunk and file the chunk touches."""
    head = bundle.data.index(b"\n") + 1
    bounds = list(itertools.accumulate([head] + [len(c) for _, c in bundle.files]))
    writes = 0
    for start in range(0, bundle.size, step):
        end = min(start + step, bundle.size)
        writes += sum(1 for lo, hi in zip(bounds, bounds[1:], strict=False) if start < hi and end > lo)
    return writes


@pytest.fixture(scope="module")
def updated_once(tmp_path_factory):
    """A flash after two updates (copy a: 9.9.7; copy b: 9.9.8, running,
    confirmed), copied for each test."""
    tmp = tmp_path_factory.mktemp("updated-twice")
    dev = board(tmp)
    host = Host(dev)
    for version in ("9.9.7", "9.9.8"):
        assert host.send(bundle_of(firmware_copy(tmp, version)))["t"] == "ok"
        host = follow(dev, host)
    status = host.ask("ota_status")
    assert status["slot"] == "b" and status["last"]["result"] == "confirmed"
    dev.close()
    return tmp / "flash"


def _stay_connected(dev: SimDevice, seconds: int) -> Host:
    """Run `seconds` with an authenticated client connected whenever the
    board listens (reconnecting after every restart)."""
    host: Host | None = None
    for _ in range(seconds):
        dev.run_for(1000)
        if host is not None and host.client.closed:
            host = None
        if host is None and dev.app is not None and dev.app.net is not None and dev.app.net.listener is not None:
            host = Host(dev)
            assert host.auth == ""
        if host is not None:
            try:
                host.client.frames()
            except auth.AuthError:  # the board went away mid-frame
                host = None
    assert host is not None, "no board to talk to"
    return host


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_power_cut_at_any_stage_leaves_a_working_board(updated_once, tmp_path, stage):
    shutil.copytree(updated_once, tmp_path / "flash")
    dev = board(tmp_path)
    assert running_from(dev) == "ota/b"
    new = bundle_of(firmware_copy(tmp_path, "9.9.9"))
    where, expected = STAGES[stage]
    cuts: list[FlashOp] = []
    dev.hooks.flash_cut.append(lambda t_ms, op: cuts.append(op))
    if isinstance(where, tuple):  # the n-th write into the copy's files
        target = max(1, round(_writes_into_files(new, protocol.OTA_CHUNK) * where[1]))
        where = _op("write", "ota/a/hobguard_fw/", target)
    if callable(where):
        dev.flash.cut_when = where
    host = Host(dev)
    try:
        reply = host.send(new)
    except ConnectionResetError:
        reply = None  # the power went: no answer
    if where == "after staging":
        assert reply is not None and reply["t"] == "ok"
        dev.power_loss(3000)  # within the second before the restart
    elif where == "during the trial":
        host.close()
        dev.run_for(ota.RESTART_DELAY_MS + BOOT_MS + 5000)
        assert dev.flash.chosen == ("ota/a", True) and running_from(dev) == "ota/a"
        dev.power_loss(3000)  # nobody connected yet: not confirmed
    elif where == "after the confirmation":
        host = follow(dev, host)
        assert host.ask("ota_status")["last"]["result"] == "confirmed"
        dev.power_loss(3000)
    host.close()
    after = _stay_connected(dev, (ota.TRIAL_MS + 60_000) // 1000)
    if callable(where):
        assert dev.flash.cut_when is None and len(cuts) == 1, f"the power was never cut at {stage!r}"
    assert after.ask("hello")["fw"] == expected, (stage, reply, dev.flash.boot_errors)
    status = after.ask("ota_status")
    assert status["trial"] is False and status["update"] is None, status
    assert running_from(dev) == ("ota/a" if expected == "9.9.9" else "ota/b")
    assert dev.flash.boot_errors == [] and not dev.stuck
    still_cuts(dev, after)


# -- before every single flash operation -------------------------------------------------------


@pytest.fixture(scope="module")
def reference(updated_once, tmp_path_factory):
    """One update of updated_once's board to 9.9.9, start to confirmation,
    with every flash operation recorded (numbered from the board's start:
    the same run again makes the same operations)."""
    tmp = tmp_path_factory.mktemp("reference")
    shutil.copytree(updated_once, tmp / "flash")
    dev = board(tmp)
    dev.flash.keep_log = True
    new = bundle_of(firmware_copy(tmp, "9.9.9"))
    host = Host(dev)
    assert host.send(new)["t"] == "ok"
    after = follow(dev, host)
    assert after.ask("ota_status")["last"]["result"] == "confirmed"
    dev.close()
    return list(dev.flash.log), new


def _expected(log: list[FlashOp], number: int) -> str:
    """The version that must run after a cut before operation `number`:
    the new one once its staging marker is in place (after the first
    rename of the marker), through the boot loader counting its try (the
    second), and not once its trial is due to confirm itself (the third):
    a trial cut short is rolled back."""
    renames = [op.number for op in log if op.kind == "rename" and op.path == MARKER_TMP]
    assert len(renames) == 3, log[-12:]  # staged, tried, confirmed
    staged, tried, _confirmed = renames
    return "9.9.9" if staged < number <= tried else "9.9.8"


def _cut_before(updated_once: Path, tmp_path: Path, number: int, bundle: update.Bundle) -> tuple[str, str]:
    """A whole update with the power cut before operation `number`: (the
    version running afterwards, what the status says)."""
    folder = tmp_path / f"cut-{number}"
    shutil.copytree(updated_once, folder / "flash")
    dev = board(folder)
    cuts: list[FlashOp] = []
    dev.hooks.flash_cut.append(lambda t_ms, op: cuts.append(op))
    dev.flash.cut_when = lambda op: op.number == number
    host = Host(dev)
    try:
        host.send(bundle)
    except ConnectionResetError:
        pass
    host.close()
    after = _stay_connected(dev, (ota.TRIAL_MS + 40_000) // 1000)
    assert [op.number for op in cuts] == [number], (number, cuts)
    version = after.ask("hello")["fw"]
    status = after.ask("ota_status")
    assert status["trial"] is False and not dev.stuck and dev.flash.boot_errors == [], (number, status)
    assert running_from(dev) == ("ota/a" if version == "9.9.9" else "ota/b"), number
    dev.close()
    shutil.rmtree(folder)
    return version, str((status.get("last") or {}).get("result"))


def _sweep(updated_once: Path, tmp_path: Path, reference, every: bool) -> None:
    log, bundle = reference
    numbers = []
    previous = None
    for index, op in enumerate(log):
        boundary = previous is None or op.kind != "write" or previous.path != op.path
        last_write_of_file = op.kind == "write" and (index + 1 == len(log) or log[index + 1].path != op.path)
        if every or boundary or last_write_of_file:
            numbers.append(op.number)
        previous = op
    assert len(numbers) > 30
    wrong = []
    for number in numbers:
        version, result = _cut_before(updated_once, tmp_path, number, bundle)
        if version != _expected(log, number):
            op = next(o for o in log if o.number == number)
            wrong.append(f"before #{number} ({op.kind} {op.path}): runs {version}, last update {result}")
    assert not wrong, "\n".join(wrong)
    print(f"power cut before {len(numbers)} of {len(log)} flash operations: a working board every time")


def test_a_power_cut_before_any_kind_of_flash_operation(updated_once, tmp_path, reference):
    """Before every operation that is not a write, and before the first and
    last write into every file: each time a whole firmware runs, the new
    one exactly when its marker was staged and its trial not cut short."""
    _sweep(updated_once, tmp_path, reference, every=False)


@pytest.mark.soak
def test_a_power_cut_before_every_single_flash_operation(updated_once, tmp_path, reference):
    _sweep(updated_once, tmp_path, reference, every=True)

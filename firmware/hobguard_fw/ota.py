# Firmware updates over the air, the device's side (docs/updates.md). The
# app imports this module only while an update runs or a new firmware is on
# trial, and drops it again afterwards: none of it stays in RAM otherwise.
#
# A bundle is one byte stream: a manifest line (JSON: format, version,
# build, the files and their sizes), then the files' bytes one after the
# other. It comes in ota_chunk commands over the authenticated network link
# only, in order, straight into the free slot's folder (never the running
# firmware's, never main.py, the settings or the secrets). Its SHA-256 is
# checked as it arrives and once more as read back from flash; only then is
# the boot marker rewritten (a new file renamed over the old) so that the
# boot loader (main.py) tries it exactly once at the next boot. The board
# restarts only while nobody cooks. The tried firmware confirms itself once
# healthy; otherwise the boot loader, or the trial itself, rolls back.
import binascii
import hashlib
import json
import os
import sys

from hobguard_fw import BOOT_FILE, VERSION, core, protocol

FORMAT = 1
# As in main.py (a test keeps the two the same).
SLOTS = {"lib": "lib", "a": "ota/a", "b": "ota/b"}
PACKAGE = "/hobguard_fw/"
MANIFEST = "/manifest.json"
MANIFEST_MAX = 1536  # bytes of the manifest line
FILES_MAX = 24
NAME_MAX = 40
FILE_MAX = 65536
BUNDLE_MAX = 256 * 1024  # the sources with their comments: 170 KB
FLASH_MARGIN = 16 * 1024  # left free after staging, for settings and logs
# A receive with no chunk for this long (the sender is gone) is dropped.
IDLE_MS = 30000
# Between staging and the restart: the reply to ota_end goes out first.
RESTART_DELAY_MS = 1000
# The health a firmware on trial must show before it confirms itself: its
# loop ran this long, its boot event went out, its settings were valid and
# an authenticated client is connected (proof that it can be reached and
# updated again). Not within TRIAL_MS: it rolls back, once nobody cooks.
CONFIRM_MS = 15000
TRIAL_MS = 120000
_READ = 512


def read_marker(root):
    """As main.py reads it: a marker that cannot be read means "run lib"."""
    try:
        with open(root + BOOT_FILE) as f:
            marker = json.loads(f.read(1024))
        trial = marker.get("trial")
        if marker["run"] in SLOTS and (trial is None or (trial in ("a", "b") and trial != marker["run"])):
            return marker
    except Exception:
        pass
    return {"run": "lib", "trial": None}


def write_marker(root, marker):
    """A new file renamed over the old: a power cut leaves one or the other."""
    path = root + BOOT_FILE
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(marker))
    try:
        os.rename(path + ".tmp", path)
    except OSError:
        os.remove(path)  # FAT: no rename over a file (no marker = run lib)
        os.rename(path + ".tmp", path)


def running_slot(marker):
    if marker.get("trial") and marker.get("tried"):
        return marker["trial"]
    return marker["run"]


def remove_tree(path):
    try:
        names = os.listdir(path)
    except OSError:
        try:
            os.remove(path)
        except OSError:
            pass
        return
    for name in names:
        remove_tree(path + "/" + name)
    try:
        os.rmdir(path)
    except OSError:
        pass


def _mkdir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass  # it exists


def mpy_format():
    """The .mpy format this MicroPython loads (sys.implementation._mpy), or
    None where only sources load (CPython: the simulator)."""
    if sys.implementation.name != "micropython":
        return None
    return getattr(sys.implementation, "_mpy", None)


def busy(hob):
    """Why the board must not restart now, in words, or None. A restart
    cuts every burner: never while a person cooks."""
    if hob.boot_pending:
        return "the hob is still starting up: try again in a few seconds"
    for index, burner in enumerate(hob.burners):
        name = burner.name
        if burner.sensor_fault and hob.relay_closed[index]:
            # Its flame is unknown: somebody may be cooking on it. With its
            # relay held open (the hob locked) nothing can burn there.
            return "burner %s has a sensor fault, so it may be lit: lock the hob to update anyway" % name
        if burner.flame or burner.flame_candidate:
            return "burner %s is lit: an update restarts the board, which cuts every burner" % name
        if burner.timer_deadline is not None:
            return "a timer runs on burner %s: cancel it or let it end first" % name
        if burner.cut_until is not None or burner.verify_deadline is not None:
            return "burner %s is being cut: try again when the cut is done" % name
        if burner.flame is None and burner.sensor_fault is None:
            return "burner %s has no reading yet: try again in a few seconds" % name
    return None


def _refuse(message):
    raise core.HobError(protocol.E_STATE, message[:160])


def _good_name(name, sources_only):
    if not isinstance(name, str) or not 0 < len(name) <= NAME_MAX:
        return False
    dot = name.find(".")
    stem = name[:dot]
    ext = name[dot + 1 :]
    if dot <= 0 or not (ext == "py" or (ext == "mpy" and not sources_only)):
        return False
    for ch in stem:
        if not ("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "_"):
            return False
    return True


class Receive:
    """One bundle coming in, from one connection."""

    def __init__(self, owner, slot, version, size, sha256, now):
        self.owner = owner
        self.slot = slot
        self.version = version
        self.size = size
        self.expected = sha256
        self.offset = 0
        self.hash = hashlib.sha256()
        self.head = bytearray()  # the manifest line, until its newline
        self.manifest = None
        self.files = None  # [[name, size], ...] once the manifest is read
        self.index = 0  # the file being written
        self.left = 0  # its bytes still to come
        self.file = None
        self.last = now


class Updater:
    """Everything of an update on the device: receiving, staging, the
    restart, and a firmware's trial after one. `app` is the running App."""

    def __init__(self, app, now):
        self.app = app
        self.root = app.root
        marker = read_marker(self.root)
        self.trial = bool(marker.get("trial")) and marker.get("tried") is True
        self.rx = None
        self.staged = None  # the version staged, until the restart
        self.restart_at = None

    def idle(self):
        return self.rx is None and self.restart_at is None and not self.trial

    # -- commands --------------------------------------------------------------

    def command(self, cmd, args, origin, now):
        """Run one ota_* command; return the reply's fields. Raises
        core.HobError. `origin` is the network client, None for USB."""
        if cmd == "ota_status":
            return self.status()
        if cmd == "ota_abort":
            return self.abort(origin)
        if origin is None:
            _refuse(
                "updates come only over the authenticated network link (hobguard update); over USB use hobguard deploy"
            )
        if cmd == "ota_begin":
            return self.begin(args, origin, now)
        rx = self.rx
        if rx is None or rx.owner is not origin:
            _refuse("no update is being received on this connection: start with ota_begin")
        if cmd == "ota_chunk":
            return self.chunk(rx, args, now)
        return self.end(rx, now)

    def status(self):
        marker = read_marker(self.root)
        slot = running_slot(marker)
        fields = {
            "fw": VERSION,
            "slot": slot,
            "build": self._build(slot),
            "trial": self.trial,
            "mpy": mpy_format(),
            "chunk": protocol.OTA_CHUNK,
        }
        rx = self.rx
        if rx is not None:
            fields["update"] = {"state": "receiving", "version": rx.version, "received": rx.offset, "size": rx.size}
        elif self.staged is not None:
            fields["update"] = {"state": "staged", "version": self.staged}
        else:
            fields["update"] = None
        if marker.get("result"):
            fields["last"] = {
                "version": marker.get("version"),
                "build": marker.get("build"),
                "result": marker.get("result"),
                "why": marker.get("why") or None,
            }
        else:
            fields["last"] = None
        return fields

    def _build(self, slot):
        if slot == "lib":
            return None
        try:
            with open(self.root + SLOTS[slot] + MANIFEST) as f:
                build = json.loads(f.read(512)).get("build")
            return build if protocol.is_text(build, 16) else None
        except Exception:
            return None

    def begin(self, args, origin, now):
        if self.trial:
            _refuse("the firmware on trial has not confirmed itself yet: wait for it (or its rollback)")
        if self.restart_at is not None:
            _refuse("an update is staged and the board restarts as soon as nobody cooks")
        rx = self.rx
        if rx is not None and rx.owner is not origin and not rx.owner.closed:
            _refuse("another connection is sending an update")
        why = busy(self.app.hob)
        if why:
            _refuse(why)
        size = args["size"]
        if not 0 < size <= BUNDLE_MAX:
            raise core.HobError(protocol.E_ARG, "size must be 1..%d bytes" % BUNDLE_MAX)
        digest = args["sha256"]
        if len(digest) != 64 or digest.strip("0123456789abcdef"):
            raise core.HobError(protocol.E_ARG, "sha256 must be 64 lower-case hex digits")
        self.drop()
        marker = read_marker(self.root)
        slot = "b" if running_slot(marker) == "a" else "a"
        folder = self.root + SLOTS[slot]
        remove_tree(folder)  # an older firmware, or a partial one
        free = self._free()
        if free is not None and free < size + FLASH_MARGIN:
            _refuse("not enough flash: %d bytes free, the bundle needs %d" % (free, size + FLASH_MARGIN))
        _mkdir(self.root + "ota")
        _mkdir(folder)
        _mkdir(folder + PACKAGE[:-1])
        self.rx = Receive(origin, slot, args["version"], size, args["sha256"], now)
        return {"slot": slot, "chunk": protocol.OTA_CHUNK}

    def _free(self):
        try:
            stat = os.statvfs(self.root or "/")
            return stat[0] * stat[4]
        except Exception:
            return None

    def chunk(self, rx, args, now):
        offset = args["off"]
        if offset != rx.offset:
            self._bad("a chunk at byte %d, expected byte %d: update stopped" % (offset, rx.offset))
        text = args["data"]
        try:
            data = binascii.a2b_base64(text.encode()) if len(text) % 4 == 0 else b""
        except Exception:
            data = b""
        if not data or len(data) > protocol.OTA_CHUNK or offset + len(data) > rx.size:
            self._bad("a chunk that is empty, too long or past the announced size: update stopped")
        rx.hash.update(data)
        rx.offset += len(data)
        rx.last = now
        try:
            self._take(rx, data)
        except OSError as err:
            self.drop()
            _refuse("the flash refused a write (%s): update stopped, nothing changed" % err)
        return {"off": rx.offset}

    def _bad(self, message):
        self.drop()
        raise core.HobError(protocol.E_UPDATE, message[:160])

    def _take(self, rx, data):
        view = memoryview(data)
        i = 0
        n = len(data)
        while i < n:
            if rx.files is None:
                end = data.find(b"\n", i)
                stop = n if end < 0 else end
                rx.head.extend(view[i:stop])
                if len(rx.head) > MANIFEST_MAX:
                    self._bad("the manifest line is longer than %d bytes" % MANIFEST_MAX)
                if end < 0:
                    return
                i = end + 1
                self._read_manifest(rx)
                continue
            take = min(n - i, rx.left)
            rx.file.write(view[i : i + take])  # pyright: ignore[reportOptionalMemberAccess]
            rx.left -= take
            i += take
            if rx.left == 0:
                self._next_file(rx)

    def _read_manifest(self, rx):
        try:
            manifest = json.loads(bytes(rx.head).decode())
        except Exception:
            manifest = None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            self._bad("the manifest is not a hobguard bundle manifest (format %d)" % FORMAT)
            return
        if manifest.get("version") != rx.version:
            self._bad("the manifest's version is not the one announced")
        build = manifest.get("build")
        if build is not None and not protocol.is_text(build, 16):
            self._bad("the manifest's build is not up to 16 characters of text")
        files = manifest.get("files")
        if not isinstance(files, list) or not 0 < len(files) <= FILES_MAX:
            self._bad("the manifest must list 1..%d files" % FILES_MAX)
            return
        sources_only = mpy_format() is None
        stems = []
        total = len(rx.head) + 1
        for entry in files:
            if not isinstance(entry, list) or len(entry) != 2:
                self._bad("each file of the manifest is [name, size]")
            name = entry[0]
            size = entry[1]
            if not _good_name(name, sources_only):
                self._bad(
                    "file names are a-z, 0-9, _ then "
                    + (".py (this board loads sources only)" if sources_only else ".py or .mpy")
                )
            if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= FILE_MAX:
                self._bad("file %s: size must be 1..%d bytes" % (name, FILE_MAX))
            stem = name[: name.find(".")]
            if stem in stems:
                self._bad("file %s is listed twice" % stem)
            stems.append(stem)
            total += size
        for needed in ("__init__", "app"):
            if needed not in stems:
                self._bad("the bundle has no %s module" % needed)
        if total != rx.size:
            self._bad("the manifest and its files make %d bytes, not the %d announced" % (total, rx.size))
        rx.manifest = {"version": rx.version, "build": build, "sha256": rx.expected}
        rx.files = files
        rx.index = -1
        self._next_file(rx)

    def _next_file(self, rx):
        if rx.file is not None:
            rx.file.close()
            rx.file = None
        rx.index += 1
        if rx.index < len(rx.files):
            entry = rx.files[rx.index]
            rx.left = entry[1]
            rx.file = open(self._path(rx, entry[0]), "wb")

    def _path(self, rx, name):
        return self.root + SLOTS[rx.slot] + PACKAGE + name

    def end(self, rx, now):
        if rx.offset != rx.size or rx.files is None or rx.index < len(rx.files):
            self._bad("the bundle is incomplete: %d of %d bytes received" % (rx.offset, rx.size))
        if binascii.hexlify(rx.hash.digest()).decode() != rx.expected:
            self._bad("the bundle's SHA-256 is not the one announced: it was damaged or is another bundle")
        why = busy(self.app.hob)
        if why:
            self.drop()
            _refuse(why + " (the update was not staged)")
        try:
            problem = self._check_flash(rx)
        except OSError as err:
            problem = "the staged files cannot be read back (%s)" % err
        if problem:
            self._bad(problem)
        try:
            with open(self.root + SLOTS[rx.slot] + MANIFEST, "w") as f:
                f.write(json.dumps(rx.manifest))
            marker = read_marker(self.root)
            marker["trial"] = rx.slot
            marker["tried"] = False
            marker["version"] = rx.version
            marker["build"] = rx.manifest["build"]
            marker["result"] = "staged"
            marker["why"] = None
            write_marker(self.root, marker)
        except OSError as err:
            self.drop()
            _refuse("the flash refused a write (%s): nothing changed" % err)
        self.rx = None
        self.staged = rx.version
        self.restart_at = self.app.time.ticks_add(now, RESTART_DELAY_MS)
        return {"staged": rx.version, "slot": rx.slot, "restart_in_ms": RESTART_DELAY_MS}

    def _check_flash(self, rx):
        """Read the staged bundle back from flash: the same SHA-256, and
        .mpy files this MicroPython can load. None, or what is wrong."""
        digest = hashlib.sha256(bytes(rx.head))
        digest.update(b"\n")
        wanted = mpy_format()
        buffer = bytearray(_READ)
        for name, size in rx.files:
            seen = 0
            with open(self._path(rx, name), "rb") as f:
                while True:
                    count = f.readinto(buffer)
                    if not count:
                        break
                    if seen == 0 and name.endswith(".mpy") and wanted is not None:
                        if count < 2 or buffer[0] != 77 or buffer[1] != wanted & 0xFF:
                            return "%s is not a .mpy file of version %d, which this board loads" % (name, wanted & 0xFF)
                    seen += count
                    digest.update(memoryview(buffer)[:count])
            if seen != size:
                return "%s holds %d bytes on flash, not %d" % (name, seen, size)
        if binascii.hexlify(digest.digest()).decode() != rx.expected:
            return "the bundle read back from flash is not the one received: the flash is failing"
        return None

    def abort(self, origin):
        """Stop an update: the connection that sends it, or anyone at the
        USB line (a person at the board) may; stopping is never unsafe."""
        rx = self.rx
        if rx is not None:
            if origin is not None and rx.owner is not origin and not rx.owner.closed:
                _refuse("the update being received belongs to another connection")
            self.drop()
            return {"aborted": "receiving"}
        if self.restart_at is not None:
            marker = read_marker(self.root)
            marker["trial"] = None
            marker["tried"] = False
            marker["result"] = "cancelled"
            try:
                write_marker(self.root, marker)
            except OSError as err:
                _refuse("the flash refused a write (%s): the update stays staged" % err)
            self.restart_at = None
            self.staged = None
            return {"aborted": "staged"}
        return {"aborted": None}

    def drop(self):
        """Forget the bundle being received and free its flash."""
        rx = self.rx
        if rx is None:
            return
        self.rx = None
        if rx.file is not None:
            try:
                rx.file.close()
            except Exception:
                pass
        remove_tree(self.root + SLOTS[rx.slot])

    # -- the loop ---------------------------------------------------------------

    def poll(self, now):
        """Called every loop step while this module is loaded."""
        app = self.app
        ticks_diff = app.time.ticks_diff
        rx = self.rx
        # (A stamp that reads as in the future is 2**29 ms old or more.)
        if rx is not None and (rx.owner.closed or not 0 <= ticks_diff(now, rx.last) < IDLE_MS):
            self.drop()  # the sender went away: no half update waits on flash
        if self.trial:
            self._judge(now)
        if self.restart_at is not None and self._restart_due(now) and busy(app.hob) is None:
            # Every relay opens first (the reset would open them too), every
            # peer is told, then the board restarts into the boot loader.
            app.stop()
            if app.net is not None:
                app.net.flush()
                app.net.close()
            app.machine.reset()

    def _restart_due(self, now):
        """restart_at is set at most RESTART_DELAY_MS ahead; one that reads
        as further ahead is a stamp left while the hob stayed busy for 6.2
        days or more (ticks_diff sees it as a future one): due long ago."""
        ahead = self.app.time.ticks_diff(self.restart_at, now)
        return ahead <= 0 or ahead > RESTART_DELAY_MS

    def _judge(self, now):
        app = self.app
        hob = app.hob
        up_ms = hob.uptime_s(now) * 1000
        if not app.settings_ok:
            self._roll_back("settings", now)
        elif up_ms >= CONFIRM_MS and not hob.boot_pending and self._reached():
            marker = read_marker(self.root)
            marker["run"] = marker.get("trial") or marker["run"]
            marker["trial"] = None
            marker["tried"] = False
            marker["result"] = "confirmed"
            marker["why"] = None
            try:
                write_marker(self.root, marker)
            except OSError:
                return  # tried again at the next step
            self.trial = False
        elif up_ms >= TRIAL_MS:
            self._roll_back("no_report", now)

    def _reached(self):
        net = self.app.net
        if net is None:
            return True  # no network link configured: nothing to prove there
        for client in net.clients:
            if client.authenticated and not client.closed:
                return True
        return False

    def _roll_back(self, why, now):
        marker = read_marker(self.root)
        marker["trial"] = None
        marker["tried"] = False
        marker["result"] = "rolled_back"
        marker["why"] = why
        try:
            write_marker(self.root, marker)
        except OSError:
            pass  # the boot loader rolls back anyway: this firmware was tried
        self.trial = False
        self.restart_at = now  # as soon as nobody cooks

    def next_wake_ms(self, now, longest):
        """The longest the loop may sleep before something here is due."""
        ticks_diff = self.app.time.ticks_diff
        wait = longest
        if self.rx is not None:
            wait = min(wait, IDLE_MS)
        if self.restart_at is not None:
            # Due (and so held by a busy hob, or poll would have restarted
            # the board): look again within a second, not in a tight loop.
            wait = min(wait, 1000 if self._restart_due(now) else ticks_diff(self.restart_at, now))
        if self.trial:
            wait = min(wait, 1000)
        return wait

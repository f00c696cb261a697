# hobguard's boot loader: MicroPython runs this file at boot. It chooses the
# copy of the firmware to start -- the one known to work or, exactly once,
# one just received over the air -- and rolls back when that one failed
# before it confirmed itself (docs/updates.md). An update never replaces
# this file, so it must be able to start any firmware: it knows the marker
# file and the folders, nothing else. Every write is a new file renamed
# over the old one, so a power cut leaves the old marker or the new one.
import json
import os
import sys

MARKER = "hobguard_boot.json"
# Where each copy of the package hobguard_fw lives: "lib" is what
# `hobguard deploy` writes over USB (never touched by an update); updates
# go to whichever of a and b is not running.
SLOTS = {"lib": "lib", "a": "ota/a", "b": "ota/b"}
# A firmware on trial runs under a watchdog armed here, before any of its
# code: one that hangs while it imports or starts (before its App arms its
# own) is reset, and the next boot rolls it back. 60 s is the longest
# watchdog_ms the settings allow, so the App's loop (which feeds at least
# every watchdog_ms / 2) is never reset by it, whether the App's own
# WDT(timeout=watchdog_ms) then sets the timeout (the ESP32 does) or not.
TRIAL_WDT_MS = 60000


def read_marker(root):
    """The marker, or the one meaning "run lib" when there is none or it
    cannot be read: a marker file can only ever point at a copy."""
    try:
        with open(root + MARKER) as f:
            marker = json.loads(f.read(1024))
        trial = marker.get("trial")
        if marker["run"] in SLOTS and (trial is None or (trial in ("a", "b") and trial != marker["run"])):
            return marker
    except Exception:
        pass
    return {"run": "lib", "trial": None}


def write_marker(root, marker):
    path = root + MARKER
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(marker))
    try:
        os.rename(path + ".tmp", path)
    except OSError:
        # FAT will not rename over a file. Without a marker "lib" runs,
        # which an update never touches: still a working firmware.
        os.remove(path)
        os.rename(path + ".tmp", path)


def give_up(root, marker, why):
    """Roll back: the firmware on trial is never started again."""
    marker["trial"] = None
    marker["tried"] = False
    marker["result"] = "rolled_back"
    marker["why"] = why
    try:
        write_marker(root, marker)
    except Exception:
        pass  # the next boot finds tried=true and gives up again


def choose(root):
    """(folder, trying): where to import hobguard_fw from at this boot."""
    marker = read_marker(root)
    trial = marker.get("trial")
    if trial:
        if marker.get("tried"):
            # It was started once and did not confirm itself before this
            # reset (crash, watchdog, power cut, no report in time).
            give_up(root, marker, "reset")
        else:
            marker["tried"] = True
            marker["result"] = "trying"
            try:
                write_marker(root, marker)  # the try is counted before it runs
                return SLOTS[trial], True
            except Exception:
                pass  # a try that cannot be counted is not made
    return SLOTS[marker["run"]], False


def failed(root, folder, trying):
    """The firmware in `folder` could not be imported. Returns True when
    the next boot will run another copy (the caller resets the board)."""
    marker = read_marker(root)
    if trying:
        give_up(root, marker, "import")
        return True
    if folder == SLOTS["lib"]:
        return False  # nothing else to run: the relays stay off, the gas shut
    marker["run"] = "lib"
    marker["result"] = "fallback"
    marker["why"] = "import"
    try:
        write_marker(root, marker)
    except Exception:
        return False
    return True


def arm_watchdog(machine):
    """Arm the watchdog for a firmware on trial; None where it cannot be."""
    try:
        return machine.WDT(timeout=TRIAL_WDT_MS)
    except Exception:
        return None  # tried without one, as before there was this guard


def release(namespace):
    """Drop the boot loader's functions once the firmware is imported:
    they would hold about a kilobyte of heap for as long as it runs."""
    for name in (
        "read_marker",
        "write_marker",
        "give_up",
        "choose",
        "failed",
        "arm_watchdog",
        "start",
        "release",
        "SLOTS",
        "TRIAL_WDT_MS",
    ):
        namespace.pop(name, None)


def start():
    folder, trying = choose("")
    if trying:
        import machine

        arm_watchdog(machine)
    try:
        os.stat(folder + "/hobguard_fw")  # a missing copy is not silently /lib's
        sys.path.insert(0, "/" + folder)
        from hobguard_fw import app
    except Exception as err:
        sys.print_exception(err)  # pyright: ignore[reportAttributeAccessIssue]
        if failed("", folder, trying):
            import machine

            machine.reset()
        raise
    release(globals())
    app.main()


if __name__ == "__main__":
    start()

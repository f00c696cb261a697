# Firmware updates over the air, the device's pure parts: the boot loader's
# marker logic (firmware/main.py) and the receiving, checking, staging and
# trial of ota.py, on the App with the minimal fakes. Runs under CPython and
# inside real MicroPython alike. The whole story on the simulator, with
# real sockets, reboots into the new code and power cuts, is in
# tests/test_ota.py.
import binascii
import hashlib
import json
import os

import mpfakes
from hobguard_fw import BOOT_FILE, app, auth, ota, protocol

KEY_HEX = "00112233445566778899aabbccddeeff" * 2
KEY = bytes(range(0, 256, 17)) * 2


def boot_loader():
    """firmware/main.py's functions, run under a name of their own (so its
    start() does not run)."""
    for path in ("/firmware/main.py", _repo_main()):
        try:
            with open(path) as f:
                source = f.read()
        except (OSError, TypeError):
            continue
        namespace = {"__name__": "hobguard_boot_test"}
        exec(source, namespace)
        return namespace
    raise AssertionError("firmware/main.py not found")


def _repo_main():
    import hobguard_fw

    here = getattr(hobguard_fw, "__file__", "")
    parts = here.replace("\\", "/").split("/")
    return "/".join(parts[:-2]) + "/main.py"


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def marker(root):
    with open(root + BOOT_FILE) as f:
        return json.loads(f.read())


# -- the boot loader --------------------------------------------------------------


def test_without_a_marker_or_with_garbage_the_boot_loader_runs_lib():
    loader = boot_loader()
    root = mpfakes.fresh_root()
    assert loader["choose"](root) == ("lib", False)
    for text in ("", "{", "[]", '{"run": "c"}', '{"run": "a", "trial": "a"}', '{"run": "a", "trial": "lib"}'):
        write(root + BOOT_FILE, text)
        assert loader["choose"](root) == ("lib", False), text


def test_a_staged_firmware_is_tried_exactly_once_then_rolled_back():
    loader = boot_loader()
    root = mpfakes.fresh_root()
    loader["write_marker"](root, {"run": "a", "trial": "b", "tried": False, "version": "9.9.9"})
    assert loader["choose"](root) == ("ota/b", True)
    assert marker(root)["tried"] is True and marker(root)["result"] == "trying"
    # It reset before confirming itself: the next boot runs the known one.
    assert loader["choose"](root) == ("ota/a", False)
    after = marker(root)
    assert after["trial"] is None and after["result"] == "rolled_back" and after["why"] == "reset"
    assert after["run"] == "a" and after["version"] == "9.9.9"
    assert loader["choose"](root) == ("ota/a", False)
    assert not exists(root + BOOT_FILE + ".tmp")


def test_a_copy_that_does_not_import_is_left_for_another():
    loader = boot_loader()
    root = mpfakes.fresh_root()
    loader["write_marker"](root, {"run": "a", "trial": "b", "tried": False})
    folder, trying = loader["choose"](root)
    assert loader["failed"](root, folder, trying) is True
    assert marker(root)["why"] == "import" and loader["choose"](root) == ("ota/a", False)
    # The known copy itself fails: lib, which no update touches.
    assert loader["failed"](root, "ota/a", False) is True
    assert loader["choose"](root) == ("lib", False)
    assert loader["failed"](root, "lib", False) is False


def test_the_boot_loader_lets_go_of_its_functions():
    """What they hold in the heap while the firmware runs is measured by
    tools/mpy-wasm/heap.mjs ("boot loader" stages)."""
    loader = boot_loader()
    loader["release"](loader)
    names = ("choose", "failed", "start", "release", "read_marker", "arm_watchdog", "TRIAL_WDT_MS")
    assert [name for name in names if name in loader] == []


def test_the_boot_loader_arms_a_watchdog_no_app_setting_can_outlast():
    # A firmware on trial runs under this watchdog until its App arms its
    # own: long enough for any watchdog_ms the settings allow (the App's
    # loop feeds at least every watchdog_ms / 2), and it never stops a
    # boot on a board that has no watchdog.
    from hobguard_fw import settings_rules

    loader = boot_loader()
    armed = []

    class Machine:
        def WDT(self, timeout=5000):
            armed.append(timeout)
            return "wdt"

    assert loader["arm_watchdog"](Machine()) == "wdt"
    assert armed == [loader["TRIAL_WDT_MS"]]
    assert loader["TRIAL_WDT_MS"] >= settings_rules._LIMITS["watchdog_ms"][2]

    class NoWatchdog:
        def WDT(self, timeout=5000):
            raise OSError(19)

    assert loader["arm_watchdog"](NoWatchdog()) is None


def test_ota_reads_a_marker_exactly_as_the_boot_loader_does():
    loader = boot_loader()
    root = mpfakes.fresh_root()
    assert loader["SLOTS"] == ota.SLOTS and loader["MARKER"] == BOOT_FILE
    texts = (
        '{"run": "b", "trial": "a", "tried": true}',
        '{"run": "a", "trial": null}',
        '{"run": "lib", "trial": "b", "tried": false}',
        '{"run": "b", "trial": "b"}',
        '{"run": 1}',
        "not json",
    )
    for text in texts:
        write(root + BOOT_FILE, text)
        assert loader["read_marker"](root) == ota.read_marker(root), text
    ota.write_marker(root, {"run": "b", "trial": "a", "tried": False})
    assert loader["choose"](root) == ("ota/a", True)


# -- receiving over the network link -------------------------------------------------


class Client:
    def __init__(self, modules):
        self.sock = modules["socket"].connect(("192.168.1.50", 7343))
        self.session = auth.Session(KEY, False, b"\x42" * 32)
        self.reader = protocol.LineReader(protocol.MAX_LINE + auth.OVERHEAD)

    def lines(self):
        out = []
        while self.sock.inbox:
            out += self.reader.feed(self.sock.recv(4096))
        return out


def board(**kwargs):
    root = mpfakes.fresh_root()
    mpfakes.write_secrets(root, KEY_HEX)
    for name in kwargs:
        if name == "marker":
            write(root + BOOT_FILE, json.dumps(kwargs[name]))
    clock = mpfakes.Time()
    machine = mpfakes.Machine(clock)
    link = mpfakes.Link()
    modules = mpfakes.net_modules()
    device = app.App(machine, clock, link, root=root, network=modules)
    return device, clock, machine, link, modules, root


def run(device, clock, ms):
    end = clock.now + ms
    while clock.now < end:
        wait = device.step()
        clock.now += max(1, min(wait, end - clock.now))


def connect(device, clock, modules):
    client = Client(modules)
    run(device, clock, 10)
    client.sock.send(client.session.handshake(client.lines()[0]).encode())
    run(device, clock, 10)
    assert client.session.handshake(client.lines()[0]) == ""
    return client


def ask(device, clock, client, request_id, cmd, **args):
    client.sock.send(client.session.seal(protocol.request(request_id, cmd, **args)).encode())
    run(device, clock, 5)
    found = None
    for line in client.lines():  # every frame is unsealed: the counters must follow
        body = client.session.unseal(line)
        if body:
            frame = protocol.decode(body)
            if frame.get("id") == request_id:
                found = frame
    assert found is not None, "no reply to " + cmd
    return found


def ready():
    device, clock, machine, link, modules, root = board()
    run(device, clock, 6000)  # joined, listening, past the boot pulse, cold
    client = connect(device, clock, modules)
    return device, clock, machine, modules, root, client


def bundle(files, version="9.9.9", build="b1"):
    entries = [[name, len(data)] for name, data in files]
    head = json.dumps({"format": 1, "version": version, "build": build, "files": entries}).encode()
    data = head + b"\n" + b"".join([d for _, d in files])
    return data, binascii.hexlify(hashlib.sha256(data).digest()).decode()


FIRMWARE = [("__init__.py", b'VERSION = "9.9.9"\n'), ("app.py", b"# a new app\n" * 40)]


def send(device, clock, client, data, digest, version="9.9.9", first_id=10):
    begun = ask(device, clock, client, first_id, "ota_begin", version=version, size=len(data), sha256=digest)
    if begun["t"] != "ok":
        return begun
    step = begun["chunk"]
    request_id = first_id
    for offset in range(0, len(data), step):
        request_id += 1
        text = binascii.b2a_base64(data[offset : offset + step]).decode().strip()
        reply = ask(device, clock, client, request_id, "ota_chunk", off=offset, data=text)
        if reply["t"] != "ok":
            return reply
    return ask(device, clock, client, request_id + 1, "ota_end")


def test_a_bundle_is_received_checked_and_staged_then_the_board_restarts():
    device, clock, machine, modules, root, client = ready()
    data, digest = bundle(FIRMWARE)
    reply = send(device, clock, client, data, digest)
    assert reply["t"] == "ok" and reply["staged"] == "9.9.9" and reply["slot"] == "a", reply
    for name, content in FIRMWARE:
        assert read(root + "ota/a/hobguard_fw/" + name) == content
    staged = marker(root)
    assert staged["run"] == "lib" and staged["trial"] == "a" and staged["tried"] is False
    assert staged["result"] == "staged" and staged["build"] == "b1"
    status = ask(device, clock, client, 90, "ota_status")
    assert status["update"] == {"state": "staged", "version": "9.9.9"} and status["slot"] == "lib"
    restarted = False
    try:
        run(device, clock, ota.RESTART_DELAY_MS + 100)
    except mpfakes.Reset:
        restarted = True
    assert restarted
    assert machine.levels[26] == 0 and machine.levels[27] == 0  # every relay opened first


def test_a_bundle_whose_hash_is_not_the_announced_one_stages_nothing():
    device, clock, machine, modules, root, client = ready()
    data, digest = bundle(FIRMWARE)
    other = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    reply = send(device, clock, client, data, other)
    assert reply["t"] == "err" and reply["code"] == protocol.E_UPDATE and "SHA-256" in reply["msg"]
    assert not exists(root + BOOT_FILE) and not exists(root + "ota/a")
    run(device, clock, 5000)  # no restart comes
    assert device.updater is None


def test_bad_bundles_are_refused_with_a_reason_and_change_nothing():
    cases = (
        ([("app.py", b"x")], "__init__"),
        ([("__init__.py", b"x"), ("../app.py", b"x")], "file names"),
        ([("__init__.py", b"x"), ("app.py", b"x"), ("app.py", b"y")], "twice"),
        ([("__init__.py", b"x"), ("app.exe", b"x")], "file names"),
    )
    for files, words in cases:
        device, clock, machine, modules, root, client = ready()
        data, digest = bundle(files)
        reply = send(device, clock, client, data, digest)
        assert reply["t"] == "err" and reply["code"] == protocol.E_UPDATE and words in reply["msg"], (files, reply)
        assert not exists(root + BOOT_FILE)
    device, clock, machine, modules, root, client = ready()
    data, digest = bundle(FIRMWARE, version="1.0.0")
    reply = send(device, clock, client, data, digest, version="9.9.9")
    assert reply["t"] == "err" and "version" in reply["msg"]
    # Out of order: a chunk at the wrong offset stops the update.
    device, clock, machine, modules, root, client = ready()
    data, digest = bundle(FIRMWARE)
    assert ask(device, clock, client, 1, "ota_begin", version="9.9.9", size=len(data), sha256=digest)["t"] == "ok"
    chunk = binascii.b2a_base64(data[:10]).decode().strip()
    reply = ask(device, clock, client, 2, "ota_chunk", off=5, data=chunk)
    assert reply["t"] == "err" and "expected byte 0" in reply["msg"]
    reply = ask(device, clock, client, 3, "ota_chunk", off=0, data=chunk)
    assert reply["t"] == "err" and reply["code"] == protocol.E_STATE  # the update is over
    assert not exists(root + "ota/a")


def test_updates_are_refused_on_usb_and_while_the_hob_is_in_use():
    device, clock, machine, modules, root, client = ready()
    data, digest = bundle(FIRMWARE)
    link = device.link
    link.out = []
    link.inbound = protocol.request(7, "ota_begin", version="9.9.9", size=len(data), sha256=digest).encode()
    run(device, clock, 5)
    usb = [protocol.decode(line) for text in link.out for line in text.split("\n") if line.startswith("HG1")]
    refusal = [f for f in usb if f.get("id") == 7][0]
    assert refusal["code"] == protocol.E_STATE and "network link" in refusal["msg"]
    # A timer runs.
    assert ask(device, clock, client, 8, "timer_set", burner="left", minutes=20)["t"] == "ok"
    reply = send(device, clock, client, data, digest, first_id=20)
    assert reply["code"] == protocol.E_STATE and "timer runs on burner left" in reply["msg"], reply
    assert ask(device, clock, client, 9, "timer_cancel", burner="left")["t"] == "ok"
    # A burner burns (the thermocouple reads a flame).
    machine.mv[1] = 11.0
    run(device, clock, 5000)
    reply = send(device, clock, client, data, digest, first_id=40)
    assert reply["code"] == protocol.E_STATE and "burner right is lit" in reply["msg"], reply
    assert not exists(root + BOOT_FILE) and not exists(root + "ota/a")


def test_a_burner_lit_during_the_transfer_stops_the_staging():
    device, clock, machine, modules, root, client = ready()
    data, digest = bundle(FIRMWARE)
    begun = ask(device, clock, client, 1, "ota_begin", version="9.9.9", size=len(data), sha256=digest)
    machine.mv[0] = 11.0
    run(device, clock, 5000)
    step = begun["chunk"]
    for offset in range(0, len(data), step):
        text = binascii.b2a_base64(data[offset : offset + step]).decode().strip()
        assert ask(device, clock, client, 2 + offset, "ota_chunk", off=offset, data=text)["t"] == "ok"
    reply = ask(device, clock, client, 9999, "ota_end")
    assert reply["code"] == protocol.E_STATE and "burner left is lit" in reply["msg"]
    assert "not staged" in reply["msg"] and not exists(root + BOOT_FILE)


def test_the_update_code_leaves_memory_when_no_update_runs():
    device, clock, machine, modules, root, client = ready()
    assert device.updater is None
    status = ask(device, clock, client, 1, "ota_status")
    assert status["t"] == "ok" and status["fw"] and status["slot"] == "lib" and status["trial"] is False
    assert status["chunk"] == protocol.OTA_CHUNK and status["update"] is None
    assert device.updater is None


# -- the trial after the restart ---------------------------------------------------


def trial_board():
    return board(marker={"run": "lib", "trial": "a", "tried": True, "version": "9.9.9", "result": "trying"})


def test_a_firmware_on_trial_confirms_itself_once_healthy_and_reached():
    device, clock, machine, link, modules, root = trial_board()
    assert device.updater is not None and device.updater.trial
    run(device, clock, 3000)
    client = connect(device, clock, modules)
    run(device, clock, ota.CONFIRM_MS - 3000)
    assert marker(root)["trial"] == "a"  # not yet: too early
    run(device, clock, 2000)
    confirmed = marker(root)
    assert confirmed["run"] == "a" and confirmed["trial"] is None and confirmed["result"] == "confirmed"
    assert device.updater is None
    status = ask(device, clock, client, 1, "ota_status")
    assert status["slot"] == "a" and status["trial"] is False and status["last"]["result"] == "confirmed"


def test_a_firmware_on_trial_that_nobody_reaches_rolls_back_when_the_hob_is_free():
    device, clock, machine, link, modules, root = trial_board()
    machine.mv[0] = 11.0  # somebody cooks
    restarted = False
    try:
        run(device, clock, ota.TRIAL_MS + 5000)
    except mpfakes.Reset:
        restarted = True
    assert not restarted  # never while a burner burns
    after = marker(root)
    assert after["trial"] is None and after["result"] == "rolled_back" and after["why"] == "no_report"
    machine.mv[0] = 0.0
    try:
        run(device, clock, 60000)
    except mpfakes.Reset:
        restarted = True
    assert restarted


def test_a_firmware_on_trial_that_rejects_the_settings_rolls_back():
    device, clock, machine, link, modules, root = trial_board()
    write(root + "hobguard_settings.json", '{"sample_ms": 5}')
    device = app.App(machine, clock, link, root=root, network=mpfakes.net_modules())
    restarted = False
    try:
        run(device, clock, 10000)
    except mpfakes.Reset:
        restarted = True
    assert restarted and marker(root)["why"] == "settings"


def test_a_staged_restart_waits_for_a_free_hob_without_spinning_and_its_stamp_ages():
    device, clock, machine, modules, root, client = ready()
    data, digest = bundle(FIRMWARE)
    assert send(device, clock, client, data, digest)["t"] == "ok"
    machine.mv[0] = 11.0  # lit just after staging: the restart waits
    steps = 0
    end = clock.now + 20000
    while clock.now < end:
        clock.now += max(1, min(device.step(), end - clock.now))
        steps += 1
    assert device.updater is not None and device.updater.restart_at is not None
    # It looks again now and then, not in a tight loop (a step a millisecond).
    assert steps < 400, steps
    # The hob stayed busy for more than 6.2 days: the stamp now reads to
    # ticks_diff as one far in the future. It is due, not postponed.
    device.updater.restart_at = clock.ticks_add(clock.ticks_ms(), (1 << 29) - 10)
    machine.mv[0] = 0.0
    restarted = False
    try:
        run(device, clock, 60000)
    except mpfakes.Reset:
        restarted = True
    assert restarted


def test_a_burner_with_a_sensor_fault_may_be_lit_so_it_holds_an_update_until_the_hob_is_locked():
    device, clock, machine, modules, root, client = ready()
    data, digest = bundle(FIRMWARE)
    machine.adc_dead = True  # every reading fails: flame unknown, maybe lit
    run(device, clock, 15000)
    assert device.hob.burners[0].sensor_fault and device.hob.relay_closed[0]
    reply = send(device, clock, client, data, digest, first_id=20)
    assert reply["code"] == protocol.E_STATE and "burner left has a sensor fault" in reply["msg"], reply
    assert not exists(root + BOOT_FILE)
    # Locked, every relay is held open: nothing can burn, the update goes.
    assert ask(device, clock, client, 30, "lock", on=True)["t"] == "ok"
    run(device, clock, 60000)  # the lock's cut and its verification end
    client = connect(device, clock, modules)  # the old one went silent: dropped
    reply = send(device, clock, client, data, digest, first_id=40)
    assert reply["t"] == "ok" and reply["staged"] == "9.9.9", reply
    restarted = False
    try:
        run(device, clock, 5000)
    except mpfakes.Reset:
        restarted = True
    assert restarted


def test_a_sensor_fault_on_a_lit_burner_holds_a_staged_restart():
    device, clock, machine, modules, root, client = ready()
    data, digest = bundle(FIRMWARE)
    assert send(device, clock, client, data, digest)["t"] == "ok"
    machine.mv[0] = 11.0  # lit just after staging: the restart waits
    run(device, clock, 10000)
    machine.adc_dead = True  # then its sensor fails while it burns
    restarted = False
    try:
        run(device, clock, 60000)
    except mpfakes.Reset:
        restarted = True
    assert not restarted  # it may still burn: no restart cuts it
    assert device.hob.burners[0].sensor_fault and marker(root)["trial"] == "a"
    client = connect(device, clock, modules)  # the old one went silent: dropped
    assert ask(device, clock, client, 50, "lock", on=True)["t"] == "ok"
    try:
        run(device, clock, 60000)
    except mpfakes.Reset:
        restarted = True
    assert restarted

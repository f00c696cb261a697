# The device application: wires the control core to the drivers, the
# serial link and (when the board has a secrets file) the network link, one
# non-blocking step at a time.
#
# step() does everything due now and returns how long it may sleep; run()
# sleeps that long on the serial line and the network sockets (a command on
# either wakes it at once). Replies go to the link that asked; events and
# state go to every live link. The
# simulator calls step() itself, in virtual time, with fake machine/time
# modules and a fake link: the code below is what runs on the board.
import gc
import json
import sys

import hobguard_fw
from hobguard_fw import BOOT_FILE, SECRETS_FILE, VERSION, core, drivers, protocol
from hobguard_fw import settings as settings_store

# While a cut pulse runs, the thermocouple is read this often.
_CUT_SAMPLE_MS = 250
# A press in progress is polled this often.
_BUTTON_POLL_MS = 20
# At most this many bytes are taken from the line per step.
_READ_CHUNK = 512


class UsbLink:
    """The board's USB serial port, shared with the REPL. Reads never block.
    While the app runs a Ctrl-C (0x03) is a byte like any other (main()):
    the `repl` command hands the line to the REPL (review F12)."""

    def __init__(self):
        import select
        import sys

        # Bytes, not text: noise on the line must not fail to decode here;
        # the protocol decides what a line is.
        self.stdin = getattr(sys.stdin, "buffer", sys.stdin)
        self.stdout = sys.stdout
        self.poller = select.poll()
        self.poller.register(sys.stdin, select.POLLIN)

    def read(self):
        if not self.poller.poll(0):
            return b""  # the usual case: nothing waiting, nothing allocated
        data = bytearray()
        while len(data) < _READ_CHUNK and self.poller.poll(0):
            chunk = self.stdin.read(1)
            if not chunk:
                break
            data.extend(chunk.encode() if isinstance(chunk, str) else chunk)
        return bytes(data)

    def write(self, text):
        self.stdout.write(text)

    def wait(self, ms):
        self.poller.poll(ms)

    def watch(self, poller):
        """Let another poller (the network link's) wake on this line too."""
        import select
        import sys

        poller.register(sys.stdin, select.POLLIN)


class App:
    def __init__(self, machine, time_module, link, root="", network=None):
        self.machine = machine
        self.time = time_module
        self.link = link
        self.state_path = root + settings_store.STATE_FILE
        self.settings, settings_errors = settings_store.load(root + settings_store.SETTINGS_FILE)
        settings = self.settings
        now = time_module.ticks_ms()
        self.hob = core.Hob(
            settings,
            now,
            locked=settings_store.load_locked(self.state_path),
            reset_cause=drivers.reset_cause(machine),
        )
        self.device_id = settings["device_id"] or drivers.device_id(machine)
        burners = settings["burners"]
        self.relays = drivers.Relays(machine, [b["relay_pin"] for b in burners], settings["relay_active_high"])
        self.adc_inputs = []  # per burner: (ADS1115 or None, pair)
        chips = {}
        try:
            i2c = machine.I2C(
                settings["i2c_id"],
                scl=machine.Pin(settings["i2c_scl"]),
                sda=machine.Pin(settings["i2c_sda"]),
                freq=settings["i2c_freq"],
            )
        except Exception:
            i2c = None  # every reading fails: the core reports sensor faults
        for b in burners:
            address = b["adc_address"]
            if i2c is not None and address not in chips:
                chips[address] = drivers.ADS1115(i2c, address, time_module)
            self.adc_inputs.append((chips.get(address), b["adc_pair"]))
        self.button = None
        if settings["button_pin"] >= 0:
            self.button = drivers.Button(machine, time_module, settings["button_pin"], settings["long_press_ms"])
        self.indicator = drivers.Indicator(machine, settings["led_pin"], settings["buzzer_pin"])
        self.reader = protocol.LineReader()
        self.sample_ms = settings["sample_ms"]
        self.idle_sample_ms = settings["idle_sample_ms"]
        # Longest sleep: the watchdog is fed well within its timeout
        # (settings guarantee watchdog_ms >= 2 x idle_sample_ms).
        self.max_sleep_ms = settings["watchdog_ms"] // 2
        self.heartbeat_ms = int(settings["heartbeat_s"] * 1000)
        # The app's only stored ticks are these two deadlines. Each lies at
        # most one period ahead (idle_sample_ms, heartbeat_s) when it is
        # set, and step() runs at least every max_sleep_ms; _due() also
        # counts a deadline further ahead than its period as due, so not
        # even a step missed for days (a deadline 2**29 ms stale reads as a
        # future one to ticks_diff) could stop sampling or the heartbeat.
        self.next_sample = now
        self.next_heartbeat = now
        self.last_signature = None
        self.lines_rejected = 0
        self.wdt = machine.WDT(timeout=settings["watchdog_ms"])
        if settings_errors:
            # The device runs on defaults and says why, once per boot.
            self.hob.emit("warning", None, reason="settings_invalid", errors=settings_errors[:4])
        self.reply_to = link
        self.net = self._start_network(root, now, network)
        # Firmware updates (hobguard_fw/ota.py): loaded only while one runs
        # or while this firmware is on trial after one.
        self.root = root
        self.settings_ok = not settings_errors
        self.updater = None
        if _on_trial(root):
            self._updater(now)

    def _start_network(self, root, now, modules):
        """The network link when the board has a secrets file, else None.
        `modules` (the simulator's fakes) replaces the board's network,
        socket, select and os.urandom."""
        try:
            open(root + SECRETS_FILE).close()
        except OSError:
            return None  # a USB-only board: no network code loaded at all
        from hobguard_fw import wifi

        secrets, errors = wifi.load_secrets(root + SECRETS_FILE)
        if errors:
            # Names the fields that are wrong, never their values.
            self.hob.emit("warning", None, reason="secrets_invalid", errors=errors[:4])
        if secrets is None:
            return None
        from hobguard_fw import netlink

        net, errors = netlink.start(secrets, self.device_id, now, self.time, modules or {})
        if errors:
            self.hob.emit("warning", None, reason="network_unavailable", errors=errors[:4])
        if net is not None:
            watch = getattr(self.link, "watch", None)
            if watch is not None:
                watch(net.poller)
        return net

    # -- output ------------------------------------------------------------

    def send(self, message):
        """To every live link."""
        text = protocol.encode(message)
        self.link.write(text)
        if self.net is not None:
            self.net.broadcast(text)

    def reply(self, message):
        """To the link the command being handled came from."""
        self.reply_to.write(protocol.encode(message))

    def state_message(self, now):
        message = self.hob.snapshot(now)
        message["t"] = "state"
        message["device"] = self.device_id
        if self.net is not None:
            self.net.describe(message)
        return message

    def _signature(self):
        hob = self.hob
        parts = [hob.locked, hob.fault(), hob.unattended_deadline is None]
        for burner in hob.burners:
            parts.append((burner.flame, burner.timer_deadline is None, burner.cut_until is None, burner.cut_fault))
        parts.append(tuple(hob.relay_closed))
        return tuple(parts)

    # -- input -------------------------------------------------------------

    def handle_line(self, line, now, origin=None):
        self.reply_to = self.link if origin is None else origin
        if line is None:
            self.lines_rejected += 1
            self.reply(protocol.reply_error(protocol.E_TOO_LONG, "line too long"))
            return
        if not line.strip():
            return  # a terminal's bare Enter
        try:
            request_id, cmd, args = protocol.parse_request(line)
        except protocol.ProtocolError as err:
            self.lines_rejected += 1
            self.reply(protocol.reply_error(err.code, err.message, err.request_id))
            return
        if cmd == "hello":
            self.reply(
                protocol.reply_ok(
                    request_id,
                    proto=protocol.PROTOCOL_VERSION,
                    fw=VERSION,
                    device=self.device_id,
                    burners=self.hob.names,
                    timer_max_min=self.settings["timer_max_min"],
                    warn_before_s=self.settings["warn_before_s"],
                    unattended_min=self.settings["unattended_min"],
                    flame_loss_cut=self.settings["flame_loss_cut"],
                    heartbeat_s=self.settings["heartbeat_s"],
                )
            )
            return
        if cmd == "ping":
            self.reply(protocol.reply_ok(request_id))
            return
        if cmd == "repl":
            self._repl(request_id, origin)
            return
        if cmd[:4] == "ota_":
            try:
                fields = self._updater(now).command(cmd, args, origin, now)
            except core.HobError as err:
                self.reply(protocol.reply_error(err.code, err.message, request_id))
            else:
                self.reply(protocol.reply_ok(request_id, **fields))
            self._drop_updater()
            return
        try:
            state = self.hob.handle(cmd, args, now)
        except core.HobError as err:
            self.reply(protocol.reply_error(err.code, err.message, request_id))
            return
        self._drive_outputs()
        state["t"] = "state"
        state["device"] = self.device_id
        self.reply(protocol.reply_ok(request_id, state=state))

    def _repl(self, request_id, origin):
        """A developer (hobguard deploy, before mpremote) asks for the REPL:
        USB only, where the REPL is; a checksummed frame, which line noise
        cannot make, unlike the 0x03 of a Ctrl-C (review F12). main() then
        opens every relay and hands the line over."""
        if origin is not None:
            self.reply(protocol.reply_error(protocol.E_STATE, "the REPL is on the USB line only", request_id))
            return
        self.reply(protocol.reply_ok(request_id))
        raise KeyboardInterrupt

    def _updater(self, now):
        if self.updater is None:
            from hobguard_fw import ota

            self.updater = ota.Updater(self, now)
        return self.updater

    def _drop_updater(self):
        updater = self.updater
        if updater is None or not updater.idle():
            return
        self.updater = None
        if sys.implementation.name == "micropython":
            # Let the collector take the update code back.
            sys.modules.pop("hobguard_fw.ota", None)
            hobguard_fw.__dict__.pop("ota", None)

    # -- the loop ----------------------------------------------------------

    def _drive_outputs(self):
        for index, closed in enumerate(self.hob.relay_closed):
            self.relays.set(index, closed)

    def _sample(self, now):
        for index, (chip, pair) in enumerate(self.adc_inputs):
            millivolts = chip.read_mv(pair) if chip is not None else None
            self.hob.sample(index, millivolts, now)

    def _due(self, deadline, now, period):
        ahead = self.time.ticks_diff(deadline, now)
        return ahead <= 0 or ahead > period

    def step(self):
        """Do what is due; return the milliseconds the caller may sleep."""
        time = self.time
        hob = self.hob
        now = time.ticks_ms()
        # Deadlines due now are served before any input of this step, and a
        # cut they decide reaches the relay pins at once (review F13): no
        # command in the same millisecond as a timer's end can postpone the
        # cut, nor the USB line's or the network's work delay it.
        hob.tick(now)
        self._drive_outputs()
        data = self.link.read()
        if data:
            for line in self.reader.feed(data):
                self.handle_line(line, now)
        net = self.net
        if net is not None:
            net.poll(now, self.handle_line)
        if data or net is not None:
            # Commands take time on a board (HMAC, JSON, a state in every
            # reply): what follows (sampling, the guards, the sleep) runs
            # on a fresh clock, so a deadline that fell due meanwhile is
            # served in this step, not a sleep later.
            now = time.ticks_ms()
        if self.button is not None:
            press = self.button.poll()
            if press:
                hob.press(press, now)
        heartbeat_due = self._due(self.next_heartbeat, now, self.heartbeat_ms)
        if self._due(self.next_sample, now, self.idle_sample_ms):
            self._sample(now)
            if hob.quiet():
                period = self.idle_sample_ms
            elif hob.cutting():
                period = min(self.sample_ms, _CUT_SAMPLE_MS)  # watch the cut work
            else:
                # A flame-loss detector watching a flame asks for 500 ms, and
                # for 250 ms while it watches a fall.
                period = hob.sample_period_ms(self.sample_ms)
            self.next_sample = time.ticks_add(now, period)
            # A heartbeat due before the next sample goes out now, a little
            # early, so the device wakes once for both.
            heartbeat_due = heartbeat_due or time.ticks_diff(self.next_sample, self.next_heartbeat) > 0
        hob.tick(now)
        self._drive_outputs()
        if hob.lock_dirty:
            hob.lock_dirty = False
            if not settings_store.save_locked(hob.locked, self.state_path):
                # The lock holds now but would not survive a restart: say so.
                hob.emit("warning", None, reason="lock_not_saved", locked=hob.locked)
        events = hob.take_events()
        for event in events:
            event["t"] = "evt"
            self.send(event)
        signature = self._signature()
        if signature != self.last_signature or heartbeat_due:
            self.last_signature = signature
            self.send(self.state_message(now))
            self.next_heartbeat = time.ticks_add(now, self.heartbeat_ms)
        self.indicator.show(hob.indicator())
        self.wdt.feed()
        wait = min(
            self.max_sleep_ms,
            time.ticks_diff(self.next_sample, now),
            time.ticks_diff(self.next_heartbeat, now),
        )
        if net is not None:
            net.flush()
            wait = min(wait, net.next_wake_ms(now))
        if self.button is not None and self.button.busy():
            wait = min(wait, _BUTTON_POLL_MS)

        updater = self.updater
        if updater is not None:
            updater.poll(now)  # may restart the board
            wait = updater.next_wake_ms(now, wait)
            self._drop_updater()
        return max(0, hob.next_wake_ms(now, wait))

    def run(self):
        waiter = self.link if self.net is None else self.net
        while True:
            waiter.wait(self.step())

    def stop(self):
        """Leave every loop open: a stopped controller must leave gas shut."""
        self.relays.open_all()


def _on_trial(root):
    """True when the boot loader (main.py) is trying this firmware once,
    after an update: it must then show it is healthy (ota.py)."""
    try:
        with open(root + BOOT_FILE) as f:
            marker = json.loads(f.read(1024))
        return bool(marker.get("trial")) and marker.get("tried") is True
    except Exception:
        return False


def main(machine=None, time_module=None, link=None):
    """Entry point from main.py. Any unhandled error opens every relay,
    reports it, and resets the board. While the app runs a Ctrl-C on the
    line is a plain byte (a stray 0x03 must not stop a controller); the
    `repl` command over USB (or a KeyboardInterrupt where the port cannot
    switch Ctrl-C off) opens every relay and hands the board to the REPL
    with the watchdog kept fed and Ctrl-C back on."""
    if machine is None:
        import machine
    if time_module is None:
        import time as time_module
    if link is None:
        link = UsbLink()
    app = None
    try:
        app = App(machine, time_module, link)
        gc.collect()
        _ctrl_c(False)
        app.run()
    except KeyboardInterrupt:
        if app is not None:
            app.stop()
            if app.net is not None:
                app.net.close()
            _keep_watchdog_fed(machine, app.wdt)
        _ctrl_c(True)
        link.write("hobguard stopped: every burner cut; REPL is yours. machine.reset() restarts.\n")
    except Exception as err:
        fail(app, link, err)
        time_module.sleep_ms(200)
        machine.reset()


def fail(app, link, err):
    """An unhandled error: open every relay and tell the host, before the
    caller resets the board."""
    if app is not None:
        try:
            app.stop()
        except Exception:
            pass
    try:
        text = protocol.encode({"t": "evt", "event_type": "fault", "reason": "crash", "detail": repr(err)[:120]})
        link.write(text)
        net = app.net if app is not None else None
        if net is not None:
            net.broadcast(text)
            net.flush()
            net.close()
    except Exception:
        pass


def _ctrl_c(on):
    """Ctrl-C raises KeyboardInterrupt (on), or is a plain byte on the line
    (off, while the app runs: a stray 0x03 must not stop the hob; the
    `repl` command does it on purpose). Where the port cannot switch it
    (no micropython.kbd_intr, CPython), a Ctrl-C stops the app as before."""
    try:
        import micropython

        micropython.kbd_intr(3 if on else -1)
    except (ImportError, AttributeError):
        pass


def _keep_watchdog_fed(machine, wdt):
    # An ESP32 watchdog cannot be stopped once started: feed it from a timer
    # so the REPL session (mpremote) is not reset under the user.
    try:
        timer = machine.Timer(0)
        timer.init(period=1000, mode=machine.Timer.PERIODIC, callback=lambda t: wdt.feed())
    except Exception:
        pass

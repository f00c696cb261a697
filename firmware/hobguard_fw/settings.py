# Device settings: defaults, validation, and the JSON file on flash.
# validate() is pure and shared with the host (`hobguard settings check`),
# so a file is checked the same way before it is copied and at boot; its
# rules live in settings_rules.
import json
import os
import sys

SETTINGS_FILE = "hobguard_settings.json"
STATE_FILE = "hobguard_state.json"
# A settings file longer than this is not one (the full example is ~1 KB);
# the device reads no more, so a huge file cannot exhaust its heap.
MAX_FILE_BYTES = 8192
_RULES = "hobguard_fw.settings_rules"


def defaults():
    return {
        # Empty: derived from the chip's unique id ("hob-1a2b3c").
        "device_id": "",
        # Which ESP32 the board carries: the pin checks depend on it.
        # One of settings_rules.CHIPS; `hobguard deploy` checks it against
        # the board.
        "chip": "esp32",
        # One entry per burner (1..4): its relay pin and its ADS1115
        # differential pair (chip address, pair 0 = AIN0-AIN1, 1 = AIN2-AIN3).
        "burners": [
            {"id": "left", "relay_pin": 26, "adc_address": 72, "adc_pair": 0},
            {"id": "right", "relay_pin": 27, "adc_address": 72, "adc_pair": 1},
        ],
        # Pin level that closes the relay (thermocouple loop closed, burner
        # usable). The default wiring is normally open and energised to run,
        # so a dead controller leaves every loop open and the gas shut.
        "relay_active_high": True,
        "i2c_id": 0,
        "i2c_scl": 22,
        "i2c_sda": 21,
        "i2c_freq": 400000,
        "button_pin": 0,  # the BOOT button on most boards; -1 = none
        "led_pin": 2,  # -1 = none
        "buzzer_pin": -1,  # -1 = none
        "timer_max_min": 720,
        "warn_before_s": 60,
        "cut_pulse_s": 3,
        "left_on_min": 120,  # 0 = guard off
        # Unattended-cooking guard: minutes a burner may burn with no sign
        # of a person (a `presence` command, the button, a burner lit or
        # turned) before the warning and the cut. 0 = off, the default: the
        # device cannot know that anything will ever send `presence`
        # (docs/guards.md).
        "unattended_min": 0,
        # Cut a burner at once when its thermocouple shows the flame has
        # gone out while the valve still holds (docs/guards.md).
        "flame_loss_cut": True,
        "verify_s": 30,
        "button_timer_min": 10,
        "long_press_ms": 1500,
        # Flame thresholds with the loop closed (loaded voltage, ~10-12 mV
        # hot) and with the relay open (open-circuit EMF, ~25 mV hot).
        "flame_on_mv": 5.0,
        "flame_off_mv": 3.0,
        "flame_open_on_mv": 10.0,
        "flame_open_off_mv": 6.0,
        "flame_filter_ms": 2000,
        "tc_max_mv": 80.0,  # a reading beyond +-this is impossible: sensor fault
        "sample_ms": 1000,
        # While every burner is cold and nothing is pending, sample this
        # seldom: a lighting takes 3-15 s of holding the knob anyway.
        "idle_sample_ms": 4000,
        "heartbeat_s": 10,
        "watchdog_ms": 8000,
    }


def validate(candidate):
    """Return (settings, errors). settings is complete: every key the
    candidate lacks takes its default. errors lists everything that is
    wrong, each naming the key and what it takes; a caller that gets errors
    must not use the candidate (fall back to defaults())."""
    from hobguard_fw import settings_rules

    try:
        return settings_rules.validate(candidate, defaults())
    finally:
        if sys.implementation.name == "micropython":
            # Checked once per boot: drop the rules so the collector can
            # take their code back (about 5 KB of an ESP32's heap).
            sys.modules.pop(_RULES, None)
            import hobguard_fw

            hobguard_fw.__dict__.pop("settings_rules", None)


def load(path=SETTINGS_FILE):
    """Read the settings file. Never raises: a missing, unreadable or
    invalid file gives the defaults plus a list of what was wrong."""
    try:
        f = open(path)
    except OSError:
        return defaults(), []  # no file: defaults, nothing wrong
    try:
        with f:
            text = f.read(MAX_FILE_BYTES + 1)
        if len(text) > MAX_FILE_BYTES:
            return defaults(), ["%s is longer than %d bytes" % (path, MAX_FILE_BYTES)]
        candidate = json.loads(text)
    except Exception:
        return defaults(), ["%s is not valid JSON (UTF-8 text, one object)" % path]
    try:
        settings, errors = validate(candidate)
    except Exception:  # a bug here must not stop the boot: run safe
        return defaults(), ["settings: the check itself failed"]
    if errors:
        return defaults(), errors
    return settings, []


def load_locked(path=STATE_FILE):
    # The file, or else the new one a power cut left just before its
    # rename on a file system that cannot rename over a file (FAT).
    for name in (path, path + ".tmp"):
        try:
            with open(name) as f:
                return json.loads(f.read(256)).get("locked") is True
        except Exception:
            pass
    return False


def save_locked(locked, path=STATE_FILE):
    """Keep the child lock on flash: a new file renamed over the old one,
    so a power cut leaves the old value or the new one, never a torn
    file. True once it is there; False when the flash refused (the old
    file is then untouched: the caller must say so)."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps({"locked": bool(locked)}))
        try:
            os.rename(tmp, path)
        except OSError:
            os.remove(path)  # FAT: no rename over a file (the .tmp is read meanwhile)
            os.rename(tmp, path)
        return True
    except OSError:
        return False

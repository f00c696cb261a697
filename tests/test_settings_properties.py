"""Properties of the settings check over random documents (hypothesis):

- no document, however broken, makes validate() raise, and every error it
  gives names a key;
- every document built to be valid is accepted, and the real firmware boots
  with it on the simulated hob and cuts a burner on a timer;
- one wrong value put into a valid document is always caught, by a message
  that names that key; several wrong values give one message each at least
  (a pin's fit for its job is judged once the chip is known).
"""

from __future__ import annotations

import json
import math

from hobguard_fw import settings as fw_settings
from hobguard_fw import settings_rules as rules
from hobguard_sim.device import SimDevice
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

KEYS = list(fw_settings.defaults())
PIN_KEYS = ("i2c_sda", "i2c_scl", "button_pin", "led_pin", "buzzer_pin")

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=20,
)
# Burner-like objects and settings-like documents, so the checks past the
# first line are reached often, not only "not an object".
burner_like = st.dictionaries(
    st.sampled_from(list(rules._BURNER_KEYS) + ["colour", ""]),
    st.one_of(json_scalars, st.integers(min_value=-2, max_value=80)),
    max_size=6,
)
documents = st.one_of(
    json_values,
    st.dictionaries(
        st.sampled_from(KEYS + ["colour", "Burners"]),
        st.one_of(
            json_values,
            st.integers(min_value=-2, max_value=60000),
            st.lists(st.one_of(burner_like, json_scalars), max_size=6),
        ),
        max_size=len(KEYS),
    ),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_no_document_makes_validate_raise_and_every_error_names_a_key(document):
    result, errors = fw_settings.validate(document)
    assert isinstance(result, dict) and set(result) == set(KEYS)
    assert isinstance(errors, list)
    named = set(KEYS) | {"settings"}
    if isinstance(document, dict):
        named |= {rules._name(key) for key in document}
    for error in errors:
        assert isinstance(error, str)
        assert any(error.startswith(key + end) for key in named for end in (": ", "[", ".")), error
    if not isinstance(document, dict):
        assert errors


def _number(low, high, whole):
    if whole:
        return st.integers(min_value=low, max_value=high)
    return st.one_of(
        st.integers(min_value=math.ceil(low), max_value=int(high)), st.floats(min_value=low, max_value=high)
    )


@st.composite
def valid_documents(draw, chips=tuple(rules.CHIPS)):
    chip = draw(st.sampled_from(chips))
    used: set[int] = set()

    def pin(role, optional=False):
        choices = [p for p in rules.usable_pins(chip, role) if p not in used]
        if optional:
            choices.append(-1)
        chosen = draw(st.sampled_from(choices))
        if chosen >= 0:
            used.add(chosen)
        return chosen

    count = draw(st.integers(min_value=1, max_value=4))
    ids = draw(st.lists(st.from_regex(r"[a-z0-9_]{1,16}", fullmatch=True), min_size=count, max_size=count, unique=True))
    inputs = draw(st.permutations([(a, p) for a in (72, 73, 74, 75) for p in (0, 1)]))[:count]
    burners = [
        {"id": ident, "relay_pin": pin("relay"), "adc_address": address, "adc_pair": pair}
        for ident, (address, pair) in zip(ids, inputs, strict=True)
    ]
    doc = {
        "device_id": draw(st.one_of(st.just(""), st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True))),
        "chip": chip,
        "burners": burners,
        "relay_active_high": draw(st.booleans()),
        "i2c_id": draw(st.integers(0, 1)),
        "i2c_sda": pin("i2c"),
        "i2c_scl": pin("i2c"),
        "i2c_freq": draw(st.integers(10000, 1000000)),
        "button_pin": pin("button", optional=True),
        "led_pin": pin("led", optional=True),
        "buzzer_pin": pin("buzzer", optional=True),
    }
    for key, (kind, low, high) in rules._LIMITS.items():
        if key not in doc and kind in ("int", "num"):
            doc[key] = draw(_number(low, high, kind == "int"))
    doc["flame_on_mv"] = draw(st.floats(min_value=0.5, max_value=50))
    doc["flame_off_mv"] = draw(st.floats(min_value=0.1, max_value=doc["flame_on_mv"], exclude_max=True))
    doc["flame_open_on_mv"] = draw(st.floats(min_value=0.5, max_value=80))
    doc["flame_open_off_mv"] = draw(st.floats(min_value=0.1, max_value=doc["flame_open_on_mv"], exclude_max=True))
    doc["idle_sample_ms"] = draw(st.integers(min_value=doc["sample_ms"], max_value=10000))
    doc["watchdog_ms"] = draw(st.integers(min_value=max(2000, 2 * doc["idle_sample_ms"]), max_value=60000))
    doc["flame_loss_cut"] = draw(st.booleans())
    # A guard that is on must be longer than the warning.
    guards = [doc[key] * 60 for key in ("left_on_min", "unattended_min") if doc[key]]
    if guards and doc["warn_before_s"] >= min(guards):
        doc["warn_before_s"] = draw(st.floats(min_value=0, max_value=min(guards), exclude_max=True))
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_documents())
def test_a_valid_document_is_accepted_and_the_firmware_boots_with_it(doc):
    result, errors = fw_settings.validate(json.loads(json.dumps(doc)))
    assert errors == []
    assert result == doc
    device = SimDevice(settings=doc)
    device.run_for(5000)
    assert [e["reset_cause"] for e in device.events("boot")] == ["power_on"]
    assert not device.events("warning") or all(e.get("reason") != "settings_invalid" for e in device.events("warning"))
    assert device.app is not None and device.app.settings == result
    if doc["device_id"]:
        assert device.app.device_id == doc["device_id"]
    first = doc["burners"][0]["id"]
    device.physics.ignite(0, device.clock.seconds)
    device.run_for(20000)
    device.command("timer_set", burner=first, minutes=1)
    device.run_for(70000)
    cuts = [e for e in device.events("cut") if e.get("burner") == first]
    note(f"cuts {cuts}")
    assert cuts, "no cut of the burner on the 1 min timer"
    assert not [e for e in device.events("fault") if e.get("reason") == "crash"]
    assert device.resets == []


# One wrong value per key, of the kinds people write.
WRONG = {
    "device_id": ["Kitchen Hob", "hob\n", "-x", 5],
    "chip": ["esp8266", "ESP32", None],
    "relay_active_high": [1, "true", None],
    "burners": [[], {}, "left", [1]],
}
for _key, (_kind, _low, _high) in rules._LIMITS.items():
    if _kind in ("int", "num"):
        WRONG[_key] = [_low - 1, _high + 1, str(_low), None, True, [_low]]
        if _kind == "int":
            WRONG[_key].append(_low + 0.5)
for _key in PIN_KEYS:
    WRONG[_key] += [7, 34, 24]  # flash, input-only, missing on a classic ESP32


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_documents(chips=("esp32",)), st.data())  # the pin mistakes above are a classic ESP32's
def test_each_wrong_value_is_caught_by_a_message_naming_its_key(doc, data):
    keys = data.draw(st.lists(st.sampled_from(sorted(WRONG)), min_size=1, max_size=4, unique=True))
    for key in keys:
        value = data.draw(st.sampled_from(WRONG[key]))
        if key == "button_pin" and value == 34:
            value = 7  # GPIO 34 is a fine input for a button (with a warning)
        doc[key] = value
    note(f"wrong: { {k: doc[k] for k in keys} }")
    result, errors = fw_settings.validate(doc)
    for key in keys:
        if "chip" in keys and key in PIN_KEYS and isinstance(doc[key], int) and 0 <= doc[key] <= 48:
            continue  # which pins a board has depends on the chip: judged once "chip" is right
        assert [e for e in errors if e.startswith(key + ":") or e.startswith(key + "[")], (key, errors)

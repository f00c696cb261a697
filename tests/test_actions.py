"""The action language (hobguard_sim.actions): every action parses, does what
it says to a simulated hob, and says it in words; the old spellings still
work; a mistake gets an error that lists what is valid; the README's table
is the module's."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import REPO
from hobguard_fw import protocol
from hobguard_sim import actions
from hobguard_sim.actions import VERBS, ActionError
from hobguard_sim.device import SimDevice

BURNERS = ["left", "right"]
SETTINGS = {"button_timer_min": 10, "long_press_ms": 1500, "button_pin": 0}


def _dev() -> SimDevice:
    dev = SimDevice(seed=3, virtual_wifi=True)
    dev.run_for(4_000)  # booted, relays closed
    return dev


def _lit(dev: SimDevice) -> None:
    actions.act(dev, "ignite left")
    dev.run_for(20_000)


def _events(dev: SimDevice, kind: str) -> list[dict]:
    return dev.events(kind)


def _answered(dev: SimDevice) -> bool:
    """The command (the only one sent) was acknowledged."""
    return any(f.get("t") == "ok" and isinstance(f.get("id"), int) for f in dev.frames)


def _last_error(dev: SimDevice) -> str | None:
    errors = [f for f in dev.frames if f.get("t") == "err"]
    return errors[-1].get("code") if errors else None


def _model(dev: SimDevice, index: int = 0):
    return dev.physics.models[index]


def _truth(dev: SimDevice, key: str, index: int = 0):
    return dev.truth()[index][key]


# verb -> (what comes first, what must be true a second after the example)
EFFECTS: dict[str, tuple[Callable[[SimDevice], None] | None, Callable[[SimDevice], bool]]] = {
    "ignite": (None, lambda d: _truth(d, "knob") == "held" and _truth(d, "valve") == "open"),
    "hold": (None, lambda d: _truth(d, "knob") == "held"),
    "off": (_lit, lambda d: _truth(d, "knob") == "off" and not _truth(d, "gas_flow")),
    "turn": (_lit, lambda d: _model(d).level < 1.0),
    "press": (None, lambda d: [e["reason"] for e in _events(d, "rejected")] == ["button: no burner is lit"]),
    "blowout": (_lit, lambda d: not _truth(d, "flame") and _truth(d, "gas_flow")),
    "boilover": (_lit, lambda d: not _truth(d, "flame") and _model(d).wet),
    "draught": (_lit, lambda d: _truth(d, "draught")),
    "set": (None, lambda d: _model(d).params.tc_aging == 0.72),
    "timer": (_lit, lambda d: bool(_events(d, "timer_set"))),
    "extend": (lambda d: (_lit(d), actions.act(d, "timer left 5")), lambda d: len(_events(d, "timer_set")) == 2),
    "cancel": (lambda d: (_lit(d), actions.act(d, "timer left 5")), lambda d: bool(_events(d, "timer_cancelled"))),
    "cut": (_lit, lambda d: [e["reason"] for e in _events(d, "cut")] == ["remote"]),
    "lock": (None, lambda d: [e["locked"] for e in _events(d, "lock")] == [True]),
    "clear_fault": (None, _answered),
    "status": (None, _answered),
    "ping": (None, _answered),
    "hello": (None, _answered),
    "presence": (None, _answered),
    "repl": (
        None,
        lambda d: (
            d.stopped_for_repl
            and d.app is None
            and not any(d.physics.truth(d.clock.seconds)[i]["relay"] == "closed" for i in range(2))
        ),
    ),
    "ota_status": (None, lambda d: any(f.get("t") == "ok" and f.get("slot") == "lib" for f in d.frames)),
    "ota_abort": (None, lambda d: any(f.get("t") == "ok" and "aborted" in f for f in d.frames)),
    "weld": (None, lambda d: _model(d).welded),
    "unweld": (lambda d: actions.act(d, "weld left"), lambda d: not _model(d).welded),
    "stuck_open": (None, lambda d: _model(d).stuck_open),
    "unstick": (lambda d: actions.act(d, "stuck_open left"), lambda d: not _model(d).stuck_open),
    "open_tc": (None, lambda d: _model(d).tc_open),
    "tc_ok": (lambda d: actions.act(d, "open_tc left"), lambda d: not _model(d).tc_open),
    "contact": (None, lambda d: _model(d).params.r_switch_ohm == 0.1),
    "adc": (None, lambda d: _model(d).adc_dead and not d.board.adc_dead),
    "power_loss": (None, lambda d: not d.powered and d.app is None),
    "hang": (None, lambda d: d.hung),
    "link": (None, lambda d: not d.link.connected and d.link_down == {"serial"}),
    "wifi": (None, lambda d: not d.link.connected and d.link_down == {"wifi"}),
    "garbage": (None, lambda d: _last_error(d) in ("bad_frame", "bad_json")),
    "corrupt": (None, lambda d: _last_error(d) == "bad_crc"),
}


def test_every_action_has_its_effect_checked():
    assert set(EFFECTS) == set(VERBS)


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_action_parses_applies_and_describes(verb):
    spec = VERBS[verb]
    if spec.command is not None and spec.command not in protocol.COMMANDS:
        with pytest.raises(ActionError, match=f"the firmware has no {spec.command} command"):
            actions.parse(spec.example, BURNERS)
        return
    action = actions.parse(spec.example, BURNERS, settings=SETTINGS)
    assert action.verb == verb and action.who == spec.who and action.text == spec.example
    words = action.describe(SETTINGS)
    assert words and words != spec.example
    dev = _dev()
    before, check = EFFECTS[verb]
    if before is not None:
        before(dev)
    action.apply(dev)
    dev.run_for(1_000)
    assert check(dev), f"{spec.example!r} did not do what it says ({words})"


def test_host_actions_speak_the_protocol():
    """Every host action sends a protocol command, and every protocol
    command the USB line takes has its host action (those that carry a
    new firmware go over the network link only: protocol.NETWORK_ONLY)."""
    sent = set()
    for verb in VERBS.values():
        if verb.who != "host":
            assert verb.command is None
            continue
        assert verb.command is not None
        sent.add(verb.command)
        if verb.command in protocol.COMMANDS:
            action = actions.parse(verb.example, BURNERS)
            cmd, args = action.command or ("", {})
            assert cmd == verb.command
            assert protocol.parse_request(protocol.request(1, cmd, **args))[1:] == (cmd, args)  # valid, as meant
    assert set(protocol.COMMANDS) - set(protocol.NETWORK_ONLY) <= sent, set(protocol.COMMANDS) - sent
    assert not set(protocol.NETWORK_ONLY) & sent


@pytest.mark.parametrize(
    "old, new",
    [
        ("open-tc left", "open_tc left"),
        ("tc-ok left", "tc_ok left"),
        ("stuck-open right", "stuck_open right"),
        ("power-loss 5", "power_loss 5s"),
        ("power-loss", "power_loss 5s"),
        ("power_loss 30", "power_loss 30s"),
        ("dead-adc on", "adc dead"),
        ("dead-adc", "adc dead"),
        ("dead-adc off", "adc ok"),
        ("link on", "link ok"),
        ("link off", "link lost"),
        ("IGNITE left", "ignite left"),
        ("draught left 2", "draught left 2s"),
        ("clear-fault", "clear_fault"),
    ],
)
def test_old_spellings_mean_the_same(old, new):
    a, b = actions.parse(old, BURNERS), actions.parse(new, BURNERS)
    assert (a.verb, a.who, a.burner, a.value, a.extra) == (b.verb, b.who, b.burner, b.value, b.extra)


@pytest.mark.parametrize(
    "text, burner",
    [("ignite", "left"), ("turn 0.3", "left"), ("draught 2", "left"), ("weld", "left"), ("off right", "right")],
)
def test_on_stdin_a_left_out_burner_is_the_first(text, burner):
    assert actions.parse(text, BURNERS, first_burner_by_default=True).burner == burner
    if text.split()[-1] != "right":
        with pytest.raises(ActionError, match="needs a burner"):
            actions.parse(text, BURNERS)


def test_a_one_burner_hob_needs_no_burner_named():
    assert actions.parse("ignite", ["main"]).burner == "main"
    assert actions.parse("turn 0.5", ["main"]).value == 0.5


def test_an_unknown_action_lists_every_valid_one():
    with pytest.raises(ActionError) as info:
        actions.parse("fly left", BURNERS)
    message = str(info.value)
    assert "unknown action 'fly'" in message
    for verb in VERBS.values():
        assert f"'{verb.usage}'" in message


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "non-empty"),
        ("ignite middle", "unknown burner 'middle'; this hob has left, right"),
        ("ignite left now", "too many words"),
        ("timer left", "needs minutes"),
        ("timer left -1", "0..1e+09"),
        ("lock maybe", "'maybe' is not 'on' or 'off'"),
        ("adc sleepy", "'sleepy' is not 'dead' or 'ok'"),
        ("corrupt ignite left", "only host actions"),
        ("corrupt", "needs a host action"),
        ("power_loss 0", "more than 0 s"),
        ("press soon", "'soon' is not a time"),
    ],
)
def test_mistakes_are_said_with_the_usage(text, words):
    with pytest.raises(ActionError) as info:
        actions.parse(text, BURNERS)
    assert words in str(info.value)
    if text:
        verb = actions.VERBS.get(text.split()[0])
        assert verb is None or f"write '{verb.usage}'" in str(info.value)


def test_a_press_on_a_device_without_a_button_is_refused():
    with pytest.raises(ActionError, match="no button"):
        actions.parse("press short", BURNERS, settings=dict(SETTINGS, button_pin=-1))


def test_wifi_without_a_network_link_is_refused_by_a_device_behind_a_pty():
    dev = SimDevice(seed=1)  # neither --listen nor virtual Wi-Fi
    with pytest.raises(ValueError, match="no network link"):
        actions.act(dev, "wifi off")
    assert dev.link.connected


def test_link_and_wifi_are_two_causes_of_one_host_link():
    dev = _dev()
    actions.act(dev, "link lost")
    actions.act(dev, "wifi off")
    actions.act(dev, "link ok")
    assert not dev.link.connected  # the Wi-Fi is still out
    actions.act(dev, "wifi on")
    assert dev.link.connected


def test_the_readme_lists_the_actions_of_the_module():
    readme = (REPO / "sim" / "README.md").read_text()
    assert actions.markdown_table() in readme, "sim/README.md: paste actions.markdown_table() under 'Actions'"


def test_cooking_sessions_use_the_action_names():
    """The sample-level sessions (hobguard_sim.cooking) name their actions as the language does."""
    from hobguard_sim import cooking

    kinds = {"ignite", "turn", "draught", "blowout", "boilover", "off"}
    assert kinds <= set(VERBS)
    import random

    for seed in range(20):
        session = cooking.random_session(random.Random(seed))
        assert {a.kind for a in session.actions} <= kinds

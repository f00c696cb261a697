"""The person's and the air's new actions: `turn B LEVEL [OVER]` and
`draught B SECONDS [SEVERITY]`, in scenario files and on `hobguard sim
device`'s stdin."""

from __future__ import annotations

import math

import pytest
from hobguard_sim import scenario
from hobguard_sim.device import SimDevice
from hobguard_sim.realtime import PtyDevice
from hobguard_sim.scenario import ScenarioError

HEAD = 'title = "x"\nduration = "3m"\n'


def _load(tmp_path, body: str):
    path = tmp_path / "actions.toml"
    path.write_text(HEAD + body)
    return scenario.load(path)


@pytest.mark.parametrize(
    "do, message",
    [
        ("turn left", "needs the flame level"),
        ("turn left 0.1", "0.2..1"),
        ("turn left 1.5", "0.2..1"),
        ("turn left nan", "0.2..1"),
        ("turn left low", "not a number"),
        ("turn middle 0.5", "unknown burner 'middle'"),
        ("turn left 0.5 soon", "turning time"),
        ("draught left", "needs a time"),
        ("draught left 0s", "more than 0 s"),
        ("draught left 11m", "at most 10 minutes"),
        ("draught left 2s 0", "severity must be more than 0"),
        ("draught left 2s 1.5", "0..1"),
        ("draught left gusty", "'gusty' is not a time"),
    ],
)
def test_bad_turns_and_draughts_are_refused(tmp_path, do, message):
    with pytest.raises(ScenarioError) as info:
        _load(tmp_path, f'[[step]]\nat = "10s"\ndo = "{do}"\n')
    assert message in str(info.value)


def _emf_at(result, burner: str, t_s: float) -> float:
    """The recorded EMF then (the recorder keeps changes of 0.05 mV and more)."""
    s = result.state_at(burner, int(t_s * 1000))
    assert s is not None
    return s.emf_mv


def test_turn_and_draught_move_the_physics(tmp_path):
    spec = _load(
        tmp_path,
        '[[step]]\nat = "5s"\ndo = "ignite left"\n'
        '[[step]]\nat = "1m"\ndo = "turn left 0.2"\n'
        '[[step]]\nat = "2m"\ndo = "turn left 1 4s"\n'
        '[[step]]\nat = "2m30s"\ndo = "draught left 2.5s"\n',
    )
    result = scenario.run(spec)
    assert result.passed, scenario.format_timeline(result)
    assert _emf_at(result, "left", 59.0) == pytest.approx(25.0, abs=0.1)
    assert _emf_at(result, "left", 119.0) == pytest.approx(18.75, abs=0.1)  # the lowest level
    assert _emf_at(result, "left", 149.0) == pytest.approx(25.0, abs=0.1)
    # 2.5 s into the draught the tip has cooled as after a blow-out, then heats back.
    assert _emf_at(result, "left", 152.5) == pytest.approx(25.0 * math.exp(-2.5 / 9.0), abs=0.1)
    assert _emf_at(result, "left", 179.0) == pytest.approx(25.0, abs=0.1)
    text = scenario.format_timeline(result)
    assert "turns the left knob to 0.2 of full flame" in text
    assert "turns the left knob to 1 of full flame over 4 s" in text
    assert "bends the left flame off the thermocouple for 2.5 s" in text


@pytest.fixture
def pty_device():
    pty = PtyDevice(SimDevice(seed=2), speed=1.0)
    yield pty
    pty.stop()


def test_stdin_turn_and_draught(pty_device):
    pty = pty_device
    device = pty.device
    left, right = device.physics.models
    device.physics.ignite(0, device.clock.seconds)
    device.physics.ignite(1, device.clock.seconds)
    device.run_until(30_000)
    pty._do("turn left 0.3")
    assert left.level == 0.3
    pty._do("turn 0.5")  # no burner: the first one
    assert left.level == 0.5
    pty._do("turn right 0.2")
    assert right.level == 0.2
    pty._do("draught right 2")
    assert right.truth()["draught"] and right.target_emf_mv == 0.0
    pty._do("draught left 1.5s")
    assert left.truth()["draught"]
    assert pty.errors == []
    for bad in ("turn left 2", "turn left nan", "turn left", "draught left -1", "draught left inf", "turn middle 0.5"):
        pty._do(bad)
    assert len(pty.errors) == 6, pty.errors
    assert left.level == 0.5 and right.level == 0.2

"""The scenario library, the scenario format and `hobguard sim run`.

Every scenario in sim/scenarios runs with the real firmware in the loop and
all its expectations (and the built-in safety invariants) must hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hobguard.cli import main as cli_main
from hobguard_sim import scenario
from hobguard_sim.scenario import ScenarioError, parse_time

LIBRARY = scenario.library()
REQUIRED = {
    "simmer_timer",
    "remote_cut",
    "left_on",
    "blown_out",
    "welded_relay",
    "bad_relay_aged_tc",
    "two_burners",
    "child_lock",
    "power_loss",
    "watchdog_reset",
    "link_lost",
    "blown_out_simmer",
    "draughts",
    "draughts_edge",
    "turn_down_simmer",
    "turn_down_steep",
    "flicker",
    "unattended",
    "unattended_presence",
    "unattended_signs",
}

MINIMAL = """
title = "minimal"
duration = "2m"

[[step]]
at = "10s"
do = "ignite left"

[[step]]
at = "20s"
do = "timer left 1"
"""


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- the library


def test_library_has_the_required_scenarios():
    names = {p.stem for p in LIBRARY}
    assert len(names) >= 12
    assert REQUIRED <= names, REQUIRED - names


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_library_scenario_holds(path: Path):
    spec = scenario.load(path)
    assert spec.expects, f"{path.stem} has no expectations"
    result = scenario.run(spec)
    assert result.passed, scenario.format_timeline(result)
    # Cheap recording: never more than a few samples per simulated second.
    n = sum(len(s) for s in result.samples.values())
    assert n < 20 + 3 * spec.duration_ms / 1000


def test_bad_relay_physics_numbers():
    """The bad-relay scenario's story in numbers: 100 mΩ starves the worn
    magnet of current, 10 mΩ does not."""
    result = scenario.run(scenario.load(scenario.find("bad_relay_aged_tc")))
    left = max(s.coil_ma for s in result.samples["left"])
    right = max(s.coil_ma for s in result.samples["right"])
    # 18 mV / 215 mΩ = 84 mA when fully hot; the person gives up at 15 s (3 heating time
    # constants, 95 %): 80 mA, well under the 133 mA the worn magnet needs.
    assert 75 < left < 84
    assert 140 < right < 150  # 18 mV / 125 mΩ = 144 mA
    assert any("does NOT hold" in row.what for row in result.timeline)


def test_simmer_timeline_shows_cause_and_effect():
    result = scenario.run(scenario.load(scenario.find("simmer_timer")))
    text = scenario.format_timeline(result)
    lines = text.splitlines()
    cut = next(i for i, line in enumerate(lines) if "CUT left" in line)
    relay = next(i for i, line in enumerate(lines) if "left: relay open" in line)
    valve = next(i for i, line in enumerate(lines) if "left: valve closed" in line)
    assert cut < relay < valve
    assert lines[cut].lstrip().startswith("21:00")
    assert "PASSED" in lines[-1]


def test_runs_are_deterministic_per_seed():
    spec = scenario.load(scenario.find("blown_out"))
    a, b = scenario.run(spec), scenario.run(spec, seed=spec.seed)
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        d.pop("wall_s")
        d.pop("sim_seconds_per_wall_second")
    assert da == db
    c = scenario.run(spec, seed=99)
    assert c.passed and c.seed == 99
    assert c.readings != a.readings  # the ADC noise differs


def test_left_on_guard_cuts_once():
    result = scenario.run(scenario.load(scenario.find("left_on")))
    assert len(result.events("cut", burner="left")) == 1
    assert len(result.events("warning", burner="left")) == 1


# ---------------------------------------------------------------- the command line


def test_sim_run_passes_with_exit_0(capsys):
    assert cli_main(["sim", "run", "remote_cut"]) == 0
    out = capsys.readouterr().out
    assert "CUT left" in out and "PASSED" in out


def test_a_wrong_expectation_makes_sim_run_exit_1(tmp_path, capsys):
    text = (
        MINIMAL
        + """
[[expect]]
valve = "open"
burner = "left"
by = "1m30s"
why = "deliberately wrong: the timer has cut it by then"

[[expect]]
event = "cut"
burner = "left"
reason = "timer"
"""
    )
    path = _write(tmp_path, text)
    assert cli_main(["sim", "run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  valve on left open by 01:30" in out
    assert "valve was closed" in out
    assert "PASS  event 'cut' (timer) on left" in out
    assert "FAILED (1 of" in out


def test_sim_run_json_shape(capsys):
    assert cli_main(["sim", "run", "two_burners", "--json", "--seed", "7"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scenario"] == "two_burners" and data["seed"] == 7 and data["passed"] is True
    assert data["burners"] == ["left", "right"]
    assert data["duration_s"] == 1800
    for check in data["checks"]:
        assert set(check) == {"kind", "text", "passed", "detail", "why"}
    assert {c["kind"] for c in data["checks"]} == {"expect", "invariant"}
    assert data["timeline"] and set(data["timeline"][0]) == {"t", "time", "who", "what"}
    cuts = [e for e in data["events"] if e.get("event_type") == "cut"]
    assert {(e["burner"], e["reason"]) for e in cuts} == {("left", "timer"), ("right", "timer")}
    assert all(isinstance(e["t_s"], float) and isinstance(e["heard"], bool) for e in data["events"])
    for burner in ("left", "right"):
        rows = data["trace"][burner]
        assert rows[0]["t"] == 0
        for row in rows:
            assert {"t", "burner", "valve", "gas_flow", "flame", "relay", "tc_mv"} <= set(row)
            assert row["valve"] in ("open", "closed") and row["relay"] in ("open", "closed")
        assert [r["t"] for r in rows] == sorted(r["t"] for r in rows)
    assert data["readings"]["left"] and data["timers"]["left"]


def test_sim_run_plot_writes_a_png(tmp_path, capsys):
    out = tmp_path / "plot.png"
    assert cli_main(["sim", "run", "welded_relay", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 20_000
    assert "plot written" in capsys.readouterr().out


def test_sim_run_unknown_scenario_lists_the_library(capsys):
    assert cli_main(["sim", "run", "no_such_scenario"]) == 2
    err = capsys.readouterr().err
    assert "no_such_scenario" in err and "simmer_timer" in err


def test_sim_list(capsys):
    assert cli_main(["sim", "list"]) == 0
    out = capsys.readouterr().out
    for path in LIBRARY:
        assert path.stem in out


def test_sim_run_reports_schema_errors(tmp_path, capsys):
    path = _write(tmp_path, MINIMAL.replace('do = "timer left 1"', 'do = "timer middle 1"'))
    assert cli_main(["sim", "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "step 2" in err and "unknown burner 'middle'" in err and "left, right" in err


# ---------------------------------------------------------------- the format


@pytest.mark.parametrize(
    "value, ms",
    [
        (90, 90_000),
        (1.5, 1_500),
        ("20m02s", 1_202_000),
        ("1m30s", 90_000),
        ("2h", 7_200_000),
        ("1h2m3s", 3_723_000),
        ("500ms", 500),
        ("5m00.1s", 300_100),
        ("20:02", 1_202_000),
        ("1:20:02", 4_802_000),
        ("45.1s", 45_100),
    ],
)
def test_parse_time(value, ms):
    assert parse_time(value) == ms


@pytest.mark.parametrize("value", ["", "soon", "1x", "-5", -5, True, "1:75", "m", float("nan")])
def test_parse_time_rejects(value):
    with pytest.raises(ScenarioError, match="time|seconds|minutes"):
        parse_time(value, "at")


@pytest.mark.parametrize(
    "text, message",
    [
        ('title = "x"\nduration = "1m"\ncolour = "red"\n', "unknown key(s) 'colour'"),
        ('duration = "1m"\n', "'title'"),
        ('title = "x"\n', "'duration' is required"),
        ('title = "x"\nduration = "later"\n', "duration: 'later' is not a time"),
        ('title = "x"\nduration = "1m"\n[[step]]\nat = "2m"\ndo = "ignite left"\n', "after the end"),
        ('title = "x"\nduration = "1m"\n[[step]]\nat = "soon"\ndo = "ignite left"\n', "step 1: at: 'soon'"),
        ('title = "x"\nduration = "1m"\n[[step]]\nat = 1\ndo = "fly left"\n', "unknown action 'fly'"),
        ('title = "x"\nduration = "1m"\n[[step]]\nat = 1\ndo = "ignite"\n', "needs a burner"),
        ('title = "x"\nduration = "1m"\n[[step]]\nat = 1\ndo = "timer left soon"\n', "not a number"),
        ('title = "x"\nduration = "1m"\n[[step]]\nat = 1\ndo = "lock maybe"\n', "lock on"),
        ('title = "x"\nduration = "1m"\n[[step]]\nat = 1\ndo = "ignite left"\nwhen = 2\n', "unknown key(s) 'when'"),
        ('title = "x"\nduration = "1m"\n[[step]]\ndo = "ignite left"\n', "'at' is required"),
        ('title = "x"\nduration = "1m"\n[[step]]\nat = 1\ndo = "set left magic 3"\n', "unknown physics parameter"),
        ('title = "x"\nduration = "1m"\n[[step]]\nat = 1\ndo = "contact left 99"\n', "0..10"),
        ('title = "x"\nduration = "1m"\n[physics.middle]\nr_switch_ohm = 0.1\n', "unknown burner 'middle'"),
        ('title = "x"\nduration = "1m"\n[physics.left]\nr_switch = 0.1\n', "unknown burner parameter"),
        ('title = "x"\nduration = "1m"\n[physics.left]\ntc_aging = 3\n', "tc_aging=3 is outside"),
        ('title = "x"\nduration = "1m"\n[settings]\nwarn_before_s = -1\n', "warn_before_s"),
        ('title = "x"\nduration = "1m"\n[settings]\nbogus = 1\n', "bogus: unknown key"),
        ('title = "x"\nduration = "1m"\n[[expect]]\nvalve = "open"\nby = "10s"\n', "needs a burner"),
        ('title = "x"\nduration = "1m"\n[[expect]]\nvalve = "ajar"\nburner = "left"\nby = 1\n', "'open' or 'closed'"),
        ('title = "x"\nduration = "1m"\n[[expect]]\nvalve = "open"\nburner = "left"\n', "needs 'by'"),
        ('title = "x"\nduration = "1m"\n[[expect]]\nevent = "explosion"\n', "unknown event 'explosion'"),
        ('title = "x"\nduration = "1m"\n[[expect]]\nevent = "cut"\nreason = "whim"\n', "reason is one of"),
        ('title = "x"\nduration = "1m"\n[[expect]]\nevent = "cut"\nwithin = ["5s"]\n', "two times"),
        ('title = "x"\nduration = "1m"\n[[expect]]\nevent = "cut"\nwithin = ["9s", "5s"]\n', "starts"),
        ('title = "x"\nduration = "1m"\n[[expect]]\nevent = "cut"\nby = "5s"\n', "do not go with 'event'"),
        ('title = "x"\nduration = "1m"\n[[expect]]\nburner = "left"\n', "needs exactly one of"),
        ('title = "x"\nduration = "1m"\n[[expect]]\nevent = "cut"\nno_event = "fault"\n', "exactly one"),
        ('title = "x"\nduration = "1m"\n[[expect]]\nreset = "meteor"\n', "reset must be one of"),
        ('title = "x"\nduration = "1m"\n[[expect]]\ngas_never_after = "2m"\n', "after the end"),
        ('title = "x"\nduration = "1m"\nstep = 3\n', "[[step]]"),
        (
            'title = "x"\nduration = "1m"\n[settings]\nbutton_pin = -1\n[[step]]\nat = 1\ndo = "press short"\n',
            "no button",
        ),
        ("title = 'x\n", "not valid TOML"),
    ],
)
def test_schema_errors_are_clear(tmp_path, text, message):
    path = _write(tmp_path, text, "broken.toml")
    with pytest.raises(ScenarioError) as info:
        scenario.load(path)
    assert message in str(info.value)
    assert str(info.value).startswith("broken")  # says which file


def test_find_by_name_path_and_error(tmp_path):
    assert scenario.find("simmer_timer") == scenario.SCENARIO_DIR / "simmer_timer.toml"
    assert scenario.find("simmer_timer.toml") == scenario.SCENARIO_DIR / "simmer_timer.toml"
    own = _write(tmp_path, MINIMAL, "mine.toml")
    assert scenario.find(str(own)) == own
    with pytest.raises(FileNotFoundError, match="library: .*simmer_timer"):
        scenario.find("nope")


def test_every_action_parses_and_runs(tmp_path):
    actions = [
        "ignite left",
        "hold right 3s",
        "off right",
        "blowout left",
        "ignite left",
        "press short",
        "press 500ms",
        "timer left 5",
        "extend left 2",
        "cancel left",
        "cut left",
        "cut",
        "lock on",
        "lock off",
        "clear_fault left",
        "clear_fault",
        "status",
        "ping",
        "hello",
        "corrupt cut left",
        "weld left",
        "unweld left",
        "stuck_open right",
        "unstick right",
        "contact left 0.02",
        "set left tc_aging 0.9",
        "open_tc right",
        "tc_ok right",
        "adc dead",
        "adc ok",
        "adc dead left",
        "adc ok left",
        "link lost",
        "link ok",
        "garbage",
        "garbage 20",
        "hang",
        "status",
        "ping",
        "hello",
        "power_loss 5s",
        "press long",
    ]
    steps = "".join(f'[[step]]\nat = "{5 + 5 * i}s"\ndo = "{a}"\n\n' for i, a in enumerate(actions))
    text = f'title = "every action"\nduration = "{5 + 5 * len(actions) + 60}s"\n\n' + steps
    spec = scenario.load(_write(tmp_path, text))
    result = scenario.run(spec)
    assert result.passed, scenario.format_timeline(result)  # the invariants
    assert len(result.steps_done) == len(actions)
    whos = {row.who for row in result.timeline}
    assert {"person", "host", "fault", "device", "physics"} <= whos
    assert [c for _, c in result.resets] == ["watchdog"]

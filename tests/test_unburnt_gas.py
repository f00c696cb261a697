"""The unburnt-gas headline (bench/flame_loss_firmware.py) measures what
it says: the same blow-out played through the real firmware with the
flame-loss cut and without it (the flame-failure device alone), the gas
counted from the moment the flame went out to the moment the valve shut,
in litres at the flame's level."""

from __future__ import annotations

import random
import sys

import pytest
from conftest import REPO
from hobguard_sim.cooking import FULL_FLOW_L_PER_S, edge_session
from hobguard_sim.sessions import play

sys.path.insert(0, str(REPO))
flame_loss_firmware = pytest.importorskip("bench.flame_loss_firmware")


def test_the_same_blow_out_with_hobguard_and_with_the_flame_failure_device_alone() -> None:
    rng = random.Random(5)
    longer = 0
    for kind in ("blowout_full", "blowout_simmer", "boilover"):
        for _ in range(4):
            session = edge_session(rng, kind)
            hob = play(session)
            alone = play(session, {"flame_loss_cut": False})
            assert hob.gas_at_loss and alone.gas_at_loss, kind
            assert hob.flame_out_at == pytest.approx(alone.flame_out_at, abs=0.01)
            assert [reason for _, reason, _ in hob.cuts] == ["flame_lost"]
            assert alone.cuts == [], "without the flame-loss cut nothing cuts"
            assert hob.unburnt_s is not None and alone.unburnt_s is not None
            # The valve shuts at the cut, or when the device's own magnet lets go
            # if that comes first (a flame near the magnet's hold at simmer).
            assert 0 < hob.unburnt_s <= alone.unburnt_s and hob.unburnt_s < 5.0, (kind, hob.unburnt_s)
            longer += alone.unburnt_s > 5.0
            assert hob.unburnt_l == pytest.approx(hob.unburnt_s * hob.level_at_loss * FULL_FLOW_L_PER_S)
            if kind == "blowout_simmer":
                assert hob.level_at_loss == pytest.approx(0.2)
            if kind == "blowout_full":
                assert hob.level_at_loss == 1.0
    assert longer >= 6, "the flame-failure device alone usually takes longer than 5 s"


def test_a_knob_turned_off_is_no_unburnt_gas_and_a_flame_burning_on_is_no_loss() -> None:
    rng = random.Random(8)
    offs = burning = 0
    for _ in range(60):
        session = flame_loss_firmware.sessions(1, 0, seed=rng.getrandbits(32))[0]
        out = play(session)
        loss = session.loss
        if loss is not None and loss.kind == "off":
            offs += 1
            assert out.unburnt_s is None and not out.gas_at_loss
        if loss is None:
            burning += 1
            assert out.flame_out_at is None and out.unburnt_s is None and out.burning_s > 20
    assert offs and burning


def test_the_benchmark_counts_false_cuts_misses_and_both_sides() -> None:
    result = flame_loss_firmware.measure_sessions(flame_loss_firmware.sessions(20, 3), log=lambda text: None)
    assert result["sessions"] == 20 + 3 * 6
    assert result["false_cuts"] == 0 and result["missed"] == 0
    g = result["all"]
    assert g["n"] >= 6
    assert g["hobguard_s"]["max"] < 5.0 < g["ffd_s"]["max"]
    assert g["hobguard_s"]["median"] < g["ffd_s"]["median"]
    assert 0 < g["hobguard_l"]["median"] < g["ffd_l"]["median"]

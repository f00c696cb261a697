"""The flame-loss headline through the real firmware: unburnt gas after a
blow-out with hobguard and with the flame-failure device alone, and the
false-cut rate.

    python -m bench.flame_loss_firmware [--quick]
    python -m bench --only flame_loss_firmware

Every session (``hobguard_sim.cooking``: a burner drawn over the physics'
ranges, lit, turned to any level at any speed, draughts under 3 s of any
severity, flicker; then a blow-out, a boil-over, the knob turned off or
nothing; plus the edge kinds) is played on a SimDevice by
``hobguard_sim.sessions.play``: the firmware samples, detects, cuts and
verifies exactly as on the board, and the physics says when the flame
really went out and when the valve really shut.

* **hobguard**: the session with the default settings (``flame_loss_cut``
  on); unburnt gas = valve shut − flame out.
* **the flame-failure device alone**: the same session (same burner, same
  seed) with ``flame_loss_cut: false``; the valve shuts when the
  thermocouple has cooled enough for the magnet to let go.

Litres: seconds × the flame's level when it went out × the flow of a 2 kW
burner at full flame (natural gas, 10 kWh/m³: 0.056 L/s). A *false cut* is
a ``flame_lost`` cut while the flame burned; a *miss* is a flame gone out
with gas flowing that was not shut within 5 s.

``bench/flame_loss.py`` is the detector's study at sample level (its
parameters, sweeps and trade-off); this module is its claim measured on the
whole firmware.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import Any

from hobguard_sim.cooking import EDGE_KINDS, Session, edge_session, random_session
from hobguard_sim.sessions import Played, play

from .common import Figure, bench_command, median, percentile

BOUND_S = 5.0
FFD_ALONE = {"flame_loss_cut": False}


def sessions(n_random: int, n_edge: int, seed: int = 2026) -> list[Session]:
    rng = random.Random(seed)
    out = [random_session(rng) for _ in range(n_random)]
    for kind in EDGE_KINDS:
        out += [edge_session(rng, kind) for _ in range(n_edge)]
    return out


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": median(values), "p95": percentile(values, 95), "max": max(values)}


def measure_sessions(all_sessions: list[Session], log=print) -> dict[str, Any]:
    """Play every session with hobguard; replay those with a blow-out (gas
    flowing when the flame went out) with the flame-failure device alone."""
    t0 = time.perf_counter()
    played: list[tuple[Played, Played | None]] = []
    false_cuts = missed = other_cuts = 0
    burning_s = 0.0
    for n, session in enumerate(all_sessions, 1):
        hob = play(session)
        burning_s += hob.burning_s
        false_cuts += sum(1 for _, reason, burning in hob.cuts if reason == "flame_lost" and burning)
        other_cuts += sum(1 for _, reason, _ in hob.cuts if reason != "flame_lost")
        alone = None
        if hob.unburnt_s is not None:
            if hob.unburnt_s > BOUND_S:
                missed += 1
            alone = play(session, FFD_ALONE)
            lost, lost_alone = hob.flame_out_at, alone.flame_out_at
            # (within the few ms by which the two firmwares last read the ADC before the action)
            assert lost is not None and lost_alone is not None and abs(lost_alone - lost) < 0.01, (
                "the same session must lose its flame at the same moment"
            )
        elif hob.flame_out_at is not None and hob.gas_at_loss:
            missed += 1  # gas flowing and the valve never shut
        played.append((hob, alone))
        if n % 1000 == 0:
            log(f"  {n} of {len(all_sessions)} sessions ({time.perf_counter() - t0:.0f} s)")
    losses = [(h, a) for h, a in played if a is not None and a.unburnt_s is not None]
    result: dict[str, Any] = {
        "sessions": len(all_sessions),
        "burning_hours": burning_s / 3600,
        "false_cuts": false_cuts,
        "false_per_1000_sessions": 1000 * false_cuts / len(all_sessions),
        "missed": missed,
        "other_cuts": other_cuts,
        "took_s": round(time.perf_counter() - t0, 1),
    }
    for label, pick in (
        ("all", lambda h: True),
        ("full", lambda h: h.level_at_loss >= 0.999),
        ("simmer", lambda h: h.level_at_loss <= 0.201),
    ):
        chosen = [(h, a) for h, a in losses if pick(h)]
        if not chosen:
            continue
        result[label] = {
            "n": len(chosen),
            "hobguard_s": _spread([h.unburnt_s for h, _ in chosen if h.unburnt_s is not None]),
            "ffd_s": _spread([a.unburnt_s for _, a in chosen if a.unburnt_s is not None]),
            "hobguard_l": _spread([h.unburnt_l for h, _ in chosen if h.unburnt_l is not None]),
            "ffd_l": _spread([a.unburnt_l for _, a in chosen if a.unburnt_l is not None]),
        }
    return result


def headline_line(g: dict[str, Any]) -> str:
    return (
        f"hobguard median {g['hobguard_s']['median']:.2f} s / {g['hobguard_l']['median']:.3f} L,"
        f" p95 {g['hobguard_s']['p95']:.2f} s / {g['hobguard_l']['p95']:.3f} L;"
        f" flame-failure device alone median {g['ffd_s']['median']:.1f} s / {g['ffd_l']['median']:.3f} L,"
        f" p95 {g['ffd_s']['p95']:.1f} s / {g['ffd_l']['p95']:.3f} L (n={g['n']})"
    )


def study(quick: bool = False, log=print) -> dict[str, Any]:
    n_random, n_edge = (500, 40) if quick else (4000, 300)
    log(f"flame_loss_firmware: {n_random} random sessions + {n_edge} per edge kind, through the firmware")
    result = measure_sessions(sessions(n_random, n_edge), log)
    for label in ("all", "full", "simmer"):
        if label in result:
            log(f"  {label}: {headline_line(result[label])}")
    log(
        f"  false cuts {result['false_cuts']} in {result['sessions']} sessions"
        f" ({result['burning_hours']:.0f} h of flame); missed {result['missed']}; took {result['took_s']} s"
    )
    return result


def measure(quick: bool = False) -> list[Figure]:
    r = study(quick=quick, log=lambda text: print(text, file=sys.stderr, flush=True))
    cmd = bench_command("flame_loss_firmware", quick)
    totals = {k: r[k] for k in ("sessions", "burning_hours", "false_cuts", "missed", "other_cuts", "took_s")}
    figures = []
    for label, words in (("all", "any level"), ("full", "full flame"), ("simmer", "the lowest simmer")):
        if label not in r:
            continue
        g = r[label]
        figures.append(
            Figure(
                id=f"firmware_unburnt_gas_{label}_s",
                name=f"unburnt gas after a blow-out at {words}, real firmware: hobguard, median",
                value=g["hobguard_s"]["median"],
                unit="s",
                command=cmd,
                note=headline_line(g) + "; litres for a 2 kW burner (natural gas, 10 kWh/m³)",
                details=dict(g, **totals) if label == "all" else g,
            )
        )
    figures.append(
        Figure(
            id="firmware_unburnt_gas_ffd_all_s",
            name="unburnt gas after a blow-out at any level, real firmware: flame-failure device alone, median",
            value=r["all"]["ffd_s"]["median"],
            unit="s",
            command=cmd,
            note=f"p95 {r['all']['ffd_s']['p95']:.1f} s; the same sessions with flame_loss_cut false",
            details={"n": r["all"]["n"], **r["all"]["ffd_s"]},
        )
    )
    figures.append(
        Figure(
            id="firmware_unburnt_litres_all",
            name="unburnt gas after a blow-out, 2 kW burner, real firmware: hobguard p95",
            value=r["all"]["hobguard_l"]["p95"],
            unit="L",
            command=cmd,
            note=f"median {r['all']['hobguard_l']['median']:.3f} L; flame-failure device alone: median"
            f" {r['all']['ffd_l']['median']:.3f} L, p95 {r['all']['ffd_l']['p95']:.3f} L",
            details={"n": r["all"]["n"], "hobguard_l": r["all"]["hobguard_l"], "ffd_l": r["all"]["ffd_l"]},
        )
    )
    figures.append(
        Figure(
            id="firmware_false_cuts",
            name="false flame-loss cuts per 1000 sessions, real firmware",
            value=r["false_per_1000_sessions"],
            unit="per 1000",
            command=cmd,
            target="<= 0",
            note=f"{r['false_cuts']} in {r['sessions']} sessions ({r['burning_hours']:.0f} h of flame): turn-downs"
            " to the lowest simmer at any speed, draughts under 3 s, flicker",
            details={"n": r["sessions"], "burning_hours": r["burning_hours"]},
        )
    )
    figures.append(
        Figure(
            id="firmware_flame_loss_missed",
            name="blow-outs not shut within 5 s, real firmware",
            value=float(r["missed"]),
            unit="sessions",
            command=cmd,
            target="<= 0",
            note=f"of {r['all']['n']} blow-outs and boil-overs with gas flowing",
            details={"n": r["all"]["n"]},
        )
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flame_loss_firmware", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="500 random sessions and 40 per edge kind")
    args = parser.parse_args(argv)
    study(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Flame-loss study: how fast and how safely the firmware's flame-loss
detector (firmware/hobguard_fw/flameloss.py) tells a dead flame, over the
physics' ranges, and the parameters it should use.

    python -m bench.flame_loss [--quick] [--plot out/flame_loss.png]
    python -m bench --only flame_loss

Every number comes from sessions played at sample level by
``hobguard_sim.cooking``: one burner's physics (random burner over the
ranges of docs/physics.md, flicker, ADC noise and quantisation) and the
real detector fed the way the device samples. The session sets:

* ``random``: ignite, 1-6 turns (any level, at once or over up to 10 s) and
  draughts (< 3 s, any severity) at random gaps, then a blow-out, a
  boil-over, the knob off or nothing;
* one set per edge kind (``cooking.EDGE_KINDS``): draughts of 2.5-2.99 s on
  fast-cooling tips, turn-downs to the lowest simmer on fast tips with weak
  simmer ratios, a draught right after a turn-down, blow-outs at full flame
  on slow tips and at simmer (also during the turn-down's transient),
  boil-overs.

A *false fire* is a verdict while the flame burns. A blow-out's *delay* is
flame out -> verdict; the valve closes relay_release_s + drop_out_time_s
later (~55 ms), or when the flame-failure device lets go by itself if that
is first. The study sweeps each detector parameter around the defaults
(same sessions for every value), draws the trade-off, measures how the
verdict depends on the length of a draught, how flicker beyond the plausible
band and burners outside the lumped tip model degrade it, and gives the
headline: unburnt gas after a blow-out with hobguard and with the
flame-failure device alone.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

from hobguard_fw import flameloss
from hobguard_fw.flameloss import FlameLossDetector
from hobguard_sim.cooking import (
    EDGE_KINDS,
    FULL_FLOW_L_PER_S,
    Outcome,
    Session,
    draught_session,
    edge_session,
    random_session,
    run_session,
)

from .common import REPO, Figure, bench_command, median, percentile

DEFAULTS: dict[str, Any] = {
    "k_min": flameloss.K_MIN,
    "hold_ms": flameloss.HOLD_MS,
    "window_ms": flameloss.WINDOW_MS,
    "decel": flameloss.DECEL,
    "onset": flameloss.ONSET,
    "watch_ms": flameloss.WATCH_MS,
}

#: Values tried for each parameter, one parameter at a time (the others at their defaults).
SWEEPS: dict[str, list[Any]] = {
    "hold_ms": [2500, 2750, 3000, 3250, 3500, 3750, 4000],
    "k_min": [0.04, 0.05, 0.06, 0.07, 0.08],
    "decel": [0.0, 0.4, 0.6, 0.7, 0.8, 0.9],
    "onset": [0.0, 0.7, 0.8, 0.85, 0.9, 0.95],
    "window_ms": [500, 750, 1000, 1500],
    "watch_ms": [250, 500, 1000],
}

DRAUGHT_LENGTHS_S = [0.5, 1.0, 1.5, 2.0, 2.5, 2.75, 2.9, 2.99, 3.25, 3.5, 4.0, 5.0, 6.0, 8.0]
FLICKER_MV = [0.0, 0.25, 0.5, 0.75, 1.0]
DEADLINE_S = 5.0  # the bound: the valve shut within 5 s of the flame going out
PLOT = REPO / "out" / "flame_loss.png"


# ------------------------------------------------------------------ sessions


def session_sets(n_random: int, n_edge: int, seed: int = 1, consistent: bool = True) -> dict[str, list[Session]]:
    rng = random.Random(seed)
    sets = {"random": [random_session(rng, consistent=consistent) for _ in range(n_random)]}
    for kind in EDGE_KINDS:
        sets[kind] = [edge_session(rng, kind, consistent=consistent) for _ in range(n_edge)]
    return sets


def _detector(config: dict[str, Any]) -> FlameLossDetector:
    kw = dict(DEFAULTS)
    kw.update(config)
    return FlameLossDetector(**kw)


def evaluate(config: dict[str, Any], sets: dict[str, list[Session]]) -> dict[str, Any]:
    """Play every session with a detector built from ``config`` (over the defaults)."""
    det = _detector(config)
    per_set: dict[str, dict[str, Any]] = {}
    outcomes: list[Outcome] = []
    for name, sessions in sets.items():
        outs = [run_session(s, det) for s in sessions]
        outcomes += outs
        per_set[name] = _stats(outs)
    total = _stats(outcomes)
    total["sets"] = per_set
    total["config"] = dict(DEFAULTS, **config)
    total["_outcomes"] = outcomes
    return total


def _stats(outs: list[Outcome]) -> dict[str, Any]:
    false = sum(o.false_fire for o in outs)
    burn_h = sum(o.burn_s for o in outs) / 3600.0
    gas = [o for o in outs if o.flame_out_at is not None and o.gas_flowing_at_loss]
    delays = [o.delay for o in gas if o.delay is not None]
    closed = [c - o.flame_out_at for o in gas if (c := o.cut_closed_at) is not None and o.flame_out_at is not None]
    late = sum(1 for c in closed if c > DEADLINE_S) + sum(1 for o in gas if o.cut_closed_at is None)
    missed = sum(1 for o in gas if o.delay is None)
    samples = sum(o.samples for o in outs)
    return {
        "sessions": len(outs),
        "false_fires": false,
        "false_per_1000_sessions": 1000.0 * false / max(1, len(outs)),
        "burning_hours": burn_h,
        "false_per_100_h": 100.0 * false / burn_h if burn_h else math.nan,
        "losses_with_gas": len(gas),
        "missed": missed,
        "late": late,
        "delay_median_s": median(delays) if delays else math.nan,
        "delay_p95_s": percentile(delays, 95) if delays else math.nan,
        "delay_max_s": max(delays) if delays else math.nan,
        "closed_max_s": max(closed) if closed else math.nan,
        "samples_per_burning_min": samples / max(1e-9, burn_h * 60.0),
    }


def _public(stats: dict[str, Any]) -> dict[str, Any]:
    out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items() if not k.startswith("_")}
    if "sets" in stats:
        out["sets"] = {n: _public(s) for n, s in stats["sets"].items()}
    return out


# ------------------------------------------------------------------ studies


def sweep(sets: dict[str, list[Session]], log=print) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {}
    for name, values in SWEEPS.items():
        rows = []
        for value in values:
            t0 = time.perf_counter()
            r = evaluate({name: value}, sets)
            r.pop("_outcomes")
            rows.append(r)
            log(
                f"  {name}={value}: false {r['false_fires']}, delay median {r['delay_median_s']:.2f} s,"
                f" p95 {r['delay_p95_s']:.2f} s, max {r['delay_max_s']:.2f} s, late {r['late']}"
                f" ({time.perf_counter() - t0:.1f} s)"
            )
        results[name] = rows
    return results


def draught_curve(n_per_length: int, seed: int = 3) -> list[dict[str, Any]]:
    """P(verdict) for one draught of each length at severity 1 on a steady flame."""
    rows = []
    det = _detector({})
    for length in DRAUGHT_LENGTHS_S:
        rng = random.Random(seed * 1000 + int(length * 100))
        outs = [run_session(draught_session(rng, length), det) for _ in range(n_per_length)]
        fired = sum(o.false_fire for o in outs)
        rows.append({"draught_s": length, "sessions": len(outs), "fired": fired, "p_fire": fired / len(outs)})
    return rows


def flicker_stress(n_edge: int, seed: int = 5) -> list[dict[str, Any]]:
    """False fires on the no-loss edges with the flicker pinned beyond the plausible band."""
    rows = []
    det = _detector({})
    for amp in FLICKER_MV:
        rng = random.Random(seed)
        outs = []
        for kind in ("draught_edge", "turndown", "turn_then_draught"):
            for _ in range(n_edge):
                s = edge_session(rng, kind)
                p = s.params.from_dict({"flicker_mv": amp}, base=s.params)
                outs.append(run_session(Session(p, s.actions, s.end, s.seed, s.ticks0, s.phase_ms), det))
        st = _stats(outs)
        rows.append({"flicker_mv": amp, "sessions": len(outs), "false_fires": st["false_fires"]})
    return rows


def headline(outcomes: list[Outcome]) -> dict[str, Any]:
    """Unburnt gas after blow-outs and boil-overs (gas flowing): with hobguard and with the FFD alone."""
    out: dict[str, Any] = {}
    for label, pick in (
        ("full", lambda o: o.level_at_loss >= 0.999),
        ("simmer", lambda o: o.level_at_loss <= 0.201),
        ("all", lambda o: True),
    ):
        sel = [o for o in outcomes if o.flame_out_at is not None and o.gas_flowing_at_loss and pick(o)]
        hob = [s for o in sel if (s := o.unburnt_s(True)) is not None]
        ffd = [s for o in sel if (s := o.unburnt_s(False)) is not None]
        litres_hob = [s * o.level_at_loss * FULL_FLOW_L_PER_S for o in sel if (s := o.unburnt_s(True))]
        litres_ffd = [s * o.level_at_loss * FULL_FLOW_L_PER_S for o in sel if (s := o.unburnt_s(False))]
        if not hob or not ffd:
            continue
        out[label] = {
            "n": len(sel),
            "hobguard_s": {"median": median(hob), "p95": percentile(hob, 95), "max": max(hob)},
            "ffd_s": {"median": median(ffd), "p95": percentile(ffd, 95), "max": max(ffd)},
            "hobguard_l": {"median": median(litres_hob), "p95": percentile(litres_hob, 95)},
            "ffd_l": {"median": median(litres_ffd), "p95": percentile(litres_ffd, 95)},
        }
    return out


def cost(watch_ms: int) -> dict[str, float]:
    """ADC readings per burning minute (the ESP32's cost: each single-shot read is
    ~3 ms of I2C and conversion wait in drivers.ADS1115.read_mv)."""
    return {"watch_ms": watch_ms, "reads_per_min": 60000 / watch_ms}


# ------------------------------------------------------------------ the figure


def example_traces(seed: int = 11) -> list[tuple[str, Outcome, float]]:
    """Four sessions on the default burner: (title, outcome, time of the event)."""
    from hobguard_sim.cooking import Action
    from hobguard_sim.physics import BurnerParams

    p = BurnerParams()
    cases = [
        ("blow-out at full flame", [Action(1.0, "ignite"), Action(40.0, "blowout")]),
        ("blow-out at simmer", [Action(1.0, "ignite"), Action(25.0, "turn", 0.2, 0.0), Action(60.0, "blowout")]),
        ("turned to simmer at once", [Action(1.0, "ignite"), Action(40.0, "turn", 0.2, 0.0)]),
        ("2.9 s draught (severity 1)", [Action(1.0, "ignite"), Action(40.0, "draught", 2.9, 1.0)]),
    ]
    out = []
    for title, acts in cases:
        s = Session(p, acts, acts[-1].t + 20.0, seed=seed, phase_ms=300)
        out.append((title, run_session(s, _detector({}), keep_trace=True), acts[-1].t))
    return out


def plot(
    path: Path, sweeps: dict[str, list[dict[str, Any]]], curve: list[dict[str, Any]], default: dict[str, Any]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle("hobguard flame-loss detector: trade-off, speed, draughts (python -m bench.flame_loss)")

    # (a) the trade-off: hold time against false fires and the slowest verdicts.
    ax = axes[0][0]
    rows = sweeps.get("hold_ms", [])
    if rows:
        xs = [r["config"]["hold_ms"] / 1000 for r in rows]
        ax.plot(xs, [r["delay_p95_s"] for r in rows], "o-", color="tab:blue", label="blow-out -> verdict, p95")
        ax.plot(xs, [r["closed_max_s"] for r in rows], "s--", color="tab:blue", alpha=0.6, label="-> valve closed, max")
        ax.axhline(DEADLINE_S, color="tab:red", lw=1, ls=":", label="5 s bound")
        ax.set_xlabel("hold (s): how long a fall must last")
        ax.set_ylabel("seconds after the flame went out")
        ax2 = ax.twinx()
        ax2.bar(xs, [r["false_per_1000_sessions"] for r in rows], width=0.12, color="tab:orange", alpha=0.5)
        ax2.set_ylabel("false verdicts per 1000 sessions (orange)")
        ax.axvline(default["config"]["hold_ms"] / 1000, color="k", lw=0.8, ls="--")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title("(a) hold time: faster verdicts cost false ones")

    # (b) blow-out -> valve closed, hobguard vs the flame-failure device alone.
    ax = axes[0][1]
    outs = [o for o in default["_outcomes"] if o.flame_out_at is not None and o.gas_flowing_at_loss]
    hob = sorted(x for x in (o.unburnt_s(True) for o in outs) if x is not None)
    ffd = sorted(x for x in (o.unburnt_s(False) for o in outs) if x is not None)
    if hob and ffd:
        bins = [i * 0.5 for i in range(0, int(max(ffd) / 0.5) + 2)]
        ax.hist(
            ffd,
            bins=bins,
            color="tab:gray",
            alpha=0.6,
            label=f"flame-failure device alone (median {median(ffd):.1f} s)",
        )
        ax.hist(hob, bins=bins, color="tab:green", alpha=0.8, label=f"with hobguard (median {median(hob):.1f} s)")
        ax.axvline(DEADLINE_S, color="tab:red", lw=1, ls=":")
        ax.set_xlabel("flame out -> valve closed (s): unburnt gas flows meanwhile")
        ax.set_ylabel("blow-outs and boil-overs")
        ax.legend(fontsize=8)
        ax.set_title(f"(b) {len(hob)} flame losses, burners over the physics ranges")

    # (c) P(verdict) against the length of a draught.
    ax = axes[1][0]
    ax.plot([r["draught_s"] for r in curve], [100 * r["p_fire"] for r in curve], "o-", color="tab:purple")
    ax.axvspan(0, 3.0, color="tab:green", alpha=0.1, label="must never cut (< 3 s)")
    ax.set_xlabel("draught length (s), flame bent fully off the tip")
    ax.set_ylabel("% of draughts judged a flame loss")
    ax.set_ylim(-3, 103)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("(c) draughts: never under 3 s; longer ones look like a dead flame")

    # (d) what the detector sees.
    ax = axes[1][1]
    colours = ["tab:red", "tab:orange", "tab:blue", "tab:purple"]
    for (title, o, t_ev), colour in zip(example_traces(), colours, strict=True):
        pts = [(t - t_ev, mv) for t, mv, _ in o.trace if -5 <= t - t_ev <= 12]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], ".-", ms=3, lw=1, color=colour, label=title)
        if o.fired_at is not None:
            ax.axvline(o.fired_at - t_ev, color=colour, lw=1, ls="--")
    ax.set_xlabel("seconds after the event (dashed: the detector's verdict)")
    ax.set_ylabel("thermocouple mV, loop closed (ADC)")
    ax.legend(fontsize=8)
    ax.set_title("(d) the default burner: 0.25 s samples while a fall is watched")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------ entry points


def study(quick: bool = False, plot_path: Path | None = PLOT, log=print) -> dict[str, Any]:
    scale = 5 if quick else 1
    n_random, n_edge = 1500 // scale, 400 // scale
    t0 = time.perf_counter()
    sets = session_sets(n_random, n_edge)
    log(f"flame_loss: {n_random} random sessions + {n_edge} per edge kind ({', '.join(EDGE_KINDS)})")
    default = evaluate({}, sets)
    log(
        f"  defaults {DEFAULTS}: false {default['false_fires']}, delay median {default['delay_median_s']:.2f} s,"
        f" p95 {default['delay_p95_s']:.2f} s, max {default['delay_max_s']:.2f} s, late {default['late']}"
    )
    sweeps = sweep(sets, log)
    curve = draught_curve(150 // scale)
    log("  draughts: " + ", ".join(f"{r['draught_s']:g} s: {100 * r['p_fire']:.0f} %" for r in curve))
    flick = flicker_stress(n_edge)
    log("  flicker beyond the band: " + ", ".join(f"{r['flicker_mv']:g} mV: {r['false_fires']}" for r in flick))
    loose = evaluate({}, session_sets(n_random, n_edge, seed=2, consistent=False))
    loose.pop("_outcomes")
    log(f"  burners outside the lumped tip model too: false {loose['false_fires']}, late {loose['late']}")
    head = headline(default["_outcomes"])
    if plot_path is not None:
        plot(plot_path, sweeps, curve, default)
        log(f"  plot: {plot_path}")
    result = {
        "default": _public(default),
        "sweeps": {k: [_public(r) for r in v] for k, v in sweeps.items()},
        "draught_curve": curve,
        "flicker_stress": flick,
        "any_burner": _public(loose),
        "headline": head,
        "cost": [cost(w) for w in SWEEPS["watch_ms"]],
        "plot": str(plot_path) if plot_path else None,
        "took_s": round(time.perf_counter() - t0, 1),
    }
    result["_default"] = default
    return result


def measure(quick: bool = False) -> list[Figure]:
    r = study(quick=quick, log=lambda text: print(text, file=sys.stderr, flush=True))
    d = r["default"]
    h = r["headline"]
    cmd = bench_command("flame_loss", quick)
    outs = r["_default"]["_outcomes"]
    delays = [o.delay for o in outs if o.delay is not None and o.gas_flowing_at_loss]
    details = {k: r[k] for k in ("draught_curve", "flicker_stress", "headline", "cost", "plot", "took_s")}
    details["sweeps"] = {
        k: [
            {
                "value": row["config"][k],
                "false_fires": row["false_fires"],
                "delay_median_s": row["delay_median_s"],
                "delay_p95_s": row["delay_p95_s"],
                "delay_max_s": row["delay_max_s"],
                "late": row["late"],
                "samples_per_burning_min": round(row["samples_per_burning_min"], 1),
            }
            for row in rows
        ]
        for k, rows in r["sweeps"].items()
    }
    details["per_set"] = d["sets"]
    details["any_burner"] = {k: r["any_burner"][k] for k in ("sessions", "false_fires", "late", "delay_p95_s")}
    figures = [
        Figure(
            id="flame_loss_delay",
            name="flame loss: flame out -> verdict, median",
            value=d["delay_median_s"],
            unit="s",
            command=cmd,
            note=f"p95 {d['delay_p95_s']:.2f} s, max {d['delay_max_s']:.2f} s over {len(delays)} blow-outs and"
            f" boil-overs; the valve closes ~55 ms after the verdict; detector defaults {DEFAULTS}",
            details=details,
        ),
        Figure(
            id="flame_loss_valve_max",
            name="flame loss: flame out -> valve closed, slowest",
            value=d["closed_max_s"],
            unit="s",
            command=cmd,
            target="< 5",
            note=f"{d['late']} of {d['losses_with_gas']} flame losses with gas flowing took longer than 5 s",
        ),
        Figure(
            id="flame_loss_false",
            name="flame loss: false verdicts per 1000 sessions",
            value=d["false_per_1000_sessions"],
            unit="per 1000",
            command=cmd,
            target="<= 0",
            note=f"{d['false_fires']} in {d['sessions']} sessions ({d['burning_hours']:.0f} h of flame):"
            " turn-downs to simmer at any speed, draughts under 3 s, flicker",
        ),
    ]
    for label in ("full", "simmer"):
        if label not in h:
            continue
        g = h[label]
        figures.append(
            Figure(
                id=f"flame_loss_gas_{label}",
                name=f"unburnt gas after a blow-out at {label} flame, 2 kW burner: hobguard vs FFD alone",
                value=g["hobguard_l"]["median"],
                unit="L",
                command=cmd,
                note=f"hobguard: median {g['hobguard_s']['median']:.2f} s / {g['hobguard_l']['median']:.3f} L,"
                f" p95 {g['hobguard_s']['p95']:.2f} s / {g['hobguard_l']['p95']:.3f} L;"
                f" flame-failure device alone: median {g['ffd_s']['median']:.1f} s / {g['ffd_l']['median']:.3f} L,"
                f" p95 {g['ffd_s']['p95']:.1f} s / {g['ffd_l']['p95']:.3f} L (n={g['n']});"
                " natural gas at 10 kWh/m³",
                details=g,
            )
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flame_loss", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the sessions")
    parser.add_argument("--plot", default=str(PLOT), help="where to write the figure")
    args = parser.parse_args(argv)
    r = study(quick=args.quick, plot_path=Path(args.plot))
    d = r["default"]
    print()
    print(f"defaults {DEFAULTS}")
    print(f"  sessions {d['sessions']} ({d['burning_hours']:.0f} h of flame), false verdicts {d['false_fires']}")
    print(f"  flame out -> verdict: median {d['delay_median_s']:.2f} s, p95 {d['delay_p95_s']:.2f} s,")
    print(f"  max {d['delay_max_s']:.2f} s; valve closed after 5 s: {d['late']}, missed: {d['missed']}")
    for label, g in r["headline"].items():
        print(
            f"  unburnt gas, {label} (n={g['n']}): hobguard median {g['hobguard_s']['median']:.2f} s"
            f" ({g['hobguard_l']['median']:.3f} L), p95 {g['hobguard_s']['p95']:.2f} s"
            f" ({g['hobguard_l']['p95']:.3f} L); FFD alone median {g['ffd_s']['median']:.1f} s"
            f" ({g['ffd_l']['median']:.3f} L), p95 {g['ffd_s']['p95']:.1f} s ({g['ffd_l']['p95']:.3f} L)"
        )
    print(f"took {r['took_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

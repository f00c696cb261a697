"""Draw a scenario result: one group of panels per burner.

For each burner, top to bottom:

1. thermocouple voltage (mV): the true voltage at the terminals, the
   open-circuit EMF (the thermocouple's "temperature"), and the readings the
   firmware took through the ADS1115;
2. magnet coil current (mA) with the magnet's hold and drop-out currents:
   whether the valve can stay open is read off this panel;
3. states as step lines: knob held, relay closed, valve open, flame;
4. timer remaining (minutes), as the device reported it.

Vertical markers across a burner's panels: cuts (red), warnings (orange),
faults (purple), device boots (grey). Grey bands: the device is off or
booting; hatched bands: the serial link is down. Markers at the top of the
state panel: what the person (▲), the host (◆) and fault injection (✕) did.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from hobguard import words  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .physics import BurnerParams  # noqa: E402
from .scenario import RECORD_EVERY_MS, Sample, ScenarioResult  # noqa: E402

_COLOURS = {
    "tc": "#1f4e9c",
    "emf": "#8fa9d6",
    "read": "#e07b00",
    "coil": "#2a7f62",
    "knob": "#6b6b6b",
    "relay": "#3b6fd4",
    "valve": "#2e9e44",
    "flame": "#f08c00",
    "timer": "#7a3db8",
    "cut": "#d62728",
    "warning": "#ff9f1c",
    "fault": "#8e24aa",
    "boot": "#7f7f7f",
    "person": "#222222",
    "host": "#1f5fbf",
    "fault_step": "#d62728",
    "physics": "#555555",
}


def _scale(duration_ms: int) -> tuple[float, str]:
    """Divide ms by this to get the x unit; and the axis label."""
    if duration_ms > 3 * 3_600_000:
        return 3_600_000.0, "simulated time (hours)"
    return 60_000.0, "simulated time (minutes)"


def _held_series(samples: list[Sample], name: str, end_ms: int, div: float) -> tuple[list[float], list[float]]:
    """A continuous quantity (a Sample field): hold the last value across gaps
    (the recorder skips unchanged stretches) so a jump is drawn as a jump,
    not a ramp."""
    xs: list[float] = []
    ys: list[float] = []
    prev = None
    for s in samples:
        if prev is not None and s.t - prev.t > 1.5 * RECORD_EVERY_MS:
            xs.append(s.t / div)
            ys.append(getattr(prev, name))
        xs.append(s.t / div)
        ys.append(getattr(s, name))
        prev = s
    if prev is not None:
        xs.append(end_ms / div)
        ys.append(getattr(prev, name))
    return xs, ys


def _step_series(samples: list[Sample], fn, end_ms: int, div: float) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for s in samples:
        xs.append(s.t / div)
        ys.append(fn(s))
    if samples:
        xs.append(end_ms / div)
        ys.append(fn(samples[-1]))
    return xs, ys


def _params(result: ScenarioResult, burner: str) -> BurnerParams:
    return BurnerParams.from_dict(result.spec.physics.get(burner, {}))


def _event_marks(result: ScenarioResult, burner: str) -> list[tuple[int, str, str]]:
    """(t_ms, kind, label) of the events worth a vertical marker for this burner."""
    marks = []
    for ev in result.events():
        kind = ev.get("event_type")
        b = ev.get("burner")
        if b not in (None, burner):
            continue
        t = ev["_t_ms"]
        label = words.label(ev) + ("" if ev["_heard"] else " (unheard)")
        if (kind in ("cut", "warning") and b == burner) or kind == "fault":
            marks.append((t, str(kind), label))
        elif (kind == "boot" and t > 5000) or kind == "lock":
            marks.append((t, "boot", label))  # drawn alike: grey, dotted
    return marks


def _steps_for(result: ScenarioResult, burner: str) -> list[tuple[int, str, str]]:
    """(t_ms, who, short label) of the scenario steps that concern this burner."""
    out = []
    for t, step in result.steps_done:
        a = step.action
        if a is None:
            continue
        if a.burner not in (None, burner):
            continue
        out.append((t, a.who, a.text))
    return out


def plot_result(result: ScenarioResult, path: str | Path) -> Path:
    """Draw the result and write it to path (PNG, SVG or PDF by extension)."""
    path = Path(path)
    spec = result.spec
    burners = spec.burners
    end = spec.duration_ms
    div, xlabel = _scale(end)
    x_end = end / div

    heights = [2.6, 1.5, 1.7, 1.0]
    n = len(burners)
    # A burner nobody lit and no fault touched gets only its state strip.
    active = {b: _active(result, b) for b in burners}
    timed = {b: any(rem is not None for _, rem in result.timers.get(b, [])) for b in burners}

    def _group_heights(b: str) -> list[float]:
        return heights if timed[b] else heights[:3]

    group_h = [sum(_group_heights(b)) if active[b] else heights[2] for b in burners]
    gap = 0.75
    fig_h = 1.5 + sum(group_h) + gap * (n - 1) + 0.6
    fig = plt.figure(figsize=(14, fig_h), dpi=100)
    outer = fig.add_gridspec(
        n,
        1,
        height_ratios=group_h,
        hspace=gap * n / sum(group_h),
        top=1 - 1.25 / fig_h,
        bottom=0.6 / fig_h,
        left=0.075,
        right=0.80,
    )

    verdict = "all checks passed" if result.passed else f"{sum(not c.passed for c in result.checks)} check(s) FAILED"
    fig.suptitle(spec.title, fontsize=15, fontweight="bold", x=0.07, ha="left", y=1 - 0.22 / fig_h)
    fig.text(
        0.07,
        1 - 0.62 / fig_h,
        f"scenario '{spec.name}' · seed {result.seed} · {verdict}",
        fontsize=10,
        color="#2e7d32" if result.passed else "#c62828",
        ha="left",
    )

    for bi, burner in enumerate(burners):
        samples = result.samples[burner]
        p = _params(result, burner)
        if not active[burner]:
            ax_st = fig.add_subplot(outer[bi])
            _states(ax_st, result, burner, samples, end, div)
            _bands(ax_st, result, div, x_end)
            ax_st.set_title(f"burner '{burner}' — never lit", loc="left", fontsize=12, fontweight="bold", pad=8)
            for t, kind, _label in _event_marks(result, burner):
                ax_st.axvline(t / div, color=_COLOURS[kind], lw=1.0, ls="-" if kind != "boot" else ":")
            ax_st.set_xlabel(xlabel if bi == n - 1 else "")
            if bi == 0:
                _legends(None, None, ax_st)
            continue
        hs = _group_heights(burner)
        inner = outer[bi].subgridspec(len(hs), 1, height_ratios=hs, hspace=0.12)
        ax_tc = fig.add_subplot(inner[0])
        ax_i = fig.add_subplot(inner[1], sharex=ax_tc)
        ax_st = fig.add_subplot(inner[2], sharex=ax_tc)
        ax_tm = fig.add_subplot(inner[3], sharex=ax_tc) if timed[burner] else None
        group = tuple(ax for ax in (ax_tc, ax_i, ax_st, ax_tm) if ax is not None)

        # 1. thermocouple
        xs, ys = _held_series(samples, "emf_mv", end, div)
        ax_tc.plot(xs, ys, color=_COLOURS["emf"], lw=1.2, ls="--", label="open-circuit EMF\n(its temperature)")
        xs, ys = _held_series(samples, "tc_mv", end, div)
        ax_tc.plot(xs, ys, color=_COLOURS["tc"], lw=1.8, label="terminal voltage (true)")
        reads = result.readings.get(burner, [])
        if reads:
            ax_tc.plot(
                [t / div for t, _ in reads],
                [v for _, v in reads],
                ls="none",
                marker="o",
                ms=2.6 if len(reads) < 400 else 1.2,
                color=_COLOURS["read"],
                alpha=0.8 if len(reads) < 400 else 0.45,
                label="firmware reading\n(ADS1115)",
            )
        top = max([30.0] + [s.tc_mv for s in samples if s.tc_mv < 100] + [s.emf_mv for s in samples])
        ax_tc.set_ylim(-1.5, top * 1.12)
        if any(s.tc_mv > 100 for s in samples):
            ax_tc.annotate(
                "input floats to full scale (open thermocouple)",
                xy=(0.99, 0.93),
                xycoords="axes fraction",
                ha="right",
                va="top",
                fontsize=8,
                color=_COLOURS["fault"],
            )
        ax_tc.set_ylabel("thermocouple\n(mV)")
        ax_tc.set_title(f"burner '{burner}'", loc="left", fontsize=12, fontweight="bold", pad=16)
        changed = result.spec.physics.get(burner)
        if changed:
            ax_tc.set_title(
                "   " + ", ".join(f"{k} = {v:g}" for k, v in changed.items()),
                loc="center",
                fontsize=9,
                pad=16,
                color="#444",
            )

        # 2. coil current
        xs, ys = _held_series(samples, "coil_ma", end, div)
        ax_i.plot(xs, ys, color=_COLOURS["coil"], lw=1.8, label="magnet coil current")
        ax_i.axhline(p.hold_a * 1000, color=_COLOURS["coil"], ls=":", lw=1.1)
        ax_i.axhline(p.drop_out_a * 1000, color=_COLOURS["cut"], ls=":", lw=1.1)
        ax_i.text(
            x_end,
            p.hold_a * 1000,
            f" needed to hold {p.hold_a * 1000:.0f} mA",
            va="bottom",
            fontsize=8,
            color=_COLOURS["coil"],
        )
        ax_i.text(
            x_end,
            p.drop_out_a * 1000,
            f" drops out below {p.drop_out_a * 1000:.0f} mA",
            va="top",
            fontsize=8,
            color=_COLOURS["cut"],
        )
        i_top = max([p.hold_a * 1000 * 1.3] + [s.coil_ma for s in samples])
        ax_i.set_ylim(-8, i_top * 1.12)
        ax_i.set_ylabel("coil\n(mA)")

        # 3. states
        _states(ax_st, result, burner, samples, end, div)

        # 4. timer
        tser = result.timers.get(burner, []) if ax_tm is not None else []
        txs, tys = [], []
        for t, rem in tser:
            txs.append(t / div)
            tys.append(math.nan if rem is None else rem / 60.0)
        if ax_tm is not None:
            ax_tm.plot(txs, tys, color=_COLOURS["timer"], lw=1.8)
            finite = [y for y in tys if not math.isnan(y)] or [1.0]
            ax_tm.set_ylim(-0.05 * max(finite), max(finite) * 1.2 + 0.5)
            ax_tm.set_ylabel("timer left\n(min)")

        # bands: device down, link down
        for ax in group:
            _bands(ax, result, div, x_end)

        # event markers with labels, stacked in rows so neighbours don't overlap
        ends: list[float] = []  # per label row: where the last label ends (axes fraction)
        axis_pt = (0.80 - 0.075) * 14 * 72
        for t, kind, label in _event_marks(result, burner):
            x = t / div
            for ax in group:
                ax.axvline(
                    x, color=_COLOURS[kind], lw=1.1 if kind != "boot" else 0.8, ls="-" if kind != "boot" else ":"
                )
            start = x / x_end
            width = (len(label) * 4.6 + 6) / axis_pt
            level = next((k for k, e in enumerate(ends) if e <= start), len(ends))
            if level == len(ends):
                ends.append(0.0)
            ends[level] = start + width
            if level > 4:
                continue
            ax_tc.annotate(
                label,
                xy=(x, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -2 - 10 * level),
                textcoords="offset points",
                fontsize=7.5,
                color=_COLOURS[kind],
                ha="left",
                va="top",
                fontweight="bold" if kind in ("cut", "fault") else "normal",
                bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.75),
            )

        for ax in group[:-1]:
            ax.tick_params(labelbottom=False)
        group[-1].set_xlabel(xlabel if bi == n - 1 else "")

        if bi == 0:
            _legends(ax_tc, ax_i, ax_st)

    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _active(result: ScenarioResult, burner: str) -> bool:
    samples = result.samples[burner]
    if any(s.flame or s.valve or s.emf_mv > 0.5 for s in samples):
        return True
    return any(a.burner == burner for _, step in result.steps_done if (a := step.action) is not None)


def _bands(ax, result: ScenarioResult, div: float, x_end: float) -> None:
    for t0, t1, _why in result.downtime:
        ax.axvspan(t0 / div, t1 / div, color="#9e9e9e", alpha=0.22, lw=0)
    for t0, t1 in result.link_down:
        ax.axvspan(t0 / div, t1 / div, facecolor="#f4f4f4", edgecolor="#d2d2d2", hatch="//", lw=0, zorder=0)
    ax.grid(True, axis="x", color="#e6e6e6", lw=0.8)
    ax.set_xlim(0, x_end)
    ax.spines[["top", "right"]].set_visible(False)


def _states(ax_st, result: ScenarioResult, burner: str, samples: list[Sample], end: int, div: float) -> None:
    rows = [
        ("flame", lambda s: s.flame, _COLOURS["flame"]),
        ("valve open (gas)", lambda s: s.valve, _COLOURS["valve"]),
        ("relay closed", lambda s: s.relay, _COLOURS["relay"]),
        ("knob held", lambda s: s.knob == "held", _COLOURS["knob"]),
    ]
    yt = []
    for k, (label, fn, colour) in enumerate(rows):
        base = k * 1.25
        xs, ys = _step_series(samples, lambda s, fn=fn: 1.0 if fn(s) else 0.0, end, div)
        yv = [base + 0.9 * y for y in ys]
        ax_st.step(xs, yv, where="post", color=colour, lw=1.6)
        ax_st.fill_between(xs, base, yv, step="post", color=colour, alpha=0.28, lw=0)
        yt.append((base + 0.45, label))
        if label == "relay closed" and _command_differs(samples, end):
            # the firmware's command differs from the contact somewhere (welded / stuck relay)
            xs, ys = _step_series(samples, lambda s: 1.0 if s.relay_coil else 0.0, end, div)
            ax_st.step(xs, [base + 0.9 * y for y in ys], where="post", color="#111", lw=1.0, ls="--")
            ax_st.text(
                0.003,
                base + 0.45,
                "dashed: relay commanded",
                transform=ax_st.get_yaxis_transform(),
                fontsize=7,
                va="center",
                color="#111",
            )
    ax_st.set_yticks([y for y, _ in yt], [lab for _, lab in yt], fontsize=8)
    ax_st.set_ylim(-0.3, len(rows) * 1.25 + 0.45)
    ax_st.tick_params(axis="y", length=0)
    for t, who, _text in _steps_for(result, burner):
        marker, colour = {"person": ("^", "person"), "host": ("D", "host"), "fault": ("X", "fault_step")}.get(
            who, ("o", "physics")
        )
        ax_st.plot([t / div], [len(rows) * 1.25 + 0.15], marker=marker, color=_COLOURS[colour], ms=6, clip_on=False)


def _legends(ax_tc, ax_i, ax_st) -> None:
    if ax_tc is not None:
        ax_tc.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if ax_i is not None:
        ax_i.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    handles = [
        Line2D([], [], color=_COLOURS["cut"], lw=1.5, label="cut"),
        Line2D([], [], color=_COLOURS["warning"], lw=1.5, label="warning"),
        Line2D([], [], color=_COLOURS["fault"], lw=1.5, label="fault"),
        Line2D([], [], color=_COLOURS["boot"], lw=1, ls=":", label="boot / lock"),
        Line2D([], [], ls="none", marker="^", color=_COLOURS["person"], label="person acts"),
        Line2D([], [], ls="none", marker="D", color=_COLOURS["host"], label="host command"),
        Line2D([], [], ls="none", marker="X", color=_COLOURS["fault_step"], label="fault injected"),
        Patch(facecolor="#9e9e9e", alpha=0.3, label="device off / booting"),
        Patch(facecolor="#f4f4f4", edgecolor="#d2d2d2", hatch="//", label="serial link down"),
    ]
    ax_st.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.05), fontsize=8, frameon=False)


def _command_differs(samples: list[Sample], end: int, longer_than_ms: int = 150) -> bool:
    """True when the relay contact disagreed with the firmware's command for
    longer than a relay takes to move (a welded or stuck contact)."""
    for i, s in enumerate(samples):
        if s.relay_coil != s.relay:
            until = samples[i + 1].t if i + 1 < len(samples) else end
            if until - s.t > longer_than_ms:
                return True
    return False

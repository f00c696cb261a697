"""`python -m bench [--quick] [--only NAME ...] [--out FILE]`: run the
benchmarks, print a table, write bench/results.json.

The table's "value" is the median of the runs ("n") for most figures; for
latencies it is the named percentile over n commands. results.json keeps
every run, the command that produced each figure, and the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from .common import REPO, Figure

# name -> module in this package, in the order they run.
BENCHMARKS = {
    "sim_speed": "sim_speed",
    "gas_off": "gas_off",
    "flame_loss": "flame_loss",
    "flame_loss_firmware": "flame_loss_firmware",
    "footprint": "footprint",
    "latency": "latency",
    "bridge_load": "bridge_load",
    "ha_flood": "ha_flood",
    "wifi": "wifi",
}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("bytes",):
        return f"{value:,.0f} B"
    if unit == "x real time":
        return f"{value:,.0f}×"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "L":
        return f"{value:.3f} L"
    return f"{value:g} {unit}"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "target", "n", "command")]
    for f in figures:
        verdict = {True: "met", False: "MISSED", None: ""}[f.meets_target]
        target = (
            f"{f.target} {f.unit if f.unit in ('ms', 's', 'MB', '%', 'bytes') else ''} ({verdict})" if f.target else ""
        )
        target = target.replace("  ", " ")
        n = len(f.runs) or f.details.get("n", "")
        rows.append((f.name, _fmt(f.value, f.unit), target, str(n), f.command))
    widths = [min(78, max(len(r[i]) for r in rows)) for i in range(5)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i][: widths[i]].ljust(widths[i]) for i in range(5)]
        lines.append(" | ".join(cells).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and shorter loads (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME", help="run only these")
    parser.add_argument("--out", default=str(REPO / "bench" / "results.json"), help="results file")
    parser.add_argument("--show", action="store_true", help="print the table of the results file; run nothing")
    args = parser.parse_args(argv)
    if args.show:
        data = json.loads(Path(args.out).read_text())
        known = {f.name for f in dataclasses.fields(Figure)}
        shown = [Figure(**{k: v for k, v in d.items() if k in known}) for d in data["figures"]]
        print(table(shown))
        print(f"({data['generated']}, {data['machine']['cpus']} CPUs, python {data['machine']['python']})")
        return 0
    names = args.only or list(BENCHMARKS)
    figures: list[Figure] = []
    groups: dict[str, str] = {}  # figure id -> benchmark name
    errors: dict[str, str] = {}
    started = time.monotonic()
    for name in names:
        print(f"bench: {name} …", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            module = importlib.import_module(f"bench.{BENCHMARKS[name]}")
            measured = module.measure(quick=args.quick)
            figures += measured
            groups.update({f.id: name for f in measured})
        except Exception as err:  # a benchmark that cannot run says why; the others still run
            errors[name] = f"{type(err).__name__}: {err}"
            traceback.print_exc()
        print(f"bench: {name} took {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    print(table(figures))
    for name, err in errors.items():
        print(f"{name}: not measured: {err}")
    out = Path(args.out)
    previous: list[dict] = []
    if args.only and out.exists():
        try:  # --only replaces the figures of the benchmarks it ran and keeps the others
            previous = json.loads(out.read_text()).get("figures", [])
        except (OSError, ValueError):
            previous = []
    ran = set(names) - set(errors)
    merged = [f for f in previous if f.get("group") not in ran]
    for f in figures:
        merged.append(dict(f.to_dict(), group=groups[f.id]))
    order = list(BENCHMARKS)
    merged.sort(key=lambda f: order.index(f["group"]) if f.get("group") in order else len(order))
    result = {
        "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python -m bench"
        + (" --quick" if args.quick else "")
        + (f" --only {' '.join(args.only)}" if args.only else ""),
        "took_s": round(time.monotonic() - started, 1),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_1m_at_end": os.getloadavg()[0],
        },
        "errors": errors,
        "figures": merged,
    }
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"written to {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

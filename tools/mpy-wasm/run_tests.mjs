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
//   node run_tests.mjs [REPO] --heap [--heapsize BYTES]
//       Imports the firmware, builds the control core as at start-up and
//       prints ONE JSON line with the heap in use (gc.mem_alloc() after
//       gc.collect()) after each stage; see HEAP_STAGES below.
//
// REPO defaults to the repository this script lives in (../..). BYTES may
// end in k or m; the default, 110k, is about what an ESP32 without PSRAM
// leaves to MicroPython.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_HEAPSIZE = 110 * 1024;
// Lines the Python side prints with this prefix carry the result; every
// other line is the tests' own output.
const MARK = "@@HOBGUARD_RESULT@@ ";

// Heap stages, run in order in one interpreter; after each, the harness
// records gc.mem_alloc() after gc.collect(). A stage's code may keep objects
// alive by storing them in the dict `keep`. To measure more (the app with
// fake drivers, say), add a stage here.
const HEAP_STAGES = [
  ["baseline", ""],
  [
    "import",
    "import hobguard_fw\n" +
      "import hobguard_fw.settings\n" +
      "import hobguard_fw.protocol\n" +
      "import hobguard_fw.core\n",
  ],
  [
    "construct",
    "keep['hob'] = hobguard_fw.core.Hob(hobguard_fw.settings.defaults(), 0)\n" +
      "keep['hob'].tick(0)\n",
  ],
  ["import app", "del keep['hob']\nimport hobguard_fw.drivers\nimport hobguard_fw.app\n"],
  [
    // The whole app after start-up: booted on the MicroPython-compatible
    // fakes of tests/mp/mpfakes.py and run for 60 simulated seconds.
    "app started",
    "import mpfakes\n" +
      "_clock = mpfakes.Time()\n" +
      "_machine = mpfakes.Machine(_clock)\n" +
      "_link = mpfakes.Link()\n" +
      "keep['app'] = hobguard_fw.app.App(_machine, _clock, _link, root=mpfakes.fresh_root())\n" +
      "while _clock.now < 60000:\n" +
      "    _clock.now += max(1, keep['app'].step())\n" +
      "    _link.out = []\n" +
      "keep['clock'] = _clock\n" +
      "keep['link'] = _link\n" +
      "del _clock, _machine, _link\n",
  ],
  [
    // A simulated hour later the heap in use must be what it was.
    "app after 1 h",
    "while keep['clock'].now < 3660000:\n" +
      "    keep['clock'].now += max(1, keep['app'].step())\n" +
      "    keep['link'].out = []\n",
  ],
];

function usage(message) {
  if (message) process.stderr.write("run_tests.mjs: " + message + "\n");
  process.stderr.write(
    "usage: node run_tests.mjs [REPO] [--heap] [--heapsize BYTES] [--only MODULE[,MODULE...]]\n",
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
  const options = { repo: path.resolve(HERE, "..", ".."), heap: false, heapsize: DEFAULT_HEAPSIZE, only: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--heap") options.heap = true;
    else if (arg === "--heapsize") options.heapsize = parseSize(argv[++i]);
    else if (arg.startsWith("--heapsize=")) options.heapsize = parseSize(arg.slice(11));
    else if (arg === "--only") options.only = (argv[++i] || "").split(",").filter(Boolean);
    else if (arg === "-h" || arg === "--help") usage();
    else if (arg.startsWith("-")) usage("unknown option " + arg);
    else options.repo = path.resolve(arg);
  }
  return options;
}

// Every *.py below `dir`, as paths relative to it, sorted.
function pythonFiles(dir) {
  const found = [];
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? rel + "/" + entry.name : entry.name;
      if (entry.isDirectory()) {
        if (entry.name !== "__pycache__") walk(child);
      } else if (entry.isFile() && entry.name.endsWith(".py")) {
        found.push(child);
      }
    }
  };
  if (fs.existsSync(dir)) walk("");
  return found.sort();
}

function mkdirs(FS, target) {
  let current = "";
  for (const part of target.split("/").filter(Boolean)) {
    current += "/" + part;
    try {
      FS.mkdir(current);
    } catch (error) {
      // EEXIST: already there.
    }
  }
}

// Copies the .py files under hostDir into the MicroPython FS under fsDir.
function copyTree(FS, hostDir, fsDir) {
  const files = pythonFiles(hostDir);
  mkdirs(FS, fsDir);
  for (const rel of files) {
    const target = fsDir + "/" + rel;
    mkdirs(FS, path.posix.dirname(target));
    FS.writeFile(target, fs.readFileSync(path.join(hostDir, rel)));
  }
  return files;
}

function pyString(text) {
  return JSON.stringify(text); // a JSON string literal is a valid Python one
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

// Python run inside MicroPython to measure the heap stage by stage, as a
// list of programs run one after another in the same interpreter. This port
// cannot scan the WebAssembly stack, so gc.collect() only frees garbage when
// no Python code is running below it: each stage runs in its own
// runPython() call, and the heap is measured in the next one.
function heapPrograms(heapsize) {
  const programs = [
    `
import sys, gc, json
if "/lib" in sys.path:
    sys.path.remove("/lib")
sys.path.insert(0, "/lib")
sys.path.append("/tests_mp")
keep = {}
_report = {"heapsize": ${heapsize}, "stages": {}}
`,
  ];
  for (const [name, code] of HEAP_STAGES) {
    programs.push(code || "pass");
    programs.push(`gc.collect()\n_report["stages"][${pyString(name)}] = gc.mem_alloc()\n`);
  }
  const last = HEAP_STAGES[HEAP_STAGES.length - 1][0];
  programs.push(`
_base = _report["stages"]["baseline"]
_report["mem_alloc"] = _report["stages"][${pyString(last)}]
_report["firmware_bytes"] = _report["mem_alloc"] - _base
import micropython
micropython.mem_info()  # its "GC: total:" line tells whether the heap grew
print(${pyString(MARK)} + json.dumps(_report))
`);
  return programs;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const firmwareDir = path.join(options.repo, "firmware", "hobguard_fw");
  const testsDir = path.join(options.repo, "tests", "mp");
  if (!fs.existsSync(path.join(firmwareDir, "__init__.py"))) {
    usage("no firmware package at " + firmwareDir);
  }

  let result = null;
  let gcTotal = null;
  const output = (line) => {
    const total = /^GC: total: (\d+)/.exec(line);
    if (total) gcTotal = parseInt(total[1], 10);
    if (line.startsWith(MARK)) result = line.slice(MARK.length);
    else if (!(options.heap && /^(GC: |stack: | No\. of )/.test(line))) process.stderr.write(line + "\n");
  };
  const mp = await loadMicroPython({ heapsize: options.heapsize, stdout: output, stderr: output });

  copyTree(mp.FS, firmwareDir, "/lib/hobguard_fw");
  const testFiles = copyTree(mp.FS, testsDir, "/tests_mp");
  let programs;
  if (options.heap) {
    programs = heapPrograms(options.heapsize);
  } else {
    let modules = testFiles
      .filter((rel) => !rel.includes("/") && /^test_.*\.py$/.test(rel))
      .map((rel) => rel.slice(0, -3));
    if (options.only) modules = modules.filter((name) => options.only.includes(name));
    programs = [testsProgram(modules)];
  }
  mkdirs(mp.FS, "/work");
  mp.FS.chdir("/work");

  try {
    for (const program of programs) mp.runPython(program);
  } catch (error) {
    process.stderr.write("run_tests.mjs: MicroPython raised:\n" + (error.message || String(error)) + "\n");
    process.exit(2);
  }
  if (result === null) {
    process.stderr.write("run_tests.mjs: the MicroPython side printed no result\n");
    process.exit(2);
  }
  if (options.heap) {
    // This port grows its heap on demand (split heap), so --heapsize sets
    // the first heap area, not a limit: say whether the firmware outgrew it.
    const report = JSON.parse(result);
    report.gc_total = gcTotal;
    report.grew_past_heapsize = gcTotal !== null && gcTotal > options.heapsize;
    result = JSON.stringify(report);
  }
  process.stdout.write(result + "\n");
  if (!options.heap) {
    const failed = Object.values(JSON.parse(result)).some((value) => value !== "pass");
    process.exitCode = failed ? 1 : 0;
  }
}

main().catch((error) => {
  process.stderr.write("run_tests.mjs: " + (error && error.stack ? error.stack : String(error)) + "\n");
  process.exit(2);
});

#!/usr/bin/env node
// The firmware's heap in real MicroPython: the official WebAssembly port
// (the npm package beside this script).
//
//   node tools/mpy-wasm/heap.mjs [REPO] [--hours N] [--heapsize BYTES] [--net]
//
// --net: the board has a secrets file, so the App also starts its network
// link (Wi-Fi station, listening socket) on the plain-Python network of
// tests/mp/mpfakes.py; after "app started" a client connects and
// authenticates ("client authenticated") and stays connected through the
// hours, answering the device's keep-alives. "net_session" is what that one
// authenticated connection costs.
//
// --update (implies --net): that client also sends a firmware update (the
// firmware's own sources, streamed from its files): half of it, then
// ota_abort ("update receiving", "update dropped": the update code is
// imported while it runs and dropped after); after the hours, a whole one
// up to the staged restart ("update staged"). "update_receiving" and
// "update_staged" are their cost above "client authenticated", and
// "update_left" what stays once it is dropped.
//
// Boots the whole App on tests/mp/mpfakes.py, then runs N simulated hours
// (default 24) of a realistic day (burners lit and put out, timers, a remote
// cut, the child lock; the same day again after 24 h), one runPython() call
// per hour, and measures gc.mem_alloc() after gc.collect() in a call of its
// own after each stage: this port cannot scan the WebAssembly stack, so
// garbage is only freed between calls.
// Prints ONE JSON line: {"heapsize", "stages": {"baseline", "harness" (the
// fakes and this driver, before any firmware import), "firmware imported",
// "boot loader loaded", "boot loader released" (main.py, its functions
// dropped before the firmware starts: "boot_loader_held"),
// "app started", "after 1 h", ...: bytes}, "firmware_started" and
// "firmware_max" (the firmware's share: minus "harness"), split into
// "firmware_code" (the imported modules) and "firmware_data_started" (the
// App's objects), "max_after_start", ...}.
//
// A tiny stand-in physics runs inside MicroPython next to the App: a lit
// burner reads 12 mV (loop closed) until its relay opens or the person turns
// it off, then 0 mV.

import path from "node:path";
import { DEFAULT_HEAPSIZE, REPO, loadPort } from "./port.mjs";

const args = process.argv.slice(2);
let repo = REPO;
let hours = 24;
let heapsize = DEFAULT_HEAPSIZE;
let net = false;
let update = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--net") net = true;
  else if (args[i] === "--update") net = update = true;
  else if (args[i] === "--hours") hours = parseInt(args[++i], 10);
  else if (args[i] === "--heapsize") heapsize = parseInt(args[++i], 10);
  else repo = path.resolve(args[i]);
}

const MARK = "@@HEAP@@ ";
const STAGE = "@@STAGE@@ ";
const stages = {};
let result = null;
let gcTotal = null;
const output = (line) => {
  const total = /^GC: total: (\d+)/.exec(line);
  if (total) gcTotal = parseInt(total[1], 10);
  if (line.startsWith(MARK)) result = line.slice(MARK.length);
  else if (line.startsWith(STAGE)) {
    const [name, value] = line.slice(STAGE.length).split("=");
    stages[name] = parseInt(value, 10);
  }
  else if (!/^(GC: |stack: | No\. of |mem: |max )/.test(line) && line.trim()) process.stderr.write(line + "\n");
};
const { mp } = await loadPort(repo, heapsize, output);

// Each measurement prints its figure at once rather than storing it, so the
// report itself does not grow the heap being measured.
const measure = (name) =>
  `gc.collect()\nprint("${STAGE}${name}=" + str(gc.mem_alloc()))\n`;

const programs = [
  `
import sys, gc, json
sys.path.insert(0, "/lib")
sys.path.append("/tests_mp")
_report = {"heapsize": ${heapsize}, "steps": 0, "frames": 0}
`,
  measure("baseline"),
  `
import mpfakes
keep = {}
keep["clock"] = mpfakes.Time()
keep["machine"] = mpfakes.Machine(keep["clock"])
keep["link"] = mpfakes.Link()
keep["root"] = mpfakes.fresh_root()
keep["net"] = None
if ${net ? "True" : "False"}:
    keep["net"] = mpfakes.net_modules()
    mpfakes.write_secrets(keep["root"], "5a" * 32)
# minute of the day -> action: (what, arguments)
_M = 60000
keep["plan"] = [
    (7 * 60 + 30, "ignite", 0), (7 * 60 + 31, "cmd", ("timer_set", {"burner": "left", "minutes": 12})),
    (7 * 60 + 35, "ignite", 1), (7 * 60 + 41, "off", 1), (7 * 60 + 50, "off", 0),
    (12 * 60 + 30, "ignite", 1), (12 * 60 + 31, "cmd", ("timer_set", {"burner": "right", "minutes": 25})),
    (12 * 60 + 40, "ignite", 0), (12 * 60 + 50, "cmd", ("timer_extend", {"burner": "right", "minutes": 5})),
    (12 * 60 + 52, "cmd", ("cut", {"burner": "left"})), (12 * 60 + 53, "off", 0), (13 * 60 + 5, "off", 1),
    (14 * 60, "cmd", ("status", {})),
    (18 * 60 + 45, "ignite", 0), (18 * 60 + 46, "cmd", ("timer_set", {"burner": "left", "minutes": 45})),
    (19 * 60, "ignite", 1), (19 * 60 + 25, "off", 1), (19 * 60 + 40, "off", 0),
    (21 * 60, "ignite", 0), (21 * 60 + 6, "off", 0),
    (22 * 60, "cmd", ("lock", {"on": True})), (23 * 60 + 59, "cmd", ("lock", {"on": False})),
]
keep["next"] = 0
keep["day"] = 0
keep["lit"] = [False, False]
keep["id"] = 0

def run_until(end):
    app, clock, machine, link = keep["app"], keep["clock"], keep["machine"], keep["link"]
    plan, lit = keep["plan"], keep["lit"]
    pins = (26, 27)
    while clock.now < end:
        if keep["next"] >= len(plan):  # the next day: same plan again
            keep["next"] = 0
            keep["day"] += 1
        while keep["next"] < len(plan) and (keep["day"] * 1440 + plan[keep["next"]][0]) * 60000 <= clock.now:
            _, what, arg = plan[keep["next"]]
            keep["next"] += 1
            if what == "ignite":
                lit[arg] = machine.levels.get(pins[arg], 0) == 1
            elif what == "off":
                lit[arg] = False
            else:
                keep["id"] += 1
                link.inbound = keep["protocol"].request(keep["id"], arg[0], **arg[1]).encode()
        wait = app.step()
        client = keep.get("client")
        answered = False
        if client is not None and client["sock"] is not None:
            sock = client["sock"]
            answered = bool(sock.inbox)
            while sock.inbox:
                for line in client["reader"].feed(sock.recv(4096)):
                    if line.startswith(b"HGA1 "):
                        answer = client["session"].handshake(line)
                        if answer:
                            sock.send(answer.encode())
                    elif not client["session"].unseal(line):
                        sock.send(client["session"].seal("").encode())  # a keep-alive asked
        _report["steps"] += 1
        _report["frames"] += len(link.out)
        link.out = []
        for i in (0, 1):
            if lit[i] and machine.levels.get(pins[i], 0) == 0:
                lit[i] = False  # relay opened: the magnet drops, the flame goes out
            machine.mv[i] = 12.0 if lit[i] else 0.0
        step_to = clock.now + (1 if answered else max(1, wait))  # a socket wakes the board at once
        if keep["next"] < len(plan):
            at = (keep["day"] * 1440 + plan[keep["next"]][0]) * 60000
            step_to = min(step_to, max(clock.now + 1, at))
        clock.now = min(step_to, end)

`,
  measure("harness"),
  // The boot loader (main.py) as the board runs it: loaded, then released
  // before the firmware starts; what stays (interned names) counts as the
  // firmware's.
  `
keep["boot"] = {"__name__": "hobguard_boot"}
exec(open("/firmware/main.py").read(), keep["boot"])
`,
  // Twice: the first collection after a call that compiled source still
  // finds some of that call's garbage reachable in this port.
  measure("boot loader loaded"),
  measure("boot loader loaded"),
  `
keep["boot"]["release"](keep["boot"])
`,
  measure("boot loader released"),
  measure("boot loader released"),
  `
import hobguard_fw.app, hobguard_fw.protocol
keep["protocol"] = hobguard_fw.protocol
if keep["net"] is not None:
    import hobguard_fw.netlink  # and auth, wifi: imported at start-up on a board with secrets
`,
  measure("firmware imported"),
  `
keep["app"] = hobguard_fw.app.App(keep["machine"], keep["clock"], keep["link"], root=keep["root"], network=keep["net"])
run_until(60000)
`,
  measure("app started"),
];
// The client's side of an update: the bundle streamed from the firmware's
// files, never held whole (it is about as big as the heap).
const UPDATE_HELPERS = `
import os, hashlib, binascii
def _files():
    names = sorted(n for n in os.listdir("/lib/hobguard_fw") if n.endswith(".py"))
    return [(n, os.stat("/lib/hobguard_fw/" + n)[6]) for n in names]
def _head():
    return json.dumps({"format": 1, "version": "9.9.9", "build": "heap", "files": [[n, s] for n, s in _files()]}).encode() + b"\\n"
def _pieces(step):
    buf = _head()
    for name, _ in _files():
        with open("/lib/hobguard_fw/" + name, "rb") as f:
            while True:
                more = f.read(step)
                if not more:
                    break
                buf += more
                while len(buf) >= step:
                    yield buf[:step]
                    buf = buf[step:]
    if buf:
        yield buf
def _bundle():
    digest = hashlib.sha256()
    size = 0
    for piece in _pieces(512):
        digest.update(piece)
        size += len(piece)
    return size, binascii.hexlify(digest.digest()).decode()
def _send(cmd, **args):
    keep["id"] += 1
    c = keep["client"]
    c["sock"].send(c["session"].seal(keep["protocol"].request(keep["id"], cmd, **args)).encode())
    run_until(keep["clock"].now + 20)
def _update(share):
    size, digest = _bundle()
    _send("ota_begin", version="9.9.9", size=size, sha256=digest)
    offset = 0
    for piece in _pieces(keep["protocol"].OTA_CHUNK):
        if offset >= size * share:
            break
        _send("ota_chunk", off=offset, data=binascii.b2a_base64(piece).decode().strip())
        offset += len(piece)
    return offset, size
`;
if (net) {
  // The test client's own objects are made (and measured) first, so that
  // "net_session" is the device's share of one connection.
  programs.push(`
import hobguard_fw.auth as _auth
keep["client"] = {"session": _auth.Session(b"\\x5a" * 32, False, b"\\x01" * 32),
                  "reader": keep["protocol"].LineReader(keep["protocol"].MAX_LINE + _auth.OVERHEAD), "sock": None}
`);
  if (update) programs.push(UPDATE_HELPERS); // counted with the test client, not the update
  programs.push(measure("test client made"));
  programs.push(`
keep["client"]["sock"] = keep["net"]["socket"].connect(("192.168.1.50", 7343))
run_until(keep["clock"].now + 1000)
assert keep["client"]["session"].open, "the client did not authenticate"
`);
  // A minute on, so the last program's own leftovers are gone.
  programs.push(`run_until(keep["clock"].now + 60000)\n`);
  programs.push(measure("client authenticated"));
}
if (update) {
  programs.push(`
_sent, _size = _update(0.5)
_rx = keep["app"].updater.rx
assert _rx is not None and _rx.offset == _sent, "the update is not being received"
_rx = None
`);
  programs.push(measure("update receiving"));
  programs.push(`
_send("ota_abort")
assert keep["app"].updater is None and "hobguard_fw.ota" not in sys.modules, "the update code stayed"
run_until(keep["clock"].now + 60000)
`);
  programs.push(measure("update dropped"));
}
for (let h = 1; h <= hours; h++) {
  programs.push(`run_until(${h * 3600000})\n`);
  programs.push(measure(`after ${h} h`));
}
if (update) {
  // After the hours (at midnight nobody cooks): a whole update, up to the
  // moment it is staged and the board is about to restart.
  programs.push(`
_sent, _size = _update(1.0)
_send("ota_end")
assert keep["app"].updater.staged == "9.9.9", "the update was not staged"
`);
  programs.push(measure("update staged"));
}
programs.push(`
import micropython
micropython.mem_info()
_report["cuts"] = keep["id"]
print(${JSON.stringify(MARK)} + json.dumps(_report))
`);

try {
  for (const program of programs) mp.runPython(program);
} catch (error) {
  process.stderr.write("heap.mjs: MicroPython raised:\n" + (error.message || String(error)) + "\n");
  process.exit(2);
}
if (result === null) {
  process.stderr.write("heap.mjs: no result\n");
  process.exit(2);
}
const report = JSON.parse(result);
report.stages = stages;
const after = Object.entries(report.stages).filter(([k]) => k.startsWith("after ")).map(([, v]) => v);
report.max_after_start = after.length ? Math.max(...after) : null;
// The firmware's own share: everything above the fakes and this harness.
report.firmware_started = stages["app started"] - stages["harness"];
report.firmware_max = report.max_after_start - stages["harness"];
// Of which the imported modules (bytecode and module objects, which frozen
// modules would keep in flash) and the running App's own data.
report.firmware_code = stages["firmware imported"] - stages["harness"];
report.firmware_data_started = stages["app started"] - stages["firmware imported"];
report.gc_total = gcTotal;
// The boot loader's functions, held only until the firmware starts.
report.boot_loader_held = stages["boot loader loaded"] - stages["boot loader released"];
report.net = net;
if (net) {
  report.net_session = stages["client authenticated"] - stages["test client made"];
  report.test_client = stages["test client made"] - stages["app started"];
}
report.update = update;
if (update) {
  report.update_receiving = stages["update receiving"] - stages["client authenticated"];
  report.update_left = stages["update dropped"] - stages["client authenticated"];
  report.update_staged = stages["update staged"] - stages["client authenticated"];
}
report.hours = hours;
process.stdout.write(JSON.stringify(report) + "\n");

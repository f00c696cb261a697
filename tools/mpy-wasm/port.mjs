// Shared by run_tests.mjs and heap.mjs: loading the official MicroPython
// WebAssembly port and copying the firmware and tests/mp into its in-memory
// file system.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

// The repository these scripts live in (tools/mpy-wasm/../..).
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
// About what an ESP32 without PSRAM leaves to MicroPython.
export const DEFAULT_HEAPSIZE = 110 * 1024;

// Every *.py below `dir`, as paths relative to it, sorted.
export function pythonFiles(dir) {
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

export function mkdirs(FS, target) {
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
export function copyTree(FS, hostDir, fsDir) {
  const files = pythonFiles(hostDir);
  mkdirs(FS, fsDir);
  for (const rel of files) {
    const target = fsDir + "/" + rel;
    mkdirs(FS, path.posix.dirname(target));
    FS.writeFile(target, fs.readFileSync(path.join(hostDir, rel)));
  }
  return files;
}

export function pyString(text) {
  return JSON.stringify(text); // a JSON string literal is a valid Python one
}

// A fresh interpreter with the firmware as /lib/hobguard_fw (main.py as
// /firmware/main.py) and tests/mp as /tests_mp, working in /work. Returns { mp, testFiles }.
export async function loadPort(repo, heapsize, output) {
  const firmwareDir = path.join(repo, "firmware", "hobguard_fw");
  if (!fs.existsSync(path.join(firmwareDir, "__init__.py"))) {
    throw new Error("no firmware package at " + firmwareDir);
  }
  const mp = await loadMicroPython({ heapsize, stdout: output, stderr: output });
  copyTree(mp.FS, firmwareDir, "/lib/hobguard_fw");
  // The boot loader, for the tests of its marker logic (never imported as
  // "main" there: the tests run its source with a name of their own).
  mkdirs(mp.FS, "/firmware");
  mp.FS.writeFile("/firmware/main.py", fs.readFileSync(path.join(repo, "firmware", "main.py")));
  const testFiles = copyTree(mp.FS, path.join(repo, "tests", "mp"), "/tests_mp");
  mkdirs(mp.FS, "/work");
  mp.FS.chdir("/work");
  return { mp, testFiles };
}

"""The documented deploy path deploys the settings it checked, and a serial
port that is missing, busy or not ours to open gets an answer that says what
to do, with exit status 2.

The README's and docs/hardware.md's own commands run here: `hobguard ...`
through the CLI, `make deploy ...` through make, against a pseudo-terminal
that stands for the board's port (it answers with a boot event) and a fake
`mpremote` on PYTHONPATH that records every command and the files it was
asked to copy. The ports in the docs become the pty; nothing else changes
but where the bundle is built.
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import shlex
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest
import serial
from hobguard import cli
from hobguard.tools import deploy
from hobguard.tools.deploy import MicroPythonVersion
from hobguard_fw import protocol
from hobguard_fw.settings import SETTINGS_FILE, defaults

REPO = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 240  # a guard against a hung tool only; no test measures time

FAKE_MPREMOTE = """
import json, os, sys
argv = sys.argv[1:]
entry = {"argv": argv}
if "cp" in argv:
    rest = argv[argv.index("cp") + 1:]
    source = rest[1] if rest[0] == "-r" else rest[0]
    if os.path.isfile(source):
        with open(source) as f:
            entry["content"] = f.read()
with open(os.environ["HOBGUARD_FAKE_MPREMOTE_LOG"], "a") as f:
    f.write(json.dumps(entry) + "\\n")
if "exec" in argv:
    print(os.environ["HOBGUARD_FAKE_MPREMOTE_PROBE"])
"""
BOOT = {"t": "evt", "event_type": "boot", "reset_cause": "soft_reset", "hot_burners": [], "locked": False}


@pytest.fixture
def fake_mpremote(tmp_path):
    """A `python -m mpremote` that records what it was asked and answers the
    version probe like a board with this mpy-cross's MicroPython."""
    root = tmp_path / "fake"
    (root / "mpremote").mkdir(parents=True)
    (root / "mpremote" / "__init__.py").write_text("")
    (root / "mpremote" / "__main__.py").write_text(FAKE_MPREMOTE)
    log = tmp_path / "mpremote.log"
    cross = deploy.cross_version()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    env["HOBGUARD_FAKE_MPREMOTE_LOG"] = str(log)
    env["HOBGUARD_FAKE_MPREMOTE_PROBE"] = "HGVER %s %d Generic ESP32 module with ESP32" % (
        cross.release_text,
        cross.mpy | (10 << 10),
    )
    env.pop("MAKEFLAGS", None)

    def commands():
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    return env, commands


@pytest.fixture
def board_port():
    """A pseudo-terminal standing for the board's USB port: whoever opens
    it reads a boot event now and then, as from a board that restarted."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)  # nobody holds the port until the deploy opens it
    stop = threading.Event()
    frame = protocol.encode(BOOT).encode()

    def talk():
        while not stop.is_set():
            try:
                os.write(master, frame)
            except OSError:
                pass
            readable, _, _ = select.select([master], [], [], 0.2)
            if readable:
                try:
                    os.read(master, 4096)  # what the deploy writes: dropped
                except OSError:
                    time.sleep(0.05)

    thread = threading.Thread(target=talk, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join(timeout=5)
    os.close(master)


def _block_after(text: str, heading: str) -> list[str]:
    section = text[text.index(heading) :]
    block = re.search(r"```(?:sh)?\n(.*?)```", section, re.S)
    assert block, f"no command block after {heading!r}"
    return [line.split(" #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _run_documented(lines, cwd, env, port, build_dir, edit=None):
    """Run documented command lines in order: hobguard commands through the
    CLI, make through make (the port made the pty, the bundle built in
    build_dir). Returns the make runs' CompletedProcess objects."""
    made = []
    for line in lines:
        words = shlex.split(line)
        if words[0].endswith("hobguard"):
            output = None
            if ">" in words:
                output = words[words.index(">") + 1]
                words = words[: words.index(">")]
            old = os.getcwd()
            os.chdir(cwd)
            try:
                capture = _Capture()
                with capture:
                    code = cli.main(words[1:])
            finally:
                os.chdir(old)
            assert code == 0, f"{line}\n{capture.text}"
            if output:
                (cwd / output).write_text(capture.out)
                if edit:
                    edit(cwd / output)
        elif words[0] == "make":
            args = []
            for word in words[1:]:
                if word.startswith("PORT="):
                    word = "PORT=" + port
                elif word.startswith("SETTINGS=") and word != "SETTINGS=keep":
                    word = "SETTINGS=" + str(cwd / word.split("=", 1)[1])
                args.append(word)
            done = subprocess.run(
                ["make", "-s", "-C", str(REPO), *args, "BUILD_DIR=" + str(build_dir)],
                env=env,
                capture_output=True,
                text=True,
                timeout=HANG_GUARD_S,
            )
            made.append(done)
        else:
            pytest.fail("a documented command this test does not know: " + line)
    return made


class _Capture:
    """stdout of cli.main, captured without pytest's capsys (the documented
    redirection `> FILE` writes it to a file)."""

    def __enter__(self):
        import io

        self._old = sys.stdout
        sys.stdout = self._buffer = io.StringIO()
        return self

    def __exit__(self, *exc):
        sys.stdout = self._old
        self.out = self._buffer.getvalue()
        self.text = self.out

    out = ""
    text = ""


def _edit_for_my_hob(path: Path) -> None:
    settings = json.loads(path.read_text())
    settings["left_on_min"] = 90
    settings["burners"][0]["id"] = "wok"
    path.write_text(json.dumps(settings, indent=2) + "\n")


# -- the documented path ----------------------------------------------------------


def test_the_readme_deploy_path_copies_the_settings_it_checked(tmp_path, fake_mpremote, board_port):
    env, commands = fake_mpremote
    lines = _block_after((REPO / "README.md").read_text(), "## Building the hardware")
    assert [shlex.split(line)[0] for line in lines] == [".venv/bin/hobguard", ".venv/bin/hobguard", "make"]
    work = tmp_path / "work"
    work.mkdir()
    (made,) = _run_documented(lines, work, env, board_port, tmp_path / "build", edit=_edit_for_my_hob)
    assert made.returncode == 0, made.stdout + made.stderr
    copies = [c for c in commands() if c["argv"][-1] == ":" + SETTINGS_FILE]
    assert len(copies) == 1, commands()
    checked = (work / "my_settings.json").read_text()
    assert copies[0]["content"] == checked  # the very file that was checked, edits included
    assert '"wok"' in checked
    assert "No burner was burning." in made.stdout


def test_the_hardware_guides_make_commands_copy_or_keep_the_settings(tmp_path, fake_mpremote, board_port):
    env, commands = fake_mpremote
    text = (REPO / "docs" / "hardware.md").read_text()
    lines = [line for line in _block_after(text, "The same with make:") if line.startswith("make ")]
    assert lines == [
        "make deploy PORT=/dev/ttyUSB0 SETTINGS=my_settings.json",
        "make deploy PORT=/dev/ttyUSB0 SETTINGS=keep",
    ]
    (tmp_path / "my_settings.json").write_text(json.dumps({"left_on_min": 45}))
    copy, keep = _run_documented(lines, tmp_path, env, board_port, tmp_path / "build")
    assert copy.returncode == 0, copy.stdout + copy.stderr
    assert keep.returncode == 0, keep.stdout + keep.stderr
    settings_copies = [c["content"] for c in commands() if c["argv"][-1] == ":" + SETTINGS_FILE]
    assert settings_copies == ['{"left_on_min": 45}']  # the first run copied it, the second kept the board's
    assert "settings: kept" in keep.stdout


def test_make_deploy_without_settings_exits_2_and_says_what_to_add(tmp_path, fake_mpremote, board_port):
    env, commands = fake_mpremote
    done = subprocess.run(
        ["make", "-s", "-C", str(REPO), "deploy", "PORT=" + board_port, "BUILD_DIR=" + str(tmp_path / "b")],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert done.returncode == 2
    assert "make deploy: say which settings the board gets:" in done.stderr
    assert f"make deploy PORT={board_port} SETTINGS=my_settings.json" in done.stderr
    assert commands() == []


def test_hobguard_deploy_without_a_settings_choice_keeps_the_boards_file_and_says_so(tmp_path, capsys, monkeypatch):
    # `hobguard deploy --port PORT` is the documented contract: it still works,
    # as --keep-settings, and a note says what happened to the settings.
    monkeypatch.setattr(deploy, "_run", lambda *a, **k: pytest.fail("ran a command"))
    code = cli.main(["deploy", "--port", "/dev/ttyUSB0", "--dry-run", "--build-dir", str(tmp_path / "b")])
    out, err = capsys.readouterr()
    assert code == 0
    assert "no --settings given, so the board keeps its own" in err
    assert "resume fs cp -r" in out  # the firmware is copied ...
    assert ":hobguard_settings.json" not in out  # ... and no settings file


def test_settings_and_keep_settings_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["deploy", "--port", "p", "--settings", "s.json", "--keep-settings"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_settings_for_another_chip_are_refused_before_the_copy(tmp_path, capsys, monkeypatch):
    cross = deploy.cross_version()
    ran = []

    def run(argv, capture=False):
        ran.append(argv)
        return "HGVER %s %d Generic ESP32S3 module with ESP32S3\n" % (cross.release_text, cross.mpy)

    monkeypatch.setattr(deploy, "_run", run)
    monkeypatch.setattr(deploy, "port_problem", lambda port: None)
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps(defaults()))
    code = cli.main(["deploy", "--port", "p", "--settings", str(settings), "--build-dir", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 1
    assert f'{settings} is for an esp32 ("chip": "esp32"), but the board on p is an esp32s3' in err
    assert 'set "chip": "esp32s3"' in err and "Nothing was copied." in err
    assert ran == [deploy.probe_argv("p")]


def test_board_chip_is_read_from_the_machine_name():
    def board(machine):
        return MicroPythonVersion((1, 29, 0), 6, 3, 10, machine)

    assert deploy.board_chip(board("Generic ESP32 module with ESP32")) == "esp32"
    assert deploy.board_chip(board("ESP32C3 module with ESP32C3")) == "esp32c3"
    assert deploy.board_chip(board("?")) is None


# -- the serial port ----------------------------------------------------------------


def _deploy_to(port, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(deploy, "_run", lambda *a, **k: pytest.fail("mpremote ran against an unusable port"))
    code = cli.main(["deploy", "--port", port, "--keep-settings", "--build-dir", str(tmp_path / "b")])
    out = capsys.readouterr()
    return code, out.out, out.err


HOLD = """
import serial, sys, time
link = serial.Serial()
link.port = sys.argv[1]
link.dtr = link.rts = False
link.exclusive = sys.argv[2] == "exclusive"
link.open()
print("holding", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("how", ["exclusive", "plain"])
def test_a_busy_port_says_stop_the_bridge_and_exits_2(tmp_path, capsys, monkeypatch, board_port, how):
    """`exclusive` holds the port as the bridge does (an exclusive lock);
    `plain` as a serial terminal might (no lock: found through /proc)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, board_port, how], stdout=subprocess.PIPE, text=True
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        code, out, err = _deploy_to(board_port, tmp_path, capsys, monkeypatch)
    finally:
        holder.kill()
        holder.wait(timeout=HANG_GUARD_S)
    assert code == 2
    assert f"hobguard deploy: the port is busy ({board_port} is held by process {holder.pid}: " in err
    assert f"stop the hobguard bridge (systemctl stop hobguard-bridge) or whatever holds {board_port}" in err
    assert "then retry" in err
    assert "Traceback" not in err


def test_a_missing_port_says_plug_in_the_board_and_exits_2(tmp_path, capsys, monkeypatch):
    code, out, err = _deploy_to("/dev/ttyHOBGUARD-none", tmp_path, capsys, monkeypatch)
    assert code == 2
    assert "hobguard deploy: there is no serial port /dev/ttyHOBGUARD-none: is the board plugged in" in err
    assert "Serial ports here now:" in err


def test_a_forbidden_port_says_join_its_group_and_exits_2(tmp_path, capsys, monkeypatch, board_port):
    # The tests may run as root, whom no file mode stops: the port's open()
    # answers as it does for a user outside the port's group.
    def refuse(self):
        raise serial.SerialException(errno.EACCES, f"could not open port {self.port}: [Errno 13] Permission denied")

    monkeypatch.setattr(serial.Serial, "open", refuse)
    code, out, err = _deploy_to(board_port, tmp_path, capsys, monkeypatch)
    assert code == 2
    assert f"hobguard deploy: no permission to open {board_port} (it belongs to the group " in err
    assert "sudo usermod -aG " in err and "log out and in again, then retry" in err


def test_the_permission_message_names_the_ports_group(tmp_path, monkeypatch):
    import grp

    real_stat = os.stat
    port_stat = os.stat_result((0o20660, 0, 0, 1, 0, 20, 0, 0, 0, 0))  # a tty of group 20
    monkeypatch.setattr(
        os, "stat", lambda path, *a, **k: port_stat if path == "/dev/ttyUSB0" else real_stat(path, *a, **k)
    )
    monkeypatch.setattr(grp, "getgrgid", lambda gid: grp.struct_group(("dialout", "x", gid, [])) if gid == 20 else None)
    assert deploy.permission_message("/dev/ttyUSB0") == (
        "no permission to open /dev/ttyUSB0 (it belongs to the group dialout): add yourself to that group "
        "(sudo usermod -aG dialout $USER), log out and in again, then retry"
    )


def test_mpremote_failing_to_open_the_port_is_explained(monkeypatch):
    """The port was free at the check and taken before mpremote opened it:
    mpremote's "failed to access" becomes the same answer, status 2."""

    def run(argv, capture=False):
        raise deploy.DeployError("this step failed (exit status 1):\n  ...\nmpremote: failed to access /dev/ttyUSB0")

    monkeypatch.setattr(deploy, "_run", run)
    monkeypatch.setattr(deploy, "port_problem", lambda port: deploy.busy_message(port, [(42, "hobguard bridge")]))
    with pytest.raises(deploy.PortError, match=re.escape("the port is busy (/dev/ttyUSB0 is held by process 42")):
        deploy._mpremote(["mpremote"], "/dev/ttyUSB0")
    assert deploy.PortError.exit_status == 2


def test_a_dry_run_does_not_need_the_port(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(deploy, "port_problem", lambda port: pytest.fail("a dry run looked at the port"))
    code = cli.main(["deploy", "--port", "/dev/ttyNONE", "--keep-settings", "--dry-run", "--build-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err

"""`hobguard sim`: run scenarios in virtual time, or a simulated hob behind a
pseudo-terminal in scaled real time. Registered in `hobguard`'s command line
(hobguard.cli) beside the other sub-commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser(
        "sim",
        help="the simulated hob running the real firmware",
        description="A physical simulation of the hob (thermocouple, magnet valve, relay, burner, "
        "ADC) running the real firmware unchanged.",
    )
    simsub = sim.add_subparsers(dest="sim_command", metavar="SIMCOMMAND")

    run = simsub.add_parser(
        "run",
        help="run a scenario in virtual time and print its timeline",
        description="Run a scenario (a TOML file, or the name of one in sim/scenarios) in virtual "
        "time, as fast as possible. Prints a timeline; exits 1 when an expectation fails.",
        epilog="Example: hobguard sim run simmer_timer --plot simmer.png",
    )
    run.add_argument("scenario", metavar="SCENARIO", help="scenario name (see --list) or path to a .toml file")
    run.add_argument(
        "--plot",
        metavar="FILE",
        help="draw thermocouple mV, valve, relay, flame and timer (.png, .svg or .pdf; a missing folder is made)",
    )
    run.add_argument("--json", action="store_true", help="print the result as JSON instead of the timeline")
    run.add_argument("--seed", type=int, default=None, help="noise seed (default: the scenario's, else 1)")
    run.set_defaults(func=_run)

    lst = simsub.add_parser("list", help="list the scenario library")
    lst.set_defaults(func=_list)

    dev = simsub.add_parser(
        "device",
        help="a simulated hob behind a pseudo-terminal, in scaled real time",
        description="Runs the real firmware on a simulated hob behind a pseudo-terminal that the bridge "
        "(or any serial terminal) opens like a USB serial port. Prints the pty path on the first line. "
        "Reads actions on stdin, one per line, in the scenarios' action language (sim/README.md), e.g. "
        "'ignite left', 'off left', 'blowout left', 'turn left 0.2', 'press long', 'weld left', 'wifi off'; "
        "a burner left out means the first one; 'quit' ends. With --listen HOST:PORT --key-file FILE the "
        "device also serves its network link (the firmware's own network code on real sockets, only the "
        "Wi-Fi interface simulated): the first line is then tcp://HOST:PORT (port 0: a free port, the "
        "line shows which) and the pty path follows on the second. The board keeps its files in a folder "
        "(--flash DIR, default a temporary one) and every simulated boot runs the boot loader and the "
        "firmware found there, so an update over the air (hobguard update) changes what runs after the "
        "restart.",
    )
    dev.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)")
    dev.add_argument("--trace", metavar="FILE", help="write the physical truth as JSON lines")
    dev.add_argument("--settings", metavar="FILE", help="device settings JSON (default: the built-in defaults)")
    dev.add_argument("--link", metavar="PATH", help="also make PATH a symlink to the pty (a stable port name)")
    dev.add_argument("--seed", type=int, default=1, help="noise seed (default 1)")
    dev.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="also serve the network link on this IPv4 address and port (0: any free port)",
    )
    dev.add_argument("--key-file", metavar="FILE", help="the device key for --listen (hobguard keygen)")
    dev.add_argument(
        "--flash",
        metavar="DIR",
        help="keep the board's files in DIR, laid out as on the board (a new DIR gets this hobguard's "
        "firmware as hobguard deploy would put it; its own settings file is kept unless --settings is "
        "given); default: a temporary folder",
    )
    dev.add_argument(
        "--physics",
        metavar="FILE",
        help="TOML with per-burner physics, e.g. [left] r_switch_ohm = 0.1 (default: PHYSICS.md values)",
    )
    dev.set_defaults(func=_device)
    sim.set_defaults(func=lambda args: (sim.print_help(), 2)[1])


def _list(args: argparse.Namespace) -> int:
    from . import scenario

    for path in scenario.library():
        spec = scenario.load(path)
        print(f"{path.stem:28} {spec.title}")
    return 0


PLOT_FORMATS = (".png", ".svg", ".pdf")


def plot_path_problem(path: str) -> str | None:
    """Make the plot's folder if it is missing; say what is wrong with the
    path (no known format, a folder, a folder that cannot be made or
    written), or None. Checked before the scenario runs."""
    target = Path(path)
    if target.suffix.lower() not in PLOT_FORMATS:
        return f"--plot {path}: give a file name ending in {', '.join(PLOT_FORMATS)}"
    if target.is_dir():
        return f"--plot {path}: is a folder; give a file name in it, e.g. {target / 'plot.png'}"
    folder = target.parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"--plot {path}: cannot make the folder {folder}: {existing} is a file"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return f"--plot {path}: cannot make the folder {folder}: {err.strerror or err}"
    if not os.access(folder, os.W_OK):
        return f"--plot {path}: cannot write in the folder {folder} (permission denied)"
    return None


def _run(args: argparse.Namespace) -> int:
    from . import scenario

    try:
        spec = scenario.load(scenario.find(args.scenario))
    except (FileNotFoundError, ValueError) as err:
        print(f"hobguard sim run: {err}", file=sys.stderr)
        return 2
    if args.plot:
        problem = plot_path_problem(args.plot)
        if problem:
            print(f"hobguard sim run: {problem}", file=sys.stderr)
            return 2
    result = scenario.run(spec, seed=args.seed)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(scenario.format_timeline(result))
    if args.plot:
        from . import plot

        try:
            plot.plot_result(result, args.plot)
        except OSError as err:  # the folder went away, the disk is full, ...
            print(f"hobguard sim run: cannot write the plot to {args.plot}: {err.strerror or err}", file=sys.stderr)
            return 2
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0 if result.passed else 1


def _device(args: argparse.Namespace) -> int:
    import tempfile
    import tomllib

    from .device import SimDevice
    from .realtime import ACTIONS_HELP, PtyDevice

    settings = None
    physics = None
    listen = None
    key = None
    scratch = None
    try:
        if args.flash is None:
            scratch = tempfile.TemporaryDirectory(prefix="hobguard-flash-")
        flash = Path(args.flash or scratch.name)  # pyright: ignore[reportOptionalMemberAccess]
        if args.settings:
            settings = json.loads(Path(args.settings).read_text())
        elif (flash / "hobguard_settings.json").is_file():
            settings = json.loads((flash / "hobguard_settings.json").read_text())  # the board keeps its own
        if args.physics:
            physics = tomllib.loads(Path(args.physics).read_text())
        if (args.listen is None) != (args.key_file is None):
            raise ValueError("--listen and --key-file go together")
        if args.listen is not None:
            from hobguard.bridge.netlink import load_key

            listen = _listen_address(args.listen)
            key = load_key(args.key_file)
        device = SimDevice(
            settings=settings, burner_params=physics, seed=args.seed, listen=listen, key=key, flash=flash
        )
        pty = PtyDevice(device, speed=args.speed, trace_path=args.trace, link_path=args.link)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as err:
        print(f"hobguard sim device: {err}", file=sys.stderr)
        return 2
    if device.listen is not None:
        host, port = device.listen
        print(f"tcp://{host}:{port}", flush=True)
    print(pty.path, flush=True)
    print(
        f"# simulated hob {device.app.device_id if device.app else ''} with burners {', '.join(device.names)}; "
        f"speed x{args.speed:g}; flash {flash}; type actions ({ACTIONS_HELP}; quit)",
        file=sys.stderr,
        flush=True,
    )
    pty.start()
    try:
        if _read_actions(pty):
            _wait_for_sigterm()  # stdin closed (a test, a service): run until killed
    except KeyboardInterrupt:
        pass
    finally:
        pty.stop()
        device.close()
        if scratch is not None:
            scratch.cleanup()
    return 0


def _listen_address(text: str) -> tuple[str, int]:
    """HOST:PORT with an IPv4 literal (the firmware makes no DNS lookup)."""
    import ipaddress

    host, sep, port = text.rpartition(":")
    try:
        if not sep:
            raise ValueError
        ipaddress.IPv4Address(host)
        number = int(port)
        if not 0 <= number <= 65535:
            raise ValueError
    except ValueError:
        raise ValueError(f"--listen {text!r}: expected IPV4ADDRESS:PORT, e.g. 127.0.0.1:0") from None
    return host, number


def _read_actions(pty) -> bool:
    """Pass each stdin line to the device; True when stdin simply ended."""
    for line in sys.stdin:
        if line.strip().lower() in ("quit", "exit"):
            return False
        pty.act(line)
    return True


def _wait_for_sigterm() -> None:
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(3600):
        pass

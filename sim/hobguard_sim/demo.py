"""`hobguard demo`: the whole system on one machine, no hardware.

An MQTT broker (amqtt, in-process, on a free localhost port, unless
--broker is given), a simulated two-burner hob running the real firmware,
and the real bridge. By default the hob is on the Wi-Fi, as in a real
kitchen: the firmware's own network code listens on a loopback port with a
fresh device key (in a temporary 0600 file, as `hobguard keygen` writes
it) and the bridge connects with `--device tcp://127.0.0.1:PORT
--key-file FILE`, authenticating every frame. `--link usb` puts the hob
behind a pseudo-terminal (PtyDevice) instead, which the bridge opens with
pyserial exactly as it would open a USB port. The demo is also an
MQTT client: it sends the commands Home Assistant would send and prints
what Home Assistant would see. It plays a short cooking story at high
speed, checks that each step happened, writes a plot, and exits 0 — or 1
when an expectation failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hobguard import words

log = logging.getLogger("hobguard.demo")

DEFAULT_SPEED = 40.0
DEFAULT_PLOT = "out/hobguard-demo.png"
TIMER_MIN = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    """amqtt's broker in a background thread with its own asyncio loop."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="amqtt", daemon=True)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the embedded MQTT broker did not start")
        if self._error is not None:
            raise RuntimeError(f"the embedded MQTT broker failed: {self._error}") from self._error

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as err:  # reported to start()
            self._error = err
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._stop = asyncio.Event()
        broker = Broker(config)
        await broker.start()
        self._ready.set()
        await self._stop.wait()
        await broker.shutdown()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


# -- what Home Assistant would see ------------------------------------------------------


@dataclass
class Seen:
    sim_s: float
    topic: str
    payload: Any


@dataclass
class Narrator:
    """An MQTT client watching everything the bridge publishes; prints it in
    plain words with the simulated clock time, and keeps it for the checks
    and the plot."""

    clock: Callable[[], float]
    quiet: bool
    base: str = "hobguard"
    prefix: str = "homeassistant"
    # Only this device and this bridge are watched: on a shared broker other
    # hobs (and other demos) publish under the same topics.
    device: str = ""
    bridge: str = ""
    events: list[Seen] = field(default_factory=list)
    timers: dict[str, list[tuple[float, float | None]]] = field(default_factory=dict)
    burner_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    device_state: dict[str, Any] = field(default_factory=dict)
    availability: dict[str, str] = field(default_factory=dict)
    discovery: dict[str, dict[str, Any]] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def say(self, text: str, ha: bool = False) -> None:
        if self.quiet:
            return
        stamp = _clock(self.clock())
        line = f"[{stamp}] {'   Home Assistant: ' if ha else ''}{text}\n"
        with _PRINT_LOCK:  # the MQTT thread narrates too: one whole line at a time
            sys.stdout.write(line)
            sys.stdout.flush()

    def connect(self, url: str) -> None:
        import paho.mqtt.client as paho
        from hobguard.bridge.config import parse_broker_url
        from paho.mqtt.enums import CallbackAPIVersion

        settings = parse_broker_url(url)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"hobguard-demo-{int(time.time())}")
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            self.client.tls_set()
        subscribed = threading.Event()

        def on_connect(client: Any, *_: Any) -> None:
            client.subscribe([(f"{self.base}/#", 1), (f"{self.prefix}/#", 1)])

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(settings.host, settings.port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError(f"cannot subscribe on {settings.url}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            self._handle(msg.topic, bytes(msg.payload))
        except Exception:
            log.exception("narrator: cannot handle %s", msg.topic)

    def _handle(self, topic: str, raw: bytes) -> None:
        now = self.clock()
        if topic.startswith(self.prefix + "/"):
            levels = topic.split("/")
            if len(levels) >= 3 and levels[-3] != self.device:
                return
            with self.cond:
                if raw:
                    self.discovery[topic] = json.loads(raw)
                else:
                    self.discovery.pop(topic, None)
                self.cond.notify_all()
            return
        parts = topic[len(self.base) + 1 :].split("/")
        if parts[0] != self.device and parts[:2] != ["bridge", self.bridge]:
            return
        if not raw:
            return  # removed (the demo cleans up after itself)
        if parts[-1] == "availability":
            text = raw.decode()
            if self.availability.get(topic) != text:
                who = "the bridge" if parts[0] == "bridge" else f"hob {parts[0]}"
                self.say(f"{who} is {text}", ha=True)
            with self.cond:
                self.availability[topic] = text
                self.cond.notify_all()
            return
        if len(parts) == 2 and parts[1] == "event":
            event = json.loads(raw)
            self._narrate_event(event)
            with self.cond:
                self.events.append(Seen(now, topic, event))
                self.cond.notify_all()
            return
        if len(parts) == 2 and parts[1] == "state":
            state = json.loads(raw)
            if self.device_state and state.get("locked") != self.device_state.get("locked"):
                self.say(f"child lock {'ON' if state['locked'] else 'OFF'}", ha=True)
            with self.cond:
                self.device_state = state
                self.cond.notify_all()
            return
        if len(parts) == 3 and parts[2] == "state":
            burner, state = parts[1], json.loads(raw)
            before = self.burner_states.get(burner, {})
            self._narrate_state(burner, before, state)
            remaining = state.get("timer_remaining_s")
            with self.cond:
                self.burner_states[burner] = state
                self.timers.setdefault(burner, []).append((now, None if remaining is None else remaining / 60))
                self.cond.notify_all()

    def _narrate_state(self, burner: str, before: dict[str, Any], state: dict[str, Any]) -> None:
        name = burner.capitalize()
        if not before:
            return
        if before.get("gas") != state.get("gas") and state.get("gas") in ("open", "closed"):
            self.say(f"{name} gas valve: {state['gas']}", ha=True)
        if before.get("relay") != state.get("relay"):
            what = "opened: the thermocouple loop is cut" if state["relay"] == "open" else "closed again"
            self.say(f"{name} relay {what}", ha=True)
        if (before.get("timer_remaining_s") is None) != (state.get("timer_remaining_s") is None):
            if state.get("timer_deadline"):
                self.say(
                    f"{name} timer: {state['timer_remaining_s'] // 60} min {state['timer_remaining_s'] % 60} s left "
                    f"(ends {state['timer_deadline']} host time)",
                    ha=True,
                )
            else:
                self.say(f"{name} timer: none", ha=True)

    def _narrate_event(self, event: dict[str, Any]) -> None:
        self.say(words.event(event), ha=True)

    # -- waiting -----------------------------------------------------------------

    def wait(self, predicate: Callable[[], Any], timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                result = predicate()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def event(self, kind: str, burner: str | None = None, reason: str | None = None) -> Callable[[], Any]:
        def find() -> Any:
            for seen in self.events:
                e = seen.payload
                if e.get("event_type") == kind and (burner is None or e.get("burner") == burner):
                    if reason is None or e.get("reason") == reason:
                        return seen
            return None

        return find


_PRINT_LOCK = threading.Lock()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


# -- the story ----------------------------------------------------------------------------


class Story:
    def __init__(self, narrator: Narrator, act: Callable[[str], None], device: str, speed: float) -> None:
        self.n = narrator
        self.act = act
        self.device = device
        self.speed = speed
        self.results: list[tuple[str, bool]] = []

    def topic(self, suffix: str) -> str:
        return f"{self.n.base}/{self.device}/{suffix}"

    def expect(self, what: str, predicate: Callable[[], Any], sim_timeout_s: float) -> Any:
        found = self.n.wait(predicate, sim_timeout_s / self.speed + 5.0)
        self.results.append((what, bool(found)))
        if not found:
            print(f"[{_clock(self.n.clock())}] EXPECTED, DID NOT HAPPEN: {what}", flush=True)
        return found

    def send(self, suffix: str, payload: str, why: str) -> None:
        self.n.say(f"{why}\n          → MQTT {self.topic(suffix)} = {payload}")
        self.n.publish(self.topic(suffix), payload)

    def run(self) -> bool:
        n = self.n
        ev = n.event
        n.say("The cook presses and holds the LEFT knob and lights the burner (3–15 s for the thermocouple to warm).")
        self.act("ignite left")
        self.expect("the left burner lights", ev("ignited", "left"), 90)
        n.say("…and lights the RIGHT burner too.")
        self.act("ignite right")
        self.expect("the right burner lights", ev("ignited", "right"), 90)
        self.send(
            "left/timer/set", str(TIMER_MIN), f"From Home Assistant: a {TIMER_MIN}-minute timer on the left burner."
        )
        self.expect("the device sets the left timer", ev("timer_set", "left"), 30)
        self.send("right/gas/set", "OPEN", "Someone tries to OPEN gas from Home Assistant (there is no such command).")
        self.expect("opening gas is refused", ev("rejected", "right", "open_refused"), 30)
        self.send("right/gas/set", "CLOSE", "From Home Assistant: cut the RIGHT burner now (the valve entity's close).")
        self.expect("the right burner is cut remotely", ev("cut", "right", "remote"), 30)
        self.expect("the right cut is verified (flame out)", ev("cut_verified", "right"), 90)
        n.say(f"The left burner simmers on; its timer runs ({TIMER_MIN} min).")
        self.expect("a warning before the timed cut", ev("warning", "left", "timer"), TIMER_MIN * 60 + 60)
        self.expect("the timer cuts the left burner", ev("cut", "left", "timer"), 120)
        self.expect("the left cut is verified (flame out)", ev("cut_verified", "left"), 90)
        self.expect(
            "Home Assistant shows both valves closed",
            lambda: all(self.n.burner_states.get(b, {}).get("gas") == "closed" for b in ("left", "right")),
            60,
        )
        return all(ok for _, ok in self.results)


# -- the plot ------------------------------------------------------------------------------


def write_plot(trace_path: Path, narrator: Narrator, path: Path, device: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in trace_path.read_text().splitlines() if line.strip()]
    burners = sorted({r["burner"] for r in records}, key=lambda b: (b != "left", b))
    fig, axes = plt.subplots(
        len(burners) * 2,
        1,
        figsize=(11, 3.2 * len(burners)),
        sharex=True,
        gridspec_kw={"height_ratios": [2, 1.3] * len(burners)},
    )
    colours = {
        "cut": "#d62728",
        "warning": "#ff9f1c",
        "ignited": "#f08c00",
        "cut_verified": "#2e9e44",
        "timer_set": "#7a3db8",
    }
    for index, burner in enumerate(burners):
        rows = [r for r in records if r["burner"] == burner]
        t = [r["t"] / 60 for r in rows]
        ax_mv, ax_st = axes[2 * index], axes[2 * index + 1]
        ax_mv.plot(t, [r["tc_mv"] for r in rows], color="#1f4e9c", label="thermocouple (mV, at the magnet)")
        ax_mv.set_ylabel("mV")
        ax_mv.set_title(f"{device} — {burner} burner", loc="left", fontsize=10)
        ax_mv.grid(alpha=0.3)
        ax_t = ax_mv.twinx()
        timer = narrator.timers.get(burner, [])
        if timer:
            ax_t.step(
                [s / 60 for s, _ in timer],
                [m if m is not None else float("nan") for _, m in timer],
                where="post",
                color="#7a3db8",
                label="timer left (min)",
            )
        ax_t.set_ylabel("timer (min)", color="#7a3db8")
        longest = max([m for _, m in timer if m is not None], default=0)
        ax_t.set_ylim(0, max(1.0, longest) * 1.1)
        steps = [
            ("valve open", lambda r: r["valve"] == "open", 3, "#2e9e44"),
            ("flame", lambda r: bool(r["flame"]), 2, "#f08c00"),
            ("relay closed", lambda r: r["relay"] == "closed", 1, "#3b6fd4"),
            ("gas flowing", lambda r: bool(r["gas_flow"]), 0, "#8c564b"),
        ]
        for label, fn, level, colour in steps:
            ax_st.step(t, [level + 0.8 * fn(r) for r in rows], where="post", color=colour, label=label)
        ax_st.set_yticks([0.4, 1.4, 2.4, 3.4], ["gas", "relay", "flame", "valve"])
        ax_st.set_ylim(-0.2, 4.0)
        ax_st.grid(alpha=0.3, axis="x")
        for seen in narrator.events:
            e = seen.payload
            if e.get("burner") == burner and e.get("event_type") in colours:
                for ax in (ax_mv, ax_st):
                    ax.axvline(seen.sim_s / 60, color=colours[e["event_type"]], lw=1, ls="--", alpha=0.8)
                ax_mv.annotate(
                    words.label(e),
                    (seen.sim_s / 60, 1.0),
                    xycoords=("data", "axes fraction"),
                    rotation=90,
                    fontsize=7,
                    va="top",
                    ha="right",
                    color=colours[e["event_type"]],
                )
        if index == 0:
            handles, labels = ax_mv.get_legend_handles_labels()
            h2, l2 = ax_t.get_legend_handles_labels()
            ax_mv.legend(handles + h2, labels + l2, loc="upper right", fontsize=7)
            ax_st.legend(loc="upper right", fontsize=7, ncol=4)
    axes[-1].set_xlabel("simulated time (min)")
    fig.suptitle("hobguard demo: light both burners, remote cut right, timed cut left", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- the command ----------------------------------------------------------------------------


def _listening(device: Any) -> bool:
    app = device.app
    return app is not None and app.net is not None and app.net.listener is not None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="no hardware: broker + simulated hob (real firmware) + bridge, a short cooking story",
        description="Starts an MQTT broker (amqtt, in-process, unless --broker is given), a simulated two-burner "
        "hob running the real firmware, and the bridge; plays a short cooking story "
        "at high speed (light both burners, a timer on the left, a remote cut on the right, the warning, the "
        "timed cut, the verification), prints what Home Assistant would see, and writes a plot. The hob is on "
        "the Wi-Fi (the firmware's network link on a loopback port, a fresh key) unless --link usb. "
        "Exits 0 when everything in the story happened, 1 otherwise.",
    )
    p.add_argument(
        "--broker",
        metavar="URL",
        help="use this MQTT broker instead of the embedded one (mqtt://host:port); the demo then uses a device "
        "and bridge id of its own (demo-XXXXXX) and removes what it announced when it ends",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help=f"simulated seconds per real second (default {DEFAULT_SPEED:g})",
    )
    p.add_argument(
        "--plot", metavar="FILE", default=DEFAULT_PLOT, help=f"where to write the plot (default {DEFAULT_PLOT})"
    )
    p.add_argument(
        "--link",
        choices=("wifi", "usb"),
        default="wifi",
        help="how the hob reaches the bridge: wifi (default: the firmware's authenticated network link on "
        "127.0.0.1, a fresh device key in a temporary 0600 file) or usb (a pseudo-terminal the bridge opens "
        "as a serial port)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not write a plot")
    p.add_argument("--quiet", action="store_true", help="print only the outcome")
    p.add_argument(
        "--base-topic", default="hobguard", help="MQTT base topic (default hobguard; change it on a shared broker)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hobguard.bridge import Bridge
    from hobguard.bridge import config as config_mod
    from hobguard.bridge.netlink import load_key, write_key_file

    from .device import SimDevice
    from .realtime import PtyDevice

    if not 1 <= args.speed <= 1000:
        print("hobguard demo: --speed must be between 1 and 1000", file=sys.stderr)
        return 2
    # The narration replaces the service logs; --log-level debug shows both.
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        for name in ("hobguard.bridge", "hobguard.link", "hobguard.mqtt", "hobguard.sim", "amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="hobguard-demo-"))
    # On a broker of its own the demo hob has the simulator's usual id; on a
    # given broker, where real hobs (or another demo) may live, ids of its own.
    suffix = secrets.token_hex(3)
    device_id = f"demo-{suffix}" if args.broker else "hob-1a2b3c"
    bridge_id = f"demo-{suffix}" if args.broker else "demo"
    broker = None
    pty = None
    bridge = None
    narrator = None
    try:
        if args.broker:
            url = args.broker
        else:
            broker = EmbeddedBroker(free_port())
            broker.start()
            url = broker.url
        wifi = args.link == "wifi"
        key_file = workdir / "hob.key"
        if wifi:
            write_key_file(key_file)  # 0600, as `hobguard keygen` makes it
            device = SimDevice(settings={"device_id": device_id}, listen=("127.0.0.1", 0), key=load_key(key_file))
        else:
            device = SimDevice(settings={"device_id": device_id})
        trace = workdir / "trace.jsonl"
        pty = PtyDevice(device, speed=args.speed, trace_path=trace, link_path=workdir / "hob.tty")
        narrator = Narrator(
            clock=lambda: device.clock.seconds,
            quiet=args.quiet,
            base=args.base_topic,
            device=device_id,
            bridge=bridge_id,
        )
        narrator.say(
            f"hobguard demo — {'embedded broker (amqtt)' if broker else 'broker'} at {config_mod.mask_url(url)}; "
            f"a simulated two-burner hob running the real firmware at {args.speed:g}x speed; the bridge."
        )
        if wifi and device.listen is not None:
            host, port = device.listen
            link = f"tcp://{host}:{port}"
            narrator.say(
                f"The hob is on the Wi-Fi (loopback here): its firmware listens on {link}; the bridge connects "
                "with the hob's own key and every frame is authenticated. (--link usb: over a USB cable instead.)"
            )
        else:
            link = pty.path
            narrator.say("The hob is on a USB cable (a pseudo-terminal here), which the bridge opens as a serial port.")
        narrator.connect(url)
        pty.start()
        if wifi:
            # The bridge connects once the simulated Wi-Fi has joined and the
            # firmware listens (a few simulated seconds), not into a refusal
            # and its back-off.
            deadline = time.monotonic() + 10
            while not _listening(device) and time.monotonic() < deadline:
                time.sleep(0.02)
        namespace = argparse.Namespace(
            serial=[] if wifi else [pty.path],
            device=[link] if wifi else [],
            key_file=[str(key_file)] if wifi else [],
            broker=url,
            bridge_id=bridge_id,
            base_topic=args.base_topic,
            state_file=str(workdir / "bridge-state.json"),
            # The embedded broker (amqtt) speaks MQTT 3.1.1 only.
            mqtt_protocol=None if args.broker else "3.1.1",
        )
        bridge = Bridge(config_mod.build(namespace, environ={}))
        bridge.start()
        bridge_up = narrator.wait(
            lambda: narrator.availability.get(f"{args.base_topic}/{device_id}/availability") == "online", 15
        )
        if not bridge_up:
            print("hobguard demo: the bridge did not bring the device online", file=sys.stderr)
            return 1
        entities = narrator.wait(lambda: len(narrator.discovery) >= 20 and narrator.discovery, 10) or {}
        kinds = Counter(topic.split("/")[1] for topic in entities)
        narrator.say(
            f"The bridge found hob {device_id} {'over Wi-Fi at' if wifi else 'on'} {link}. Home Assistant discovers {len(entities)} entities: "
            + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
            + " — among them a close-only gas valve and a flame sensor per burner."
        )
        narrator.wait(
            lambda: all(narrator.burner_states.get(b, {}).get("relay") == "closed" for b in ("left", "right")), 10
        )
        story = Story(narrator, pty.act, device_id, args.speed)
        ok = story.run()
        truth = device.truth()
        physically_shut = all(r["valve"] == "closed" and not r["gas_flow"] for r in truth)
        story.results.append(("the simulated valves are physically shut", physically_shut))
        ok = ok and physically_shut
        # Wind down quietly: bridge first (the device does not vanish under
        # it), then the simulated hob, which closes and flushes the trace.
        narrator.quiet = True
        bridge.stop(remove=bool(args.broker))
        bridge = None
        pty.stop()
        plot_path = None
        if not args.no_plot:
            plot_path = write_plot(trace, narrator, Path(args.plot), device_id)
        met = sum(1 for _, good in story.results if good)
        print(
            f"\n{'OK' if ok else 'FAILED'}: {met}/{len(story.results)} expectations met in "
            f"{_clock(device.clock.seconds)} simulated ({time.monotonic() - started:.1f} s real), "
            f"the hob {'over Wi-Fi' if wifi else 'on a USB cable'}." + (f" Plot: {plot_path}" if plot_path else ""),
            flush=True,
        )
        if not ok:
            for what, good in story.results:
                if not good:
                    print(f"  missing: {what}")
        return 0 if ok else 1
    finally:
        if bridge is not None:
            bridge.stop(remove=bool(args.broker))
        if narrator is not None and hasattr(narrator, "client"):
            narrator.close()
        if pty is not None:
            pty.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)

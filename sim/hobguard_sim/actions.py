"""The action language: what a person, the host and fault injection can do
to a simulated hob, defined once.

Scenario steps (``do = "timer left 20"``), the lines ``hobguard sim
device`` reads on stdin, the property tests and the benchmarks all go
through this module:

- :func:`parse` reads one action (``"turn left 0.2 3s"``) against the hob's
  burner names and returns an :class:`Action`, or raises
  :class:`ActionError`, whose message says what is wrong and what to write;
- :meth:`Action.apply` does it to a :class:`~hobguard_sim.device.SimDevice`
  now (the device's hooks tell observers what happened); :func:`act` does
  both;
- :meth:`Action.describe` says it in words, for the scenario timeline.

Each action is one :class:`Verb` in :data:`VERBS`. Its usage is its
grammar: ``turn B LEVEL [OVER]`` reads a burner, a flame level and an
optional time, with the words of :data:`PLACES`; its example comes from the
usage too. The first value read is the action's ``value`` (``corrupt``:
the host action it garbles), the second its ``extra``. To add an action:

- a person's, the flame's or a fault: a function doing it to the device,
  decorated with ``@_verb(who, usage, words)``; its docstring is the line
  of help in the docs;
- the host's: one ``_host(usage, command, help, words)`` line; the command's
  arguments are built from ``protocol.COMMANDS``, so a host action exists
  only for a command the firmware has.

The README's table of actions is :func:`markdown_table` (a test keeps them
the same). Old spellings keep working (:data:`ALIASES`): a ``-`` in an
action's name reads as ``_`` (``open-tc``, ``power-loss``), ``dead-adc
on|off`` is ``adc dead|ok``, ``link on|off`` is ``link ok|lost``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hobguard_fw import protocol

from .physics import LEVEL_MIN, BurnerParams
from .times import TimeError, fmt_short, parse_time

if TYPE_CHECKING:
    from .device import SimDevice

__all__ = [
    "WHO",
    "ActionError",
    "Action",
    "Verb",
    "VERBS",
    "ALIASES",
    "PLACES",
    "parse",
    "act",
    "usage",
    "markdown_table",
]

#: Who acts, in the order the docs list them.
WHO = ("person", "physics", "host", "fault")

#: How long a short press of the hobguard button lasts (ms); a long one lasts
#: the device's long_press_ms plus a second.
SHORT_PRESS_MS = 200
#: The longest draught (ms).
DRAUGHT_MAX_MS = 600_000

#: What a word of a switch means: on, ok -> True (works); off, lost, dead -> False.
SWITCH = {"on": True, "ok": True, "off": False, "lost": False, "dead": False}


class ActionError(ValueError):
    """An action's words are not valid; the message says why and what to write."""


@dataclass(frozen=True, slots=True)
class Action:
    """One parsed action: who does what, to which burner, with which values
    (minutes, ms, a level, ohms, True/False for a switch, ...: see its usage)."""

    verb: str
    who: str  # person / physics / host / fault
    text: str  # the words as written
    burner: str | None = None
    value: Any = None
    extra: Any = None

    def apply(self, device: SimDevice) -> None:
        """Do it to the device now (at its clock's time)."""
        VERBS[self.verb].apply(self, device)

    def describe(self, settings: Mapping[str, Any] | None = None) -> str:
        """In words, for a timeline; ``settings``: the device's (the button's timer)."""
        return VERBS[self.verb].say(self, settings or {})

    @property
    def inner(self) -> Action | None:
        """The host action a 'corrupt' garbles."""
        return self.value if isinstance(self.value, Action) else None

    @property
    def command(self) -> tuple[str, dict[str, Any]] | None:
        """A host action's protocol command and its arguments; None for the others."""
        cmd = VERBS[self.verb].command
        if cmd is None:
            return None
        args: dict[str, Any] = {}
        for key, (kind, _required) in protocol.COMMANDS[cmd].items():
            if kind == "burner" and self.burner is not None:
                args[key] = self.burner
            elif kind == "minutes":
                args[key] = int(self.value) if float(self.value).is_integer() else self.value
            elif kind == "bool":
                args[key] = bool(self.value)
        return cmd, args


# -- reading the words -------------------------------------------------------


class _Words:
    """The words after an action's name, read left to right."""

    def __init__(self, text: str, verb: Verb, args: list[str], burners: Sequence[str], first_by_default: bool) -> None:
        self.text = text
        self.verb = verb
        self.args = args
        self.burners = list(burners)
        self.first_by_default = first_by_default
        self.i = 0

    def fail(self, why: str) -> ActionError:
        return ActionError(f"{self.text!r}: {why}; write '{self.verb.usage}'")

    def more(self) -> bool:
        return self.i < len(self.args)

    def peek(self) -> str | None:
        return self.args[self.i].lower() if self.more() else None

    def take(self, what: str) -> str:
        if not self.more():
            raise self.fail(f"needs {what}")
        self.i += 1
        return self.args[self.i - 1]

    def burner(self, optional: bool = False) -> str | None:
        """A burner of this hob. It may be left out when the hob has one
        burner, or anywhere on ``sim device``'s stdin (the first burner)."""
        word = self.args[self.i] if self.more() else None
        if word is not None and word in self.burners:
            self.i += 1
            return word
        if word is not None and not _is_number(word):
            raise self.fail(f"unknown burner {word!r}; this hob has {', '.join(self.burners)}")
        if optional:
            return None
        if self.first_by_default or len(self.burners) == 1:
            return self.burners[0]
        raise self.fail(f"needs a burner ({', '.join(self.burners)})")

    def number(self, what: str, lo: float = -math.inf, hi: float = math.inf) -> float:
        word = self.take(what)
        try:
            value = float(word)
        except ValueError:
            raise self.fail(f"{word!r} is not a number ({what})") from None
        if not (math.isfinite(value) and lo <= value <= hi):
            raise self.fail(f"{what} must be in {lo:g}..{hi:g}")
        return value

    def duration(self, what: str) -> int:
        """A duration in ms: '2s', '1m30s', '500ms' or bare seconds ('2.5')."""
        word = self.take(what)
        try:
            return parse_time(word, what, bare_seconds=True)
        except TimeError as err:
            raise self.fail(str(err)) from None

    def choice(self, options: list[str]) -> Any:
        """One of the words (a switch's is True or False), or a time where TIME is one."""
        word = self.peek()
        if word is not None and word in options:
            self.i += 1
            return SWITCH.get(word, word)
        if "TIME" in options and word is not None:
            return self.duration("a time")
        raise self.fail(f"{word!r} is not {' or '.join(map(repr, options))}" if word else "needs a word")

    def rest(self) -> str:
        words, self.i = self.args[self.i :], len(self.args)
        return " ".join(words)

    def end(self) -> None:
        if self.more():
            raise self.fail(f"too many words ({' '.join(self.args[self.i :])!r} left over)")


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _param(w: _Words) -> str:
    name = w.take("a physics parameter")
    if name not in BurnerParams.field_names():
        raise w.fail(f"unknown physics parameter {name!r}; valid: {', '.join(BurnerParams.field_names())}")
    return name


def _host_action(w: _Words) -> Action:
    if not w.more():
        raise w.fail("needs a host action to garble, e.g. 'corrupt cut left'")
    inner = parse(w.rest(), w.burners, first_burner_by_default=w.first_by_default)
    if inner.who != "host":
        raise w.fail("only host actions can be corrupted")
    return inner


#: The words a usage may hold after the name: how each is read, and the
#: example word that stands for it. [WORD]: it may be left out (then its
#: default). "a|b" (not listed): one of those words.
PLACES: dict[str, tuple[Callable[[_Words], Any], str]] = {
    "B": (lambda w: w.burner(), "left"),
    "[B]": (lambda w: w.burner(optional=True), "left"),
    "[B|all]": (lambda w: None if w.peek() == "all" and w.take("all") else w.burner(optional=True), "left"),
    "MIN": (lambda w: w.number("minutes", 0.0, 1e9), "20"),
    "LEVEL": (lambda w: w.number("the flame level (fraction of full flame)", LEVEL_MIN, 1.0), "0.2"),
    "[OVER]": (lambda w: w.duration("the turning time") if w.more() else 0, "4s"),
    "TIME": (lambda w: w.duration("a time"), "2s"),
    "[TIME]": (lambda w: w.duration("a time") if w.more() else 5000, "30s"),
    "[SEVERITY]": (lambda w: w.number("the severity (0-1]", 0.0, 1.0) if w.more() else 1.0, "0.5"),
    "PARAM": (_param, "tc_aging"),
    "VALUE": (lambda w: w.number("the value"), "0.72"),
    "OHMS": (lambda w: w.number("the contact resistance in ohms", 0.0, 10.0), "0.1"),
    "[N]": (lambda w: int(w.number("a byte count", 1, 10000)) if w.more() else 200, "20"),
    "ACTION": (_host_action, "cut left"),
}


# -- the verbs -----------------------------------------------------------------

_Apply = Callable[[Action, "SimDevice"], None]
_Say = Callable[[Action, Mapping[str, Any]], str]


@dataclass(frozen=True)
class Verb:
    """One action of the language."""

    name: str
    who: str
    usage: str  # its grammar: "turn B LEVEL [OVER]"
    help: str  # a line for the docs
    apply: _Apply
    say: _Say  # the action in words
    check: Callable[[Action], str | None] | None = None  # what the grammar cannot say
    command: str | None = None  # host actions: the protocol command they send

    @property
    def example(self) -> str:
        """The usage with an example word for each place: words that parse."""
        words = [self.name]
        for place in self.usage.split()[1:]:
            words.append(PLACES[place][1] if place in PLACES else place.split("|")[0])
        return " ".join(words)

    def read(self, w: _Words) -> tuple[str | None, Any, Any]:
        """(burner, value, extra) from the words, by the usage."""
        burner, values = None, []
        for place in self.usage.split()[1:]:
            if place in PLACES:
                value = PLACES[place][0](w)
                if place.lstrip("[").startswith("B"):
                    burner = value
                else:
                    values.append(value)
            else:
                values.append(w.choice(place.split("|")))
        w.end()
        values += [None, None]
        return burner, values[0], values[1]


#: Every action, by name, in the order the docs list them.
VERBS: dict[str, Verb] = {}


def _add(verb: Verb) -> None:
    assert verb.who in WHO and verb.name not in VERBS, verb.name
    VERBS[verb.name] = verb


def _saying(words: str | _Say) -> _Say:
    """Words as a function; a string is a template of the action's fields."""
    if callable(words):
        return words
    return lambda a, s: words.format(burner=a.burner, value=a.value, extra=a.extra)


def _verb(who: str, usage: str, words: str | _Say, check: Callable[[Action], str | None] | None = None):
    """Make the decorated function (doing it to a device; its docstring: the
    help) an action."""

    def define(apply: _Apply) -> _Apply:
        help = " ".join((apply.__doc__ or "").split())
        _add(Verb(usage.split()[0], who, usage, help, apply, _saying(words), check))
        return apply

    return define


def _host(usage: str, command: str, help: str, words: str | _Say) -> None:
    """A host action: sends the protocol command (refused when the firmware
    does not know it), with the arguments protocol.COMMANDS gives it."""
    say = _saying(words)
    _add(Verb(usage.split()[0], "host", usage, help, _send, lambda a, s: "command: " + say(a, s), command=command))


def _send(a: Action, device: SimDevice) -> None:
    cmd, args = a.command or ("", {})
    device.command(cmd, **args)


def _index(a: Action, device: SimDevice) -> int:
    return device.burner_index(a.burner)


def _at(device: SimDevice) -> float:
    return device.clock.seconds


# -- the person and the flame


@_verb("person", "ignite B", "presses and holds the {burner} knob; the spark lights it")
def _ignite(a: Action, d: SimDevice) -> None:
    """press and hold the knob (the spark lights the gas); hold until the magnet would hold plus
    `knob_release_margin_s`, or give up after `knob_give_up_s` (15 s)"""
    d.physics.press_knob(_index(a, d), _at(d))


@_verb("person", "hold B TIME", lambda a, s: f"presses the {a.burner} knob and holds it for {fmt_short(a.value)}")
def _hold(a: Action, d: SimDevice) -> None:
    """press the knob and hold it for exactly that long"""
    d.physics.press_knob(_index(a, d), _at(d), hold_s=a.value / 1000.0)


@_verb("person", "off B", "turns the {burner} knob off")
def _off(a: Action, d: SimDevice) -> None:
    """turn the knob off"""
    d.physics.turn_off(_index(a, d), _at(d))


def _turn_words(a: Action, settings: Mapping[str, Any]) -> str:
    over = f" over {fmt_short(a.extra)}" if a.extra else ""
    return f"turns the {a.burner} knob to {a.value:g} of full flame{over}"


@_verb("person", "turn B LEVEL [OVER]", _turn_words)
def _turn(a: Action, d: SimDevice) -> None:
    """turn the knob of a lit burner to LEVEL (0.2 = the lowest simmer … 1 = full flame), at once or
    evenly over that time (`turn left 0.2 4s`); lighting is always at full flame"""
    d.physics.turn(_index(a, d), _at(d), a.value, ramp_s=a.extra / 1000.0)


def _press_words(a: Action, settings: Mapping[str, Any]) -> str:
    if a.value == "short":
        extra = settings.get("button_timer_min")
        return "presses the hobguard button briefly" + (f" (timer +{extra:g} min)" if extra is not None else "")
    if a.value == "long":
        return "holds the hobguard button down (cut every burner)"
    return f"presses the hobguard button for {fmt_short(a.value)}"


@_verb("person", "press short|long|TIME", _press_words)
def _press(a: Action, d: SimDevice) -> None:
    """the hobguard button: short = timer +`button_timer_min` on the burner lit last; long = cut every
    burner; or held for that long"""
    ms = {"short": SHORT_PRESS_MS, "long": d.settings["long_press_ms"] + 1000}.get(a.value, a.value)
    d.press_button(int(ms))


@_verb("physics", "blowout B", "a draught blows the {burner} flame out (gas still flowing)")
def _blowout(a: Action, d: SimDevice) -> None:
    """a draught puts the flame out; gas flows until the magnet drops (or hobguard cuts it)"""
    d.physics.blow_out(_index(a, d), _at(d))


@_verb("physics", "boilover B", "the {burner} pot boils over: the flame goes out, the wet tip cools fast")
def _boilover(a: Action, d: SimDevice) -> None:
    """the pot boils over: the flame goes out (gas still flowing) and the wet tip cools faster
    (`wet_cool_ratio`)"""
    d.physics.boil_over(_index(a, d), _at(d))


def _draught_words(a: Action, settings: Mapping[str, Any]) -> str:
    how = "" if a.extra == 1.0 else f" ({a.extra:g} of its heat)"
    return f"a draught bends the {a.burner} flame off the thermocouple for {fmt_short(a.value)}{how}; it keeps burning"


def _draught_check(a: Action) -> str | None:
    if not 0 < a.value <= DRAUGHT_MAX_MS:
        return "the draught must last more than 0 s and at most 10 minutes"
    if a.extra <= 0.0:
        return "the severity must be more than 0 (1: the tip loses all of the flame's heat)"
    return None


@_verb("physics", "draught B TIME [SEVERITY]", _draught_words, _draught_check)
def _draught(a: Action, d: SimDevice) -> None:
    """a draught bends the flame off the thermocouple for that long (at most 10 min) while it keeps
    burning; SEVERITY (0–1, default 1) is the share of the flame's heat the tip loses"""
    d.physics.draught(_index(a, d), _at(d), a.value / 1000.0, severity=a.extra)


def _param_check(a: Action) -> str | None:
    try:
        BurnerParams.from_dict({a.value: a.extra})
    except ValueError as err:
        return str(err)
    return None


@_verb("physics", "set B PARAM VALUE", lambda a, s: f"{a.burner}: {a.value} = {a.extra:g}", _param_check)
def _set(a: Action, d: SimDevice) -> None:
    """any physics parameter from now on, e.g. `set left tc_aging 0.72`"""
    d.physics.set_param(_index(a, d), a.value, a.extra, _at(d))


# -- the host: one protocol command each

_host("timer B MIN", "timer_set", "`timer_set` (`0` cancels)", "timer on {burner}, {value:g} min")
_host("extend B MIN", "timer_extend", "`timer_extend`", "extend the {burner} timer by {value:g} min")
_host("cancel B", "timer_cancel", "`timer_cancel`", "cancel the {burner} timer")
_host("cut [B|all]", "cut", "`cut` one burner / every burner", lambda a, s: f"cut {a.burner or 'every burner'}")
_host("lock on|off", "lock", "child lock", lambda a, s: "child lock " + ("on" if a.value else "off"))
_host(
    "clear_fault [B]",
    "clear_fault",
    "`clear_fault` one burner / all",
    lambda a, s: f"clear faults on {a.burner or 'all'}",
)
_host("status", "status", "the read-only command: the state", "status")
_host("ping", "ping", "the read-only command: is it there", "ping")
_host("hello", "hello", "the read-only command: who it is", "hello")
_host(
    "presence", "presence", "a person is at the hob now: feeds the unattended-cooking guard", "a person is at the hob"
)
_host(
    "repl",
    "repl",
    "a developer asks for the REPL (USB): every relay opens and the firmware stops until a reset",
    "hand the board to the REPL",
)
_host(
    "ota_status",
    "ota_status",
    "the read-only command: what firmware runs, how its last update ended",
    "firmware status",
)
_host("ota_abort", "ota_abort", "stop a firmware update being received or staged (docs/updates.md)", "stop the update")


# -- faults


def _switched(fault: str, on: bool, what: str, usage: str, help: str) -> None:
    """A relay or thermocouple fault, or its repair."""

    def apply(a: Action, d: SimDevice) -> None:
        d.physics.set_fault(_index(a, d), fault, on, _at(d))

    apply.__doc__ = help
    _verb("fault", usage, "the {burner} " + what)(apply)


_switched("welded", True, "relay contact welds shut", "weld B", "the relay contact welds shut (closes at once)")
_switched("welded", False, "relay contact is free again", "unweld B", "the relay contact is free again")
_switched("stuck_open", True, "relay contact sticks open", "stuck_open B", "the relay contact never closes")
_switched("stuck_open", False, "relay contact works again", "unstick B", "the relay contact works again")
_switched(
    "open_thermocouple", True, "thermocouple lead breaks", "open_tc B", "the thermocouple lead breaks (no current)"
)
_switched("open_thermocouple", False, "thermocouple lead is repaired", "tc_ok B", "the thermocouple lead is repaired")


@_verb("fault", "contact B OHMS", lambda a, s: f"the {a.burner} relay contact resistance becomes {a.value * 1000:g} mΩ")
def _contact(a: Action, d: SimDevice) -> None:
    """the relay contact's resistance (Ω) from now on"""
    d.physics.set_param(_index(a, d), "r_switch_ohm", a.value, _at(d))


def _adc_words(a: Action, settings: Mapping[str, Any]) -> str:
    target = f"the {a.burner} ADC input" if a.burner else "the ADC (ADS1115)"
    return f"{target} answers again" if a.value else f"{target} stops answering"


@_verb("fault", "adc dead|ok [B]", _adc_words)
def _adc(a: Action, d: SimDevice) -> None:
    """the ADS1115 stops answering on I2C / answers again; with a burner only that input fails (the
    conversion errors)"""
    if a.burner is None:
        d.board.adc_dead = not a.value
    else:
        d.physics.set_fault(_index(a, d), "adc_dead", not a.value, _at(d))


def _power_loss_check(a: Action) -> str | None:
    return None if a.value > 0 else "the power loss must last more than 0 s"


@_verb("fault", "power_loss [TIME]", lambda a, s: f"power cut for {fmt_short(a.value)}", _power_loss_check)
def _power_loss(a: Action, d: SimDevice) -> None:
    """no supply for that long (default 5 s; relays drop at once), then boot (0.8 s)"""
    d.power_loss(a.value)


@_verb("fault", "hang", "the firmware hangs (an endless loop): only the watchdog can help")
def _hang(a: Action, d: SimDevice) -> None:
    """the firmware stops (an endless loop); the watchdog resets it after `watchdog_ms`"""
    d.hang()


@_verb("fault", "link lost|ok", lambda a, s: "the serial link is " + ("back" if a.value else "lost (USB cable pulled)"))
def _link(a: Action, d: SimDevice) -> None:
    """the serial link to the host is cut / back: commands and device output are lost meanwhile"""
    d.set_link(a.value, "serial")


@_verb("fault", "wifi off|on", lambda a, s: "the Wi-Fi is " + ("back in reach" if a.value else "out of reach"))
def _wifi(a: Action, d: SimDevice) -> None:
    """the Wi-Fi access point goes out of reach / comes back: with `sim device --listen` the firmware's
    station loses its link; in a scenario the host hears nothing and its commands are lost, as with
    `link lost`"""
    d.wifi(a.value)


@_verb("fault", "garbage [N]", "{value} bytes of line noise arrive on the serial line")
def _garbage(a: Action, d: SimDevice) -> None:
    """N random bytes (default 200) and a newline on the serial line"""
    d.garbage(a.value)


@_verb("fault", "corrupt ACTION", lambda a, s: f"sends '{a.value.text}' with a corrupted checksum")
def _corrupt(a: Action, d: SimDevice) -> None:
    """that host action's command with a damaged CRC-32 (e.g. `corrupt cut left`)"""
    cmd, args = a.value.command
    d.command_corrupted(cmd, **args)


# -- old spellings


def _dead_adc(args: list[str]) -> list[str]:
    state = args[0].lower() if args else "on"
    return [{"on": "dead", "off": "ok"}.get(state, state), *args[1:]]


def _link_on_off(args: list[str]) -> list[str]:
    return [{"on": "ok", "off": "lost"}.get(args[0].lower(), args[0]), *args[1:]] if args else args


#: Old spelling -> (the action it means, how its words are rewritten, what it
#: is). Besides these, '-' in an action's name reads as '_'.
ALIASES: dict[str, tuple[str, Callable[[list[str]], list[str]], str]] = {
    "dead_adc": ("adc", _dead_adc, "`dead-adc on|off` (`sim device` stdin) is `adc dead|ok`"),
    "link": ("link", _link_on_off, "`link on|off` is `link ok|lost`"),
}


def usage() -> str:
    """Every action's usage, grouped by who acts: for error messages and help."""
    groups = []
    for who in WHO:
        usages = [v.usage for v in VERBS.values() if v.who == who]
        groups.append(f"{who}: " + ", ".join(f"'{u}'" for u in usages))
    return "; ".join(groups)


def parse(
    text: Any,
    burners: Sequence[str],
    *,
    first_burner_by_default: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> Action:
    """One action from its words, against the hob's burner names.

    ``first_burner_by_default``: a left-out burner means the first one
    (``sim device``'s stdin); otherwise only a one-burner hob may leave it
    out. ``settings`` (the device's, validated): refuses what this device
    cannot do (a button press without a button)."""
    if not isinstance(text, str) or not text.strip():
        raise ActionError(f"an action must be a non-empty string; actions: {usage()}")
    words = text.split()
    name, args = words[0].lower().replace("-", "_"), words[1:]
    if name in ALIASES:
        name, rewrite, _ = ALIASES[name]
        args = rewrite(args)
    verb = VERBS.get(name)
    if verb is None:
        raise ActionError(f"{text!r}: unknown action {words[0]!r}; actions: {usage()}")
    if verb.command is not None and verb.command not in protocol.COMMANDS:
        raise ActionError(f"{text!r}: the firmware has no {verb.command} command (protocol.COMMANDS)")
    if name == "press" and settings is not None and settings.get("button_pin", 0) < 0:
        raise ActionError(f"{text!r}: this device has no button (settings.button_pin = -1)")
    w = _Words(text, verb, args, burners, first_burner_by_default)
    action = Action(name, verb.who, text, *verb.read(w))
    problem = verb.check(action) if verb.check is not None else None
    if problem:
        raise w.fail(problem)
    return action


def act(device: SimDevice, text: str, *, first_burner_by_default: bool = False) -> Action:
    """Parse an action against the device's burners and settings, and do it now."""
    action = parse(text, device.names, first_burner_by_default=first_burner_by_default, settings=device.settings)
    action.apply(device)
    return action


def markdown_table() -> str:
    """The table of actions in sim/README.md (a test keeps them the same)."""
    rows = ["| action | who | what |", "|---|---|---|"]
    for v in VERBS.values():
        cell = v.usage.replace("|", "\\|")  # a '|' in a table cell must be escaped, even in code
        rows.append(f"| `{cell}` | {v.who} | {v.help} |")
    notes = ["a `-` in an action's name reads as `_` (`open-tc`, `power-loss`)"]
    notes += [note for _, _, note in ALIASES.values()]
    rows += ["", "Old spellings keep working: " + "; ".join(notes) + "."]
    return "\n".join(rows)

# The button driver on a fake pin: presses, bounces, and an interrupt that
# misses the release edge. Runs under CPython and inside real MicroPython.
import mpfakes
from hobguard_fw import drivers

PIN = 0
LONG_MS = 1500


def _button():
    clock = mpfakes.Time(1000)
    machine = mpfakes.Machine(clock)
    button = drivers.Button(machine, clock, PIN, LONG_MS)
    return button, machine, clock


def _poll_for(button, clock, ms, every=20):
    """Poll as the app does while a press is in progress; return what came."""
    seen = []
    end = clock.now + ms
    while clock.now < end:
        clock.now += every
        got = button.poll()
        if got is not None:
            seen.append(got)
    return seen


def test_a_short_press_is_short():
    button, machine, clock = _button()
    machine.set_input(PIN, 0)
    assert _poll_for(button, clock, 200) == []
    machine.set_input(PIN, 1)
    assert _poll_for(button, clock, 200) == ["short"]
    assert not button.busy()


def test_a_long_press_fires_while_held_and_once():
    button, machine, clock = _button()
    machine.set_input(PIN, 0)
    assert _poll_for(button, clock, 2000) == ["long"]
    machine.set_input(PIN, 1)
    assert _poll_for(button, clock, 200) == []
    assert not button.busy()


def test_a_release_edge_the_interrupt_missed_is_no_long_press():
    # Bounce on release: up (seen), down (seen), up (missed). The old driver
    # kept the press "held" and sent a long press that cut every burner.
    button, machine, clock = _button()
    machine.set_input(PIN, 0)
    assert _poll_for(button, clock, 200) == []
    machine.set_input(PIN, 1)
    clock.now += 2
    machine.set_input(PIN, 0)
    clock.now += 2
    machine.set_input(PIN, 1, edge=False)
    assert _poll_for(button, clock, 3000) == ["short"]
    assert not button.busy()


def test_a_release_with_no_edge_at_all_ends_the_press():
    button, machine, clock = _button()
    machine.set_input(PIN, 0)
    assert _poll_for(button, clock, 300) == []
    machine.set_input(PIN, 1, edge=False)
    assert _poll_for(button, clock, 3000) == ["short"]


def test_a_bounce_low_while_released_is_still_one_short_press():
    button, machine, clock = _button()
    machine.set_input(PIN, 0)
    _poll_for(button, clock, 100)
    machine.set_input(PIN, 1)
    clock.now += 10
    assert button.poll() is None  # within the debounce time
    machine.set_input(PIN, 0, edge=False)  # a bounce the interrupt missed
    clock.now += 10
    assert button.poll() is None
    machine.set_input(PIN, 1, edge=False)
    assert _poll_for(button, clock, 300) == ["short"]

# The device's Wi-Fi and network link (wifi.py, netlink.py, app.py) on the
# minimal fakes of mpfakes.py: runs under CPython and inside real MicroPython,
# so the firmware's network code is checked on the interpreter the board
# runs. The real sockets are exercised in tests/test_netlink.py.
import mpfakes
from hobguard_fw import app, auth, netlink, protocol, wifi

KEY_HEX = "00112233445566778899aabbccddeeff" * 2
KEY = bytes(range(0, 256, 17)) * 2  # the same 32 bytes as KEY_HEX


def boot(secrets=True, modules=None, key_hex=KEY_HEX):
    root = mpfakes.fresh_root()
    if secrets:
        mpfakes.write_secrets(root, key_hex)
    clock = mpfakes.Time()
    machine = mpfakes.Machine(clock)
    link = mpfakes.Link()
    modules = modules or mpfakes.net_modules()
    device = app.App(machine, clock, link, root=root, network=modules)
    return device, clock, link, modules


def run(device, clock, ms):
    end = clock.now + ms
    while clock.now < end:
        wait = device.step()
        clock.now += max(1, min(wait, end - clock.now))


def usb_frames(link):
    out = []
    for chunk in link.out:
        for line in chunk.split("\n"):
            if line:
                out.append(protocol.decode(line))
    link.out = []
    return out


class Client:
    """A client on the fake network, speaking through auth.Session."""

    def __init__(self, modules, key=KEY, nonce=b"\x42" * 32):
        self.sock = modules["socket"].connect(("192.168.1.50", 7343))
        self.session = auth.Session(key, False, nonce)
        self.reader = protocol.LineReader(protocol.MAX_LINE + auth.OVERHEAD)
        self.lines = []

    def take(self):
        while self.sock.inbox:
            self.lines += self.reader.feed(self.sock.recv(4096))
        lines = self.lines
        self.lines = []
        return lines

    def send(self, text):
        self.sock.send(text.encode() if isinstance(text, str) else text)

    def frames(self):
        out = []
        for line in self.take():
            body = self.session.unseal(line)
            if body:
                out.append(protocol.decode(body))
        return out


def test_secrets_are_checked_and_never_echoed():
    good = {"wifi_ssid": "Kitchen", "wifi_password": "a-good-password", "key": KEY_HEX.upper()}
    secrets, errors = wifi.validate_secrets(good)
    assert errors == [] and secrets["port"] == wifi.DEFAULT_PORT and secrets["key"] == KEY_HEX
    bad = {"wifi_ssid": "", "wifi_password": "short", "key": "not-a-key-secret", "port": 0, "pin": 1234}
    secrets, errors = wifi.validate_secrets(bad)
    assert secrets is None and len(errors) == 5
    text = " ".join(errors)
    for value in ("short", "not-a-key-secret", "1234"):
        assert value not in text
    assert wifi.validate_secrets([]) == (None, ["secrets: a JSON object"])


def test_host_names_hold_only_what_a_host_name_may():
    assert wifi.hostname("hob-1a2b3c") == "hobguard-hob-1a2b3c"
    assert wifi.hostname("kitchen_left") == "hobguard-kitchen-left"
    long_name = wifi.hostname("a" * 22 + "_" + "b" * 9)
    assert len(long_name) <= wifi.HOSTNAME_MAX and not long_name.endswith("-")
    for ch in long_name:
        assert "a" <= ch <= "z" or "0" <= ch <= "9" or ch == "-"


def test_a_board_without_secrets_has_no_network_link():
    device, clock, link, modules = boot(secrets=False)
    assert device.net is None
    run(device, clock, 5000)
    state = [f for f in usb_frames(link) if f.get("t") == "state"][-1]
    assert "wifi" not in state
    assert modules["network"].connects == 0


def test_invalid_secrets_are_reported_without_their_values():
    root = mpfakes.fresh_root()
    with open(root + wifi.SECRETS_FILE, "w") as f:
        f.write('{"wifi_ssid": "Kitchen", "wifi_password": "hunter2", "key": "123"}')
    clock = mpfakes.Time()
    link = mpfakes.Link()
    device = app.App(mpfakes.Machine(clock), clock, link, root=root, network=mpfakes.net_modules())
    assert device.net is None
    run(device, clock, 3000)
    warnings = [f for f in usb_frames(link) if f.get("reason") == "secrets_invalid"]
    assert len(warnings) == 1
    assert "hunter2" not in repr(warnings) and "123" not in repr(warnings)


def test_the_station_joins_with_its_host_name_and_listens():
    device, clock, link, modules = boot()
    network = modules["network"]
    assert network.name == "hobguard-hob-aabbcc" and network.active
    run(device, clock, 3000)
    assert device.net.station.state == "up" and device.net.listener is not None
    state = [f for f in usb_frames(link) if f.get("t") == "state"][-1]
    assert state["wifi"] == "up" and state["rssi"] == -61 and state["net_clients"] == 0
    assert "a-good-password" not in repr(state) and KEY_HEX not in repr(state)


def test_the_station_retries_with_back_off_while_the_network_is_away():
    modules = mpfakes.net_modules()
    network = modules["network"]
    network.radio = False
    device, clock, link, modules = boot(modules=modules)
    run(device, clock, 60000)
    # 0, 2, 6, 14, 30 s: doubling, not every loop step.
    assert 4 <= network.connects <= 6, network.connects
    network.radio = True
    run(device, clock, 70000)
    assert device.net.station.state == "up" and device.net.listener is not None


def test_a_command_over_the_network_link_and_the_reply_goes_to_it_alone():
    device, clock, link, modules = boot()
    run(device, clock, 3000)
    usb_frames(link)
    client = Client(modules)
    run(device, clock, 10)
    greeting = client.take()[0]
    client.send(client.session.handshake(greeting))
    run(device, clock, 10)
    assert client.session.handshake(client.take()[0]) == ""
    client.send(client.session.seal(protocol.request(5, "cut", burner="right")))
    run(device, clock, 10)
    replies = [f for f in client.frames() if f.get("t") == "ok"]
    assert len(replies) == 1 and replies[0]["id"] == 5
    assert replies[0]["state"]["burners"][1]["relay"] == "open"
    usb = usb_frames(link)
    assert not [f for f in usb if f.get("t") == "ok"]  # not echoed on USB
    assert [f for f in usb if f.get("event_type") == "cut"]  # but the event is
    assert device.net.describe({}) is None


def test_a_wrong_key_changes_nothing_and_is_counted():
    device, clock, link, modules = boot()
    run(device, clock, 6000)  # past the boot pulse: the relays are closed
    relays = (device.hob.relay_closed[0], device.hob.relay_closed[1])
    assert relays == (True, True)
    client = Client(modules, key=bytes(32))
    run(device, clock, 10)
    client.send(client.session.handshake(client.take()[0]))
    run(device, clock, 10)
    assert client.take() == [b"HGA1 ERR auth_failed"]
    assert client.sock.peer_closed
    assert device.net.auth_failures == 1 and device.net.clients == []
    assert (device.hob.relay_closed[0], device.hob.relay_closed[1]) == relays


def test_wifi_lost_closes_every_socket_and_it_listens_again_after():
    device, clock, link, modules = boot()
    run(device, clock, 3000)
    client = Client(modules)
    run(device, clock, 10)
    modules["network"].radio = False
    run(device, clock, 5000)
    assert client.sock.peer_closed and device.net.listener is None
    assert device.net.station.state == "down"
    modules["network"].radio = True
    run(device, clock, 5000)
    assert device.net.station.state == "up" and device.net.listener is not None
    assert netlink.MAX_CLIENTS >= 2


def test_a_port_in_use_is_tried_again_once_a_second_not_every_step():
    modules = mpfakes.net_modules()
    hub = modules["socket"]
    squatter = hub.socket()
    squatter.bind(("192.168.1.50", 7343))
    squatter.listen(1)
    made = [0]
    make = hub.socket

    def counting_socket(family=2, kind=1):
        made[0] += 1
        return make(family, kind)

    hub.socket = counting_socket
    device, clock, link, modules = boot(modules=modules)
    run(device, clock, 10000)
    assert device.net.station.state == "up" and device.net.listener is None
    assert 5 <= made[0] <= 11, made[0]
    squatter.close()
    run(device, clock, 2000)
    assert device.net.listener is not None


def _authenticates(device, clock, modules, nonce=b"\x43" * 32):
    """True when an honest client gets in within a second."""
    client = Client(modules, nonce=nonce)
    run(device, clock, 10)
    lines = client.take()
    for _ in range(100):
        if lines:
            break
        run(device, clock, 10)
        lines = client.take()
    if not lines or not lines[0].startswith(b"HGA1 NONCE"):
        return False
    client.send(client.session.handshake(lines[0]))
    run(device, clock, 10)
    answer = client.take()
    return bool(answer) and client.session.handshake(answer[0]) == ""


def _fail_once(device, clock, modules):
    stranger = Client(modules, key=bytes(32))
    run(device, clock, 10)
    stranger.send(stranger.session.handshake(stranger.take()[0]))
    run(device, clock, 10)
    assert stranger.take() == [b"HGA1 ERR auth_failed"]


def test_a_pause_after_a_failed_handshake_does_not_outlive_a_long_wifi_outage():
    # A failed handshake pauses accepting; then the Wi-Fi is gone for more
    # than 6.2 days (2**29 ms: the pause's stamp would read as one far in
    # the future). Once the Wi-Fi is back the device accepts at once.
    device, clock, link, modules = boot()
    run(device, clock, 3000)
    _fail_once(device, clock, modules)
    assert device.net.accept_after is not None
    modules["network"].radio = False
    run(device, clock, 5000)
    assert device.net.listener is None and device.net.accept_after is None  # cleared with the listener
    clock.now += (1 << 29) - 2000  # days with the Wi-Fi down
    run(device, clock, 60000)
    modules["network"].radio = True
    run(device, clock, 40000)
    assert device.net.listener is not None
    assert _authenticates(device, clock, modules)


def test_an_accept_pause_that_reads_as_far_in_the_future_is_due():
    # However a pause's stamp came to be left (a step missed for days), a
    # deadline further ahead than the longest pause is taken as passed.
    device, clock, link, modules = boot()
    run(device, clock, 3000)
    _fail_once(device, clock, modules)
    net = device.net
    stale = clock.ticks_add(clock.ticks_ms(), (1 << 29) - 10)
    net.accept_after = stale
    assert net.next_wake_ms(clock.ticks_ms()) == 0
    assert _authenticates(device, clock, modules)
    assert net.accept_after is None


def test_client_stamps_older_than_the_tick_wrap_still_expire():
    device, clock, link, modules = boot()
    run(device, clock, 3000)
    client = Client(modules)
    run(device, clock, 10)
    assert len(device.net.clients) == 1
    stranger = device.net.clients[0]
    stranger.opened = clock.ticks_add(clock.ticks_ms(), (1 << 29) - 10)  # as a stamp 6.2 days old reads
    run(device, clock, 10)
    assert device.net.clients == [] and client.take()[-1] == b"HGA1 ERR timeout"

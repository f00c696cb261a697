"""The bridge's MQTT connection when the broker cannot be had (issue 9,
item 9): each problem is said once — not once per retry — at warning level
or above, with what to do, and never with the password; and what it
refuses to publish (issue 9, item 4)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import TLS_USER
from hobguard.bridge import config as config_mod
from hobguard.bridge.mqtt import MqttConnection, topic_problem
from hobguard.testing import free_port, wait_for

SECRET = "pa/ss#wo?rd@"


def connection(url: str, **extra: Any) -> tuple[MqttConnection, list[OSError]]:
    settings = config_mod.parse_broker_url(url)
    settings.client_id = "test-unreachable"
    for key, value in extra.items():
        setattr(settings, key, value)
    conn = MqttConnection(settings, "test/will", on_connected=lambda: None, on_message=lambda m: None,
                          reconnect_max_s=1)  # fmt: skip
    attempts: list[OSError] = []
    report = conn.client.connect_error
    assert report is not None

    def counted(err: OSError) -> None:
        attempts.append(err)
        report(err)

    conn.client.connect_error = counted
    return conn, attempts


def said_once(caplog: pytest.LogCaptureFixture, conn: MqttConnection, attempts: list, phrase: str) -> str:
    conn.start()
    try:
        wait_for(lambda: len(attempts) >= 2, 15, what="a connection attempt and a retry")
    finally:
        conn.stop()
    # Said once at warning level; the retries only at debug level.
    said = [r.getMessage() for r in caplog.records if r.name == "hobguard.mqtt" and r.levelno >= logging.WARNING]
    assert len(said) == 1 and phrase in said[0], said
    assert SECRET not in caplog.text
    return said[0]


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="hobguard.mqtt")
    return caplog


def test_an_unknown_host_is_said_once_with_what_to_do(log) -> None:
    conn, attempts = connection(f"mqtt://hob:{SECRET.replace('#', '%23')}@no-such-broker.invalid:1883")
    text = said_once(log, conn, attempts, "is not known")
    assert "no-such-broker.invalid" in text and "--broker" in text


def test_a_refused_port_is_said_once_with_what_to_do(log) -> None:
    conn, attempts = connection(f"mqtt://127.0.0.1:{free_port()}")
    text = said_once(log, conn, attempts, "connection refused")
    assert "is the broker running" in text and "1883" in text


def test_tls_to_a_port_without_tls_is_said_once(log, mosquitto) -> None:
    conn, attempts = connection(f"mqtts://127.0.0.1:{mosquitto.port}")
    text = said_once(log, conn, attempts, "TLS handshake failed")
    assert "mqtt://" in text


def test_an_untrusted_certificate_is_said_once_with_what_to_do(log, tls_mosquitto) -> None:
    broker, _ = tls_mosquitto
    conn, attempts = connection(f"mqtts://127.0.0.1:{broker.port}")
    text = said_once(log, conn, attempts, "not trusted")
    assert "--ca-cert" in text


def test_no_tls_to_a_tls_port_is_said_once(log, tls_mosquitto) -> None:
    broker, _ = tls_mosquitto
    settings = config_mod.parse_broker_url(f"mqtt://127.0.0.1:{broker.port}")
    settings.client_id = "test-plain-to-tls"
    conn = MqttConnection(settings, "test/will", lambda: None, lambda m: None, reconnect_max_s=1)
    disconnects: list[str] = []
    conn._on_disconnected = disconnects.append
    conn.start()
    try:
        wait_for(lambda: len(disconnects) >= 2, 20, what="two attempts")
    finally:
        conn.stop()
    lines = [r.getMessage() for r in log.records if r.name == "hobguard.mqtt" and r.levelno >= logging.WARNING]
    assert len(lines) == 1, lines
    assert "use mqtts://" in lines[0]


def test_a_wrong_password_is_said_once(log, tls_mosquitto) -> None:
    broker, tls = tls_mosquitto
    url = f"mqtts://{TLS_USER[0]}:{SECRET.replace('/', '%2F').replace('#', '%23').replace('?', '%3F')}@127.0.0.1:{broker.port}"
    settings = config_mod.parse_broker_url(url)
    settings.ca_cert, settings.client_id = str(tls.ca), "test-wrong-password"
    conn = MqttConnection(settings, "test/will", lambda: None, lambda m: None, reconnect_max_s=1)
    refusals: list[Any] = []
    connect_cb = conn._connect_cb

    def counting(*args: Any) -> None:
        refusals.append(args[3])
        connect_cb(*args)

    conn.client.on_connect = counting
    conn.start()
    try:
        wait_for(lambda: len(refusals) >= 2, 20, what="two refusals")
    finally:
        conn.stop()
    lines = [r.getMessage() for r in log.records if r.name == "hobguard.mqtt" and r.levelno >= logging.WARNING]
    assert len(lines) == 1, lines
    assert "refused the login as user 'hobguard'" in lines[0] and "--password-file" in lines[0]
    assert SECRET not in log.text


# -- publishing: nothing a broker would drop the connection over ------------------------------------


@pytest.mark.parametrize(
    "topic",
    ["", "a/+/b", "a/#", "$SYS/x", "a\nb", "a\x00b", "a\x1bb", "a\x85b", "a/\ud800", "x" * 70000],
)
def test_a_topic_a_broker_would_refuse_is_never_published(topic: str, caplog) -> None:
    assert topic_problem(topic) is not None
    settings = config_mod.MqttSettings(client_id="test-refuse")
    conn = MqttConnection(settings, "test/will", lambda: None, lambda m: None)
    conn.connected.set()  # pretend: the check comes before anything is sent
    sent: list[Any] = []
    conn.client.publish = lambda *a, **k: sent.append(a)  # type: ignore[method-assign]
    assert conn.publish(topic, "x") is None
    assert sent == [] and conn.refused_publishes == 1


def test_a_payload_larger_than_the_broker_takes_is_never_published() -> None:
    settings = config_mod.MqttSettings(client_id="test-size")
    conn = MqttConnection(settings, "test/will", lambda: None, lambda m: None)
    conn.connected.set()
    conn.max_packet = 1000  # as a broker's CONNACK Maximum Packet Size may say
    sent: list[Any] = []
    conn.client.publish = lambda *a, **k: sent.append(a) or type("I", (), {"rc": 0})()  # type: ignore[method-assign]
    assert conn.publish("a/b", "x" * 2000) is None
    assert conn.publish("a/b", "x" * 100) is not None
    assert len(sent) == 1


def test_ordinary_topics_pass() -> None:
    for topic in ("hobguard/hob-1/left/state", "homeassistant/valve/hob-1/left_gas/config", "a/b c/ü"):
        assert topic_problem(topic) is None


def test_the_subscriptions_go_out_before_anything_is_published_on_a_connection(mosquitto, recorder_factory) -> None:
    """Whoever sees a message from the bridge's connection (its online, a
    hob's state) may send a command at once: the subscriptions are queued
    before `connected` lets any thread publish on the connection (paho sends
    its packets in order, the broker takes them in order), so the command is
    heard, never dropped for want of a subscriber."""
    settings = config_mod.parse_broker_url(mosquitto.url)
    settings.client_id = "test-subscribe-first"
    heard: list[bytes] = []
    order: list[tuple[str, bool]] = []
    conn = MqttConnection(settings, "sub/first/will", on_connected=lambda: None,
                          on_message=lambda m: heard.append(bytes(m.payload)), subscriptions=["sub/first/cmd/#"])  # fmt: skip
    client = conn.client
    real_subscribe, real_publish = client.subscribe, client.publish

    def subscribe(*args: Any, **kwargs: Any) -> Any:
        order.append(("subscribe", conn.connected.is_set()))
        return real_subscribe(*args, **kwargs)

    def publish(*args: Any, **kwargs: Any) -> Any:
        order.append(("publish", conn.connected.is_set()))
        return real_publish(*args, **kwargs)

    client.subscribe, client.publish = subscribe, publish  # type: ignore[method-assign]
    watcher = recorder_factory(mosquitto.url, ["sub/first/will"])
    conn.start()
    try:
        watcher.wait(lambda m: m.payload == b"online", 10, what="online")
        watcher.publish("sub/first/cmd/x", "command")  # at once
        wait_for(lambda: b"command" in heard, 10, what="the command heard")
    finally:
        conn.stop()
    assert order[0] == ("subscribe", False), order
    assert ("publish", True) in order, order

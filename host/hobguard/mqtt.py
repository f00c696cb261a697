"""The MQTT side of the bridge: a paho-mqtt 2.x client with the bridge's
last will, TLS and password, automatic reconnection, and callbacks that
can never kill the network thread.

Failure modes: the broker is down at start (paho's loop thread keeps
trying, back-off 1..10 s); the broker restarts or the network drops
(reconnect with the same back-off, then `on_connected` runs again so the
bridge re-subscribes and re-publishes everything retained, since a broker
without persistence has lost it); a callback raises (logged, dropped).
The password is handed to paho and never logged.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from typing import Any, Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from .config import MqttSettings

log = logging.getLogger("hobguard.mqtt")

Message = paho.MQTTMessage


class MqttConnection:
    def __init__(
        self,
        settings: MqttSettings,
        will_topic: str,
        on_connected: Callable[[], None],
        on_message: Callable[[Message], None],
        on_disconnected: Callable[[str], None] | None = None,
        reconnect_max_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self.will_topic = will_topic
        self._on_connected = on_connected
        self._on_message = on_message
        self._on_disconnected = on_disconnected
        self.connected = threading.Event()
        self.connections = 0
        self._stopping = False
        self._disconnected = threading.Event()
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id or "",
            protocol=paho.MQTTv311,
            clean_session=True,
        )
        client.suppress_exceptions = True  # belt and braces: ours are caught too
        paho_log = logging.getLogger("hobguard.mqtt.paho")
        if not paho_log.isEnabledFor(logging.DEBUG):
            paho_log.setLevel(logging.WARNING)  # paho's INFO lines are protocol chatter
        if not any(isinstance(f, _NotConnectedNoise) for f in paho_log.filters):
            paho_log.addFilter(_NotConnectedNoise())
        client.enable_logger(paho_log)
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(reconnect_max_s)))
        client.will_set(will_topic, "offline", qos=1, retain=True)
        if settings.username:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            context = ssl.create_default_context(cafile=settings.ca_cert)
            if settings.client_cert:
                context.load_cert_chain(settings.client_cert, settings.client_key)
            if settings.tls_insecure:
                # For test brokers with throwaway certificates only.
                context.check_hostname = False
            client.tls_set_context(context)
        client.on_connect = self._connect_cb
        client.on_disconnect = self._disconnect_cb
        client.on_message = self._message_cb
        self.client = client

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        log.info("connecting to %s as %s", self.settings.url, self.settings.client_id)
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive)
        self.client.loop_start()

    def stop(self, final: list[tuple[str, str]] | None = None, timeout_s: float = 3.0) -> None:
        """Publish the final retained messages (e.g. "offline"), then
        disconnect cleanly: a clean disconnect suppresses the last will."""
        self._stopping = True
        if self.connected.is_set():
            infos = [self.client.publish(topic, payload, qos=1, retain=True) for topic, payload in final or []]
            for info in infos:
                try:
                    info.wait_for_publish(timeout_s)
                except (RuntimeError, ValueError):
                    pass
        self.client.disconnect()
        # Let paho's thread finish the disconnect before it is stopped.
        if self.connected.is_set():
            self._disconnected.wait(timeout_s)
        self.client.loop_stop()

    # -- use -----------------------------------------------------------------

    def publish(self, topic: str, payload: str | bytes, retain: bool = False, qos: int = 1) -> None:
        if not self.connected.is_set():
            # Retained state is re-sent on reconnect; events are lost, as
            # they would be on a real outage (the device still acted).
            log.debug("not connected: dropped %s", topic)
            return
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            log.debug("publish to %s: %s", topic, paho.error_string(info.rc))

    def subscribe(self, topics: list[str], qos: int = 1) -> None:
        if topics and self.connected.is_set():
            self.client.subscribe([(t, qos) for t in topics])

    def unsubscribe(self, topics: list[str]) -> None:
        if topics and self.connected.is_set():
            self.client.unsubscribe(topics)

    # -- paho callbacks (network thread) -----------------------------------------

    def _connect_cb(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        try:
            if reason.is_failure:
                log.warning("broker %s refused the connection: %s", self.settings.url, reason)
                return
            self.connections += 1
            _no_delay(client)
            self._disconnected.clear()
            self.connected.set()
            log.info(
                "connected to %s%s",
                self.settings.url,
                "" if self.connections == 1 else " again (reconnect %d)" % (self.connections - 1),
            )
            client.publish(self.will_topic, "online", qos=1, retain=True)
            self._on_connected()
        except Exception:
            log.exception("error after connecting")

    def _disconnect_cb(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        try:
            was = self.connected.is_set()
            self.connected.clear()
            self._disconnected.set()
            if was and not self._stopping:
                log.warning("disconnected from %s (%s); reconnecting", self.settings.url, reason)
            if self._on_disconnected:
                self._on_disconnected(str(reason))
        except Exception:
            log.exception("error after disconnecting")

    def _message_cb(self, client: paho.Client, userdata: Any, message: Message) -> None:
        try:
            self._on_message(message)
        except Exception:
            log.exception("error handling a message on %s", getattr(message, "topic", "?"))


class _NotConnectedNoise(logging.Filter):
    """paho 2.2 logs "Client is not connected" at ERROR when its thread loops
    once more after a disconnect; our own disconnect log line says it better."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


def _no_delay(client: paho.Client) -> None:
    """Send small packets at once: without TCP_NODELAY, Nagle's algorithm and
    the broker's delayed ACK hold a state update back by ~40 ms."""
    sock = client.socket()
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass

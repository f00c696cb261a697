"""The MQTT side of the bridge: a paho-mqtt 2.x client speaking MQTT 5, with
the bridge's last will, TLS and password, automatic reconnection, and
callbacks that can never kill the network thread.

MQTT 5, because of one subscription option: retain-as-published. With it
the broker delivers every message with the retain flag its publisher set,
live deliveries included, so the bridge can refuse every retained command
(MQTT 3.1.1 clears the flag on live deliveries, and a retained command
published while the bridge is connected would look live). Subscriptions
also use no-local, so the bridge never receives what it published itself.
Every connection starts clean (clean start, no session kept).

Failure modes, and what is logged — once per problem, not per retry, with
what to do about it:

- the broker cannot be reached: unknown host name, connection refused, no
  answer, TLS certificate not trusted or naming another host, a TLS port
  reached without TLS or the other way round;
- the broker refuses the login (user name or password, not authorized, a
  client id it does not take, a broker that does not speak MQTT 5);
- the connection drops (broker restarted, network lost, another client
  took over this client id): reconnect with back-off (1..10 s); the
  `subscriptions` are made again, first thing on the new connection, and
  then `on_connected` runs again, so the bridge re-publishes everything
  retained (a broker without persistence has lost it);
- a callback raises: logged, dropped.

No single publish can make the broker drop the connection (which would
cut every hob off from its remote commands): a topic a broker would reject
(wildcards, control characters, a leading `$`, not UTF-8) or a packet
larger than the broker accepts (its CONNACK Maximum Packet Size, and ours)
is refused here, counted and logged.

The password is handed to paho and never logged.
"""

from __future__ import annotations

import errno
import logging
import secrets
import socket
import ssl
import threading
from typing import Any, Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from .config import MqttSettings

log = logging.getLogger("hobguard.mqtt")

Message = paho.MQTTMessage

# Largest packet the bridge sends (its biggest payload, a discovery config,
# is ~1.5 KB); a broker may announce a smaller limit in its CONNACK.
MAX_PACKET = 128 * 1024
# MQTT 5 user property carried by the bridge's availability messages: which
# running bridge published it (see Bridge, duplicate bridge ids).
INSTANCE_PROPERTY = "hobguard-instance"


def topic_problem(topic: Any) -> str | None:
    """None when a broker takes `topic` as a publish topic, else why not."""
    if not isinstance(topic, str) or not topic:
        return "empty topic"
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        return "topic is not UTF-8"
    if size > 65535:
        return "topic longer than 65535 bytes"
    if "+" in topic or "#" in topic:
        return "wildcard in a publish topic"
    if topic.startswith("$"):
        return "topics starting with $ belong to the broker"
    for ch in topic:
        code = ord(ch)
        if code < 32 or 127 <= code < 160:
            return "control character in topic"
    return None


class _Client(paho.Client):
    """paho's client, telling us why a connection attempt failed: its own
    retry loop swallows the exception."""

    connect_error: Callable[[OSError], None] | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as err:
            if self.connect_error is not None:
                try:
                    self.connect_error(err)
                except Exception:
                    log.exception("error reporting a connection failure")
            raise


class MqttConnection:
    def __init__(
        self,
        settings: MqttSettings,
        will_topic: str,
        on_connected: Callable[[], None],
        on_message: Callable[[Message], None],
        on_disconnected: Callable[[str], None] | None = None,
        reconnect_max_s: float = 10.0,
        subscriptions: list[str] | None = None,
    ) -> None:
        self.settings = settings
        # Subscribed on every connect before anything is published on it.
        self.subscriptions = list(subscriptions or [])
        self.will_topic = will_topic
        self.instance = secrets.token_hex(6)
        self._on_connected = on_connected
        self._on_message = on_message
        self._on_disconnected = on_disconnected
        self.reconnect_max_s = max(1, int(reconnect_max_s))
        self.connected = threading.Event()
        self.connections = 0
        self.max_packet = MAX_PACKET
        self.retain_available = True
        self.refused_publishes = 0
        self._refusal_logged: set[str] = set()
        self._problem: str | None = None  # the connection problem logged last
        self._stopping = False
        self._disconnected = threading.Event()
        self.v5 = settings.protocol != "3.1.1"
        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id or "",
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
            clean_session=None if self.v5 else True,
        )
        client.connect_error = self._connect_error
        client.suppress_exceptions = True  # belt and braces: ours are caught too
        paho_log = logging.getLogger("hobguard.mqtt.paho")
        if not paho_log.isEnabledFor(logging.DEBUG):
            paho_log.setLevel(logging.WARNING)  # paho's INFO lines are protocol chatter
        if not any(isinstance(f, _NotConnectedNoise) for f in paho_log.filters):
            paho_log.addFilter(_NotConnectedNoise())
        client.enable_logger(paho_log)
        client.reconnect_delay_set(min_delay=1, max_delay=self.reconnect_max_s)
        client.will_set(
            will_topic, "offline", qos=1, retain=True, properties=self._instance_properties(True) if self.v5 else None
        )
        if settings.username:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            client.tls_set_context(tls_context(settings))
        client.on_connect = self._connect_cb
        client.on_disconnect = self._disconnect_cb
        client.on_message = self._message_cb
        self.client = client

    def _instance_properties(self, will: bool = False) -> Properties:
        props = Properties(PacketTypes.WILLMESSAGE if will else PacketTypes.PUBLISH)
        props.UserProperty = (INSTANCE_PROPERTY, self.instance)
        return props

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        log.info(
            "connecting to %s (MQTT %s) as %s", self.settings.url, "5" if self.v5 else "3.1.1", self.settings.client_id
        )
        if not self.v5:
            log.warning(
                "MQTT 3.1.1: a retained command published while the bridge is connected looks live to it and is "
                "carried out; use a broker that speaks MQTT 5 (Mosquitto 1.6 or later) and leave [mqtt] protocol unset"
            )
        if self.v5:
            self.client.connect_async(
                self.settings.host, self.settings.port, keepalive=self.settings.keepalive, clean_start=True
            )
        else:
            self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive)
        self.client.loop_start()

    def stop(self, final: list[tuple[str, str]] | None = None, timeout_s: float = 3.0) -> None:
        """Publish the final retained messages (e.g. "offline", or "" to
        remove a topic), then disconnect cleanly: a clean disconnect
        suppresses the last will."""
        self._stopping = True
        if self.connected.is_set():
            infos = [self.publish(topic, payload, retain=True) for topic, payload in final or []]
            for info in infos:
                if info is None:
                    continue
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

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        retain: bool = False,
        qos: int = 1,
        instance: bool = False,
    ) -> paho.MQTTMessageInfo | None:
        """Queue one message; None when it was not (not connected, or refused
        because the broker would drop the connection over it). Never raises.
        instance: tag it with this bridge's instance id (availability)."""
        if not self.connected.is_set():
            # Retained state is re-sent on reconnect; events are lost, as
            # they would be on a real outage (the device still acted).
            log.debug("not connected: dropped %s", topic)
            return None
        problem = topic_problem(topic)
        data = payload.encode("utf-8", "replace") if isinstance(payload, str) else bytes(payload)
        if problem is None:
            # Fixed header (5) + topic (2 + n) + packet id (2) + properties (~40 with ours).
            size = 5 + 2 + len(topic.encode("utf-8")) + 2 + 48 + len(data)
            if size > self.max_packet:
                problem = f"{size} bytes, more than the {self.max_packet} the broker and the bridge take"
        if problem is not None:
            self._refuse(topic, problem)
            return None
        if retain and not self.retain_available:
            retain = False
        try:
            properties = self._instance_properties() if instance and self.v5 else None
            info = self.client.publish(topic, data, qos=qos, retain=retain, properties=properties)
        except (ValueError, TypeError) as err:
            self._refuse(topic, str(err))
            return None
        if info.rc != paho.MQTT_ERR_SUCCESS:
            log.debug("publish to %s: %s", topic, paho.error_string(info.rc))
            return None
        return info

    def _refuse(self, topic: Any, problem: str) -> None:
        self.refused_publishes += 1
        shown = repr(topic)[:120]
        kind = "".join(c for c in problem if not c.isdigit())[:60]  # one log line per kind of problem
        if kind not in self._refusal_logged and len(self._refusal_logged) < 32:
            self._refusal_logged.add(kind)
            log.error("refused to publish to %s: %s (a bug: please report it)", shown, problem)
        else:
            log.debug("refused to publish to %s: %s", shown, problem)

    def subscribe(self, topics: list[str], qos: int = 1) -> None:
        """No-local (never our own messages back) and retain-as-published
        (the retain flag as its publisher set it, on every delivery)."""
        if topics and self.connected.is_set():
            self._subscribe(topics, qos)

    def _subscribe(self, topics: list[str], qos: int = 1) -> None:
        if topics:
            if self.v5:
                options = SubscribeOptions(qos=qos, noLocal=True, retainAsPublished=True)
                self.client.subscribe([(t, options) for t in topics])
            else:
                self.client.subscribe([(t, qos) for t in topics])

    def unsubscribe(self, topics: list[str]) -> None:
        if topics and self.connected.is_set():
            self.client.unsubscribe(topics)

    # -- what went wrong, said once ---------------------------------------------

    def _report(self, key: str, text: str, level: int = logging.WARNING) -> None:
        if key == self._problem:
            log.debug("%s", text)
            return
        self._problem = key
        log.log(level, "%s", text)

    def _connect_error(self, err: OSError) -> None:
        key, text = describe_connect_error(err, self.settings)
        self._report(key, f"{text} (retrying every {self.reconnect_max_s} s at most)")

    # -- paho callbacks (network thread) -----------------------------------------

    def _connect_cb(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        try:
            if reason.is_failure:
                key, text = describe_refusal(reason, self.settings)
                self._report(key, text, logging.ERROR if key != "unavailable" else logging.WARNING)
                return
            self.connections += 1
            self.max_packet = MAX_PACKET
            limit = getattr(properties, "MaximumPacketSize", None) if properties is not None else None
            if isinstance(limit, int) and limit > 0:
                self.max_packet = min(MAX_PACKET, limit)
            self.retain_available = getattr(properties, "RetainAvailable", 1) != 0 if properties is not None else True
            if not self.retain_available:
                log.error(
                    "broker %s keeps no retained messages: Home Assistant discovery and states will not survive a "
                    "restart of Home Assistant; enable retain on the broker",
                    self.settings.url,
                )
            _no_delay(client)
            # The subscriptions go out first, before `connected` lets any
            # thread publish: paho sends in order and the broker takes a
            # client's packets in order, so whoever sees anything this
            # connection publishes (the bridge online, a hob's state) can be
            # sure that a command it sends now is heard, not dropped by a
            # broker that had no subscriber for it yet.
            self._subscribe(self.subscriptions)
            self._disconnected.clear()
            self.connected.set()
            after = f" (after: {self._problem})" if self._problem else ""
            self._problem = None
            log.info(
                "connected to %s%s%s",
                self.settings.url,
                "" if self.connections == 1 else " again (reconnect %d)" % (self.connections - 1),
                after,
            )
            self.publish(self.will_topic, "online", retain=True, instance=True)
            self._on_connected()
        except Exception:
            log.exception("error after connecting")

    def _disconnect_cb(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        try:
            was = self.connected.is_set()
            self.connected.clear()
            self._disconnected.set()
            if not self._stopping and (was or self._problem is None):
                # (A connection refused in its CONNACK ends too: said already.)
                name = _reason_name(reason)
                if name == "Session taken over":
                    self._report(
                        "takeover",
                        f"the broker {self.settings.url} dropped this connection: another client connected with the "
                        f"same client id {self.settings.client_id!r}. Two bridges with the same [mqtt] client_id? "
                        "Give each its own (or leave client_id unset: each bridge then makes its own)",
                        logging.ERROR,
                    )
                elif name in ("Packet too large", "Topic Name invalid", "Protocol error", "Malformed packet"):
                    self._report(
                        "dropped:" + name,
                        f"the broker {self.settings.url} dropped the connection ({name}) after a message it did "
                        "not accept: a bug in hobguard, please report it; reconnecting",
                        logging.ERROR,
                    )
                elif was:
                    self._report("disconnected", f"disconnected from {self.settings.url} ({name}); reconnecting")
                else:
                    self._report(
                        "closed-early",
                        f"the broker {self.settings.url} closed the connection before accepting it ({name}): a TLS "
                        "port reached with mqtt:// (use mqtts://), or a broker that refuses this client",
                    )
            if self._on_disconnected:
                self._on_disconnected(str(reason))
        except Exception:
            log.exception("error after disconnecting")

    def _message_cb(self, client: paho.Client, userdata: Any, message: Message) -> None:
        try:
            self._on_message(message)
        except Exception:
            log.exception("error handling a message on %s", repr(getattr(message, "topic", "?"))[:120])


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """The TLS context for `settings` (config.build has checked the files)."""
    context = ssl.create_default_context(cafile=settings.ca_cert)
    if settings.client_cert:
        context.load_cert_chain(settings.client_cert, settings.client_key, password=_no_passphrase)
    if settings.tls_insecure:
        # For test brokers with throwaway certificates only.
        context.check_hostname = False
    return context


def _no_passphrase() -> str:
    # A service cannot type a passphrase: without this, OpenSSL would ask
    # on the terminal (and a service would hang).
    raise ValueError("the client key is encrypted with a passphrase")


def _reason_name(reason: Any) -> str:
    getter = getattr(reason, "getName", None)
    return str(getter() if getter else reason)


def describe_connect_error(err: OSError, settings: MqttSettings) -> tuple[str, str]:
    """(problem key, one line saying what is wrong and what to do)."""
    where = f"{settings.host}:{settings.port}"
    url = settings.url
    if isinstance(err, socket.gaierror):
        return "dns", (
            f"cannot reach the MQTT broker {url}: the host name {settings.host!r} is not known "
            f"({err.strerror or err}); check the host in --broker ([mqtt] broker)"
        )
    if isinstance(err, ssl.SSLCertVerificationError):
        text = err.verify_message or str(err)
        if "hostname" in text.lower() or "ip address mismatch" in text.lower():
            return "tls-name", (
                f"cannot connect to {url}: the broker's TLS certificate is not made out to {settings.host!r} "
                f"({text}); connect with the name the certificate names"
            )
        return "tls-trust", (
            f"cannot connect to {url}: the broker's TLS certificate is not trusted ({text}); give the CA that "
            "signed it with --ca-cert FILE ([mqtt] ca_cert)"
        )
    if settings.tls and isinstance(err, (ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        reason = getattr(err, "reason", None) or err.strerror or err
        return "tls", (
            f"cannot connect to {url}: the TLS handshake failed ({reason}); is {settings.port} the "
            "broker's TLS port (usually 8883)? For a port without TLS use mqtt://"
        )
    if isinstance(err, ConnectionResetError):
        return "reset", (
            f"cannot connect to {url}: the broker closed the connection at once; a TLS port reached with mqtt:// "
            "(use mqtts://)?"
        )
    if isinstance(err, ConnectionRefusedError):
        return "refused", (
            f"cannot connect to {url}: nothing accepts connections on {where} (connection refused); is the "
            "broker running, and is the port right (1883 without TLS, 8883 with)?"
        )
    if isinstance(err, (socket.timeout, TimeoutError)):
        return "timeout", (
            f"cannot connect to {url}: no answer from {where}; a wrong address, or a firewall drops the connection"
        )
    if err.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "unreachable", f"cannot connect to {url}: {where} is unreachable ({err.strerror}); check the network"
    return f"oserror:{err.errno}", f"cannot connect to {url}: {err.strerror or err}"


def describe_refusal(reason: Any, settings: MqttSettings) -> tuple[str, str]:
    name = _reason_name(reason)
    url = settings.url
    if name in ("Not authorized", "Bad user name or password"):
        who = f"as user {settings.username!r}" if settings.username else "without a user name"
        return "auth", (
            f"the broker {url} refused the login {who} ({name}): check the user name (--username) and the "
            "password (--password-file, HOBGUARD_MQTT_PASSWORD or [mqtt] password_file)"
        )
    if name == "Client identifier not valid":
        return "client-id", (
            f"the broker {url} does not accept the client id {settings.client_id!r}: set another with [mqtt] client_id"
        )
    if name in ("Unsupported protocol version", "Unacceptable protocol version"):
        return "protocol", (
            f"the broker {url} does not speak MQTT 5, which hobguard needs (to refuse retained commands): use "
            "Mosquitto 1.6 or later, EMQX, VerneMQ or HiveMQ"
        )
    if name in ("Server unavailable", "Server busy", "Server shutting down"):
        return "unavailable", f"the broker {url} is not accepting connections now ({name}); retrying"
    if name == "Banned":
        return "banned", f"the broker {url} has banned this client ({name}): see the broker's configuration"
    return "refused:" + name, f"the broker {url} refused the connection: {name}"


class _NotConnectedNoise(logging.Filter):
    """paho 2.2 logs "Client is not connected" at ERROR when its thread loops
    once more after a disconnect; our own disconnect log line says it better."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


def _no_delay(client: paho.Client) -> None:
    """Send small packets at once: without TCP_NODELAY, Nagle's algorithm and
    the broker's delayed ACK hold a state update back by ~40 ms."""
    sock = client.socket()
    if not isinstance(sock, socket.socket):
        return  # none yet (or a websocket wrapper)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass

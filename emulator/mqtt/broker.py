"""IoT Core's data plane: an MQTT 3.1.1 + MQTT 5 broker over mutual TLS, on asyncio.

`Broker(emulator)` is the `emulator.broker` component. It runs its own event loop in a daemon
thread and listens on 127.0.0.1 only. Each client presents an X.509 certificate at the TLS
handshake; `emulator.iot.authenticate` maps it to a registered ACTIVE certificate and
`emulator.iot.authorize` evaluates the attached IoT policies for iot:Connect, iot:Publish,
iot:RetainPublish, iot:Subscribe and iot:Receive, as AWS IoT does.

A QoS 1 PUBLISH is acknowledged only after the consumer (the rules engine) has accepted the
message (emulator/iot/messages.py), so nothing acknowledged is lost. What AWS refuses is refused
the same way: QoS 2, payloads over 128 KB, topics over 256 bytes or 7 slashes or reserved for
AWS IoT (emulator/mqtt/topics.py), client ids over 128 bytes ("AWS IoT Core quotas" and "AWS IoT
differences from MQTT specifications" in the IoT developer guide). Lifecycle events follow
"life-cycle-events". iot:Receive is evaluated at each delivery, queued messages included.

Bounded resources (limits.py): connections below the descriptor limit, CONNECT within 10 s of
accept, per-connection outbound flow control, and queued messages per session and in all.

Durable state under `<data_dir>/mqtt/` (persistence/records.py, one file per item): retained
messages (retained.py, written before the PUBLISH is routed) and persistent sessions
(session.py: subscriptions written before the SUBACK; queued and unacknowledged QoS 1 messages
written within half a second of a change, and all of them at a clean stop). Shared
subscriptions ("$share/{ShareName}/{TopicFilter}") give each message to one member of a group.

Speed comes from an asyncio `Protocol` that parses every complete packet of one read and
writes all PUBACKs of that read in one write.

Each `Connection` (connection.py) runs its client's protocol; the broker keeps what connections
share and offers it through public methods: `connection_opened` / `connect_received` /
`connection_lost`, `open_session` and `session_started` (CONNECT), `subscribe` /
`unsubscribe`, `acknowledged` and `drain` (outbound flow), `accept` + `distribute` (a client's
PUBLISH group), and `ingest(message)` = accept, then deliver: the one way in for wills,
lifecycle events, iot-data Publish (data_api.py) and any other service.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from emulator.iot.messages import NO_CLIENT_ID, InboundMessage, MessageConsumer
from emulator.mqtt import codec, data_api
from emulator.mqtt.activity import ActivityLog
from emulator.mqtt.connection import Connection
from emulator.mqtt.limits import (
    BASIC_INGEST_PREFIX,
    CONNECT_TIMEOUT_S,
    HOST,
    MAX_QUEUED_BYTES_PER_SESSION,
    MAX_QUEUED_BYTES_TOTAL,
    MAX_QUEUED_PER_SESSION,
    MIN_KEEP_ALIVE_S,
    QUEUED_PER_SECOND_PER_ACCOUNT,
    RC_KEEP_ALIVE_TIMEOUT,
    RC_NOT_AUTHORIZED,
    RC_QOS_NOT_SUPPORTED,
    RC_SERVER_SHUTTING_DOWN,
    RC_SESSION_TAKEN_OVER,
    RC_TOPIC_FILTER_INVALID,
    mqtt_connection_limit,
    shared_subscription,
    shared_subscription_error,
    topic_limit_error,
)
from emulator.mqtt.retained import RetainedStore
from emulator.mqtt.session import QueuedMessage, Session
from emulator.mqtt.topics import publish_topic_error
from emulator.persistence.records import RecordFiles
from emulator.shadow.messages import OutboundMessage, is_shadow_request

log = logging.getLogger(__name__)

SESSION_KIND = "mqtt-persistent-session"

# Properties a broker forwards from a PUBLISH to its subscribers (MQTT 5 section 3.3.2.3).
_FORWARDED_PROPERTIES = (
    codec.PAYLOAD_FORMAT_INDICATOR,
    codec.MESSAGE_EXPIRY_INTERVAL,
    codec.CONTENT_TYPE,
    codec.RESPONSE_TOPIC,
    codec.CORRELATION_DATA,
    codec.USER_PROPERTY,
)

# What a topic's messages go to: (session, options) of each plain subscription, and the
# members of each matching shared subscription group.
_Route = tuple[list[tuple[Session, int]], list[list[tuple[Session, int]]]]


def _forwarded(props: dict | None) -> dict:
    return {k: props[k] for k in _FORWARDED_PROPERTIES if k in props} if props else {}


class _Acceptor(asyncio.Protocol):
    """Accepts TCP, then upgrades to TLS with the IoT registry's current server context."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.broker._admit():
            transport.abort()  # over the connection cap: the descriptor is freed at once
            return
        self.broker._handshakes[transport] = None
        transport.pause_reading()
        task = self.broker._loop.create_task(self.broker._upgrade(transport))
        self.broker._tasks.add(task)
        task.add_done_callback(self.broker._tasks.discard)


class Broker:
    """The emulator's MQTT broker (component attribute `emulator.broker`)."""

    def __init__(
        self,
        emulator: Any,
        consumer: MessageConsumer | None = None,
        port: int | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.emulator = emulator
        self._consumer = consumer
        self._requested_port = port if port is not None else emulator._requested_mqtt_port
        self.port: int | None = None
        self.account_id: str = emulator.account_id
        self.region: str = emulator.region
        self.min_keep_alive_s = MIN_KEEP_ALIVE_S
        self.activity = ActivityLog(emulator)
        self.sessions: dict[str, Session] = {}
        self.connections: dict[str, Connection] = {}  # client id -> live connection
        # The emulator's --host: MQTT listens where the AWS endpoint does.
        self.host: str = getattr(emulator, "host", None) or HOST
        # Durable state under <data_dir>/mqtt/ (in memory for a broker built without one).
        data_dir = getattr(emulator, "data_dir", None)
        durable = not getattr(emulator, "ephemeral", False)
        state = Path(data_dir) / "mqtt" if data_dir is not None else None
        self.retained = RetainedStore(
            state / "retained" if state else None, Path(data_dir) if data_dir else None, durable
        )
        self._session_files = (
            RecordFiles(state / "sessions", SESSION_KIND, Path(data_dir), durable)
            if state
            else None
        )
        self._stored_sessions: set[str] = set()  # client ids with a record on disk
        self._dirty_sessions: set[str] = set()  # persistent sessions changed since written
        self._writer: ThreadPoolExecutor | None = None  # one thread: writes stay in order
        self._flushing: Future | None = None  # the periodic write of dirty sessions under way
        self._pending: set[Connection] = set()  # TLS done, maybe no CONNECT yet
        # Descriptor bounds: connections after their TLS handshake, handshakes under way, and
        # the caps (limits.mqtt_connection_limit); half of the cap at most for connections that
        # have not sent CONNECT, so silent sockets cannot lock devices out.
        self._open: set[Connection] = set()
        self._handshakes: dict[asyncio.BaseTransport, None] = {}  # oldest first
        self.max_connections = max_connections or mqtt_connection_limit()
        self.max_unidentified = max(1, self.max_connections // 2)
        self.shed_connections = 0  # closed at accept, or to make room, by the caps
        self._shed_logged_at = 0.0
        # topic -> (matching (session, options), the members of each matching shared
        # subscription group); and every (filter, session, options, group): both rebuilt after
        # any subscription change, so a PUBLISH costs one dict lookup.
        self._routes: dict[str, _Route] = {}
        self._subscriptions: list[tuple[str, Session, int, str | None]] | None = None
        self._versions: dict[str, int] = {}
        self._delayed_wills: dict[str, asyncio.TimerHandle] = {}
        # Queue bounds (limits.py): payload bytes queued in all sessions, and the account's
        # queued-messages-per-second token bucket.
        self._queued_bytes = 0
        self._queue_tokens = float(QUEUED_PER_SECOND_PER_ACCOUNT)
        self._queue_refilled = time.monotonic()
        self.dropped_messages = 0
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id: int | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._listening = False
        self._sweeper: asyncio.Task | None = None
        emulator.broker = self
        if emulator.gateway is not None:
            data_api.register(emulator.gateway, self)

    # Components found at call time (emulator/README.md) --------------------------------
    @property
    def iot(self) -> Any:
        return self.emulator.iot

    @property
    def consumer(self) -> MessageConsumer:
        if self._consumer is not None:
            return self._consumer
        return self.emulator.rules

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account_id}:{kind}/{name}"

    # Life cycle -------------------------------------------------------------------------
    def start(self) -> Broker:
        self._load_state()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._loop_thread_id = threading.get_ident()
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    loop.create_server(
                        lambda: _Acceptor(self), self.host, self._requested_port, backlog=1024
                    )
                )
                self.port = self._server.sockets[0].getsockname()[1]
                self._sweeper = loop.create_task(self._sweep())
            except OSError as exc:
                failure.append(
                    OSError(
                        exc.errno,
                        f"cannot listen for MQTT on {self.host}:{self._requested_port} "
                        f"({exc.strerror});"
                        " is another emulator or broker running? Use mqtt_port=0 for a free port",
                    )
                )
                ready.set()
                return
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="mqtt-broker", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        self.iot.add_listener(self._certificate_changed)
        self._listening = True
        if self.emulator.shadow is not None:  # emulator/shadow/messages.py: the hand-off
            self.emulator.shadow.set_publisher(self.publish_as_iot_core)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or not self._listening:
            return
        self._listening = False

        def shutdown() -> None:
            self._server.close()
            self._sweeper.cancel()
            for conn in list(self.connections.values()) + list(self._pending):
                # The emulator is going away: a will would reach a pipeline that is stopping too.
                conn.will = None
                conn.close("SERVER_INITIATED_DISCONNECT", RC_SERVER_SHUTTING_DOWN)
            loop.call_later(0.2, loop.stop)

        loop.call_soon_threadsafe(shutdown)
        self._thread.join(10)
        self._save_all_sessions()

    # Messages in (emulator/iot/messages.py) ----------------------------------------------
    def ingest(
        self,
        message: InboundMessage,
        properties: codec.Properties | None = None,
        sender: str | None = None,
    ) -> None:
        """Hand `message` to the consumer, then deliver it to matching subscribers.

        Every message that does not come from a client's PUBLISH enters here: last wills,
        lifecycle events, iot-data Publish, and (through the same two steps) rule republish.
        Raises what the consumer raises: a message not accepted is delivered to nobody.
        Thread-safe: called from another thread, delivery runs on the broker's event loop; a
        retained message is stored before this returns (iot-data answers after it)."""
        self.accept((message,))
        if message.retain:
            self._retain(message, _forwarded(properties))
        self.deliver(message, properties, sender, stored=True)

    def accept(self, messages: Sequence[InboundMessage]) -> None:
        """The consumer's `accept_many`: returns once all are accepted, raises if not."""
        self.consumer.accept_many(messages)

    def deliver(
        self,
        message: InboundMessage,
        properties: codec.Properties | None = None,
        sender: str | None = None,
        stored: bool = False,
    ) -> None:
        """Deliver an accepted message to subscribers (any thread). Before start() or after
        stop() nobody is connected: delivering to nobody is what AWS would do. `stored`: a
        retained message was already kept by the caller."""
        if threading.get_ident() == self._loop_thread_id:
            self.distribute(message, properties, sender, stored)
            return
        if self._loop is None or not self._listening:
            log.debug("broker not running: %s has no subscribers", message.topic)
            return
        self._loop.call_soon_threadsafe(self.distribute, message, properties, sender, stored)

    def retain_refusal(self, topic: str, payload_size: int) -> str | None:
        """Why a retained PUBLISH is throttled (the account's retained-message quota), or None:
        asked before the message is accepted, by connection.py and data_api.py."""
        return self.retained.refusal(topic, payload_size)

    def _retain(self, message: InboundMessage, forwarded: dict) -> None:
        if message.user_properties and codec.USER_PROPERTY not in forwarded:
            # iot-data Publish carries user properties without MQTT properties.
            forwarded = {**forwarded, codec.USER_PROPERTY: list(message.user_properties)}
        if not self.retained.put(message.topic, message.payload, message.qos, forwarded):
            log.warning("retained message on %s not kept: retained-message quota", message.topic)

    def shadow_request(self, message: InboundMessage) -> None:
        """After a client's PUBLISH on `$aws/things/.../shadow/...` was accepted: the Device
        Shadow service's answers (accepted/rejected/delta/documents), published as IoT Core."""
        if self.emulator.shadow is None or not is_shadow_request(message.topic):
            return
        answers = self.emulator.shadow.handle(message.topic, message.payload, message.client_id)
        if answers:
            self.publish_as_iot_core(answers)

    def publish_as_iot_core(self, messages: Sequence[OutboundMessage]) -> None:
        """Messages IoT Core itself publishes (shadow answers): to the rules engine, then to
        subscribers, each checked for iot:Receive. Any thread."""
        now = int(time.time() * 1000)
        for out in messages:
            self._ingest_own(out.topic, out.payload, out.qos, now, "shadow message")

    def _ingest_own(
        self, topic: str, payload: bytes, qos: int, timestamp_ms: int, what: str
    ) -> None:
        """`ingest` a message IoT Core itself publishes (no client id, no principal); one the
        consumer refuses is logged (as `what`), not raised to the caller."""
        message = InboundMessage(
            topic, payload, qos, NO_CLIENT_ID, None, timestamp_ms, self.account_id, self.region
        )
        try:
            self.ingest(message)
        except Exception:
            log.exception("%s on %s not accepted by the consumer", what, topic)

    def _certificate_changed(self, certificate_id: str, status: str | None) -> None:
        """IotCore's listener (another thread): drop connections of a no longer ACTIVE cert."""
        if status == "ACTIVE" or not self._listening:
            return
        try:
            self._loop.call_soon_threadsafe(self._drop_certificate, certificate_id, status)
        except RuntimeError:  # the broker stopped meanwhile
            pass

    def _drop_certificate(self, certificate_id: str, status: str | None) -> None:
        for conn in list(self.connections.values()):
            if conn.principal_id == certificate_id:
                self.activity.record(
                    "DISCONNECT",
                    conn.client_id,
                    f"certificate is {status or 'DELETED'}",
                    principal=certificate_id,
                )
                conn.close("AUTH_ERROR", RC_NOT_AUTHORIZED)

    # TLS --------------------------------------------------------------------------------
    def _admit(self) -> bool:
        """Whether one more TCP connection fits under the caps (checked at accept).

        When the caps are reached, the oldest connection that has not sent CONNECT (a TLS
        handshake under way, or a silent socket after it) is closed to make room: sockets held
        open on purpose then cannot lock out a device, which sends CONNECT within milliseconds.
        With no such connection to close, the new one is refused."""
        unidentified = len(self._handshakes) + len(self._pending)
        if (
            len(self._handshakes) + len(self._open) < self.max_connections
            and unidentified < self.max_unidentified
        ):
            return True
        self.shed_connections += 1
        admitted = unidentified > 0 and self._shed_oldest_unidentified()
        now = time.monotonic()
        if now - self._shed_logged_at > 10:
            self._shed_logged_at = now
            log.warning(
                "MQTT connection caps reached (%d open, %d without CONNECT; limits %d and %d, "
                "from the process's descriptor limit): %s; %d shed so far",
                len(self._handshakes) + len(self._open),
                unidentified,
                self.max_connections,
                self.max_unidentified,
                "the oldest connection without CONNECT was closed"
                if admitted
                else "a new connection was refused",
                self.shed_connections,
            )
        return admitted

    def _shed_oldest_unidentified(self) -> bool:
        if self._handshakes:
            oldest = next(iter(self._handshakes))
            del self._handshakes[oldest]
            oldest.abort()  # its _upgrade fails and frees it
            return True
        if self._pending:
            self._drop_unidentified(min(self._pending, key=lambda c: c.created))
            return True
        return False

    def _drop_unidentified(self, conn: Connection) -> None:
        """Close a connection that sent no CONNECT. Aborted, not closed: a graceful TLS
        shutdown waits up to 30 s for the peer's close_notify, keeping the descriptor."""
        self._pending.discard(conn)
        conn.close("CLIENT_ERROR")
        if conn.transport is not None:
            conn.transport.abort()

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        try:
            context: ssl.SSLContext = self.iot.server_ssl_context()
            if context.num_tickets:
                # Session tickets cost 20-25% of handshake CPU and are useless here.
                context.num_tickets = 0
            conn = Connection(self)
            tls = await self._loop.start_tls(
                transport,
                conn,
                context,
                server_side=True,
                ssl_handshake_timeout=CONNECT_TIMEOUT_S,
            )
        except Exception as exc:
            self._handshakes.pop(transport, None)
            # A certificate the registry's CA store does not trust fails here, as on AWS.
            peer = transport.get_extra_info("peername")
            self.activity.record("TLS_HANDSHAKE_FAILED", None, f"{peer}: {exc}")
            transport.abort()
            return
        self._handshakes.pop(transport, None)
        conn.connection_made(tls)

    # Connections (event loop thread) ----------------------------------------------------
    def connection_opened(self, conn: Connection) -> None:
        """A connection finished its TLS handshake; it counts as unidentified until CONNECT."""
        self._open.add(conn)
        self._pending.add(conn)

    def connect_received(self, conn: Connection) -> None:
        """The connection sent CONNECT: it no longer counts against the unidentified cap."""
        self._pending.discard(conn)

    def open_session(self, conn: Connection, clean_start: bool, expiry_s: int) -> bool:
        """Give an authorized CONNECT its session; return whether a session was resumed.

        A second connection with the same client id takes over ("life-cycle-events"), and a
        reconnect cancels the delayed will of the previous connection (MQTT 5 Will Delay)."""
        client_id = conn.client_id
        delayed_will = self._delayed_wills.pop(client_id, None)
        if delayed_will is not None:
            delayed_will.cancel()
        previous = self.connections.get(client_id)
        if previous is not None and previous is not conn:
            previous.close("DUPLICATE_CLIENTID", RC_SESSION_TAKEN_OVER)
            self._connection_closed(previous)
        session = self.sessions.get(client_id)
        if clean_start and session is not None:
            self._discard_session(session)
            session = None
        session_present = session is not None
        if session is None:
            session = Session(client_id, persistent=expiry_s > 0, expiry_s=expiry_s)
            self.sessions[client_id] = session
        else:
            session.persistent, session.expiry_s = expiry_s > 0, expiry_s
        session.connection = conn
        session.principal = conn.principal
        session.disconnected_at = None
        conn.session = session
        if session.persistent or client_id in self._stored_sessions:
            self._save_session(session)
        self.connections[client_id] = conn
        self._versions[client_id] = conn.version_number = self._versions.get(client_id, 0) + 1
        return session_present

    def session_started(self, conn: Connection) -> None:
        """After the CONNACK: resend what a resumed session has in flight, send its queue,
        and publish the "connected" lifecycle event."""
        session = conn.session
        for packet_id, queued in list(session.inflight.items()):
            # iot:Receive again for the principal that resumes the session: another
            # certificate may have taken the client id over, or a Deny been attached meanwhile.
            if not self._may_receive(session, queued.topic):
                del session.inflight[packet_id]
                continue
            conn.send(self._encode_for(conn, queued, packet_id, dup=True))
        self.drain(session)
        self._lifecycle(conn, "connected")

    def connect_failed(self, conn: Connection) -> None:
        """ "Connect attempt failure event": a certificate refused by its policies."""
        body = {
            "clientId": conn.client_id,
            "timestamp": int(time.time() * 1000),
            "eventType": "connect_failed",
            "failureType": "AUTHORIZATION_FAILURE",
            "principalIdentifier": conn.principal_id,
        }
        self._system_event(f"$aws/events/presence/connect_failed/{conn.client_id}", body)

    def acknowledged(self, session: Session, packet_id: int) -> None:
        """The client's PUBACK: the message leaves the in-flight window, queued ones follow."""
        if session.inflight.pop(packet_id, None) is not None and session.persistent:
            self._dirty_sessions.add(session.client_id)
        if session.queue:
            self.drain(session)

    def connection_lost(self, conn: Connection) -> None:
        """The transport is gone: its descriptor is free, the disconnect is handled once."""
        self._open.discard(conn)
        self._connection_closed(conn)

    def connection_counts(self) -> dict[str, int]:
        """Descriptors in use: TLS handshakes under way, connections after it, and those of
        them that have not sent CONNECT (what the caps of limits.py bound)."""
        return {
            "handshakes": len(self._handshakes),
            "open": len(self._open),
            "without_connect": len(self._pending),
        }

    def open_client_ids(self) -> list[str | None]:
        """The client id of each connection past its TLS handshake (None before CONNECT)."""
        return [conn.client_id for conn in self._open]

    # SUBSCRIBE / UNSUBSCRIBE ---------------------------------------------------------
    def subscribe(self, conn: Connection, packet: codec.Subscribe) -> None:
        v5 = conn.v5
        codes = []
        granted: list[tuple[str, int, bool]] = []
        iot = self.iot
        for topic_filter, options in packet.filters:
            qos = options & 0x03
            refusal = None
            shared = shared_subscription(topic_filter)
            matched = shared[1] if shared else topic_filter
            if not codec.valid_topic_filter(matched):
                refusal = ("invalid topic filter", RC_TOPIC_FILTER_INVALID)
            elif qos == 2:
                # "AWS IoT differences from MQTT specifications": QoS 2 is not supported and
                # AWS sends no SUBACK at all; a failure code tells the client without a hang.
                refusal = ("QoS 2 is not supported by AWS IoT", RC_QOS_NOT_SUPPORTED)
            else:
                problem = (
                    shared_subscription_error(*shared) if shared else topic_limit_error(matched)
                )
                if problem:
                    refusal = (problem, RC_TOPIC_FILTER_INVALID)
            if refusal:
                self.activity.record(
                    "SUBSCRIBE_REFUSED",
                    conn.client_id,
                    refusal[0],
                    "iot:Subscribe",
                    self.arn("topicfilter", topic_filter),
                    principal=conn.principal_id,
                )
                codes.append(refusal[1] if v5 else 0x80)
                continue
            decision = iot.authorize(conn.principal, conn.client_id, "iot:Subscribe", topic_filter)
            if not decision.allowed:
                self.activity.record(
                    "SUBSCRIBE_DENIED",
                    conn.client_id,
                    "not authorized",
                    decision.action,
                    decision.resource,
                    decision.reason,
                    conn.principal_id,
                )
                codes.append(RC_NOT_AUTHORIZED if v5 else 0x80)
                continue
            existed = topic_filter in conn.session.subscriptions
            conn.session.subscriptions[topic_filter] = options
            codes.append(qos)
            granted.append((topic_filter, options, existed))
        self._subscriptions_changed()
        if granted:
            self._save_session(conn.session, wait=True)  # durable before the SUBACK
        conn.send(codec.encode_suback(packet.packet_id, codes, v5))
        if granted:
            self._subscription_event(conn, "subscribed", [g[0] for g in granted])
        for topic_filter, options, existed in granted:
            self._send_retained(conn.session, topic_filter, options, existed)

    def _send_retained(self, session: Session, topic_filter: str, options: int, existed: bool):
        """The retained message a new subscription receives, flagged RETAIN.

        AWS IoT differs from MQTT here: "To receive a retained message upon subscription, the
        topic filter in the subscription request must match the retained message topic
        exactly" (a wildcard filter gets later messages only), and "Shared subscriptions don't
        receive retained messages" (https://docs.aws.amazon.com/iot/latest/developerguide/
        mqtt.html#mqtt-retain and #mqtt5-shared-subscription)."""
        retain_handling = (options >> 4) & 0x03
        if retain_handling == 2 or (retain_handling == 1 and existed):
            return
        if "+" in topic_filter or "#" in topic_filter or shared_subscription(topic_filter):
            return
        retained = self.retained.get(topic_filter)
        if retained is None or not self._may_receive(session, topic_filter):
            return
        qos = min(options & 0x03, retained.qos)
        props = retained.props_for_delivery(int(time.time() * 1000))
        self._send_to(session, QueuedMessage(topic_filter, retained.payload, qos, True, props))

    def unsubscribe(self, conn: Connection, packet: codec.Unsubscribe) -> None:
        codes = []
        for topic_filter in packet.filters:
            existed = conn.session.subscriptions.pop(topic_filter, None) is not None
            codes.append(0x00 if existed else 0x11)
        self._subscriptions_changed()
        self._save_session(conn.session, wait=True)
        conn.send(codec.encode_unsuback(packet.packet_id, codes, conn.v5))
        self._subscription_event(conn, "unsubscribed", list(packet.filters))

    # Delivery ---------------------------------------------------------------------------
    def distribute(
        self,
        message: InboundMessage,
        props: dict | None,
        sender: str | None,
        stored: bool = False,
    ) -> None:
        """Route one accepted message to subscribers; keep it if it is retained (unless the
        caller did: `stored`). Event loop thread only (a Connection's PUBLISH path; `deliver`
        from elsewhere)."""
        topic = message.topic
        forwarded = _forwarded(props)
        if message.retain and not stored:
            # "mqtt retained messages": an empty payload deletes the retained message.
            self._retain(message, forwarded)
        if topic.startswith(BASIC_INGEST_PREFIX):
            return
        route = self._routes.get(topic)
        if route is None:
            route = self._match(topic)
        routes, groups = route
        if groups:
            self._distribute_shared(message, forwarded, groups)
        if not routes:
            return
        for session, options in routes:
            if options & 0x04 and session.client_id == sender:  # MQTT 5 No Local
                continue
            conn = session.connection
            # iot:Receive is evaluated when a message is delivered, for the principal of the
            # connection that receives it: now for a connected client, at reconnection for a
            # message kept by an offline persistent session (`_drain`).
            if conn is not None and not conn.closing and not self._may_receive(session, topic):
                continue
            retain = message.retain and bool(options & 0x08)  # MQTT 5 Retain As Published
            qos = min(options & 0x03, message.qos)
            self._send_to(session, QueuedMessage(topic, message.payload, qos, retain, forwarded))

    def _distribute_shared(
        self, message: InboundMessage, forwarded: dict, groups: list[list[tuple[Session, int]]]
    ) -> None:
        """One member of each matching shared subscription group gets the message, at random
        among the connected members allowed to receive it; with none connected, a QoS 1 message
        waits in a persistent member's session ("Shared subscriptions message queuing",
        https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt5-shared-subscription);
        a QoS 0 message is dropped. RETAIN is not set on what members receive."""
        topic = message.topic
        for members in groups:
            online = [
                m for m in members if m[0].connection is not None and not m[0].connection.closing
            ]
            random.shuffle(online)
            chosen = next((m for m in online if self._may_receive(m[0], topic)), None)
            if chosen is None and not online:
                offline = [m for m in members if m[0].persistent]
                chosen = random.choice(offline) if offline else None
            if chosen is None:
                continue
            session, options = chosen
            qos = min(options & 0x03, message.qos)
            self._send_to(session, QueuedMessage(topic, message.payload, qos, False, forwarded))

    def _match(self, topic: str) -> _Route:
        subscriptions = self._subscriptions
        if subscriptions is None:
            subscriptions = self._subscriptions = []
            for session in self.sessions.values():
                for topic_filter, options in session.subscriptions.items():
                    shared = shared_subscription(topic_filter)
                    if shared:
                        subscriptions.append((shared[1], session, options, topic_filter))
                    else:
                        subscriptions.append((topic_filter, session, options, None))
        if len(self._routes) > 10_000:
            self._routes.clear()
        routes: list[tuple[Session, int]] = []
        groups: dict[str, list[tuple[Session, int]]] = {}
        for topic_filter, session, options, group in subscriptions:
            if codec.topic_matches(topic_filter, topic):
                if group is None:
                    routes.append((session, options))
                else:
                    # Subscriptions with the same "{ShareName}/{TopicFilter}" form one group.
                    groups.setdefault(group, []).append((session, options))
        route = (routes, list(groups.values()))
        self._routes[topic] = route
        return route

    def _subscriptions_changed(self) -> None:
        self._routes.clear()
        self._subscriptions = None

    def _may_receive(self, session: Session, topic: str) -> bool:
        decision = self.iot.authorize(session.principal, session.client_id, "iot:Receive", topic)
        if not decision.allowed:
            self.activity.record(
                "RECEIVE_DENIED",
                session.client_id,
                "not authorized",
                decision.action,
                decision.resource,
                decision.reason,
                getattr(session.principal, "certificate_id", None),
            )
        return decision.allowed

    def _send_to(self, session: Session, item: QueuedMessage) -> None:
        conn = session.connection
        if conn is None or conn.closing:
            # "MQTT persistent sessions": only QoS 1 messages wait for an offline client, at
            # the account's "Queued messages per second" rate.
            if session.persistent and item.qos == 1:
                if self._queue_rate_allows():
                    self._enqueue(session, item)
                else:
                    self._dropped(
                        session,
                        f"more than {QUEUED_PER_SECOND_PER_ACCOUNT} messages per second for "
                        "offline sessions (the quota 'Queued messages per second per account'): "
                        "new messages are dropped",
                    )
            return
        if conn.paused:
            # The client does not read what it is sent (the write buffer is over its high-water
            # mark): QoS 0 is at most once and is dropped; QoS 1 waits for `resume_writing`.
            if item.qos:
                self._enqueue(session, item)
            else:
                self._dropped(session, "QoS 0 message dropped: the client is not reading")
            return
        if item.qos and (session.queue or len(session.inflight) >= conn.send_quota):
            # Quotas: at most 100 unacknowledged outbound QoS 1 messages per client (and no
            # more than an MQTT 5 client's Receive Maximum); the rest wait for PUBACKs.
            self._enqueue(session, item)
            return
        packet_id = None
        if item.qos:
            packet_id = session.allocate_packet_id()
            session.inflight[packet_id] = item
            if session.persistent:
                self._dirty_sessions.add(session.client_id)
        conn.send(self._encode_for(conn, item, packet_id))

    def _enqueue(self, session: Session, item: QueuedMessage) -> None:
        """Keep `item` for later delivery, within the queue bounds; AWS drops the new message
        when a session's queue is full (limits.py)."""
        size = len(item.payload)
        if (
            len(session.queue) >= MAX_QUEUED_PER_SESSION
            or session.queued_bytes + size > MAX_QUEUED_BYTES_PER_SESSION
            or self._queued_bytes + size > MAX_QUEUED_BYTES_TOTAL
        ):
            self._dropped(
                session,
                f"queue full ({len(session.queue)} messages, {session.queued_bytes} bytes; "
                f"limits {MAX_QUEUED_PER_SESSION} messages, {MAX_QUEUED_BYTES_PER_SESSION} "
                f"bytes per session, {MAX_QUEUED_BYTES_TOTAL} bytes for all sessions): "
                "new messages are dropped",
            )
            return
        session.queue.append(item)
        session.queued_bytes += size
        self._queued_bytes += size
        if session.persistent:
            self._dirty_sessions.add(session.client_id)

    def _dequeue(self, session: Session) -> QueuedMessage:
        item = session.queue.popleft()
        size = len(item.payload)
        session.queued_bytes -= size
        self._queued_bytes -= size
        if session.persistent:
            self._dirty_sessions.add(session.client_id)
        return item

    def _queue_rate_allows(self) -> bool:
        """The quotas page's "Queued messages per second per account" (a token bucket)."""
        now = time.monotonic()
        tokens = min(
            QUEUED_PER_SECOND_PER_ACCOUNT,
            self._queue_tokens + (now - self._queue_refilled) * QUEUED_PER_SECOND_PER_ACCOUNT,
        )
        self._queue_refilled = now
        if tokens < 1:
            self._queue_tokens = tokens
            return False
        self._queue_tokens = tokens - 1
        return True

    def _dropped(self, session: Session, reason: str) -> None:
        """Count a message not delivered; say so once per episode (until the queue is empty or
        the client reads again), not once per message."""
        self.dropped_messages += 1
        if session.dropping:
            return
        session.dropping = True
        self.activity.record(
            "MESSAGE_DROPPED",
            session.client_id,
            reason,
            principal=getattr(session.principal, "certificate_id", None),
        )

    def drain(self, session: Session) -> None:
        """Send queued messages while the client has room for unacknowledged ones."""
        conn = session.connection
        if conn is None or conn.closing:
            return
        queue = session.queue
        while queue and len(session.inflight) < conn.send_quota and not conn.paused:
            item = self._dequeue(session)
            if not self._may_receive(session, item.topic):
                continue  # iot:Receive at delivery, for the connection that receives
            packet_id = session.allocate_packet_id()
            session.inflight[packet_id] = item
            conn.send(self._encode_for(conn, item, packet_id))
        if not queue:
            session.dropping = False

    @staticmethod
    def _encode_for(
        conn: Connection, item: QueuedMessage, packet_id: int | None, dup: bool = False
    ) -> bytes:
        return codec.encode_publish(
            item.topic, item.payload, item.qos, item.retain, packet_id, conn.v5, dup, item.props
        )

    # Disconnect, will, lifecycle --------------------------------------------------------
    def _connection_closed(self, conn: Connection) -> None:
        self._pending.discard(conn)
        if not conn.connected or conn.released:
            return
        conn.released = True
        conn.closing = True
        client_id = conn.client_id
        if self.connections.get(client_id) is conn:
            del self.connections[client_id]
        reason = conn.disconnect_reason or "CONNECTION_LOST"
        conn.disconnect_reason = reason
        session = conn.session
        if session is not None and session.connection is conn:
            session.connection = None
            session.disconnected_at = time.monotonic()
            if not session.persistent:
                self._discard_session(session)
            else:
                self._save_session(session)  # its expiry counts from now, restarts included
        self.activity.record("DISCONNECT", client_id, reason, principal=conn.principal_id)
        will, conn.will = conn.will, None
        if will is not None:
            # MQTT 5 Will Delay Interval: the will waits, and a reconnect within the delay
            # cancels it (it never outlives the session: MQTT 5 section 3.1.3.2.2).
            delay = int(will.properties.get(codec.WILL_DELAY_INTERVAL, 0))
            if session is not None and session.persistent:
                delay = min(delay, session.expiry_s)
            else:
                delay = 0
            if delay:
                self._delayed_wills[client_id] = self._loop.call_later(
                    delay, self._publish_delayed_will, conn, will
                )
            else:
                self._publish_will(conn, will)
        self._lifecycle(conn, "disconnected")

    def _discard_session(self, session: Session) -> None:
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        self._queued_bytes -= session.queued_bytes
        session.queued_bytes = 0
        session.queue.clear()
        self._subscriptions_changed()
        if session.client_id in self._stored_sessions:
            self._write_sessions([(session.client_id, None)])

    # Durable sessions and retained messages (<data_dir>/mqtt/) -----------------------------
    def _load_state(self) -> None:
        """Before listening: the retained messages, and the persistent sessions that have not
        expired (AWS keeps a session up to its expiry after the disconnect)."""
        self.retained.load()
        if self._session_files is None:
            return
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqtt-state")
        now = time.time()
        expired = []
        for record in self._session_files.load():
            client_id = record["key"]
            self._stored_sessions.add(client_id)
            session = Session.from_record(client_id, record, now)
            if session is None:
                expired.append((client_id, None))
                continue
            self.sessions[client_id] = session
            self._queued_bytes += session.queued_bytes
        if expired:
            self._write_sessions(expired, wait=True)
        self._subscriptions_changed()
        if self.sessions:
            log.info("%d persistent MQTT session(s) resumed from disk", len(self.sessions))

    def _save_session(self, session: Session, wait: bool = False) -> None:
        """Write a persistent session's record (remove it for one no longer persistent)."""
        if self._session_files is None:
            return
        self._dirty_sessions.discard(session.client_id)
        if session.persistent:
            self._write_sessions([(session.client_id, session.to_record())], wait)
        elif session.client_id in self._stored_sessions:
            self._write_sessions([(session.client_id, None)], wait)

    def _write_sessions(self, changes: list, wait: bool = False) -> Future | None:
        """Hand records to the writer thread (in order); `wait` for the disk."""
        files, writer = self._session_files, self._writer
        if files is None or writer is None:
            return None
        for client_id, record in changes:
            if record is None:
                self._stored_sessions.discard(client_id)
            else:
                self._stored_sessions.add(client_id)
        future: Future = writer.submit(files.save_many, changes)
        future.add_done_callback(_log_write_failure)
        if wait:
            future.result()
        return future

    def _flush_sessions(self) -> None:
        """Write the persistent sessions whose queue or in-flight window changed.

        While the previous flush is still being written, the sessions stay dirty for the next
        tick: a large queue that changes all the time is written as often as the disk allows,
        instead of piling up writes of every version of it behind each other."""
        if self._flushing is not None and not self._flushing.done():
            return
        dirty, self._dirty_sessions = self._dirty_sessions, set()
        changes = []
        for client_id in dirty:
            session = self.sessions.get(client_id)
            if session is not None and session.persistent:
                changes.append((client_id, session.to_record()))
        if changes:
            self._flushing = self._write_sessions(changes)

    def _save_all_sessions(self) -> None:
        """At a clean stop: every persistent session as it is now (the loop has stopped)."""
        if self._writer is None:
            return
        self._dirty_sessions = {s.client_id for s in self.sessions.values() if s.persistent}
        self._flushing = None  # the writer runs what it has in order, then this last version
        self._flush_sessions()
        self._writer.shutdown(wait=True)
        self._writer = None

    def _publish_delayed_will(self, conn: Connection, will: codec.Will) -> None:
        self._delayed_wills.pop(conn.client_id, None)
        self._publish_will(conn, will)

    def _publish_will(self, conn: Connection, will: codec.Will) -> None:
        """Last will: published as if the client had published it ("mqtt-lwt")."""
        refusal = publish_topic_error(will.topic, will.retain)
        if refusal is not None:
            # A will is published as if the client had published it: a reserved or invalid
            # topic is refused as its PUBLISH would be (it must not forge lifecycle events).
            self.activity.record(
                "PUBLISH_DENIED",
                conn.client_id,
                f"last will not published: {refusal[1]}",
                "iot:Publish",
                self.arn("topic", will.topic),
                principal=conn.principal_id,
            )
            return
        iot = self.iot
        decision = iot.authorize(conn.principal, conn.client_id, "iot:Publish", will.topic)
        if decision.allowed and will.retain:
            decision = iot.authorize(
                conn.principal, conn.client_id, "iot:RetainPublish", will.topic
            )
        if not decision.allowed or will.qos == 2:
            self.activity.record(
                "PUBLISH_DENIED",
                conn.client_id,
                "last will not published",
                decision.action,
                decision.resource,
                decision.reason,
                conn.principal_id,
            )
            return
        user_properties = tuple(will.properties.get(codec.USER_PROPERTY, ()))
        message = InboundMessage(
            will.topic,
            will.payload,
            will.qos,
            conn.client_id,
            conn.principal_id,
            int(time.time() * 1000),
            self.account_id,
            self.region,
            will.retain,
            user_properties,
        )
        try:
            self.ingest(message, will.properties, conn.client_id)
        except Exception:
            log.exception("last will on %s not accepted by the consumer", message.topic)

    def _lifecycle(self, conn: Connection, event_type: str) -> None:
        """Presence events on $aws/events/presence/<connected|disconnected>/<clientId>."""
        body: dict[str, Any] = {
            "clientId": conn.client_id,
            "timestamp": int(time.time() * 1000),
            "eventType": event_type,
            "sessionIdentifier": conn.session_identifier,
            "principalIdentifier": conn.principal_id,
        }
        if event_type == "disconnected":
            body["clientInitiatedDisconnect"] = conn.client_initiated
            body["disconnectReason"] = conn.disconnect_reason
        body["ipAddress"] = conn.ip_address
        body["versionNumber"] = conn.version_number
        self._system_event(f"$aws/events/presence/{event_type}/{conn.client_id}", body)

    def _subscription_event(self, conn: Connection, event_type: str, topics: list[str]) -> None:
        """ "Subscribe/Unsubscribe events" on $aws/events/subscriptions/<type>/<clientId>."""
        body = {
            "clientId": conn.client_id,
            "timestamp": int(time.time() * 1000),
            "eventType": event_type,
            "sessionIdentifier": conn.session_identifier,
            "principalIdentifier": conn.principal_id,
            "topics": topics,
        }
        self._system_event(f"$aws/events/subscriptions/{event_type}/{conn.client_id}", body)

    def _system_event(self, topic: str, body: dict[str, Any]) -> None:
        client_id = body["clientId"]
        if not client_id or "#" in client_id or "+" in client_id:
            return  # "Client IDs that contain # or + do not receive lifecycle events."
        self._ingest_own(topic, json.dumps(body).encode(), 0, body["timestamp"], "event")

    # Housekeeping -----------------------------------------------------------------------
    async def _sweep(self) -> None:
        """Keep-alive timeouts (1.5 x keep-alive), idle handshakes, expired sessions."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for conn in list(self.connections.values()):
                if conn.keep_alive and now - conn.last_seen > 1.5 * conn.keep_alive:
                    conn.close("MQTT_KEEP_ALIVE_TIMEOUT", RC_KEEP_ALIVE_TIMEOUT)
                    self._connection_closed(conn)
            for conn in list(self._pending):
                # No CONNECT within CONNECT_TIMEOUT_S of the TCP accept (limits.py).
                if now - conn.created > CONNECT_TIMEOUT_S:
                    self._drop_unidentified(conn)
            for session in list(self.sessions.values()):
                if (
                    session.connection is None
                    and session.disconnected_at is not None
                    and now - session.disconnected_at > session.expiry_s
                ):
                    self._discard_session(session)
            if self._dirty_sessions:
                self._flush_sessions()


def _log_write_failure(future: Future) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("writing MQTT session state failed: %s", exc)

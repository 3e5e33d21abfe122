"""One client's MQTT connection: an asyncio `Protocol` behind the TLS layer.

It buffers input, parses every complete packet of one read and writes everything that read
produced (PUBACKs above all) in one write: the per-message cost that makes a Python broker keep
up with the fastest publisher. The connection's own protocol is handled here: CONNECT
(authentication, iot:Connect, CONNACK) and PUBLISH (checks, iot:Publish, PUBACK). What several
connections share (sessions, subscriptions, retained messages, routing) belongs to the `Broker`
and is reached through its public methods only.

Group commit: the PUBLISH packets of one read that pass the checks are handed to the consumer
together (`accept_many`, emulator/iot/messages.py), so the rules engine spools their Firehose
records with one write; their PUBACKs follow that one durable hand-off. Any other packet, and
any refusal, first completes the pending group, so PUBACKs keep the order of the PUBLISHes
(MQTT 3.1.1 section 4.6, MQTT 5 section 4.6).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from emulator.iot.core import connect_attributes, server_name
from emulator.iot.messages import InboundMessage
from emulator.mqtt import codec
from emulator.mqtt.codec import MalformedPacket
from emulator.mqtt.limits import (
    CONNACK_5,
    CONNACK_311,
    HOST,
    MAX_CLIENT_ID_BYTES,
    MAX_KEEP_ALIVE_S,
    MAX_PACKET_BYTES,
    MAX_PAYLOAD_BYTES,
    OUTBOUND_HIGH_WATER_BYTES,
    OUTBOUND_INFLIGHT_LIMIT,
    OUTBOUND_LOW_WATER_BYTES,
    PERSISTENT_SESSION_EXPIRY_S,
    RC_MALFORMED,
    RC_NOT_AUTHORIZED,
    RC_PACKET_TOO_LARGE,
    RC_PROTOCOL_ERROR,
    RC_QOS_NOT_SUPPORTED,
    RC_QUOTA_EXCEEDED,
    RC_TOPIC_NAME_INVALID,
    RC_UNSPECIFIED,
    RECEIVE_MAXIMUM,
    TOPIC_ALIAS_MAXIMUM,
)
from emulator.mqtt.topics import INVALID, publish_topic_error

if TYPE_CHECKING:
    from emulator.mqtt.broker import Broker
    from emulator.mqtt.session import Session

log = logging.getLogger(__name__)


class Connection(asyncio.Protocol):
    """One client's MQTT connection (after the TLS handshake)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.v5 = False
        self.connected = False  # CONNACK with success sent
        self.closing = False
        self.client_id: str | None = None
        self.principal: Any = None
        self.cert_der: bytes | None = None
        self.domain_name: str | None = None  # the TLS SNI host name (iot:DomainName)
        self.session: Session | None = None
        self.keep_alive = 0
        self.created = self.last_seen = time.monotonic()
        self.will: codec.Will | None = None
        self.disconnect_reason: str | None = None
        self.client_initiated = False
        self.session_identifier = str(uuid.uuid4())
        self.ip_address = HOST
        self.version_number = 0
        self.topic_aliases: dict[int, str] = {}
        self.send_quota = OUTBOUND_INFLIGHT_LIMIT
        self.paused = False  # the transport's write buffer is over its high-water mark
        self.released = False  # the broker has run its disconnect handling (will, lifecycle)
        self._batching = False
        self._out: list[bytes] = []
        # Accepted-looking PUBLISHes of the current read: (message, packet id or None, props).
        self._inbound: list[tuple[InboundMessage, int | None, dict | None]] = []

    # asyncio callbacks ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # Flow control: pause_writing()/resume_writing() tell the broker when this client stops
        # reading what it is sent, so its messages wait in the session (bounded) or are dropped
        # instead of growing the write buffer without limit (limits.py).
        transport.set_write_buffer_limits(OUTBOUND_HIGH_WATER_BYTES, OUTBOUND_LOW_WATER_BYTES)
        ssl_object = transport.get_extra_info("ssl_object")
        self.cert_der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        self.domain_name = server_name(ssl_object) if ssl_object else None
        peer = transport.get_extra_info("peername")
        if peer:
            self.ip_address = peer[0]
        self.broker.connection_opened(self)
        if self.buffer:
            # Bytes that arrived with the end of the handshake, before start_tls returned.
            self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.transport is None:
            self.buffer += data
            return
        self.last_seen = time.monotonic()
        buffer = self.buffer
        buffer += data
        self._batching = True
        try:
            if not self.connected and buffer and buffer[0] >> 4 != codec.CONNECT:
                # MQTT 3.1.1 section 3.1 / MQTT 5 section 3.1: the first packet must be
                # CONNECT. Say so at its first byte (an HTTP request line, a stray client)
                # instead of waiting for a whole packet or the idle-handshake sweep.
                raise MalformedPacket(
                    f"first packet is of type {buffer[0] >> 4}, not CONNECT (1): "
                    "not an MQTT client, or a PUBLISH/SUBSCRIBE before CONNECT"
                )
            packets, used = codec.split_packets(buffer, MAX_PACKET_BYTES)
            del buffer[:used]
            for first_byte, body in packets:
                self._handle(first_byte, body)
                if self.closing:
                    break
            if self._inbound:
                self._accept_inbound()
        except MalformedPacket as exc:
            self.broker.activity.record(
                "MALFORMED_PACKET", self.client_id, str(exc), principal=self.principal_id
            )
            self.close("CLIENT_ERROR", RC_MALFORMED)
        except Exception:
            log.exception("broker error on connection of %s", self.client_id)
            self.close("SERVER_ERROR", RC_UNSPECIFIED)
        finally:
            self._batching = False
            if self._out:
                out, self._out = self._out, []
                self.transport.write(b"".join(out) if len(out) > 1 else out[0])
            if self.closing:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.broker.connection_lost(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        session = self.session
        if session is not None and session.connection is self:
            session.dropping = False
            if session.queue:
                self.broker.drain(session)

    # Output -----------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if self._batching:
            self._out.append(data)
        elif not self.closing and self.transport is not None:
            self.transport.write(data)

    def close(self, reason: str, v5_reason_code: int | None = None) -> None:
        """Close the connection; MQTT 5 clients first get a DISCONNECT with the reason code."""
        if self.closing:
            return
        if self._inbound:
            # What this read accepted before the close is answered first (in order).
            self._accept_inbound()
            if self.closing:
                return
        if self.disconnect_reason is None:
            self.disconnect_reason = reason
        if self.v5 and self.connected and v5_reason_code is not None:
            self.send(codec.encode_disconnect(v5_reason_code))
        self.closing = True
        if not self._batching and self.transport is not None:
            self.transport.close()

    @property
    def principal_id(self) -> str | None:
        """The certificate id of the authenticated client (None before authentication)."""
        return getattr(self.principal, "certificate_id", None)

    # Packets ----------------------------------------------------------------------------
    def _handle(self, first_byte: int, body: bytes) -> None:
        kind = first_byte >> 4
        if kind == codec.PUBLISH and self.connected:
            self._publish(first_byte, body)
            return
        if self._inbound:
            self._accept_inbound()  # PUBLISHes before this packet are answered before it
            if self.closing:
                return
        if kind == codec.PUBACK and self.connected:
            packet_id, _ = codec.parse_packet_id_and_reason(body, self.v5)
            self.broker.acknowledged(self.session, packet_id)
        elif kind == codec.CONNECT:
            if self.connected:
                # "life-cycle-events": a second CONNECT on one connection is a CLIENT_ERROR.
                self.close("CLIENT_ERROR", RC_PROTOCOL_ERROR)
            else:
                self._connect(codec.parse_connect(body))
        elif not self.connected:
            raise MalformedPacket(f"packet type {kind} before CONNECT")
        elif kind == codec.SUBSCRIBE:
            self.broker.subscribe(self, codec.parse_subscribe(first_byte, body, self.v5))
        elif kind == codec.UNSUBSCRIBE:
            self.broker.unsubscribe(self, codec.parse_unsubscribe(first_byte, body, self.v5))
        elif kind == codec.PINGREQ:
            self.send(codec.encode_pingresp())
        elif kind == codec.DISCONNECT:
            reason, props = codec.parse_disconnect(body, self.v5)
            if reason != 0x04:  # 0x04 "Disconnect with Will Message" keeps the will
                self.will = None
            expiry = props.get(codec.SESSION_EXPIRY_INTERVAL)
            if expiry is not None and self.session is not None and self.session.persistent:
                self.session.expiry_s = min(int(expiry), PERSISTENT_SESSION_EXPIRY_S)
            self.client_initiated = True
            self.close("CLIENT_INITIATED_DISCONNECT")
        else:
            # PUBREC/PUBREL/PUBCOMP (QoS 2, never granted), AUTH (not supported by AWS IoT).
            raise MalformedPacket(f"unexpected packet type {kind}")

    def _connect(self, packet: codec.Connect) -> None:
        """CONNECT: authenticate the certificate, authorize iot:Connect, open the session."""
        broker = self.broker
        broker.connect_received(self)
        v5 = packet.protocol_level == codec.MQTT_5
        self.v5 = v5
        codes = CONNACK_5 if v5 else CONNACK_311
        client_id = packet.client_id
        self.client_id = client_id

        def refuse(code_name: str, event: str, reason: str, **details: Any) -> None:
            broker.activity.record(event, client_id or None, reason, **details)
            # Over MQTT 3.1.1, AWS IoT answers a refused authentication or iot:Connect with no
            # CONNACK at all: it closes the connection, and the device SDKs report
            # AWS_ERROR_MQTT_UNEXPECTED_HANGUP (aws-iot-device-sdk-js-v2#101,
            # aws-iot-device-sdk-python-v2#262: "we don't have the detail from the server").
            # MQTT 5 clients get CONNACK reason 0x87 Not authorized.
            if v5 or code_name != "not_authorized":
                self.send(codec.encode_connack(False, codes[code_name], v5))
            self.close("CLIENT_ERROR" if code_name != "not_authorized" else "AUTH_ERROR")

        if packet.protocol_level not in (codec.MQTT_311, codec.MQTT_5):
            refuse(
                "version",
                "CONNECT_DENIED",
                f"protocol {packet.protocol_name!r} level {packet.protocol_level}: "
                "AWS IoT supports MQTT 3.1.1 (level 4) and MQTT 5 (level 5)",
            )
            return
        assigned = None
        if not client_id:
            if not packet.clean_start:
                refuse("identifier", "CONNECT_DENIED", "empty client id with a persistent session")
                return
            client_id = assigned = f"auto-{uuid.uuid4().hex}"
            self.client_id = client_id
        if len(client_id.encode("utf-8")) > MAX_CLIENT_ID_BYTES:
            refuse(
                "identifier",
                "CONNECT_DENIED",
                f"client id is {len(client_id.encode())} bytes, more than the "
                f"{MAX_CLIENT_ID_BYTES} bytes AWS IoT allows",
            )
            return
        iot = broker.iot
        try:
            self.principal = iot.authenticate(
                self.cert_der or b"", source_ip=self.ip_address, domain_name=self.domain_name
            )
        except Exception as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            refuse(
                "not_authorized",
                "CONNECT_DENIED",
                f"authentication failed: {reason}",
                principal=getattr(exc, "certificate_id", None),
            )
            return
        attributes = connect_attributes(
            v5,
            packet.clean_start,
            int(packet.properties.get(codec.SESSION_EXPIRY_INTERVAL, 0)),
            packet.will is not None,
        )
        decision = iot.authorize(
            self.principal, client_id, "iot:Connect", client_id, connect_attributes=attributes
        )
        if not decision.allowed:
            broker.connect_failed(self)
            refuse(
                "not_authorized",
                "CONNECT_DENIED",
                "not authorized",
                action=decision.action,
                resource=decision.resource,
                policy_decision=decision.reason,
                principal=self.principal_id,
            )
            return

        keep_alive = packet.keep_alive
        server_keep_alive = None
        if keep_alive == 0 or keep_alive > MAX_KEEP_ALIVE_S:
            server_keep_alive = MAX_KEEP_ALIVE_S
        elif keep_alive < broker.min_keep_alive_s:
            server_keep_alive = broker.min_keep_alive_s
        self.keep_alive = server_keep_alive or keep_alive

        if v5:
            requested_expiry = int(packet.properties.get(codec.SESSION_EXPIRY_INTERVAL, 0))
            expiry = min(requested_expiry, PERSISTENT_SESSION_EXPIRY_S)
        else:
            requested_expiry = expiry = 0 if packet.clean_start else PERSISTENT_SESSION_EXPIRY_S
        self.will = packet.will
        session_present = broker.open_session(self, packet.clean_start, expiry)

        props: codec.Properties = {}
        if v5:
            props = {
                codec.MAXIMUM_QOS: 1,
                codec.RETAIN_AVAILABLE: 1,
                codec.MAXIMUM_PACKET_SIZE: MAX_PACKET_BYTES,
                codec.TOPIC_ALIAS_MAXIMUM: TOPIC_ALIAS_MAXIMUM,
                codec.RECEIVE_MAXIMUM: RECEIVE_MAXIMUM,
                codec.WILDCARD_SUBSCRIPTION_AVAILABLE: 1,
                codec.SUBSCRIPTION_IDENTIFIER_AVAILABLE: 0,
                codec.SHARED_SUBSCRIPTION_AVAILABLE: 1,  # $share/ (broker.py)
            }
            if server_keep_alive is not None:
                props[codec.SERVER_KEEP_ALIVE] = server_keep_alive
            if assigned:
                props[codec.ASSIGNED_CLIENT_IDENTIFIER] = assigned
            if expiry != requested_expiry:
                props[codec.SESSION_EXPIRY_INTERVAL] = expiry
        self.send(codec.encode_connack(session_present, 0, v5, props))
        self.connected = True
        broker.activity.record(
            "CONNECT",
            client_id,
            "persistent session resumed" if session_present else None,
            "iot:Connect",
            decision.resource,
            decision.reason,
            self.principal_id,
        )
        self.send_quota = min(
            OUTBOUND_INFLIGHT_LIMIT,
            int(packet.properties.get(codec.RECEIVE_MAXIMUM, OUTBOUND_INFLIGHT_LIMIT)) or 1,
        )
        broker.session_started(self)

    def _publish(self, first_byte: int, body: bytes) -> None:
        v5 = self.v5
        packet = codec.parse_publish(first_byte, body, v5)
        topic = packet.topic
        props = packet.properties
        if v5 and codec.TOPIC_ALIAS in props:
            alias = props.pop(codec.TOPIC_ALIAS)
            if not 0 < alias <= TOPIC_ALIAS_MAXIMUM:
                self._refuse_publish(topic, "topic alias out of range", RC_PROTOCOL_ERROR)
                return
            if topic:
                self.topic_aliases[alias] = topic
            elif alias in self.topic_aliases:
                topic = self.topic_aliases[alias]
            else:
                self._refuse_publish(topic, "unknown topic alias", RC_PROTOCOL_ERROR)
                return
        if packet.qos == 2:
            self._refuse_publish(topic, "QoS 2 is not supported by AWS IoT", RC_QOS_NOT_SUPPORTED)
            return
        if len(packet.payload) > MAX_PAYLOAD_BYTES:
            self._refuse_publish(
                topic,
                f"payload is {len(packet.payload)} bytes, more than the "
                f"{MAX_PAYLOAD_BYTES} bytes (128 KB) AWS IoT allows",
                RC_PACKET_TOO_LARGE,
            )
            return
        refusal = publish_topic_error(topic, packet.retain)
        if refusal is not None:
            kind, problem = refusal
            if kind == INVALID:
                self._refuse_publish(topic, problem, RC_TOPIC_NAME_INVALID)
            else:
                # A reserved topic the client may not publish to is answered as an
                # unauthorized publish ("Unsupported publish or subscribe operations to reserved
                # topics can result in a terminated connection", reserved-topics.html).
                self._deny_publish(packet, problem, "iot:Publish", self.broker.arn("topic", topic))
            return
        broker = self.broker
        iot = broker.iot
        decision = iot.authorize(self.principal, self.client_id, "iot:Publish", topic)
        if decision.allowed and packet.retain:
            decision = iot.authorize(self.principal, self.client_id, "iot:RetainPublish", topic)
        if not decision.allowed:
            self._deny_publish(
                packet, "not authorized", decision.action, decision.resource, decision.reason
            )
            return
        if packet.retain and (problem := broker.retain_refusal(topic, len(packet.payload))):
            self._refuse_publish(topic, problem, RC_QUOTA_EXCEEDED)
            return
        user_properties = ()
        mqtt_properties: tuple = ()
        if v5:
            if codec.USER_PROPERTY in props:
                user_properties = tuple(props[codec.USER_PROPERTY])
            mqtt_properties = _sql_properties(props)
        message = InboundMessage(
            topic,
            packet.payload,
            packet.qos,
            self.client_id,
            self.principal_id,
            int(time.time() * 1000),
            broker.account_id,
            broker.region,
            packet.retain,
            user_properties,
            self.ip_address,
            mqtt_properties,
        )
        self._inbound.append(
            (message, packet.packet_id if packet.qos else None, props if v5 else None)
        )

    def _accept_inbound(self) -> None:
        """Hand the pending PUBLISHes to the consumer at once, then PUBACK and route them.

        A PUBACK goes out only after the consumer has durably accepted its message: if the
        group is refused, none of it is acknowledged (MQTT 5: PUBACK 0x80 Unspecified error;
        MQTT 3.1.1 has no negative PUBACK, so the connection is closed)."""
        batch, self._inbound = self._inbound, []
        broker = self.broker
        try:
            broker.accept([message for message, _, _ in batch])
        except Exception as exc:
            self._not_accepted(batch, exc)
            return
        v5 = self.v5
        client_id = self.client_id
        send = self.send
        distribute = broker.distribute
        for message, packet_id, props in batch:
            if packet_id is not None:
                send(codec.encode_puback(packet_id, v5))
            distribute(message, props, client_id)
            broker.shadow_request(message)

    def _not_accepted(self, batch: list, exc: Exception) -> None:
        topics = sorted({message.topic for message, _, _ in batch})
        log.warning(
            "consumer refused %d message(s) on %s: %s", len(batch), ", ".join(topics[:5]), exc
        )
        self.broker.activity.record(
            "PUBLISH_NOT_ACCEPTED",
            self.client_id,
            f"{exc} ({len(batch)} message(s) of one read, none acknowledged)"
            if len(batch) > 1
            else str(exc),
            principal=self.principal_id,
        )
        if self.v5:
            for _, packet_id, _ in batch:
                if packet_id is not None:
                    self.send(codec.encode_puback(packet_id, True, RC_UNSPECIFIED))
        else:
            self.close("SERVER_ERROR")

    def _deny_publish(
        self,
        packet: codec.Publish,
        reason: str,
        action: str,
        resource: str | None,
        policy_decision: str | None = None,
    ) -> None:
        """A publish the client is not allowed to make: MQTT 5 gets PUBACK 0x87 Not authorized
        and keeps its connection; MQTT 3.1.1 has no way to say no, so AWS IoT disconnects."""
        self.broker.activity.record(
            "PUBLISH_DENIED",
            self.client_id,
            reason,
            action,
            resource,
            policy_decision,
            self.principal_id,
        )
        if self.v5:
            # MQTT 5: the PUBACK carries 0x87 and the connection stays ("mqtt5 reason codes").
            if packet.qos:
                if self._inbound:
                    self._accept_inbound()  # earlier PUBACKs first
                    if self.closing:
                        return
                self.send(codec.encode_puback(packet.packet_id, True, RC_NOT_AUTHORIZED))
        else:
            self.close("AUTH_ERROR")

    def _refuse_publish(self, topic: str, reason: str, v5_code: int) -> None:
        """A publish AWS IoT refuses outright: the client is disconnected (CLIENT_ERROR)."""
        self.broker.activity.record(
            "PUBLISH_REFUSED",
            self.client_id,
            reason,
            "iot:Publish",
            self.broker.arn("topic", topic) if topic else None,
            principal=self.principal_id,
        )
        self.close("CLIENT_ERROR", v5_code)


# The PUBLISH properties IoT SQL's get_mqtt_property() reads, by the names it takes.
_SQL_PROPERTIES = (
    (codec.CONTENT_TYPE, "content_type"),
    (codec.PAYLOAD_FORMAT_INDICATOR, "format_indicator"),
    (codec.RESPONSE_TOPIC, "response_topic"),
    (codec.CORRELATION_DATA, "correlation_data"),
)


def _sql_properties(props: dict) -> tuple:
    return tuple((name, props[code]) for code, name in _SQL_PROPERTIES if code in props)

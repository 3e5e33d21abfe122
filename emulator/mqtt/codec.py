"""MQTT 3.1.1 and MQTT 5 wire format: pure functions, no I/O.

`split_packets` cuts complete packets out of a receive buffer; `parse_*` decode the packets a
broker receives (CONNECT, PUBLISH, PUBACK, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT) and
`encode_*` build the packets it sends. Anything that does not follow the specification raises
`MalformedPacket`, after which a broker closes the connection (MQTT 3.1.1 section 4.8, MQTT 5
section 4.13). References: OASIS MQTT v3.1.1 and v5.0 specifications, sections 2 and 3.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# Control packet types (first byte >> 4).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)

MQTT_311 = 4
MQTT_5 = 5

# MQTT 5 property identifiers (section 2.2.2.2) and their wire types.
PAYLOAD_FORMAT_INDICATOR = 0x01
MESSAGE_EXPIRY_INTERVAL = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY_INTERVAL = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY_INTERVAL = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
_PROPERTY_TYPES = {
    PAYLOAD_FORMAT_INDICATOR: _BYTE,
    MESSAGE_EXPIRY_INTERVAL: _U32,
    CONTENT_TYPE: _STR,
    RESPONSE_TOPIC: _STR,
    CORRELATION_DATA: _BIN,
    SUBSCRIPTION_IDENTIFIER: _VARINT,
    SESSION_EXPIRY_INTERVAL: _U32,
    ASSIGNED_CLIENT_IDENTIFIER: _STR,
    SERVER_KEEP_ALIVE: _U16,
    AUTHENTICATION_METHOD: _STR,
    AUTHENTICATION_DATA: _BIN,
    REQUEST_PROBLEM_INFORMATION: _BYTE,
    WILL_DELAY_INTERVAL: _U32,
    REQUEST_RESPONSE_INFORMATION: _BYTE,
    RESPONSE_INFORMATION: _STR,
    SERVER_REFERENCE: _STR,
    REASON_STRING: _STR,
    RECEIVE_MAXIMUM: _U16,
    TOPIC_ALIAS_MAXIMUM: _U16,
    TOPIC_ALIAS: _U16,
    MAXIMUM_QOS: _BYTE,
    RETAIN_AVAILABLE: _BYTE,
    USER_PROPERTY: _PAIR,
    MAXIMUM_PACKET_SIZE: _U32,
    WILDCARD_SUBSCRIPTION_AVAILABLE: _BYTE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE: _BYTE,
    SHARED_SUBSCRIPTION_AVAILABLE: _BYTE,
}

# Properties may hold several values (a list) instead of one.
_REPEATABLE = {USER_PROPERTY, SUBSCRIPTION_IDENTIFIER}

Properties = dict[int, object]


class MalformedPacket(ValueError):
    """The bytes received do not form a valid packet: the connection must be closed."""


# Primitive types --------------------------------------------------------------------------
def encode_varint(value: int) -> bytes:
    if not 0 <= value <= 268_435_455:
        raise ValueError(f"variable byte integer out of range: {value}")
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def decode_varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    """(value, next position); raises IndexError when more bytes are needed."""
    value = shift = 0
    for i in range(4):
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise MalformedPacket("variable byte integer longer than 4 bytes")


def _str(data: bytes, pos: int) -> tuple[str, int]:
    raw, pos = _bin(data, pos)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket("string is not valid UTF-8") from exc
    if "\x00" in text:
        raise MalformedPacket("string contains U+0000")
    return text, pos


def _bin(data: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 2 > len(data):
        raise MalformedPacket("truncated length prefix")
    (length,) = struct.unpack_from("!H", data, pos)
    end = pos + 2 + length
    if end > len(data):
        raise MalformedPacket("length prefix beyond the end of the packet")
    return bytes(data[pos + 2 : end]), end


def _u16(data: bytes, pos: int) -> tuple[int, int]:
    if pos + 2 > len(data):
        raise MalformedPacket("truncated two-byte integer")
    return struct.unpack_from("!H", data, pos)[0], pos + 2


def _enc_str(text: str) -> bytes:
    return _enc_bin(text.encode("utf-8"))


def _enc_bin(raw: bytes) -> bytes:
    return struct.pack("!H", len(raw)) + raw


# Properties --------------------------------------------------------------------------------
def decode_properties(data: bytes, pos: int) -> tuple[Properties, int]:
    try:
        length, pos = decode_varint(data, pos)
    except IndexError as exc:
        raise MalformedPacket("truncated property length") from exc
    end = pos + length
    if end > len(data):
        raise MalformedPacket("property length beyond the end of the packet")
    props: Properties = {}
    while pos < end:
        ident = data[pos]
        pos += 1
        kind = _PROPERTY_TYPES.get(ident)
        if kind is None:
            raise MalformedPacket(f"unknown property identifier 0x{ident:02X}")
        if kind == _BYTE:
            if pos >= end:
                raise MalformedPacket("truncated property")
            value: object = data[pos]
            pos += 1
        elif kind == _U16:
            value, pos = _u16(data, pos)
        elif kind == _U32:
            if pos + 4 > end:
                raise MalformedPacket("truncated property")
            value = struct.unpack_from("!I", data, pos)[0]
            pos += 4
        elif kind == _VARINT:
            try:
                value, pos = decode_varint(data, pos)
            except IndexError as exc:
                raise MalformedPacket("truncated property") from exc
        elif kind == _STR:
            value, pos = _str(data, pos)
        elif kind == _BIN:
            value, pos = _bin(data, pos)
        else:
            name, pos = _str(data, pos)
            text, pos = _str(data, pos)
            value = (name, text)
        if pos > end:
            raise MalformedPacket("property runs past the property length")
        if ident in _REPEATABLE:
            props.setdefault(ident, []).append(value)  # type: ignore[union-attr]
        elif ident in props:
            raise MalformedPacket(f"property 0x{ident:02X} included more than once")
        else:
            props[ident] = value
    return props, end


def encode_properties(props: Properties | None) -> bytes:
    out = bytearray()
    for ident, value in (props or {}).items():
        values = value if ident in _REPEATABLE else [value]
        for item in values:  # type: ignore[union-attr]
            out.append(ident)
            kind = _PROPERTY_TYPES[ident]
            if kind == _BYTE:
                out.append(item)
            elif kind == _U16:
                out += struct.pack("!H", item)
            elif kind == _U32:
                out += struct.pack("!I", item)
            elif kind == _VARINT:
                out += encode_varint(item)
            elif kind == _STR:
                out += _enc_str(item)
            elif kind == _BIN:
                out += _enc_bin(item)
            else:
                out += _enc_str(item[0]) + _enc_str(item[1])
    return encode_varint(len(out)) + bytes(out)


# Framing -----------------------------------------------------------------------------------
def split_packets(buffer: bytearray, max_size: int) -> tuple[list[tuple[int, bytes]], int]:
    """Complete packets at the start of `buffer` as (first byte, body), and bytes consumed.

    A packet whose remaining length exceeds `max_size` is malformed for us: the caller closes
    the connection rather than buffering it (AWS IoT refuses oversized packets the same way).
    """
    packets = []
    pos = 0
    size = len(buffer)
    while pos + 2 <= size:
        try:
            length, body_start = decode_varint(buffer, pos + 1)
        except IndexError:
            break
        if length > max_size:
            raise MalformedPacket(f"packet of {length} bytes exceeds {max_size} bytes")
        end = body_start + length
        if end > size:
            break
        packets.append((buffer[pos], bytes(buffer[body_start:end])))
        pos = end
    return packets, pos


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_varint(len(body)) + body


# Packets a broker receives -----------------------------------------------------------------
@dataclass
class Will:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties = field(default_factory=dict)


@dataclass
class Connect:
    protocol_name: str
    protocol_level: int
    clean_start: bool
    keep_alive: int
    client_id: str
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None
    properties: Properties = field(default_factory=dict)


@dataclass
class Publish:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    packet_id: int | None
    properties: Properties = field(default_factory=dict)


@dataclass
class Subscribe:
    packet_id: int
    # (topic filter, options byte: QoS in bits 0-1, MQTT 5 No Local/RAP/Retain Handling above)
    filters: list[tuple[str, int]]
    properties: Properties = field(default_factory=dict)


@dataclass
class Unsubscribe:
    packet_id: int
    filters: list[str]
    properties: Properties = field(default_factory=dict)


def parse_connect(body: bytes) -> Connect:
    """Decode CONNECT; the protocol level decides whether properties are present."""
    name, pos = _str(body, 0)
    if pos + 4 > len(body):
        raise MalformedPacket("truncated CONNECT variable header")
    level, flags = body[pos], body[pos + 1]
    keep_alive = struct.unpack_from("!H", body, pos + 2)[0]
    pos += 4
    if name != "MQTT" or level not in (MQTT_311, MQTT_5):
        # The caller answers "unacceptable protocol version" (3.1.1 code 1 / MQTT 5 0x84).
        return Connect(name, level, True, keep_alive, "")
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag is set")
    v5 = level == MQTT_5
    props: Properties = {}
    if v5:
        props, pos = decode_properties(body, pos)
    client_id, pos = _str(body, pos)
    will = None
    will_qos = (flags >> 3) & 0x03
    if flags & 0x04:
        if will_qos == 3:
            raise MalformedPacket("will QoS 3")
        will_props: Properties = {}
        if v5:
            will_props, pos = decode_properties(body, pos)
        topic, pos = _str(body, pos)
        payload, pos = _bin(body, pos)
        will = Will(topic, payload, will_qos, bool(flags & 0x20), will_props)
    elif will_qos or flags & 0x20:
        raise MalformedPacket("will QoS or retain set without a will")
    username = password = None
    if flags & 0x80:
        username, pos = _str(body, pos)
    if flags & 0x40:
        password, pos = _bin(body, pos)
    if pos != len(body):
        raise MalformedPacket("trailing bytes after CONNECT payload")
    return Connect(
        name, level, bool(flags & 0x02), keep_alive, client_id, will, username, password, props
    )


def parse_publish(first_byte: int, body: bytes, v5: bool) -> Publish:
    qos = (first_byte >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    dup = bool(first_byte & 0x08)
    if dup and qos == 0:
        raise MalformedPacket("PUBLISH with DUP set at QoS 0")
    topic, pos = _str(body, 0)
    packet_id = None
    if qos:
        packet_id, pos = _u16(body, pos)
        if packet_id == 0:
            raise MalformedPacket("PUBLISH packet identifier 0")
    props: Properties = {}
    if v5:
        props, pos = decode_properties(body, pos)
    return Publish(topic, body[pos:], qos, bool(first_byte & 0x01), dup, packet_id, props)


def parse_packet_id_and_reason(body: bytes, v5: bool) -> tuple[int, int]:
    """PUBACK (and the other acknowledgements): packet identifier and reason code."""
    packet_id, pos = _u16(body, 0)
    reason = body[pos] if v5 and len(body) > pos else 0
    return packet_id, reason


def _subscription_header(
    name: str, first_byte: int, body: bytes, v5: bool
) -> tuple[int, Properties, int]:
    """SUBSCRIBE's and UNSUBSCRIBE's fixed header flags (0010), packet identifier and MQTT 5
    properties; the position of the topic filters that follow."""
    if first_byte & 0x0F != 0x02:
        raise MalformedPacket(f"{name} fixed header flags must be 0010")
    packet_id, pos = _u16(body, 0)
    props: Properties = {}
    if v5:
        props, pos = decode_properties(body, pos)
    return packet_id, props, pos


def parse_subscribe(first_byte: int, body: bytes, v5: bool) -> Subscribe:
    packet_id, props, pos = _subscription_header("SUBSCRIBE", first_byte, body, v5)
    filters = []
    while pos < len(body):
        topic_filter, pos = _str(body, pos)
        if pos >= len(body):
            raise MalformedPacket("SUBSCRIBE topic filter without options")
        options = body[pos]
        pos += 1
        if options & (0xC0 if v5 else 0xFC) or options & 0x03 == 3:
            raise MalformedPacket("SUBSCRIBE reserved option bits set")
        filters.append((topic_filter, options))
    if not filters:
        raise MalformedPacket("SUBSCRIBE without topic filters")
    return Subscribe(packet_id, filters, props)


def parse_unsubscribe(first_byte: int, body: bytes, v5: bool) -> Unsubscribe:
    packet_id, props, pos = _subscription_header("UNSUBSCRIBE", first_byte, body, v5)
    filters = []
    while pos < len(body):
        topic_filter, pos = _str(body, pos)
        filters.append(topic_filter)
    if not filters:
        raise MalformedPacket("UNSUBSCRIBE without topic filters")
    return Unsubscribe(packet_id, filters, props)


def parse_disconnect(body: bytes, v5: bool) -> tuple[int, Properties]:
    if not v5 or not body:
        return 0, {}
    reason = body[0]
    props: Properties = {}
    if len(body) > 1:
        props, _ = decode_properties(body, 1)
    return reason, props


# Packets a broker sends --------------------------------------------------------------------
def encode_connack(
    session_present: bool, code: int, v5: bool, props: Properties | None = None
) -> bytes:
    body = bytes((1 if session_present else 0, code))
    if v5:
        body += encode_properties(props)
    return _packet(CONNACK << 4, body)


def encode_publish(
    topic: str,
    payload: bytes,
    qos: int,
    retain: bool,
    packet_id: int | None,
    v5: bool,
    dup: bool = False,
    props: Properties | None = None,
) -> bytes:
    first = (PUBLISH << 4) | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = _enc_str(topic)
    if qos:
        body += struct.pack("!H", packet_id)
    if v5:
        body += encode_properties(props)
    return _packet(first, body + payload)


def encode_puback(packet_id: int, v5: bool, reason: int = 0) -> bytes:
    # MQTT 5 allows omitting a success reason code (section 3.4.2.1): the short form is
    # byte-identical to MQTT 3.1.1, which keeps the hot path to one struct.pack.
    if v5 and reason:
        return struct.pack("!BBHBB", PUBACK << 4, 4, packet_id, reason, 0)
    return struct.pack("!BBH", PUBACK << 4, 2, packet_id)


def encode_suback(packet_id: int, codes: list[int], v5: bool) -> bytes:
    body = struct.pack("!H", packet_id)
    if v5:
        body += encode_properties(None)
    return _packet(SUBACK << 4, body + bytes(codes))


def encode_unsuback(packet_id: int, codes: list[int], v5: bool) -> bytes:
    body = struct.pack("!H", packet_id)
    if v5:
        body += encode_properties(None) + bytes(codes)
    return _packet(UNSUBACK << 4, body)


def encode_pingresp() -> bytes:
    return bytes((PINGRESP << 4, 0))


def encode_disconnect(reason: int, props: Properties | None = None) -> bytes:
    """MQTT 5 only: a server never sends DISCONNECT in MQTT 3.1.1."""
    return _packet(DISCONNECT << 4, bytes((reason,)) + encode_properties(props))


# Topic names and filters (section 4.7) -----------------------------------------------------
def valid_topic_name(topic: str) -> bool:
    return bool(topic) and "+" not in topic and "#" not in topic


def valid_topic_filter(topic_filter: str) -> bool:
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching; topics starting with `$` are not matched by a leading wildcard."""
    if topic_filter == topic:
        return True
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for i, level in enumerate(f_levels):
        if level == "#":
            return True
        if i >= len(t_levels):
            return False
        if level != "+" and level != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)

"""The MQTT wire format (emulator/mqtt/codec.py): round trips and malformed packets."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.mqtt import codec
from emulator.mqtt.codec import MalformedPacket


def connect_body(level=4, flags=0x02, keep_alive=60, client_id=b"dev1", props=b"", tail=b""):
    body = struct.pack("!H", 4) + b"MQTT" + bytes((level, flags)) + struct.pack("!H", keep_alive)
    if level == 5:
        body += props or b"\x00"
    return body + struct.pack("!H", len(client_id)) + client_id + tail


@given(st.integers(min_value=0, max_value=268_435_455))
def test_variable_byte_integer_round_trips(value):
    # given any value the specification allows, when encoded and decoded, then it is unchanged
    encoded = codec.encode_varint(value)
    assert codec.decode_varint(encoded, 0) == (value, len(encoded))
    assert len(encoded) <= 4


def test_variable_byte_integer_of_five_bytes_is_malformed():
    with pytest.raises(MalformedPacket):
        codec.decode_varint(b"\xff\xff\xff\xff\x01", 0)


def test_split_packets_keeps_an_incomplete_packet_for_the_next_read():
    # given one whole PINGREQ and the first half of a PUBLISH
    publish = codec.encode_publish("a/b", b"payload", 1, False, 7, v5=False)
    buffer = bytearray(codec.encode_pingresp() + publish[:5])
    # when split
    packets, used = codec.split_packets(buffer, 1000)
    # then only the complete packet is returned
    assert packets == [(0xD0, b"")]
    assert used == 2


def test_split_packets_refuses_a_packet_larger_than_the_limit():
    buffer = bytearray(b"\x30" + codec.encode_varint(5000))
    with pytest.raises(MalformedPacket, match="exceeds"):
        codec.split_packets(buffer, 4096)


def test_connect_311_with_will_and_credentials():
    # given a 3.1.1 CONNECT with a retained QoS 1 will, a user name and a password
    flags = 0x02 | 0x04 | (1 << 3) | 0x20 | 0x80 | 0x40
    tail = b"\x00\x03w/t" + b"\x00\x04gone" + b"\x00\x02me" + b"\x00\x02pw"
    # when parsed
    packet = codec.parse_connect(connect_body(flags=flags, tail=tail))
    # then every field is there
    assert (packet.protocol_level, packet.clean_start, packet.keep_alive) == (4, True, 60)
    assert packet.client_id == "dev1"
    assert packet.will == codec.Will("w/t", b"gone", 1, True, {})
    assert (packet.username, packet.password) == ("me", b"pw")


def test_connect_5_reads_session_expiry_and_user_properties():
    props = codec.encode_properties(
        {codec.SESSION_EXPIRY_INTERVAL: 600, codec.USER_PROPERTY: [("k", "v"), ("k", "w")]}
    )
    packet = codec.parse_connect(connect_body(level=5, flags=0x00, props=props))
    assert packet.clean_start is False
    assert packet.properties[codec.SESSION_EXPIRY_INTERVAL] == 600
    assert packet.properties[codec.USER_PROPERTY] == [("k", "v"), ("k", "w")]


@pytest.mark.parametrize(
    "body, why",
    [
        (connect_body(flags=0x03), "reserved flag"),
        (connect_body(flags=0x02 | 0x18), "will QoS 3 without a will"),
        (connect_body(flags=0x02 | 0x20), "will retain without a will"),
        (connect_body(client_id=b"\xff\xfe"), "client id not UTF-8"),
        (connect_body(client_id=b"a\x00b"), "client id with U+0000"),
        (connect_body() + b"junk", "trailing bytes"),
        (connect_body()[:8], "truncated"),
        (connect_body(level=5, props=b"\x05\x11\x00"), "property length beyond the packet"),
        (connect_body(level=5, props=b"\x02\x7f\x00"), "unknown property"),
        (connect_body(level=5, props=b"\x0a\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02"), "twice"),
    ],
)
def test_malformed_connect_packets_are_refused(body, why):
    with pytest.raises(MalformedPacket):
        codec.parse_connect(body)


def test_connect_with_an_unknown_protocol_level_is_parsed_for_the_refusal():
    packet = codec.parse_connect(connect_body(level=3))
    assert packet.protocol_level == 3


@pytest.mark.parametrize("v5", [False, True])
def test_publish_round_trip(v5):
    # given a QoS 1 retained PUBLISH with (for MQTT 5) a content type and user property
    props = {codec.CONTENT_TYPE: "application/json", codec.USER_PROPERTY: [("a", "b")]}
    raw = codec.encode_publish("t/1", b'{"x":1}', 1, True, 42, v5, dup=True, props=props)
    # when split and parsed
    ((first, body),), _ = codec.split_packets(bytearray(raw), 10_000)
    packet = codec.parse_publish(first, body, v5)
    # then it is what was sent
    assert (packet.topic, packet.payload, packet.qos, packet.retain, packet.dup) == (
        "t/1",
        b'{"x":1}',
        1,
        True,
        True,
    )
    assert packet.packet_id == 42
    assert packet.properties == (props if v5 else {})


@pytest.mark.parametrize(
    "first, body",
    [
        (0x36, b"\x00\x01t\x00\x01"),  # QoS 3
        (0x38, b"\x00\x01t"),  # DUP at QoS 0
        (0x32, b"\x00\x01t\x00\x00"),  # packet id 0
        (0x32, b"\x00\x05t"),  # topic length past the end
    ],
)
def test_malformed_publish_packets_are_refused(first, body):
    with pytest.raises(MalformedPacket):
        codec.parse_publish(first, body, False)


def test_subscribe_parses_filters_and_options_and_rejects_bad_flags():
    body = b"\x00\x05" + b"\x00\x03a/#\x01" + b"\x00\x01b\x00"
    packet = codec.parse_subscribe(0x82, body, False)
    assert packet.packet_id == 5
    assert packet.filters == [("a/#", 1), ("b", 0)]
    with pytest.raises(MalformedPacket):
        codec.parse_subscribe(0x80, body, False)  # fixed header flags must be 0010
    with pytest.raises(MalformedPacket):
        codec.parse_subscribe(0x82, b"\x00\x05", False)  # no topic filter
    with pytest.raises(MalformedPacket):
        codec.parse_subscribe(0x82, b"\x00\x05\x00\x01a\x04", False)  # 3.1.1 reserved bits


def test_puback_short_form_for_success_and_reason_code_for_refusals():
    assert codec.encode_puback(9, v5=True) == b"\x40\x02\x00\x09"
    assert codec.encode_puback(9, v5=True, reason=0x87) == b"\x40\x04\x00\x09\x87\x00"
    assert codec.parse_packet_id_and_reason(b"\x00\x09\x87\x00", True) == (9, 0x87)


def test_connack_suback_and_disconnect_encodings():
    assert codec.encode_connack(True, 0, v5=False) == b"\x20\x02\x01\x00"
    assert codec.encode_connack(False, 0x87, v5=True) == b"\x20\x03\x00\x87\x00"
    assert codec.encode_suback(3, [1, 0x80], v5=False) == b"\x90\x04\x00\x03\x01\x80"
    assert codec.encode_disconnect(0x8E) == b"\xe0\x02\x8e\x00"


@pytest.mark.parametrize(
    "topic_filter, topic, matches",
    [
        ("a/+/c", "a/b/c", True),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/+", "a/b/c", False),
        ("#", "$aws/events/presence/connected/x", False),
        ("$aws/events/presence/+/x", "$aws/events/presence/connected/x", True),
        ("a/b", "a/b/", False),
    ],
)
def test_topic_matching(topic_filter, topic, matches):
    assert codec.topic_matches(topic_filter, topic) is matches


def test_topic_filter_validity():
    assert codec.valid_topic_filter("a/+/#")
    assert not codec.valid_topic_filter("a/#/b")
    assert not codec.valid_topic_filter("a/b+")
    assert not codec.valid_topic_name("a/+")


@settings(max_examples=500)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=255), st.booleans())
def test_any_bytes_either_parse_or_raise_malformed_packet(body, first_byte, v5):
    # given arbitrary bytes as the body of each packet type a broker receives
    parsers = [
        lambda: codec.parse_connect(body),
        lambda: codec.parse_publish(first_byte, body, v5),
        lambda: codec.parse_subscribe(0x82, body, v5),
        lambda: codec.parse_unsubscribe(0xA2, body, v5),
        lambda: codec.parse_disconnect(body, v5),
        lambda: codec.parse_packet_id_and_reason(body, v5),
        lambda: codec.split_packets(bytearray(bytes((first_byte,)) + body), 1 << 20),
    ]
    # when parsed, then the only failure is MalformedPacket (the broker closes the connection)
    for parse in parsers:
        try:
            parse()
        except MalformedPacket:
            pass

"""A protobuf schema for the decode(*, 'proto', ...) tests: a FileDescriptorSet built with
descriptor_pb2 (what `protoc --descriptor_set_out --include_imports` writes) and messages
encoded with the class protobuf builds from it."""

from __future__ import annotations

import json

from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor_pool import DescriptorPool

F = descriptor_pb2.FieldDescriptorProto


def person_descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """common.proto (an enum) imported by person.proto (package demo; message Person with a
    nested Phone); person.proto comes first: a set's order need not follow its imports."""
    common = descriptor_pb2.FileDescriptorProto(
        name="common.proto", package="demo", syntax="proto3"
    )
    kind = common.enum_type.add(name="Kind")
    kind.value.add(name="KIND_UNKNOWN", number=0)
    kind.value.add(name="KIND_HOME", number=1)
    person = descriptor_pb2.FileDescriptorProto(
        name="person.proto", package="demo", syntax="proto3", dependency=["common.proto"]
    )
    msg = person.message_type.add(name="Person")
    msg.field.add(name="full_name", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg.field.add(name="id", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    msg.field.add(name="big_count", number=3, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    msg.field.add(name="blob", number=4, type=F.TYPE_BYTES, label=F.LABEL_OPTIONAL)
    msg.field.add(
        name="kind", number=5, type=F.TYPE_ENUM, type_name=".demo.Kind", label=F.LABEL_OPTIONAL
    )
    msg.field.add(
        name="phones",
        number=6,
        type=F.TYPE_MESSAGE,
        type_name=".demo.Person.Phone",
        label=F.LABEL_REPEATED,
    )
    msg.field.add(name="temp", number=7, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    phone = msg.nested_type.add(name="Phone")
    phone.field.add(name="number", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    return descriptor_pb2.FileDescriptorSet(file=[person, common])


def person_bytes(**fields) -> bytes:
    """A demo.Person message with `fields` (`phones`: a list of numbers), serialized."""
    pool = DescriptorPool()
    for proto in reversed(person_descriptor_set().file):
        pool.Add(proto)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("demo.Person"))
    phones = fields.pop("phones", [])
    person = cls(**fields)
    for number in phones:
        person.phones.add(number=number)
    return person.SerializeToString()


def iot_read_policy(bucket: str, rule_arn: str) -> str:
    """The bucket policy the page asks for: IoT Core may read the bucket's objects, for one
    rule (the confused-deputy aws:SourceArn condition)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "iot.amazonaws.com"},
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                    "Condition": {"StringEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
    )

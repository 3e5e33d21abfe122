"""IoT SQL decode(value, 'proto', bucket, key, protoFileName, messageType): a protobuf payload
decoded to JSON with a FileDescriptorSet (`protoc --descriptor_set_out --include_imports`)
read from the emulator's S3 (moto's backend).

Source: AWS IoT developer guide, "Working with binary payloads", section "Decoding protobuf
message payloads" (https://docs.aws.amazon.com/iot/latest/developerguide/binary-payloads.html)
and "iot-sql-functions" decode(value, decodingScheme)
(https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html#iot-func-decode).

- `value` is the payload as `*` (its raw bytes); a String is taken as base64 text, as from
  encode(*, 'base64').
- The bucket's policy must let `iot.amazonaws.com` call `s3:GetObject` on the descriptor object
  (checked with the rule's ARN as aws:SourceArn when IAM enforcement is on; with enforcement off
  every read is allowed, like the other service-calling functions).
- Limits on that page: the FileDescriptorSet object is at most 32 KiB; decode(..., 'proto') can
  be called at most twice in one SQL statement; it cannot be used in substitution templates
  (sql.py refuses service-calling functions there).
- The JSON is protobuf's canonical JSON mapping (https://protobuf.dev/programming-guides/json/),
  the mapping protobuf's own JsonFormat printer gives: lowerCamelCase json_name keys, enum value
  names, 64-bit integers as strings, bytes as base64, fields at their default value left out.

A payload the message type cannot parse, a descriptor object that is missing, too large, not a
FileDescriptorSet or lacks the file or message type, and a denied read all raise
`SqlEvaluationError`: the rule runs no action and no errorAction, and the failure goes to AWS IoT
logging, as for any SQL evaluation failure.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections import OrderedDict
from typing import Any

from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError, Message

from emulator.rules.service_functions import IOT_PRINCIPAL, _services
from emulator.rules.values import UNDEFINED, SqlEvaluationError, parse_json

SCHEME = "proto"
# decode(value, 'proto', bucket, key, protoFileName, messageType)
ARITY = 6
# "binary-payloads", Limitations: a FileDescriptorSet object in S3 is at most 32 KiB.
DESCRIPTOR_LIMIT_BYTES = 32 * 1024
# "binary-payloads", Limitations: decode() of protobuf payloads at most twice in one SQL
# statement.
CALLS_PER_STATEMENT = 2
# Parsed descriptor sets, keyed by the object's bucket, key and ETag: a new upload (new ETag)
# is read afresh, so the cache never serves a stale schema.
_CACHE_SIZE = 64
_cache: OrderedDict[tuple[str, str, str], DescriptorPool] = OrderedDict()
_cache_lock = threading.Lock()


def _fail(message: str) -> SqlEvaluationError:
    return SqlEvaluationError(f"decode(..., 'proto'): {message}")


def _descriptor_object(context: Any, services: Any, bucket: str, key: str) -> Any:
    """The descriptor's FakeKey from moto's S3, after the bucket-policy check."""
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends

    backend = s3_backends[context.account_id]["global"]
    try:
        fake_bucket = backend.get_bucket(bucket)
    except MissingBucket:
        raise _fail(f"NoSuchBucket: the descriptor bucket {bucket!r} does not exist") from None
    _check_bucket_policy(context, services, bucket, key, fake_bucket.policy)
    obj = backend.get_object(bucket, key)
    if obj is None:
        raise _fail(f"NoSuchKey: no descriptor object {key!r} in bucket {bucket!r}")
    return obj


def _check_bucket_policy(context: Any, services: Any, bucket: str, key: str, policy: Any) -> None:
    resource = f"arn:aws:s3:::{bucket}/{key}"
    text = policy.decode("utf-8") if isinstance(policy, bytes) else policy
    denial = services.service_denial(
        context, "s3:GetObject", resource, text or None, f"bucket policy of {bucket}"
    )
    if denial is not None:
        raise _fail(
            f"{denial.message()}; the bucket policy of {bucket} must allow the principal "
            f"{IOT_PRINCIPAL} the action s3:GetObject on {resource}"
        )


def _pool(bucket: str, key: str, etag: str, data: bytes) -> DescriptorPool:
    cache_key = (bucket, key, etag)
    with _cache_lock:
        pool = _cache.get(cache_key)
        if pool is not None:
            _cache.move_to_end(cache_key)
            return pool
    pool = build_pool(data, f"s3://{bucket}/{key}")
    with _cache_lock:
        _cache[cache_key] = pool
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return pool


def build_pool(data: bytes, where: str) -> DescriptorPool:
    """A DescriptorPool holding every file of a serialized FileDescriptorSet."""
    if len(data) > DESCRIPTOR_LIMIT_BYTES:
        raise _fail(
            f"the descriptor {where} is {len(data)} bytes; AWS IoT reads FileDescriptorSet "
            f"objects of at most {DESCRIPTOR_LIMIT_BYTES} bytes (32 KiB)"
        )
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    try:
        descriptor_set.ParseFromString(data)
    except DecodeError:
        raise _fail(f"{where} is not a serialized FileDescriptorSet") from None
    if not descriptor_set.file:
        raise _fail(f"{where} is not a FileDescriptorSet with any file in it")
    pool = DescriptorPool()
    pending = {f.name: f for f in descriptor_set.file}
    # A file can be added only after the files it imports (protoc --include_imports puts them
    # in the set; a set built without them cannot be used).
    while pending:
        ready = [f for f in pending.values() if not set(f.dependency) & pending.keys()]
        if not ready:
            raise _fail(f"{where}: the files {sorted(pending)} import each other in a cycle")
        for proto in ready:
            try:
                pool.Add(proto)
            except (TypeError, ValueError, KeyError) as error:
                raise _fail(
                    f"{where}: the file {proto.name!r} cannot be loaded ({error}); build the "
                    "descriptor with protoc --descriptor_set_out ... --include_imports"
                ) from None
            del pending[proto.name]
    return pool


def message_class(pool: DescriptorPool, proto_file: str, message_type: str) -> type[Message]:
    """The message type named in the file `proto_file` (given with or without its .proto
    extension), by its name in that file ("Outer.Inner" for a nested type) or its full name."""
    names = (proto_file,) if proto_file.endswith(".proto") else (proto_file + ".proto", proto_file)
    file = None
    for name in names:
        try:
            file = pool.FindFileByName(name)
            break
        except KeyError:
            continue
    if file is None:
        raise _fail(f"the descriptor has no proto file {proto_file!r}")
    full_name = f"{file.package}.{message_type}" if file.package else message_type
    for candidate in (full_name, message_type):
        try:
            descriptor = pool.FindMessageTypeByName(candidate)
        except KeyError:
            continue
        if descriptor.file.name == file.name:
            return message_factory.GetMessageClass(descriptor)
    raise _fail(f"the proto file {file.name!r} defines no message type {message_type!r}")


def to_json(message: Message) -> Any:
    """The message in protobuf's JSON mapping, as IoT SQL values (Ints, Decimals)."""
    return parse_json(json.dumps(MessageToDict(message)))


def decode_bytes(payload: bytes, pool: DescriptorPool, proto_file: str, message_type: str) -> Any:
    cls = message_class(pool, proto_file, message_type)
    message = cls()
    try:
        message.ParseFromString(payload)
    except DecodeError as error:
        raise _fail(
            f"the payload is not a valid {cls.DESCRIPTOR.full_name} message ({error})"
        ) from None
    return to_json(message)


def _payload_bytes(value: Any) -> bytes | None:
    if type(value) is bytes:
        return value
    if type(value) is str:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _fail("the value is a String but not base64 text") from None
    return None


def decode_proto(
    context: Any, value: Any, scheme: Any, bucket: Any, key: Any, proto_file: Any, message: Any
) -> Any:
    """decode(value, 'proto', bucket, key, protoFileName, messageType) in the rules engine."""
    if value is UNDEFINED:
        return UNDEFINED
    if type(scheme) is not str or scheme.lower() != SCHEME:
        return UNDEFINED
    if not all(type(a) is str and a for a in (bucket, key, proto_file, message)):
        return UNDEFINED
    payload = _payload_bytes(value)
    if payload is None:
        return UNDEFINED
    services = _services(context, "decode")
    obj = _descriptor_object(context, services, bucket, key)
    data = obj.value
    pool = _pool(bucket, key, str(obj.etag), data)
    return decode_bytes(payload, pool, proto_file, message)


decode_proto.with_context = True  # type: ignore[attr-defined]
decode_proto.arities = (ARITY,)  # type: ignore[attr-defined]
# `*` passes the payload's raw bytes, not the parsed JSON document.
decode_proto.star_is_bytes = True  # type: ignore[attr-defined]

"""IoT SQL decode(*, 'proto', bucket, key, protoFile, messageType) without a running emulator:
a FileDescriptorSet (tests/support/protobuf.py) stored in moto's S3 backend in-process, a message
encoded with the class protobuf builds from it, and the SQL that decodes it ("binary-payloads",
"Decoding protobuf message payloads")."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from support.protobuf import F, iot_read_policy, person_bytes, person_descriptor_set

from emulator.constants import ACCOUNT_ID
from emulator.rules.service_functions import ServiceCalls
from emulator.rules.sql import MessageContext, SqlError, SqlEvaluationError, compile_sql
from emulator.rules.templates import compile_template

DESCRIPTOR = person_descriptor_set().SerializeToString()


@pytest.fixture
def bucket():
    """A bucket in moto's S3 backend (in-process) holding the descriptor as person.desc."""
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT_ID]["global"]
    name = f"proto-{uuid.uuid4().hex[:12]}"
    backend.create_bucket(name, "us-east-1")
    backend.put_object(name, "person.desc", DESCRIPTOR)
    yield name
    for key in list(backend.get_bucket(name).keys):
        backend.delete_object(name, key)
    backend.delete_bucket(name)


def _context(**overrides) -> MessageContext:
    services = ServiceCalls(SimpleNamespace(iam_enforced=False))
    return MessageContext(topic="t/1", rule_name="r", services=services, **overrides)


def _sql(bucket: str, value: str = "*", key: str = "person.desc", file: str = "person") -> str:
    return (
        f"SELECT VALUE decode({value}, 'proto', '{bucket}', '{key}', '{file}', 'Person') FROM 't/#'"
    )


def test_a_payload_decodes_to_protobufs_json_mapping(bucket):
    payload = person_bytes(
        full_name="Ada", id=7, big_count=2**40, blob=b"\x00\xff", kind=1, phones=["555"], temp=1.5
    )
    result = compile_sql(_sql(bucket)).evaluate(payload, _context())
    # lowerCamelCase json_name keys, enum names, int64 as a string, bytes base64
    # (https://protobuf.dev/programming-guides/json/)
    assert result.value == {
        "fullName": "Ada",
        "id": 7,
        "bigCount": str(2**40),
        "blob": "AP8=",
        "kind": "KIND_HOME",
        "phones": [{"number": "555"}],
        "temp": 1.5,
    }


def test_fields_at_their_default_value_are_left_out(bucket):
    result = compile_sql(_sql(bucket)).evaluate(person_bytes(id=3), _context())
    assert result.value == {"id": 3}


def test_a_base64_string_value_and_the_full_file_name_decode_too(bucket):
    sql = _sql(bucket, value="encode(*, 'base64')", file="person.proto")
    result = compile_sql(sql).evaluate(person_bytes(full_name="B"), _context())
    assert result.value == {"fullName": "B"}


def test_a_field_of_the_decoded_message_is_addressable(bucket):
    sql = (
        f"SELECT decode(*, 'proto', '{bucket}', 'person.desc', 'person', 'Person').id AS id "
        f"FROM 't/#' WHERE decode(*, 'proto', '{bucket}', 'person.desc', 'person', "
        "'Person').fullName = 'Ada'"
    )
    rule = compile_sql(sql)
    assert rule.evaluate(person_bytes(full_name="Ada", id=9), _context()).value == {"id": 9}
    assert rule.evaluate(person_bytes(full_name="Bob", id=9), _context()) is None


@pytest.mark.parametrize(
    ("key", "file", "message", "reason"),
    [
        ("missing.desc", "person", "Person", "NoSuchKey"),
        ("person.desc", "nope", "Person", "no proto file 'nope'"),
        ("person.desc", "person", "Nope", "defines no message type 'Nope'"),
    ],
)
def test_a_missing_descriptor_file_or_type_fails_the_evaluation(bucket, key, file, message, reason):
    sql = f"SELECT VALUE decode(*, 'proto', '{bucket}', '{key}', '{file}', '{message}') FROM 't'"
    with pytest.raises(SqlEvaluationError, match=reason):
        compile_sql(sql).evaluate(person_bytes(id=1), _context())


def test_a_missing_bucket_fails_the_evaluation():
    with pytest.raises(SqlEvaluationError, match="NoSuchBucket"):
        compile_sql(_sql("no-such-bucket-proto")).evaluate(person_bytes(id=1), _context())


def test_a_payload_that_is_not_the_message_fails_the_evaluation(bucket):
    with pytest.raises(SqlEvaluationError, match="not a valid demo.Person message"):
        compile_sql(_sql(bucket)).evaluate(b"\x0a\xff\xff", _context())


def test_an_object_that_is_not_a_descriptor_set_fails_the_evaluation(bucket):
    from moto.s3.models import s3_backends

    s3_backends[ACCOUNT_ID]["global"].put_object(bucket, "junk.desc", b"\xff\xff\xff")
    with pytest.raises(SqlEvaluationError, match="not a serialized FileDescriptorSet"):
        compile_sql(_sql(bucket, key="junk.desc")).evaluate(person_bytes(id=1), _context())


def test_a_descriptor_over_32_kib_is_refused(bucket):
    from moto.s3.models import s3_backends

    big = person_descriptor_set()
    big.file[0].message_type[0].field.add(
        name="x", number=99, type=F.TYPE_STRING, json_name="y" * 33_000
    )
    s3_backends[ACCOUNT_ID]["global"].put_object(bucket, "big.desc", big.SerializeToString())
    with pytest.raises(SqlEvaluationError, match="at most 32768 bytes"):
        compile_sql(_sql(bucket, key="big.desc")).evaluate(person_bytes(id=1), _context())


def test_an_updated_descriptor_is_read_afresh(bucket):
    from moto.s3.models import s3_backends

    rule = compile_sql(_sql(bucket))
    assert rule.evaluate(person_bytes(id=1), _context()).value == {"id": 1}
    renamed = person_descriptor_set()
    renamed.file[0].message_type[0].field[1].name = "ident"
    s3_backends[ACCOUNT_ID]["global"].put_object(bucket, "person.desc", renamed.SerializeToString())
    assert rule.evaluate(person_bytes(id=1), _context()).value == {"ident": 1}


def test_outside_the_rules_engine_the_call_is_refused(bucket):
    with pytest.raises(SqlEvaluationError, match="rules engine"):
        compile_sql(_sql(bucket)).evaluate(person_bytes(id=1), MessageContext(topic="t"))


def test_more_than_two_proto_decodes_in_a_statement_run_no_action():
    call = "decode(*, 'proto', 'b', 'k.desc', 'f', 'M')"
    rule = compile_sql(f"SELECT {call} AS a, {call} AS b, {call} AS c FROM 't'")
    with pytest.raises(SqlEvaluationError, match="at most 2 time"):
        rule.evaluate(b"", MessageContext(topic="t"))
    # two are allowed, and base64 decodes do not count
    compile_sql(f"SELECT {call} AS a, {call} AS b, decode('e30=', 'base64') AS c FROM 't'")


def test_proto_decode_is_refused_in_a_substitution_template():
    with pytest.raises(SqlError, match="not in a substitution template"):
        compile_template("${decode(*, 'proto', 'b', 'k', 'f', 'M')}")


def test_two_argument_proto_decode_names_the_six_argument_form():
    with pytest.raises(SqlError, match="protobuf payloads take six"):
        compile_sql("SELECT decode(*, 'proto') AS x FROM 't'")


def test_six_arguments_with_another_scheme_are_refused_at_creation():
    with pytest.raises(SqlError, match="six arguments takes the 'proto' scheme"):
        compile_sql("SELECT decode(*, 'base64', 'b', 'k', 'f', 'M') AS x FROM 't'")


def test_arguments_of_the_wrong_type_give_undefined(bucket):
    sql = f"SELECT decode(*, 'proto', '{bucket}', 'person.desc', 3, 'Person') AS x FROM 't'"
    assert compile_sql(sql).evaluate(person_bytes(id=1), _context()).value == {}


@pytest.mark.parametrize(("policy_rule", "allowed"), [("r", True), ("other", False)])
def test_with_iam_enforced_the_bucket_policy_must_allow_iot_for_this_rule(
    bucket, policy_rule, allowed
):
    from moto.s3.models import s3_backends

    from emulator.iam.authorizer import IamAuthorizer

    s3_backends[ACCOUNT_ID]["global"].put_bucket_policy(
        bucket,
        iot_read_policy(bucket, f"arn:aws:iot:us-east-1:{ACCOUNT_ID}:rule/{policy_rule}").encode(),
    )
    iam = IamAuthorizer(ACCOUNT_ID)
    emulator = SimpleNamespace(iam_enforced=True, find=lambda name: iam if name == "iam" else None)
    context = MessageContext(topic="t/1", rule_name="r", services=ServiceCalls(emulator))
    rule = compile_sql(_sql(bucket))
    if allowed:
        assert rule.evaluate(person_bytes(id=5), context).value == {"id": 5}
    else:
        with pytest.raises(SqlEvaluationError, match="iot.amazonaws.com is not authorized"):
            rule.evaluate(person_bytes(id=5), context)

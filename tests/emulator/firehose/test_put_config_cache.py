"""The configuration a put checks is cached, yet every change is seen at the next put: through
the API (after-hooks) and behind it (moto's model changed directly, as a CloudFormation stack
does), and streams deleted or recreated under the same name."""

from __future__ import annotations

import pytest
from firehose_helpers import make_stream

from emulator.firehose.service import FirehoseError


def test_put_sees_delete_and_recreate_behind_the_api(emulator, firehose, aws, unique):
    # given a stream that took a put (so its configuration is cached)
    name = f"cache-{unique}"
    make_stream(aws, name, f"cache-{unique}", BufferingHints={"IntervalInSeconds": 900})
    assert len(firehose.put_records(emulator.account_id, emulator.region, name, [b"a"])) == 1
    # when moto's model loses the stream without a gateway call (as a stack deletion could)
    from moto.firehose.models import firehose_backends

    backend = firehose_backends[emulator.account_id][emulator.region]
    model = backend.delivery_streams.pop(name)
    # then the next put is refused as AWS refuses a missing stream
    with pytest.raises(FirehoseError) as missing:
        firehose.put_records(emulator.account_id, emulator.region, name, [b"b"])
    assert missing.value.code == "ResourceNotFoundException"
    # and once it is back, puts are accepted again
    backend.delivery_streams[name] = model
    assert len(firehose.put_records(emulator.account_id, emulator.region, name, [b"c"])) == 1
    aws("firehose").delete_delivery_stream(DeliveryStreamName=name)


def test_encryption_change_shows_in_the_next_put_response(emulator, firehose, aws, unique):
    # given a stream that answered a PutRecord unencrypted (configuration cached)
    name = f"cache-enc-{unique}"
    make_stream(aws, name, f"cache-enc-{unique}", BufferingHints={"IntervalInSeconds": 900})
    client = aws("firehose")
    first = client.put_record(DeliveryStreamName=name, Record={"Data": b"x"})
    assert first["Encrypted"] is False
    # when server-side encryption is started (it changes no version id)
    client.start_delivery_stream_encryption(
        DeliveryStreamName=name,
        DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"},
    )
    # then the next put reports it
    assert client.put_record(DeliveryStreamName=name, Record={"Data": b"y"})["Encrypted"] is True
    client.delete_delivery_stream(DeliveryStreamName=name)


def test_check_put_then_put_checked_spools_several_requests_at_once(
    emulator, firehose, aws, unique
):
    # given a stream, and two requests checked one by one
    name = f"cache-grp-{unique}"
    make_stream(aws, name, f"cache-grp-{unique}", BufferingHints={"IntervalInSeconds": 900})
    account, region = emulator.account_id, emulator.region
    firehose.check_put(account, region, name, [b"1"] * 400)
    firehose.check_put(account, region, name, [b"2"] * 400)
    # when their 800 records are spooled together (more than one PutRecordBatch may carry)
    ids = firehose.put_checked(account, region, name, [b"1"] * 400 + [b"2"] * 400)
    # then each got its own, increasing record id
    assert len(set(ids)) == 800 and ids == sorted(ids)
    # and a request over the API's limit still fails its own check
    with pytest.raises(FirehoseError) as too_many:
        firehose.check_put(account, region, name, [b"x"] * 501)
    assert too_many.value.code == "ValidationException"
    aws("firehose").delete_delivery_stream(DeliveryStreamName=name)

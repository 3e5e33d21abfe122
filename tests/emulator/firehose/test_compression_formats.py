"""Every CompressionFormat, delivered through boto3 PutRecordBatch to the destination and to the
S3 backup, read back with a decoder written here from the format's description (pyarrow's
Snappy codec for the raw blocks, so the emulator's encoder, cramjam, is not its own judge)."""

from __future__ import annotations

import gzip
import io
import re
import struct
import zipfile

import pyarrow
import pytest
from firehose_helpers import KEY_SUFFIX, ROLE, TIME_PATH, make_stream, wait_for_objects


def _raw_snappy(block: bytes) -> bytes:
    # A raw Snappy block starts with its uncompressed length as a little-endian varint.
    length, shift, i = 0, 0, 0
    while True:
        byte = block[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            break
        shift += 7
    return pyarrow.decompress(block, decompressed_size=length, codec="snappy").to_pybytes()


def read_snappy_java(body: bytes) -> bytes:
    """snappy-java's stream: magic, version and compatible version, then length-prefixed
    blocks."""
    assert body[:8] == b"\x82SNAPPY\x00", body[:8]
    assert struct.unpack(">ii", body[8:16]) == (1, 1)
    out, pos = [], 16
    while pos < len(body):
        (size,) = struct.unpack(">i", body[pos : pos + 4])
        out.append(_raw_snappy(body[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return b"".join(out)


def read_hadoop_snappy(body: bytes) -> bytes:
    """Hadoop's BlockCompressorStream: per block its uncompressed length, then compressed
    chunks (length-prefixed raw Snappy) until that many bytes are produced."""
    out, pos = [], 0
    while pos < len(body):
        (expected,) = struct.unpack(">I", body[pos : pos + 4])
        pos += 4
        produced = 0
        while produced < expected:
            (size,) = struct.unpack(">I", body[pos : pos + 4])
            chunk = _raw_snappy(body[pos + 4 : pos + 4 + size])
            pos += 4 + size
            produced += len(chunk)
            out.append(chunk)
        assert produced == expected
    return b"".join(out)


def read_zip(body: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        (entry,) = archive.infolist()
        assert entry.compress_type == zipfile.ZIP_DEFLATED
        assert re.fullmatch(r"[0-9a-f-]{36}", entry.filename), entry.filename
        return archive.read(entry)


FORMATS = {
    # format: (key extension, Content-Encoding, decoder)
    "UNCOMPRESSED": ("", None, lambda body: body),
    "GZIP": (".gz", "gzip", gzip.decompress),
    "ZIP": (".zip", "zip", read_zip),
    "Snappy": (".snappy", "snappy-java", read_snappy_java),
    "HADOOP_SNAPPY": (".snappy", "hadoop-snappy", read_hadoop_snappy),
}


@pytest.mark.parametrize("compression", sorted(FORMATS))
def test_destination_and_backup_objects_decode_to_the_records(aws, unique, compression):
    # Given a stream compressing with `compression`, backing up to a second bucket the same way
    extension, content_encoding, decode = FORMATS[compression]
    stream, bucket, backup = f"cf-{unique}", f"cf-{unique}", f"cf-raw-{unique}"
    aws("s3").create_bucket(Bucket=backup)
    hints = {"SizeInMBs": 1, "IntervalInSeconds": 1}
    make_stream(
        aws, stream, bucket,
        BufferingHints=hints,
        CompressionFormat=compression,
        S3BackupMode="Enabled",
        S3BackupConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{backup}",
            "Prefix": "raw/",
            "CompressionFormat": compression,
            "BufferingHints": hints,
        },
    )  # fmt: skip
    # 150 records of ~700 bytes: ~100 KiB, so the Snappy formats need several 32 KiB blocks
    records = [f'{{"n": {i}, "pad": "{"x" * (650 + i % 50)}"}}\n'.encode() for i in range(150)]

    # When they are put in one PutRecordBatch
    answer = aws("firehose").put_record_batch(
        DeliveryStreamName=stream, Records=[{"Data": d} for d in records]
    )
    assert answer["FailedPutCount"] == 0

    # Then the destination and the backup each hold one object with the format's extension
    # and Content-Encoding, which decodes to the records in order
    s3 = aws("s3")
    suffix = KEY_SUFFIX.format(stream=stream, version=1) + re.escape(extension)
    for target, prefix in ((bucket, ""), (backup, "raw/")):
        (obj,) = wait_for_objects(s3, target)
        assert re.fullmatch(prefix + TIME_PATH + suffix, obj["Key"]), obj["Key"]
        response = s3.get_object(Bucket=target, Key=obj["Key"])
        assert response.get("ContentEncoding") == content_encoding
        body = response["Body"].read()
        if compression != "UNCOMPRESSED":
            assert body != b"".join(records)
        assert decode(body) == b"".join(records)

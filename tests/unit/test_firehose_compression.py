"""The compression containers, byte by byte: snappy-java's stream header and blocks, Hadoop's
block lengths, one zip entry; each raw block decoded with pyarrow's Snappy codec."""

from __future__ import annotations

import io
import struct
import zipfile

import pyarrow
import pytest

from emulator.firehose import compression

DATA = bytes(range(256)) * 300  # 76,800 bytes: three 32 KiB blocks (32768 + 32768 + 11264)


def _raw(block: bytes, size: int) -> bytes:
    return pyarrow.decompress(block, decompressed_size=size, codec="snappy").to_pybytes()


def test_snappy_java_stream_header_and_blocks():
    body = compression.snappy_java(DATA)
    assert body[:16] == b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    sizes, pos, out = [32768, 32768, 11264], 16, b""
    for size in sizes:
        (length,) = struct.unpack(">i", body[pos : pos + 4])
        out += _raw(body[pos + 4 : pos + 4 + length], size)
        pos += 4 + length
    assert pos == len(body) and out == DATA


def test_hadoop_snappy_blocks_carry_their_uncompressed_length():
    body = compression.hadoop_snappy(DATA)
    pos, out = 0, b""
    while pos < len(body):
        raw_length, length = struct.unpack(">II", body[pos : pos + 8])
        assert raw_length <= compression.SNAPPY_BLOCK
        out += _raw(body[pos + 8 : pos + 8 + length], raw_length)
        pos += 8 + length
    assert out == DATA


def test_zip_holds_one_deflated_entry():
    with zipfile.ZipFile(io.BytesIO(compression.zip_archive(DATA))) as archive:
        (entry,) = archive.infolist()
        assert entry.compress_type == zipfile.ZIP_DEFLATED
        assert archive.read(entry) == DATA


@pytest.mark.parametrize(
    ("name", "encoding"),
    [("UNCOMPRESSED", None), ("GZIP", "gzip"), ("ZIP", "zip"), ("Snappy", "snappy-java"),
     ("HADOOP_SNAPPY", "hadoop-snappy")],
)  # fmt: skip
def test_content_encoding_per_format(name, encoding):
    assert compression.encode(b"abc", name)[1] == encoding


def test_unknown_format_is_refused():
    with pytest.raises(compression.UnknownCompression, match="LZ4"):
        compression.encode(b"abc", "LZ4")

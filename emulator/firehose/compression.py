"""Object bodies for every Firehose CompressionFormat: UNCOMPRESSED, GZIP, ZIP, Snappy and
HADOOP_SNAPPY, with the Content-Encoding Firehose sets on the S3 object.

The developer guide ("s3-object-name") names the extension per format (.gz, .zip, .snappy) but
not the container of the two Snappy formats. What Firehose writes was observed on AWS and
reproduced byte for byte with snappy-java (a public report of it:
https://github.com/floci-io/floci/issues/2328):
- `Snappy` is snappy-java's stream format (`SnappyOutputStream`): the 8-byte magic
  `\\x82SNAPPY\\x00`, two big-endian int32 (version 1, compatible version 1), then per block of
  at most 32 KiB of input a big-endian int32 length and a raw Snappy block; Content-Encoding
  `snappy-java`. It is not the framing format of Snappy's framing_format.txt.
- `HADOOP_SNAPPY` is Hadoop's block format (`BlockCompressorStream`, the one the guide links for
  "record-format-conversion"): per block a big-endian int32 of the block's uncompressed length,
  then a big-endian int32 compressed length and a raw Snappy block; Content-Encoding
  `hadoop-snappy`.
- `ZIP` is a zip archive holding one deflated entry named with a UUID; Content-Encoding `zip`.
Raw Snappy blocks come from cramjam (a maintained binding of the Rust `snap` codec).
"""

from __future__ import annotations

import gzip
import io
import struct
import uuid
import zipfile

import cramjam

# snappy-java's SnappyOutputStream (and its Hadoop-compatible stream): 32 KiB blocks.
SNAPPY_BLOCK = 32 * 1024
SNAPPY_JAVA_MAGIC = b"\x82SNAPPY\x00"
SNAPPY_JAVA_VERSION = 1
SNAPPY_JAVA_COMPATIBLE_VERSION = 1

# CompressionFormat -> Content-Encoding of the object (None: no header).
CONTENT_ENCODINGS: dict[str, str | None] = {
    "UNCOMPRESSED": None,
    "GZIP": "gzip",
    "ZIP": "zip",
    "Snappy": "snappy-java",
    "HADOOP_SNAPPY": "hadoop-snappy",
}


class UnknownCompression(ValueError):
    """A CompressionFormat outside the API's enum (CreateDeliveryStream refuses those)."""


def _raw_snappy(block: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(block))


def _blocks(data: bytes) -> list[bytes]:
    return [data[i : i + SNAPPY_BLOCK] for i in range(0, len(data), SNAPPY_BLOCK)]


def snappy_java(data: bytes) -> bytes:
    """snappy-java's stream format (magic, version, compatible version, length-prefixed
    blocks)."""
    out = [
        SNAPPY_JAVA_MAGIC,
        struct.pack(">ii", SNAPPY_JAVA_VERSION, SNAPPY_JAVA_COMPATIBLE_VERSION),
    ]
    for block in _blocks(data):
        compressed = _raw_snappy(block)
        out.append(struct.pack(">i", len(compressed)))
        out.append(compressed)
    return b"".join(out)


def hadoop_snappy(data: bytes) -> bytes:
    """Hadoop's block format: per block its uncompressed length, then one length-prefixed
    compressed chunk."""
    out = []
    for block in _blocks(data):
        compressed = _raw_snappy(block)
        out.append(struct.pack(">II", len(block), len(compressed)))
        out.append(compressed)
    return b"".join(out)


def zip_archive(data: bytes, entry_name: str | None = None) -> bytes:
    """A zip archive with one deflated entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(entry_name or str(uuid.uuid4()), data)
    return buffer.getvalue()


def encode(data: bytes, compression: str) -> tuple[bytes, str | None]:
    """The object body and its Content-Encoding for a CompressionFormat."""
    if compression in ("UNCOMPRESSED", ""):
        return data, None
    if compression == "GZIP":
        return gzip.compress(data), CONTENT_ENCODINGS["GZIP"]
    if compression == "ZIP":
        return zip_archive(data), CONTENT_ENCODINGS["ZIP"]
    if compression == "Snappy":
        return snappy_java(data), CONTENT_ENCODINGS["Snappy"]
    if compression == "HADOOP_SNAPPY":
        return hadoop_snappy(data), CONTENT_ENCODINGS["HADOOP_SNAPPY"]
    raise UnknownCompression(
        f"CompressionFormat {compression!r} is not one of {', '.join(CONTENT_ENCODINGS)}"
    )

"""Deployment packages are checked at CreateFunction / UpdateFunctionCode as Lambda checks them:
the unzipped size (also when a header lies about it), entries that would land outside the
package, and the size of a direct upload."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from botocore.exceptions import ClientError
from support.lambdas import create_function

UNZIPPED_LIMIT = 262_144_000


def _bomb(size: int, name: str = "big.bin") -> bytes:
    """A .zip holding `size` zero bytes: a few hundred KB that inflate to `size`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", "def echo(event, context):\n    return event\n")
        with archive.open(name, "w") as member:
            chunk = bytes(1 << 20)
            for _ in range(size // len(chunk)):
                member.write(chunk)
            member.write(bytes(size % len(chunk)))
    return buffer.getvalue()


def _lying(package: bytes, name: str, claimed: int) -> bytes:
    """`package` with the uncompressed size of `name` rewritten to `claimed` in both headers."""
    data = bytearray(package)
    # (signature, offset of the name length, of the name, of the uncompressed size): the local
    # file header, then the central directory entry (APPNOTE.TXT 4.3.7 and 4.3.12)
    for signature, length_at, name_at, size_at in (
        (b"PK\x03\x04", 26, 30, 22),
        (b"PK\x01\x02", 28, 46, 24),
    ):
        header = data.find(signature)
        while header != -1:
            name_length = struct.unpack_from("<H", data, header + length_at)[0]
            start = header + name_at
            if bytes(data[start : start + name_length]) == name.encode():
                struct.pack_into("<I", data, header + size_at, claimed)
                break
            header = data.find(signature, header + 4)
    return bytes(data)


def _error(raised) -> tuple[str, str, int]:
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_zip_bomb_is_refused_atcreate_function(aws, lambda_role, unique):
    # Given a package of some hundred KB that unzips to more than 250 MB
    package = _bomb(UNZIPPED_LIMIT + (1 << 20))
    assert len(package) < 1_000_000

    # When a function is created from it
    with pytest.raises(ClientError) as raised:
        create_function(aws, lambda_role, f"bomb-{unique}", package)

    # Then Lambda's InvalidParameterValueException comes back, and no function exists
    assert _error(raised) == (
        "InvalidParameterValueException",
        f"Unzipped size must be smaller than {UNZIPPED_LIMIT} bytes",
        400,
    )
    with pytest.raises(ClientError):
        aws("lambda").get_function(FunctionName=f"bomb-{unique}")


def test_zip_bomb_is_refused_at_update(aws, deploy):
    # Given a function
    name = deploy("app.echo")

    # When its code is replaced by a package that unzips to more than 250 MB
    with pytest.raises(ClientError) as raised:
        aws("lambda").update_function_code(
            FunctionName=name, ZipFile=_bomb(UNZIPPED_LIMIT + (1 << 20))
        )

    # Then the update is refused and the old code still runs
    assert _error(raised)[0] == "InvalidParameterValueException"
    response = aws("lambda").invoke(FunctionName=name, Payload=b'{"n": 1}')
    assert response["Payload"].read() == b'{"echo": {"n": 1}}'


def test_header_that_understates_the_size_is_refused(aws, lambda_role, unique):
    # Given a package whose headers claim 1000 bytes for a member that inflates to 300 MB
    package = _lying(_bomb(300 * 1024 * 1024, name="liar.bin"), "liar.bin", 1000)
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        assert archive.getinfo("liar.bin").file_size == 1000

    # When a function is created from it
    with pytest.raises(ClientError) as raised:
        create_function(aws, lambda_role, f"liar-{unique}", package)

    # Then it is refused as a package Lambda cannot unzip
    code, message, status = _error(raised)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message.startswith("Could not unzip uploaded file")


@pytest.mark.parametrize("entry", ["../outside.py", "/abs/path.py", "lib/../../up.py"])
def test_entries_outside_the_package_are_refused(aws, lambda_role, unique, entry):
    # Given a package with an entry that would be written outside /var/task (zip slip)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def echo(event, context):\n    return event\n")
        archive.writestr(zipfile.ZipInfo(entry), "print('escaped')\n")

    # When a function is created from it
    with pytest.raises(ClientError) as raised:
        create_function(aws, lambda_role, f"slip-{unique}", buffer.getvalue())

    # Then the entry is named in the refusal
    code, message, _ = _error(raised)
    assert code == "InvalidParameterValueException"
    assert f"'{entry}'" in message


def test_direct_upload_over_the_request_limit_is_refused(aws, lambda_role, unique):
    # Given a request larger than Lambda's 70167211 bytes (a zipped package over 50 MB)
    package = bytes(53 * 1024 * 1024)

    # When a function is created from it
    with pytest.raises(ClientError) as raised:
        create_function(aws, lambda_role, f"huge-{unique}", package)

    # Then RequestEntityTooLargeException (413) names the limit and the operation
    assert _error(raised) == (
        "RequestEntityTooLargeException",
        "Request must be smaller than 70167211 bytes for the CreateFunction operation",
        413,
    )


def test_a_normal_package_still_deploys(aws, deploy):
    # A package well inside every limit is accepted and runs
    name = deploy("app.echo")
    response = aws("lambda").invoke(FunctionName=name, Payload=b"{}")
    assert response["Payload"].read() == b'{"echo": {}}'


def test_zip_bomb_from_s3_is_refused(aws, lambda_role, unique):
    # Given a package in S3 that unzips to more than 250 MB
    bucket = f"code-{unique}"
    aws("s3").create_bucket(Bucket=bucket)
    aws("s3").put_object(Bucket=bucket, Key="bomb.zip", Body=_bomb(UNZIPPED_LIMIT + (1 << 20)))

    # When a function is created from that object
    with pytest.raises(ClientError) as raised:
        aws("lambda").create_function(
            FunctionName=f"s3bomb-{unique}",
            Runtime="python3.11",
            Role=lambda_role,
            Handler="app.echo",
            Code={"S3Bucket": bucket, "S3Key": "bomb.zip"},
        )

    # Then it is refused as a direct upload would be
    assert _error(raised) == (
        "InvalidParameterValueException",
        f"Unzipped size must be smaller than {UNZIPPED_LIMIT} bytes",
        400,
    )

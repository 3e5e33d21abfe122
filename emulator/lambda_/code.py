"""A function's deployment package on disk: moto keeps the .zip bytes in memory
(`LambdaFunction.code_bytes`), and a worker needs them extracted as Lambda's /var/task.

Packages are extracted once per (function, code SHA-256) under `<root>/<function>/<sha256 hex>/`
and reused by every worker and restart. Both path parts are checked (a stored function name
is [a-zA-Z0-9_-]{1,64}, the digest is 64 hex digits), so nothing from a request becomes a path
outside `<root>`. The archive is checked before anything is written: the declared unzipped size
against Lambda's 250 MB (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html,
"Deployment package (.zip file archive) size: ... 250 MB (unzipped)"), entries with absolute
paths or ".." refused; extraction then counts the bytes it really writes, so a header that
understates a member's size cannot fill the disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import threading
import zipfile
import zlib
from pathlib import Path, PurePosixPath

# Lambda's unzipped limit, in the bytes its error message names.
MAX_UNZIPPED_BYTES = 262_144_000
# Members and nesting a package may have; far beyond any real one, bounds the work per package.
MAX_ENTRIES = 100_000
_CHUNK = 1 << 20
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

_lock = threading.Lock()


class DeploymentPackageError(Exception):
    """The package is not a usable .zip archive, or breaks one of Lambda's limits."""


def _too_large() -> DeploymentPackageError:
    # AWS's message, InvalidParameterValueException at CreateFunction / UpdateFunctionCode.
    return DeploymentPackageError(f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")


def _entry_problem(name: str) -> str | None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if ".." in path.parts:
        return "a '..' component"
    return None


def _open(code_bytes: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(code_bytes))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        # Lambda's own wording for a package it cannot open.
        raise DeploymentPackageError(
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        ) from exc


def check_package(code_bytes: bytes, inflate: bool = True) -> None:
    """Refuse a package Lambda would refuse: from its central directory (declared sizes, entry
    paths), then, with `inflate`, by decompressing every member into nothing, counting the
    bytes, so that corrupt data or a header that lies about a size is refused at upload, as
    Lambda (which unzips the package) does, rather than at the first invocation."""
    with _open(code_bytes) as archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise DeploymentPackageError(
                f"The package has {len(entries)} entries; the emulator accepts at most "
                f"{MAX_ENTRIES}."
            )
        total = 0
        for info in entries:
            problem = _entry_problem(info.filename)
            if problem:
                raise DeploymentPackageError(
                    f"The package entry '{info.filename}' has {problem}; entries must be "
                    "relative paths inside the package."
                )
            total += info.file_size
            if total >= MAX_UNZIPPED_BYTES:
                raise _too_large()
        if inflate:
            _inflate_all(archive)


def _inflate_all(archive: zipfile.ZipFile) -> None:
    inflated = 0
    try:
        for info in archive.infolist():
            if info.is_dir():
                continue
            with archive.open(info) as source:
                while chunk := source.read(_CHUNK):
                    inflated += len(chunk)
                    if inflated >= MAX_UNZIPPED_BYTES:
                        raise _too_large()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        OSError,
        zlib.error,
        EOFError,
    ) as exc:
        # zipfile stops at the declared size and then finds the CRC wrong: a lying header.
        raise DeploymentPackageError(
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        ) from exc


def _extract(archive: zipfile.ZipFile, staging: Path) -> None:
    """Write every member under `staging`, counting the bytes actually inflated."""
    written = 0
    for info in archive.infolist():
        target = staging.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, open(target, "wb") as sink:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written >= MAX_UNZIPPED_BYTES:
                    raise _too_large()
                sink.write(chunk)
        # Keep the executable bit a package declares (bootstrap scripts, binaries). Readable by
        # all, writable by the emulator only: a worker under another uid reads /var/task only.
        os.chmod(target, 0o644 | ((info.external_attr >> 16) & 0o111))


def package_dir(root: Path, function_name: str, sha256: str) -> Path:
    """Where the package of `function_name` with digest `sha256` lives under `root`."""
    if not _NAME.fullmatch(function_name):
        raise DeploymentPackageError(
            f"Function name {function_name!r} does not satisfy [a-zA-Z0-9_-]{{1,64}}."
        )
    if not _SHA256.fullmatch(sha256):
        raise DeploymentPackageError("The package digest is not a SHA-256 in hex.")
    return Path(root) / function_name / sha256


def extract_package(
    root: Path, function_name: str, code_bytes: bytes, sha256: str | None = None
) -> tuple[Path, str]:
    """The directory holding the extracted package, and the package's SHA-256 (hex).

    `sha256` is the digest moto already computed (`code_digest`); passing it saves hashing
    the whole package on every invocation."""
    if not sha256 or not _SHA256.fullmatch(sha256):
        sha256 = hashlib.sha256(code_bytes).hexdigest()
    target = package_dir(root, function_name, sha256)
    if target.is_dir():
        return target, sha256
    with _lock:
        if target.is_dir():
            return target, sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
        try:
            check_package(code_bytes, inflate=False)  # _extract counts what it writes
            with _open(code_bytes) as archive:
                _extract(archive, staging)
            # mkdtemp made it 0700 and the umask may be strict: workers may run as another uid.
            for path, _dirs, _files in os.walk(staging):
                os.chmod(path, 0o755)
            os.chmod(target.parent, 0o755)
            staging.rename(target)  # atomic: a half-extracted package is never seen
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, zlib.error) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise DeploymentPackageError(
                f"the deployment package of {function_name} is not a valid .zip file: {exc}"
            ) from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target, sha256


def remove_tree(path: Path) -> None:
    """Delete an extracted package root."""
    shutil.rmtree(path, ignore_errors=True)

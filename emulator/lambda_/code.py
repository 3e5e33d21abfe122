"""A function's deployment package on disk: moto keeps the .zip bytes in memory
(`LambdaFunction.code_bytes`), and a worker needs them extracted as Lambda's /var/task.

Packages are extracted once per (function, code SHA-256) under
`<data_dir>/lambda/<function>/<sha256 hex>/` and reused by every worker and restart.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

_lock = threading.Lock()


class DeploymentPackageError(Exception):
    """The stored package is not a usable .zip archive."""


def extract_package(
    data_dir: Path, function_name: str, code_bytes: bytes, sha256: str | None = None
) -> tuple[Path, str]:
    """The directory holding the extracted package, and the package's SHA-256 (hex).

    `sha256` is the digest moto already computed (`code_digest`); passing it saves hashing
    the whole package on every invocation."""
    sha256 = sha256 or hashlib.sha256(code_bytes).hexdigest()
    target = Path(data_dir) / "lambda" / function_name / sha256
    if target.is_dir():
        return target, sha256
    with _lock:
        if target.is_dir():
            return target, sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
        try:
            with zipfile.ZipFile(io.BytesIO(code_bytes)) as archive:
                # extractall drops absolute paths and ".." components (no zip-slip).
                archive.extractall(staging)
            staging.rename(target)  # atomic: a half-extracted package is never seen
        except zipfile.BadZipFile as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise DeploymentPackageError(
                f"the deployment package of {function_name} is not a valid .zip file: {exc}"
            ) from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target, sha256

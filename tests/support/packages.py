"""Lambda deployment packages for tests: a .zip built in memory from {path: source}."""

from __future__ import annotations

import io
import zipfile


def function_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, source in files.items():
            archive.writestr(path, source)
    return buffer.getvalue()

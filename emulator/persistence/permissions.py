"""The data directory is private to the user: directories 0700, files without group/other bits.

The saved state holds secrets (IAM secret access keys, Secrets Manager values, Lambda functions'
environment variables, the IoT root CA's private key), so nobody else on the machine may read
it. New files and directories are created private (fileformat.py); `make_private` also repairs a
data directory written by an older version, whose files were 0644 in 0755 directories.

The first walk covers everything and leaves a marker; later ones skip `moto/s3`, where this
version creates every file 0600 itself and where the bulk of the files are (a walk over 20,000
S3 files took 0.5 s here on a loaded 2-core machine).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from emulator.persistence.fileformat import DIR_MODE, open_private, private_dir

GROUP_OTHER = 0o077
MARKER = ".private"  # every file below was checked once; moto/s3 is private by construction


def make_private(data_dir: Path) -> int:
    """Create `data_dir` 0700 and strip group/other bits below it; how many modes changed.

    Symbolic links are neither followed nor changed: only what the emulator itself created."""
    changed = 0
    if not data_dir.exists():
        private_dir(data_dir)
    marker = data_dir / MARKER
    skip = {str(data_dir / "moto" / "s3")} if marker.exists() else set()
    if stat.S_IMODE(data_dir.stat().st_mode) != DIR_MODE:
        os.chmod(data_dir, DIR_MODE)
        changed += 1
    pending = [str(data_dir)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except FileNotFoundError:  # removed meanwhile (the server may already be answering)
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
                mode = stat.S_IMODE(info.st_mode)
                if stat.S_ISDIR(info.st_mode):
                    if entry.path not in skip:
                        pending.append(entry.path)
                    if mode != DIR_MODE:
                        os.chmod(entry.path, DIR_MODE)
                        changed += 1
                elif stat.S_ISREG(info.st_mode) and mode & GROUP_OTHER:
                    os.chmod(entry.path, mode & ~GROUP_OTHER)
                    changed += 1
            except FileNotFoundError:
                continue
    if not skip:
        os.close(open_private(marker, os.O_WRONLY | os.O_CREAT))
    return changed

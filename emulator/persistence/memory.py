"""Give memory back to the OS after large S3 requests (glibc only; a no-op elsewhere).

moto handles an S3 body as `bytes` (a PutObject's body, a part, the concatenation at
CompleteMultipartUpload) before it reaches the body file. Python frees those buffers, but glibc
raises its mmap threshold after the first large free (up to 32 MiB) and then serves such buffers
from heaps it keeps: measured here, the emulator stayed ~330 MB larger after one 200 MB
`upload_file`, although no Python object held the bytes. A fixed threshold makes large buffers
mmapped (returned on free), and `malloc_trim` after a large request returns the rest.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
MMAP_THRESHOLD = 256 * 1024
LARGE_REQUEST = 4 * 1024 * 1024

_libc: ctypes.CDLL | None = None
_trim_lock = threading.Lock()


def limit_heap_retention() -> None:
    """Fix glibc's mmap threshold so that large buffers are returned to the OS when freed."""
    global _libc
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
            return
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        _libc = libc
    except OSError:  # not glibc
        log.debug("no glibc: heap retention left as it is")


def trim() -> None:
    """Return free heap memory to the OS (after a large request)."""
    if _libc is not None and _trim_lock.acquire(blocking=False):
        try:
            _libc.malloc_trim(0)
        finally:
            _trim_lock.release()

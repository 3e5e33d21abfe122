"""`python -m emulator status` and `python -m emulator --reset`: what is stored, and wiping it.

`status` reads the saved files without changing them (it is safe while an emulator runs) and
prints, per kind of resource, how many there are, and per folder of the data directory how many
bytes it holds, and which files were set aside as unreadable (quarantine.py). `--reset` deletes
the data directory's contents after confirmation; it refuses a directory that is not an emulator
data directory, or one an emulator is running on.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from emulator.persistence import pickling
from emulator.persistence.blobs import BlobStore
from emulator.persistence.fileformat import StateFormatError, read_checked
from emulator.persistence.logjournal import LogJournals
from emulator.persistence.quarantine import QUARANTINE, quarantined_files
from emulator.persistence.store import MARKER, STATE_KIND, moto_dir

RUNNING_FILE = "emulator.json"  # written by `python -m emulator` while it runs


def _count(attr: str) -> Callable[[Any], int]:
    return lambda backend: len(getattr(backend, attr, {}) or {})


def _lambda_functions(backend: Any) -> int:
    return len(backend._lambdas._functions)


def _log_events(backend: Any) -> int:
    return sum(len(s.events) for g in backend.groups.values() for s in g.streams.values())


# (label, moto module, counter) in the order the pipeline uses them.
KINDS: list[tuple[str, str, Callable[[Any], int]]] = [
    ("CloudFormation stacks", "moto.cloudformation.models", _count("stacks")),
    ("IoT things", "moto.iot.models", _count("things")),
    ("IoT thing groups", "moto.iot.models", _count("thing_groups")),
    ("IoT policies", "moto.iot.models", _count("policies")),
    ("IoT certificates", "moto.iot.models", _count("certificates")),
    ("IoT topic rules", "moto.iot.models", _count("rules")),
    ("Firehose delivery streams", "moto.firehose.models", _count("delivery_streams")),
    ("Lambda functions", "moto.awslambda.models", _lambda_functions),
    ("IAM roles", "moto.iam.models", _count("roles")),
    ("S3 buckets", "moto.s3.models", _count("buckets")),
    ("CloudWatch Logs log groups", "moto.logs.models", _count("groups")),
    ("CloudWatch Logs events", "moto.logs.models", _log_events),
]


def folder_size(path: Path) -> tuple[int, int]:
    """(files, bytes) under `path`."""
    files = size = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            try:
                size += os.stat(os.path.join(root, name)).st_size
                files += 1
            except FileNotFoundError:  # removed by a running emulator meanwhile
                pass
    return files, size


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def read_counts(data_dir: Path) -> dict[str, int]:
    """Resources per kind in the saved snapshot (read-only; objects counted from records)."""
    state_path = moto_dir(data_dir) / "state.pkl"
    blobs = BlobStore.__new__(BlobStore)  # read-only: never creates nor deletes a file
    blobs.directory = moto_dir(data_dir) / "s3" / "blobs"
    blobs.directory_str = str(blobs.directory)
    blobs.frozen = True  # keys dropped after counting must not retire their bodies
    journals = LogJournals.__new__(LogJournals)  # read-only: no directory created
    journals.directory, journals.data_dir, journals._saved, journals.quarantine = (
        moto_dir(data_dir) / "logs",
        data_dir,
        {},
        None,  # read-only: an unreadable journal counts as no events, and stays where it is
    )

    def log_events(name: str, stream: Any) -> list:
        return journals.load(name, stream, repair=False)

    data = read_checked(
        state_path,
        STATE_KIND,
        data_dir,
        lambda src: pickling.loads(src, blobs, lambda _n: {}, log_events),
    )
    pickling.take_load_report()
    counts = {label: 0 for label, _, _ in KINDS}
    for module_name, _attr, accounts in data["backends"]:
        for regions in accounts.values():
            for backend in regions.values():
                for label, module, counter in KINDS:
                    if module == module_name:
                        counts[label] += counter(backend)
    objects_dir = moto_dir(data_dir) / "s3" / "objects"
    counts["S3 objects"] = folder_size(objects_dir)[0] if objects_dir.is_dir() else 0
    return counts


def status(data_dir: Path, out: TextIO = sys.stdout) -> int:
    """Print what is stored under `data_dir`; exit code 0, or 1 if the state is unreadable."""
    print(f"Data dir: {data_dir}", file=out)
    running = _running_pid(data_dir)
    if running:
        print(f"An emulator is running on it (pid {running}).", file=out)
    state_path = moto_dir(data_dir) / "state.pkl"
    if not state_path.exists():
        print("No saved AWS state (a new emulator starts empty).", file=out)
    else:
        try:
            counts = read_counts(data_dir)
        except StateFormatError as exc:
            print(f"The saved state cannot be read: {exc}", file=out)
            print_quarantine(data_dir, out)
            return 1
        width = max(len(k) for k in counts)
        for label, count in counts.items():
            print(f"  {label:<{width}}  {count:>8}", file=out)
    if data_dir.is_dir():
        print("Bytes on disk:", file=out)
        areas = (
            [
                ("moto snapshot (state.pkl)", state_path),
                ("S3 object records", moto_dir(data_dir) / "s3" / "objects"),
                ("S3 object bodies", moto_dir(data_dir) / "s3" / "blobs"),
                ("CloudWatch Logs journals", moto_dir(data_dir) / "logs"),
            ]
            + [
                (f"{p.name}/ (component)", p)
                for p in sorted(data_dir.iterdir())
                if p.is_dir() and p.name not in ("moto", QUARANTINE)
            ]
            + [("quarantine/ (unreadable)", data_dir / QUARANTINE)]
        )
        width = max(len(a) for a, _ in areas)
        for label, path in areas:
            if path.is_file():
                files, size = 1, path.stat().st_size
            elif path.is_dir():
                files, size = folder_size(path)
            else:
                continue
            print(f"  {label:<{width}}  {files:>8} files  {_human(size):>10}", file=out)
        print(
            f"  {'total':<{width}}  {'':>8}        {_human(folder_size(data_dir)[1]):>10}", file=out
        )
    print_quarantine(data_dir, out)
    return 0


def print_quarantine(data_dir: Path, out: TextIO, shown: int = 20) -> None:
    """The files set aside at start because they could not be read, if any."""
    files = quarantined_files(data_dir)
    if not files:
        return
    print(
        f"Quarantine: {len(files)} file(s) set aside because they could not be read, in "
        f"{data_dir / QUARANTINE} (the emulator started without them; inspect or delete them):",
        file=out,
    )
    for path in files[:shown]:
        print(f"  {path.relative_to(data_dir)}", file=out)
    if len(files) > shown:
        print(f"  ... and {len(files) - shown} more", file=out)


def reset(data_dir: Path, assume_yes: bool, out: TextIO = sys.stdout) -> int:
    """Delete everything under `data_dir` after confirmation; exit code."""
    if not data_dir.exists():
        print(f"Nothing to reset: {data_dir} does not exist.", file=out)
        return 0
    entries = [p for p in data_dir.iterdir() if p.name != MARKER]
    if not (data_dir / MARKER).exists() and entries:
        print(
            f"Refusing to reset {data_dir}: it is not an emulator data directory "
            f"(no {MARKER} file). Delete it yourself if that is really what you want.",
            file=out,
        )
        return 2
    running = _running_pid(data_dir)
    if running:
        print(
            f"Refusing to reset {data_dir}: an emulator (pid {running}) is running on it; "
            "stop it first (`python -m emulator stop`).",
            file=out,
        )
        return 2
    if not assume_yes:
        size = _human(folder_size(data_dir)[1])
        answer = input(f"Delete all emulator state in {data_dir} ({size})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.", file=out)
            return 1
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    print(f"Emulator state in {data_dir} deleted.", file=out)
    return 0


def _running_pid(data_dir: Path) -> int | None:
    """The pid of a live emulator that recorded itself in `data_dir`, if any."""
    try:
        pid = int(json.loads((data_dir / RUNNING_FILE).read_text())["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid

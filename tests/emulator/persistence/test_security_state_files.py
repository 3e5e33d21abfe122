"""The saved state is private (0700 directories, 0600 files), an unreadable S3 object record or
log journal is set aside instead of blocking the start, and an unreadable snapshot is refused
with a way out that keeps it."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess

from persistence_helpers import EmulatorProcess, run_cli

SECRET_FILES = ("moto/state.pkl",)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def saved_state(data_dir) -> dict:
    """A data directory with an IAM secret key, two objects and log events; no emulator running."""
    emu = EmulatorProcess(data_dir).start()
    iam, s3, logs = emu.client("iam"), emu.client("s3"), emu.client("logs")
    iam.create_user(UserName="learner")
    secret = iam.create_access_key(UserName="learner")["AccessKey"]["SecretAccessKey"]
    s3.create_bucket(Bucket="files")
    s3.put_object(Bucket="files", Key="good", Body=b"good body")
    s3.put_object(Bucket="files", Key="bad", Body=b"bad body")
    logs.create_log_group(logGroupName="/app")
    logs.create_log_stream(logGroupName="/app", logStreamName="s")
    logs.put_log_events(
        logGroupName="/app", logStreamName="s", logEvents=[{"timestamp": 1, "message": "hello"}]
    )
    assert emu.stop() == 0
    return {"secret": secret}


def modes(root) -> dict[str, tuple[str, int]]:
    """{relative path: ("d" or "f", permission bits)} of everything below `root`."""
    found = {}
    for dirpath, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            kind = "d" if stat.S_ISDIR(info.st_mode) else "f"
            found[os.path.relpath(path, root)] = (kind, stat.S_IMODE(info.st_mode))
    return found


def assert_private(data_dir) -> None:
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    found = modes(data_dir)
    assert "moto/state.pkl" in found
    loose = {p: oct(m) for p, (kind, m) in found.items() if kind == "d" and m != 0o700}
    loose |= {p: oct(m) for p, (kind, m) in found.items() if kind == "f" and m & 0o077}
    assert not loose, loose
    state = {p: m for p, (kind, m) in found.items() if p.startswith("moto/") and kind == "f"}
    assert set(state.values()) == {0o600}, state


def test_the_saved_state_is_private_to_the_user(data_dir, emulators):
    # Given a state holding an IAM secret access key, objects and log events
    saved = saved_state(data_dir)
    assert saved["secret"].encode() in (data_dir / "moto" / "state.pkl").read_bytes()
    # Then the data dir and every directory below are 0700, every state file 0600
    assert_private(data_dir)
    # And so after a restart that wrote more
    emu = emulators()
    emu.client("s3").put_object(Bucket="files", Key="new/key", Body=b"x")
    emu.client("iot").create_thing(thingName="t")
    assert emu.stop() == 0
    assert_private(data_dir)


def test_a_data_dir_left_readable_by_an_older_version_is_made_private(data_dir, emulators):
    # Given a saved state whose directories are 0755 and files 0644, as older versions left it
    # (without the marker of a checked data dir)
    saved_state(data_dir)
    (data_dir / ".private").unlink()
    for path, (kind, _mode) in modes(data_dir).items():
        os.chmod(data_dir / path, 0o755 if kind == "d" else 0o644)
    os.chmod(data_dir, 0o755)
    # When an emulator starts on it
    emu = emulators()
    # Then everything is private again, while it runs
    assert_private(data_dir)
    assert emu.client("s3").get_object(Bucket="files", Key="good")["Body"].read() == b"good body"


def record_of(data_dir, bucket: str, key: str):
    return data_dir / "moto" / "s3" / "objects" / sha256(bucket) / f"{sha256(key)}.pkl"


def test_a_truncated_object_record_is_set_aside_and_the_rest_starts(data_dir, emulators):
    # Given a saved state in which one object's record was torn
    saved_state(data_dir)
    record = record_of(data_dir, "files", "bad")
    data = record.read_bytes()
    record.write_bytes(data[: len(data) // 2])
    # When an emulator starts on it
    emu = emulators()
    s3 = emu.client("s3")
    # Then it runs, with every other object and resource
    assert s3.get_object(Bucket="files", Key="good")["Body"].read() == b"good body"
    assert [u["UserName"] for u in emu.client("iam").list_users()["Users"]] == ["learner"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="files")["Contents"]] == ["good"]
    # And the torn record and the body it referred to are in the quarantine, not deleted
    quarantine = data_dir / "quarantine"
    kept = sorted(p for p in quarantine.rglob("*") if p.is_file())
    relative = record.relative_to(data_dir)
    assert [p for p in kept if p.relative_to(quarantine).parts[1:] == relative.parts]
    assert [p for p in kept if p.read_bytes() == b"bad body"]
    # And the log says what was moved where
    output = emu.output()
    assert str(record) in output and str(quarantine) in output and "WARNING" in output
    # And the status lists the quarantine
    emu.stop()
    status = run_cli("status", "--data-dir", str(data_dir))
    assert status.returncode == 0, status.stdout + status.stderr
    assert "Quarantine: 2 file(s)" in status.stdout
    assert str(relative) in status.stdout


def test_a_damaged_log_journal_is_set_aside_and_the_rest_starts(data_dir, emulators):
    # Given a saved state whose log journal lost its header
    saved_state(data_dir)
    (journal,) = (data_dir / "moto" / "logs").iterdir()
    journal.write_bytes(b"\x00" * 64 + journal.read_bytes())
    # When an emulator starts on it
    emu = emulators()
    # Then it runs: the stream is there, without the unreadable events, which are quarantined
    logs = emu.client("logs")
    events = logs.get_log_events(logGroupName="/app", logStreamName="s")["events"]
    assert events == []
    assert emu.client("s3").get_object(Bucket="files", Key="bad")["Body"].read() == b"bad body"
    assert list((data_dir / "quarantine").rglob(journal.name))
    assert str(journal) in emu.output()


def test_an_unreadable_snapshot_is_refused_with_a_way_to_set_it_aside(data_dir, emulators):
    # Given a saved state whose snapshot is damaged after its header
    saved_state(data_dir)
    state = data_dir / "moto" / "state.pkl"
    header, _, rest = state.read_bytes().partition(b"\n")
    state.write_bytes(header + b"\n" + rest[: len(rest) // 3])
    # When an emulator starts on it
    refused = EmulatorProcess(data_dir)
    try:
        refused.start(timeout=60)
        raise AssertionError("the emulator started on a snapshot it cannot read")
    except RuntimeError:
        pass
    output = refused.output()
    # Then it refuses, naming the file, the reset and a command that keeps the state
    assert refused.child.returncode == 2
    assert str(state) in output and "--reset" in output
    command = re.search(r"`(mkdir -p [^`]+ && mv [^`]+)`", output)
    assert command, output
    # When that command is run
    subprocess.run(command.group(1), shell=True, check=True)
    # Then the emulator starts with an empty account, and the old state is kept aside
    emu = emulators()
    assert emu.client("iam").list_users()["Users"] == []
    kept = list((data_dir / "quarantine").rglob("state.pkl"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(header)

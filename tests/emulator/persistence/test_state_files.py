"""The saved state's files: refused when unreadable, wiped by --reset, described by status, and
not rewritten by calls that change nothing (or only one S3 object)."""

from __future__ import annotations

import json

from persistence_helpers import EmulatorProcess, run_cli

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
)


def saved_state(data_dir) -> None:
    """A data directory holding a thing, a policy, a bucket and an object; no emulator running."""
    emu = EmulatorProcess(data_dir).start()
    emu.client("iot").create_thing(thingName="kept")
    emu.client("iot").create_policy(policyName="kept", policyDocument=POLICY)
    emu.client("s3").create_bucket(Bucket="kept-bucket")
    emu.client("s3").put_object(Bucket="kept-bucket", Key="o", Body=b"x" * 1000)
    assert emu.stop() == 0


def start_expecting_failure(data_dir) -> tuple[int, str]:
    emu = EmulatorProcess(data_dir)
    try:
        emu.start(timeout=60)
    except RuntimeError:
        return emu.child.returncode, emu.output()
    emu.child.kill()
    raise AssertionError("the emulator started on a state it should have refused")


def test_a_corrupt_state_file_is_refused_with_what_to_do(data_dir):
    # Given a saved state whose snapshot was damaged after its header
    saved_state(data_dir)
    state = data_dir / "moto" / "state.pkl"
    header, _, _ = state.read_bytes().partition(b"\n")
    state.write_bytes(header + b"\n" + b"\x80\x05garbage")
    # When an emulator starts on it
    code, output = start_expecting_failure(data_dir)
    # Then it refuses, naming the file and the way out
    assert code == 2
    assert str(state) in output
    assert "--reset" in output


def test_a_file_that_is_not_a_state_is_refused(data_dir):
    # Given a snapshot overwritten by something else entirely
    saved_state(data_dir)
    (data_dir / "moto" / "state.pkl").write_bytes(b"not a state\n")
    # When an emulator starts on it
    code, output = start_expecting_failure(data_dir)
    # Then it says the file is not an emulator state
    assert code == 2
    assert "is not an emulator state file" in output


def test_a_state_written_by_another_moto_is_refused(data_dir):
    # Given a snapshot whose header says another moto version wrote it
    saved_state(data_dir)
    state = data_dir / "moto" / "state.pkl"
    header, _, rest = state.read_bytes().partition(b"\n")
    fields = json.loads(header)
    fields["moto"] = "4.0.0"
    state.write_bytes(json.dumps(fields).encode() + b"\n" + rest)
    # When an emulator starts on it
    code, output = start_expecting_failure(data_dir)
    # Then it refuses rather than misreading moto's classes, and says which versions differ
    assert code == 2
    assert "'4.0.0'" in output and "moto" in output


def test_reset_asks_then_wipes(data_dir):
    # Given a saved state
    saved_state(data_dir)
    # When a reset is declined
    declined = run_cli("--reset", "--data-dir", str(data_dir), stdin="n\n")
    # Then nothing is deleted
    assert "Nothing deleted" in declined.stdout
    assert (data_dir / "moto" / "state.pkl").exists()
    # When it is confirmed
    confirmed = run_cli("--reset", "--data-dir", str(data_dir), stdin="y\n")
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    # Then a new emulator on the directory starts empty
    emu = EmulatorProcess(data_dir).start()
    try:
        assert emu.client("iot").list_things()["things"] == []
        assert emu.client("s3").list_buckets()["Buckets"] == []
    finally:
        emu.stop()


def test_reset_with_yes_does_not_ask(data_dir):
    # Given a saved state
    saved_state(data_dir)
    # When reset with --yes and no input at all
    result = run_cli("--reset", "--yes", "--data-dir", str(data_dir))
    # Then the state is gone
    assert result.returncode == 0
    assert not (data_dir / "moto").exists()


def test_reset_refuses_while_an_emulator_runs_on_the_directory(data_dir, emulators):
    # Given a running emulator
    emulators().client("iot").create_thing(thingName="busy")
    # When a reset is attempted on its directory
    result = run_cli("--reset", "--yes", "--data-dir", str(data_dir))
    # Then it is refused and the state stays
    assert result.returncode == 2
    assert "running" in result.stdout
    assert (data_dir / "moto" / "state.pkl").exists()


def test_reset_refuses_a_directory_the_emulator_did_not_create(tmp_path):
    # Given a directory with someone's files
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    # When a reset is pointed at it
    result = run_cli("--reset", "--yes", "--data-dir", str(foreign))
    # Then nothing is deleted
    assert result.returncode == 2
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_status_counts_what_is_stored(data_dir):
    # Given a saved state with one thing, one policy, one bucket and one object
    saved_state(data_dir)
    # When the status is asked for
    result = run_cli("status", "--data-dir", str(data_dir))
    # Then it prints per kind counts and the bytes on disk
    assert result.returncode == 0, result.stderr
    lines = {
        line.split("  ")[1].strip(): line.split()[-1]
        for line in result.stdout.splitlines()
        if line.startswith("  ") and "files" not in line and "total" not in line
    }
    assert lines["IoT things"] == "1"
    assert lines["IoT policies"] == "1"
    assert lines["S3 buckets"] == "1"
    assert lines["S3 objects"] == "1"
    assert "S3 object bodies" in result.stdout and "1000 B" in result.stdout


def test_reads_and_object_puts_do_not_rewrite_the_snapshot(data_dir, emulators):
    # Given an emulator with a thing and a bucket
    emu = emulators()
    iot, s3 = emu.client("iot"), emu.client("s3")
    iot.create_thing(thingName="read-me")
    s3.create_bucket(Bucket="reads")
    state = data_dir / "moto" / "state.pkl"
    before = state.stat().st_ino
    # When only read-only calls and object puts are made
    iot.describe_thing(thingName="read-me")
    iot.list_things()
    s3.list_objects_v2(Bucket="reads")
    s3.put_object(Bucket="reads", Key="k", Body=b"body")
    s3.get_object(Bucket="reads", Key="k")
    # Then the snapshot file is the same file (every save replaces it with a new one)
    assert state.stat().st_ino == before
    # And a state-changing call does replace it
    iot.update_thing(thingName="read-me", attributePayload={"attributes": {"a": "b"}})
    assert state.stat().st_ino != before


def test_cli_help_names_the_state_flags():
    # Given / When the CLI's help is printed
    result = run_cli("--help")
    # Then it documents --reset, --yes and --status
    assert "--reset" in result.stdout and "--yes" in result.stdout and "--status" in result.stdout

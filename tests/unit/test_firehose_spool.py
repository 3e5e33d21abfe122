"""The spool: what a put acknowledged survives a restart until every consumer delivered it."""

from __future__ import annotations

from emulator.firehose.spool import Spool


def test_records_survive_reopening_until_committed(tmp_path):
    # Given two puts spooled
    spool = Spool(tmp_path / "s.spool")
    first = spool.append([("1", 10, b"a"), ("2", 11, b"b\n")])
    spool.append([("3", 12, b"\x00\xff")])
    spool.close()

    # When the spool is reopened (as after a restart)
    reopened = Spool(tmp_path / "s.spool")

    # Then every record is pending, with its id, arrival time and exact bytes
    pending = reopened.pending()
    assert [(r.record_id, r.arrival_ms, r.data) for r in pending] == [
        ("1", 10, b"a"), ("2", 11, b"b\n"), ("3", 12, b"\x00\xff"),
    ]  # fmt: skip
    assert [r.end_offset for r in pending[:2]] == [r.end_offset for r in first]


def test_pending_starts_at_the_lowest_checkpoint(tmp_path):
    spool = Spool(tmp_path / "s.spool")
    records = spool.append([("1", 1, b"a"), ("2", 2, b"b"), ("3", 3, b"c")])
    spool.commit("destination", records[1].end_offset)
    spool.commit("backup", records[0].end_offset)
    spool.close()

    reopened = Spool(tmp_path / "s.spool")
    assert [r.record_id for r in reopened.pending()] == ["2", "3"]
    assert reopened.checkpoints == {
        "destination": records[1].end_offset,
        "backup": records[0].end_offset,
    }


def test_file_is_emptied_once_every_consumer_delivered(tmp_path):
    spool = Spool(tmp_path / "s.spool")
    records = spool.append([("1", 1, b"a")])
    spool.commit("destination", records[0].end_offset)
    assert spool.path.stat().st_size > 0
    spool.commit("backup", records[0].end_offset)
    assert spool.path.stat().st_size == 0
    assert spool.checkpoints == {"destination": 0, "backup": 0}
    again = spool.append([("2", 2, b"b")])
    assert again[0].end_offset == spool.path.stat().st_size


def test_torn_last_line_from_a_killed_put_is_dropped(tmp_path):
    spool = Spool(tmp_path / "s.spool")
    spool.append([("1", 1, b"a")])
    spool.close()
    with open(tmp_path / "s.spool", "ab") as handle:
        handle.write(b'{"i": "2", "t": 2, "d": "Y')  # the process died mid-write

    reopened = Spool(tmp_path / "s.spool")
    assert [r.record_id for r in reopened.pending()] == ["1"]


def test_appends_after_reopening_continue_at_the_end(tmp_path):
    spool = Spool(tmp_path / "s.spool")
    (first,) = spool.append([("1", 1, b"a")])
    spool.close()

    reopened = Spool(tmp_path / "s.spool")
    (second,) = reopened.append([("2", 2, b"b")])

    assert second.end_offset == 2 * first.end_offset == reopened.path.stat().st_size
    assert [r.record_id for r in reopened.pending()] == ["1", "2"]


def test_one_append_is_one_write_whatever_the_number_of_records(tmp_path):
    # given a spool whose file counts its write calls
    spool = Spool(tmp_path / "s.spool")
    real = spool._file
    writes = []

    class Counting:
        def write(self, data):
            writes.append(len(data))
            return real.write(data)

        def __getattr__(self, name):
            return getattr(real, name)

    spool._file = Counting()
    # when 300 records (a group of MQTT messages) are appended at once
    out = spool.append((f"49{i:054d}", 1_000 + i, b"r%d\n" % i) for i in range(300))
    spool._file = real
    # then they went out in one write, and each reads back with its id, arrival time and data
    assert len(writes) == 1
    assert out[-1].end_offset == writes[0]
    back = spool.pending()
    assert [(r.record_id, r.arrival_ms, r.data) for r in back] == [
        (f"49{i:054d}", 1_000 + i, b"r%d\n" % i) for i in range(300)
    ]
    spool.close()


def test_ids_that_need_json_escaping_still_read_back(tmp_path):
    # given an entry whose id is not plain digits (the spool does not rely on the id format)
    spool = Spool(tmp_path / "s.spool")
    # when it is appended and read back
    spool.append([('id "quoted" \\ é', 5, b"\x00\xff")])
    # then it is intact
    [record] = spool.pending()
    assert (record.record_id, record.arrival_ms, record.data) == (
        'id "quoted" \\ é',
        5,
        b"\x00\xff",
    )
    spool.close()

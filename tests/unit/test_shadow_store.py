"""Durable shadow files (emulator/shadow/store.py): crash leftovers, foreign files and expired
deletions are handled on start, never misread."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from emulator.gateway import Gateway
from emulator.persistence import StateFormatError
from emulator.shadow import model
from emulator.shadow.service import ShadowService
from emulator.shadow.store import ShadowStore, file_name

NOW = 1_700_000_000


def service_on(data_dir, now=NOW) -> ShadowService:
    emulator = SimpleNamespace(gateway=Gateway(moto_app=None), data_dir=data_dir, ephemeral=False)
    return ShadowService(emulator, clock=lambda: now)


def test_shadows_load_back_and_a_torn_temporary_file_is_ignored(tmp_path):
    first = service_on(tmp_path).start()
    first.update("lamp", "", {"state": {"reported": {"a": 1}}})
    # A crash between writing the temporary file and the rename leaves it behind.
    (tmp_path / "shadow" / f".{file_name('lamp', '')}.999.tmp").write_bytes(b'{"torn')
    second = service_on(tmp_path).start()
    assert second.get("lamp", "")["state"] == {"reported": {"a": 1}}
    assert [p.name for p in (tmp_path / "shadow").iterdir()] == [file_name("lamp", "")]


def test_a_file_without_the_header_is_refused_with_the_fix(tmp_path):
    service_on(tmp_path).start().update("lamp", "", {"state": {"reported": {"a": 1}}})
    path = tmp_path / "shadow" / file_name("lamp", "")
    path.write_bytes(b'{"thing": "lamp"}')
    with pytest.raises(StateFormatError, match="--reset"):
        service_on(tmp_path).start()


def test_a_file_under_another_shadows_name_is_refused(tmp_path):
    service_on(tmp_path).start().update("lamp", "", {"state": {"reported": {"a": 1}}})
    directory = tmp_path / "shadow"
    (directory / file_name("lamp", "")).rename(directory / file_name("other", ""))
    with pytest.raises(StateFormatError, match="another shadow"):
        ShadowStore(directory).load()


def test_deletions_older_than_48_hours_are_forgotten_on_start(tmp_path):
    first = service_on(tmp_path).start()
    first.update("lamp", "", {"state": {"reported": {"a": 1}}})
    first.delete("lamp", "")
    assert len(list((tmp_path / "shadow").iterdir())) == 1
    later = NOW + model.VERSION_MEMORY_SECONDS + 1
    second = service_on(tmp_path, now=later).start()
    assert list((tmp_path / "shadow").iterdir()) == []
    assert second.update("lamp", "", {"state": {"reported": {"a": 1}}}).shadow.version == 1

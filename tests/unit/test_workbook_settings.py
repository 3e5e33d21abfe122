"""The workbook's settings, publish runs and per-run reconciliation (pure: no emulator)."""

from __future__ import annotations

import json

import pytest

from pipeline import runs, settings, summary
from pipeline.workbook import Record, _by_neighbour


def test_settings_saved_by_01_hold_for_the_others(tmp_path):
    # given 01 saved a changed environment and buffer interval
    settings.save(tmp_path, settings.load(tmp_path, ENVIRONMENT="test", BUFFER_INTERVAL_SECONDS=5))
    # when another notebook loads with its parameters left None
    loaded = settings.load(tmp_path, TARGET=None, STACK_NAME=None, REGION=None)
    # then it sees the saved values, and a non-None parameter overrides for that call only
    assert (loaded.environment, loaded.buffer_interval_seconds) == ("test", 5)
    assert settings.load(tmp_path, STACK_NAME="other").stack_name == "other"
    assert json.loads((tmp_path / "settings.json").read_text())["STACK_NAME"] == (
        "iot-core-pipeline-dev"
    )


def test_unknown_or_unsafe_settings_are_refused(tmp_path):
    with pytest.raises(settings.SettingsError, match="unknown setting 'BUFER_SIZE_MBS'"):
        settings.load(tmp_path, BUFER_SIZE_MBS=2)
    with pytest.raises(settings.SettingsError, match="100 publishes/s per connection"):
        settings.load(tmp_path, TARGET="aws", MAX_RATE=1900)
    with pytest.raises(settings.SettingsError, match='TARGET must be "local" or "aws"'):
        settings.load(tmp_path, TARGET="cloud")


def test_aws_defaults_pace_publishing_under_the_quota(tmp_path):
    assert settings.load(tmp_path, TARGET="aws").publish_rate == settings.AWS_DEFAULT_RATE
    assert settings.load(tmp_path, TARGET="local").publish_rate is None


def test_aws_region_comes_from_the_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(settings.SettingsError, match="set AWS_REGION"):
        settings.resolve_region(settings.Settings(target="aws"))
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert settings.resolve_region(settings.Settings(target="aws")) == "eu-west-3"


def test_stale_summaries_of_an_earlier_run_are_not_compared(tmp_path):
    # given 04 and 05 of an earlier run, and a new publish run of 200 messages
    summary.record(tmp_path, "03-publish", run_id="new", acknowledged=200)
    summary.record(tmp_path, "04-inspect-batches", run_id="old", raw_lines=1001, rule_errors=4)
    summary.record(tmp_path, "05-analyse", run_id="old", rows=1000)
    # then nothing is compared across runs
    assert summary.reconcile(summary.load(tmp_path)) == []
    # and within one run, a mismatch is still found
    summary.record(tmp_path, "04-inspect-batches", run_id="new", raw_lines=195, rule_errors=4)
    problems = summary.reconcile(summary.load(tmp_path))
    assert problems[0] == "acknowledged 200 != raw lines 195 + rule errors 4"


def test_latest_run_names_03_when_nothing_was_published_or_it_was_torn_down(tmp_path):
    with pytest.raises(runs.PrerequisiteError, match="run 03-publish first"):
        runs.latest(tmp_path)
    summary.record(tmp_path, "03-publish", run_id="r1", started_ms=1_000, finished_ms=2_000)
    assert runs.latest(tmp_path).run_id == "r1"
    summary.record(tmp_path, "06-teardown", finished_ms=3_000)
    with pytest.raises(runs.PrerequisiteError, match="deleted by 06-teardown"):
        runs.latest(tmp_path)


def test_a_record_without_run_id_belongs_to_its_neighbours_run():
    found = _by_neighbour([Record(None), Record("a"), Record(None), Record("b"), Record(None)])
    assert [r.run_id for r in found] == ["a", "a", "a", "b", "b"]


def test_time_window_places_records_that_carry_no_run_id():
    scope = runs.RunScope("r", started_ms=10_000, finished_ms=20_000)
    assert scope.owns_time(15_000) and scope.owns_time(21_000)
    assert not scope.owns_time(1_000) and not scope.owns_time(None)

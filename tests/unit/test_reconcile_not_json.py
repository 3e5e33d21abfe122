"""The reconciliation names the bucket a PUBACK hides: acknowledged payloads that are not JSON
objects (the topic rule's SQL cannot evaluate them) must each come back as a not-JSON
processing-failed record, or the rules engine dropped them."""

from __future__ import annotations

from pipeline import summary


def figures(not_json_published: int, not_json_found: int) -> dict:
    return {
        "03-publish": {"run_id": "r", "acknowledged": 10, "not_json_objects": not_json_published},
        "04-inspect-batches": {
            "run_id": "r",
            "raw_lines": 10,
            "rule_errors": 0,
            "parsed_rows": 5,
            "processing_failed": 5,
            "not_json_objects": not_json_found,
        },
    }


def test_every_not_json_payload_found_reconciles():
    assert summary.reconcile(figures(4, 4)) == []


def test_a_dropped_not_json_payload_is_named():
    [problem] = summary.reconcile(figures(4, 3))
    assert "not JSON objects 4" in problem and "records 3" in problem
    assert "errorAction" in problem


def test_a_summary_from_before_the_figure_existed_is_not_a_mismatch():
    old = figures(4, 4)
    del old["03-publish"]["not_json_objects"]
    assert summary.reconcile(old) == []

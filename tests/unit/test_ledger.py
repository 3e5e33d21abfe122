"""pipeline.ledger: the two zero-loss equations every part of the project counts with."""

from __future__ import annotations

import pytest

from pipeline.ledger import Ledger


def test_of_reads_the_figures_keys_and_counts_missing_ones_as_zero():
    ledger = Ledger.of({"run_id": "r1", "raw_lines": 5, "parsed_rows": 4, "rule_errors": None})
    assert ledger == Ledger(raw_lines=5, parsed_rows=4)


@pytest.mark.parametrize(
    ("ledger", "acknowledged", "complete", "problems"),
    [
        (Ledger(10, 2, 9, 1), 12, True, []),
        (
            Ledger(10, 1, 9, 1),
            12,
            False,
            ["acknowledged 12 != raw lines 10 + rule errors 1"],
        ),
        (
            Ledger(10, 2, 8, 1),
            12,
            False,
            ["raw lines 10 != parsed rows 8 + processing-failed 1"],
        ),
        (
            Ledger(10, 0, 10, 0, dropped=1),
            12,
            False,
            ["acknowledged 12 != raw lines 10 + rule errors 0 + logged drops 1"],
        ),
        (Ledger(10, 0, 10, 0, dropped=2), 12, True, []),
    ],
)
def test_equations(ledger, acknowledged, complete, problems):
    assert ledger.complete(acknowledged) is complete
    assert ledger.problems(acknowledged) == problems


def test_missing_counts_what_each_side_lacks():
    ledger = Ledger(raw_lines=10, rule_errors=1, parsed_rows=8, processing_failed=1)
    assert (ledger.missing_before_raw(12), ledger.missing_before_parsed()) == (1, 1)


def test_unknown_acknowledged_checks_only_the_parsed_side():
    assert Ledger(3, 0, 2, 0).problems(None) == [
        "raw lines 3 != parsed rows 2 + processing-failed 0"
    ]

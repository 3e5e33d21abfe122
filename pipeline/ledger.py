"""The zero-loss ledger: where every acknowledged message of a publish run must end up.

    acknowledged = raw lines + messages the rule sent to its errorAction (+ logged SQL drops)
    raw lines    = parsed rows + processing-failed + partitioning-failed
                   + format-conversion-failed records

A QoS 1 PUBACK means IoT Core accepted the message; the topic rule then hands it to Firehose
(a raw line, kept by the S3 backup) or, when the action fails, to its errorAction (one object
each). Firehose's Lambda processor turns each raw line into a parsed row or a processing-failed
record; Firehose then sends a record whose partition keys cannot be read to
`partitioning-failed/` and one that does not fit the Glue table to `format-conversion-failed/`
(https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-error-handling.html,
https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion-error-handling.html).
A payload the rule's SQL cannot evaluate runs no action and no errorAction: AWS IoT
logging is its only trace (https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html),
so a ledger that read the AWSIotLogsV2 log group counts those as `dropped`.

The notebooks (`summary.reconcile`, `workbook.wait_delivered`), the benchmarks and the
reliability suite all count with this one class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ledger:
    """One run's counts on each side of the two equations."""

    raw_lines: int = 0
    rule_errors: int = 0
    parsed_rows: int = 0
    processing_failed: int = 0
    partitioning_failed: int = 0
    conversion_failed: int = 0
    dropped: int = 0  # SQL failures found in AWS IoT logging (no action, no errorAction ran)

    @classmethod
    def of(cls, figures: Mapping[str, Any]) -> Ledger:
        """The ledger of a figures dict with the keys of this class (missing ones count 0)."""
        return cls(**{name: int(figures.get(name) or 0) for name in cls.__dataclass_fields__})

    @property
    def raw_side(self) -> int:
        """Acknowledged messages accounted for after the topic rule."""
        return self.raw_lines + self.rule_errors + self.dropped

    @property
    def parsed_side(self) -> int:
        """Raw lines accounted for after the Lambda processor."""
        return (
            self.parsed_rows
            + self.processing_failed
            + self.partitioning_failed
            + self.conversion_failed
        )

    def missing_before_raw(self, acknowledged: int) -> int:
        """Acknowledged messages found neither in a raw line, a rule error nor a logged drop."""
        return acknowledged - self.raw_side

    def missing_before_parsed(self) -> int:
        """Raw lines found neither as a parsed row nor in an error output."""
        return self.raw_lines - self.parsed_side

    def complete(self, acknowledged: int) -> bool:
        """Whether every acknowledged message and every raw line has arrived (or more did)."""
        return self.raw_side >= acknowledged and self.parsed_side >= self.raw_lines

    def problems(self, acknowledged: int | None) -> list[str]:
        """The equations that do not hold, worded for a person (acknowledged None: unknown)."""
        found = []
        if acknowledged is not None and self.missing_before_raw(acknowledged):
            found.append(
                f"acknowledged {acknowledged} != raw lines {self.raw_lines}"
                f" + rule errors {self.rule_errors}"
                + (f" + logged drops {self.dropped}" if self.dropped else "")
            )
        if self.missing_before_parsed():
            found.append(
                f"raw lines {self.raw_lines} != parsed rows {self.parsed_rows}"
                f" + processing-failed {self.processing_failed}"
                + (
                    f" + partitioning-failed {self.partitioning_failed}"
                    f" + conversion-failed {self.conversion_failed}"
                    if self.partitioning_failed or self.conversion_failed
                    else ""
                )
            )
        return found

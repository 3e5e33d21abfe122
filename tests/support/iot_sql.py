"""IoT SQL statements the rules engine refuses, for the unit tests of the SQL compiler."""

from __future__ import annotations

import pytest

from emulator.rules.sql import V2, SqlError, compile_sql


def refusal(sql: str, version: str = V2) -> str:
    """The reason `compile_sql` refuses `sql` with (SqlError); the test fails if it is accepted."""
    with pytest.raises(SqlError) as caught:
        compile_sql(sql, version)
    return caught.value.reason

"""The CloudFormation component on the session emulator (added if app.py has not wired it)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def cloudformation(emulator):
    from emulator.cloudformation import CloudFormationDeployer

    component = emulator.find("cloudformation")
    if component is None:
        component = CloudFormationDeployer(emulator)
    return component

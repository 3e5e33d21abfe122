"""Fixtures for IoT Core tests: the `emulator.iot` component of the session emulator, and
helpers to make device certificates."""

from __future__ import annotations

import pytest
from support.certs import self_signed_certificate


@pytest.fixture(scope="session")
def iot_core(emulator):
    return emulator.iot


@pytest.fixture(scope="session")
def iot(iot_core, aws):
    """A boto3 IoT client."""
    return aws("iot")


@pytest.fixture(scope="session")
def self_signed():
    """Make a device's own self-signed certificate: `self_signed(cn) -> (cert_pem, key_pem)`."""
    return self_signed_certificate

"""The emulator's fixed values, in one place: where it listens, who it pretends to be, and the
IoT Core quotas several components share.

Modules import these names instead of repeating the literals, so a change (another default
port, another account id) is one edit.
"""

from __future__ import annotations

# The emulator is a single local account; moto's default, also what its backends are keyed by.
ACCOUNT_ID = "123456789012"
# The region a client gets when it names none (and the emulator's own default).
DEFAULT_REGION = "us-east-1"

# Nothing listens beyond the loopback interface.
DEFAULT_HOST = "127.0.0.1"
# The AWS API endpoint's port: the port LocalStack uses, which SDK users already configure.
DEFAULT_PORT = 4566
# MQTT over TLS: "8883 ... MQTT ... X.509 client certificate".
# https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html
DEFAULT_MQTT_PORT = 8883
# The status /_emulator/info and /_emulator/health answer (503) until every component has
# started, and again while stopping; process.ensure_running waits on it.
NOT_READY = "starting or stopping"

# Basic Ingest: a device publishes to `$aws/rules/<rule name>/...` to reach one rule directly.
# https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html
BASIC_INGEST_PREFIX = "$aws/rules/"

# IoT Core message broker: "Message size: 128 KB" (an MQTT payload, an iot-data Publish body and
# a shadow request alike).
# https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits
IOT_MESSAGE_MAX_BYTES = 128 * 1024

# Emulator-only paths served on the API port (health, info, activity, ...).
EMULATOR_PATH_PREFIX = "/_emulator/"

"""Where the notebooks run: the local emulator (default) or the user's AWS account.

`open_target("local")` starts the emulator in the background if it is not running and returns
boto3 clients bound to its endpoint; `open_target("aws")` uses the default boto3 credential chain.
Everything after this point is the same code for both targets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from pipeline.paths import ROOT

LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
# AWS IoT's ATS endpoints are signed by Amazon Root CA 1, which is in Mozilla's bundle (certifi).
MQTT_PORT_AWS = 8883


@dataclass
class Target:
    """A place to deploy to: the clients, and how a device reaches IoT Core's data plane."""

    name: str
    region: str
    endpoint_url: str | None
    mqtt_host: str
    mqtt_port: int
    root_ca_path: str
    session: Any = field(repr=False)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url, region_name=self.region)

    @property
    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]


def open_target(
    name: str = "local",
    region: str = "us-east-1",
    port: int | None = None,
    mqtt_port: int | None = None,
    data_dir: str | Path | None = None,
) -> Target:
    """Connect to `name` ("local" or "aws"); for "local", start the emulator if needed.

    The emulator's ports come from the arguments, else from IOT_EMULATOR_PORT /
    IOT_EMULATOR_MQTT_PORT (set by `make run`), else the defaults 4566 / 8883.
    """
    if name == "aws":
        session = boto3.Session(region_name=region)
        iot = session.client("iot")
        host = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
        import certifi

        return Target("aws", region, None, host, MQTT_PORT_AWS, certifi.where(), session)
    if name != "local":
        raise ValueError(f'TARGET must be "local" or "aws", not {name!r}')

    from emulator import process

    port = port or int(os.environ.get("IOT_EMULATOR_PORT", process.DEFAULT_PORT))
    mqtt_port = mqtt_port or int(
        os.environ.get("IOT_EMULATOR_MQTT_PORT", process.DEFAULT_MQTT_PORT)
    )
    data_dir = data_dir or os.environ.get("IOT_EMULATOR_DATA_DIR")
    log_path = ROOT / "runs" / "emulator.log"
    log_path.parent.mkdir(exist_ok=True)
    info = process.ensure_running(
        port=port, mqtt_port=mqtt_port, data_dir=data_dir, log_path=log_path
    )
    session = boto3.Session(region_name=info.region, **LOCAL_CREDENTIALS)
    iot = session.client("iot", endpoint_url=info.endpoint_url)
    host = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    return Target(
        "local", info.region, info.endpoint_url, host, info.mqtt_port, info.root_ca_path, session
    )

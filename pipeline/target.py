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


class TargetError(RuntimeError):
    """The target cannot be reached as configured; the message is the one-line fix."""


def aws_session(region: str) -> Any:
    """A boto3 session for the user's account, checked once: missing or expired credentials
    become one line naming the fix instead of botocore's traceback."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    session = boto3.Session(region_name=region)
    try:
        session.client("sts").get_caller_identity()
    except NoCredentialsError:
        raise TargetError(
            "no AWS credentials found: run `aws configure` (or set AWS_PROFILE, or"
            " AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or use TARGET=local"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise TargetError(
            f"AWS refused the credentials ({error.get('Code')}: {error.get('Message')}):"
            " refresh them (`aws sso login` or `aws configure`)"
        ) from None
    except BotoCoreError as exc:
        raise TargetError(f"cannot reach AWS STS in {region}: {exc}") from None
    return session


def open_target(
    name: str = "local",
    region: str | None = None,
    port: int | None = None,
    mqtt_port: int | None = None,
    data_dir: str | Path | None = None,
) -> Target:
    """Connect to `name` ("local" or "aws"); for "local", start the emulator if needed.

    AWS: the region is `region`, else the user's configuration (AWS_REGION, the profile).
    Local: the emulator's ports come from the arguments, else IOT_EMULATOR_PORT /
    IOT_EMULATOR_MQTT_PORT (`make run` sets them; a port named there that another program holds
    is an error with the fix). Without them, the emulator already running on the data dir
    (IOT_EMULATOR_DATA_DIR or the per-user default) is used; else one is started on 4566 / 8883,
    or on free ports when those are taken (LocalStack also uses 4566), and the notebook says so.
    """
    from pipeline import settings

    if name not in settings.TARGETS:
        raise ValueError(f'TARGET must be "local" or "aws", not {name!r}')
    region = settings.resolve_region(settings.Settings(target=name, region=region))
    if name == "aws":
        session = aws_session(region)
        iot = session.client("iot")
        host = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
        import certifi

        return Target("aws", region, None, host, MQTT_PORT_AWS, certifi.where(), session)
    info = local_emulator(port, mqtt_port, data_dir)
    session = boto3.Session(region_name=region, **LOCAL_CREDENTIALS)
    iot = session.client("iot", endpoint_url=info.endpoint_url)
    host = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    return Target(
        "local", region, info.endpoint_url, host, info.mqtt_port, info.root_ca_path, session
    )


def local_emulator(
    port: int | None = None, mqtt_port: int | None = None, data_dir: str | Path | None = None
) -> Any:
    """The emulator the notebooks use (see `open_target`), started in the background if needed.

    It outlives the kernel on purpose (its state is what the next notebook reads):
    `python -m emulator status` shows it, `python -m emulator stop` (or `make stop`) stops it.
    """
    from emulator import process
    from emulator.server import default_data_dir

    data_dir = Path(data_dir or os.environ.get("IOT_EMULATOR_DATA_DIR") or default_data_dir())
    port = port or _env_port("IOT_EMULATOR_PORT")
    mqtt_port = mqtt_port or _env_port("IOT_EMULATOR_MQTT_PORT")
    log_path = ROOT / "runs" / "emulator.log"
    log_path.parent.mkdir(exist_ok=True)
    if port is None:
        running = process.find_running(data_dir)
        if running is not None:
            return running
        on_default = process.fetch_info(f"http://{process.DEFAULT_HOST}:{process.DEFAULT_PORT}")
        if on_default is not None:
            return on_default
        port, moved = process.choose_port(process.DEFAULT_PORT, "the emulator's AWS endpoint")
        if moved:
            print(moved)
    if mqtt_port is None:
        mqtt_port, moved = process.choose_port(process.DEFAULT_MQTT_PORT, "the emulator's MQTT")
        if moved:
            print(moved)
    already = process.fetch_info(f"http://{process.DEFAULT_HOST}:{port}")
    if already is not None:
        return already
    try:
        info = process.ensure_running(
            port=port, mqtt_port=mqtt_port, data_dir=data_dir, log_path=log_path
        )
    except process.PortTakenError as exc:
        raise TargetError(str(exc)) from None
    except RuntimeError as exc:
        raise TargetError(f"{exc}; `python -m emulator status` shows what runs") from None
    print(
        f"emulator (background process {info.pid}): {info.endpoint_url},"
        f" MQTT port {info.mqtt_port},"
        f" state in {info.data_dir}, log {log_path}; stop it with `python -m emulator stop"
        f"{'' if Path(info.data_dir) == default_data_dir() else f' --data-dir {info.data_dir}'}`"
    )
    return info


def _env_port(variable: str) -> int | None:
    value = os.environ.get(variable)
    return int(value) if value else None

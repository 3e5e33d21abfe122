"""The emulator process: one AWS endpoint (moto behind our gateway) plus IoT Core's data plane,
the rules engine, Firehose and the Lambda runtime, all on 127.0.0.1.

Components are plain classes constructed with the `Emulator` (they read what they need from
it: gateway, data_dir, region, and each other, late-bound) and may have `start()`/`stop()`.
moto keeps its state in module globals, so there is one `Emulator` per process.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from moto.core.config import default_user_config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from emulator.constants import (
    ACCOUNT_ID,
    DEFAULT_HOST,
    DEFAULT_MQTT_PORT,
    DEFAULT_PORT,
    DEFAULT_REGION,
    NOT_READY,
)
from emulator.gateway import AwsRequest, AwsResponse, Gateway, json_response
from emulator.httpserver import ApiServer, ErrorShield
from emulator.persistence import Persistence, PersistenceMiddleware
from emulator.persistence.fileformat import private_dir
from emulator.persistence.permissions import make_private

log = logging.getLogger(__name__)

IAM_ENV = "IOT_EMULATOR_IAM"  # "off" (or 0/false/no) turns IAM enforcement off
_OFF_WORDS = ("off", "0", "false", "no", "disabled")


def iam_from_environment() -> bool:
    """IAM enforcement as the environment asks: on unless IOT_EMULATOR_IAM says off."""
    return os.environ.get(IAM_ENV, "on").strip().lower() not in _OFF_WORDS


def default_data_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "iot-core-pipeline" / "emulator"


class Emulator:
    """Everything the local AWS holds, in this process."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        mqtt_port: int = DEFAULT_MQTT_PORT,
        data_dir: str | Path | None = None,
        region: str = DEFAULT_REGION,
        ephemeral: bool = False,
        iam: bool | None = None,
    ) -> None:
        self.host = host
        # Whether services check the roles users hand them (Firehose's RoleARN, a function's
        # execution role) with emulator.iam; None: as IOT_EMULATOR_IAM says (default on).
        self.iam_enforced = iam_from_environment() if iam is None else bool(iam)
        self.region = region
        self.account_id = ACCOUNT_ID
        self.ephemeral = ephemeral
        if ephemeral:
            self.data_dir = Path(tempfile.mkdtemp(prefix="iot-emulator-"))
        else:
            self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        private_dir(self.data_dir)  # 0700 before anything is written: the state holds secrets
        self._requested_port = port
        self._requested_mqtt_port = mqtt_port
        self._server: ApiServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        # certificateId = SHA-256 of the DER, as on AWS (moto hashes the PEM text otherwise).
        default_user_config.setdefault("iot", {})["use_valid_cert"] = True
        self.gateway = Gateway(DomainDispatcherApplication(create_backend_app), self.account_id)
        # Both answer 503 until every component has started (the AWS API itself answers earlier,
        # as components may call it while they start): whoever waits for them to answer, as
        # process.ensure_running does, sees a whole emulator (e.g. the MQTT port, not None).
        self._ready = threading.Event()
        self.gateway.route("/_emulator/health", self._health)
        self.gateway.route("/_emulator/info", self._info)
        self.components: list[Any] = []
        # moto's state under data_dir/moto (S3 bodies as files even when ephemeral).
        self.persistence = Persistence(self.data_dir, durable=not ephemeral)

    # Life cycle ---------------------------------------------------------------------------
    def add(self, component: Any) -> Any:
        """Register a component so that it is started and stopped with the emulator."""
        self.components.append(component)
        return component

    def start(self) -> Emulator:
        # Directories 0700 and files without group/other bits below the data dir before anything
        # is served, also those an older version left 0755/0644.
        make_private(self.data_dir)
        self.persistence.load()  # raises StateFormatError for a state it cannot read
        self._server = ApiServer(
            self.host,
            self._requested_port,
            ErrorShield(PersistenceMiddleware(self.gateway, self.persistence)),
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="aws-endpoint", daemon=True
        )
        self._thread.start()
        for component in self.components:
            if hasattr(component, "start"):
                component.start()
        make_private(self.data_dir)  # and what the components just created
        log.info("IAM: %s", self.iam_mode())
        self._ready.set()
        return self

    def iam_mode(self) -> str:
        """One line saying whether roles are enforced, for start-up output and logs."""
        if self.iam_enforced:
            return (
                "enforced (service roles are checked; --no-iam or IOT_EMULATOR_IAM=off turns "
                "it off)"
            )
        return "off (service roles are not checked: every role may do everything)"

    def stop(self) -> None:
        self._ready.clear()
        for component in reversed(self.components):
            if hasattr(component, "stop"):
                try:
                    component.stop()
                except Exception:
                    log.exception("stopping %s failed", type(component).__name__)
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)
        self.persistence.stop()
        if self.ephemeral:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # What a client needs to know ----------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def mqtt_port(self) -> int | None:
        broker = self.find("broker")
        return getattr(broker, "port", None) if broker else None

    def find(self, name: str) -> Any | None:
        """The component registered under attribute `name` (set by its constructor), if any."""
        return getattr(self, name, None)

    def info(self) -> dict[str, Any]:
        iot = self.find("iot")
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "account_id": self.account_id,
            "mqtt_host": self.host,
            "mqtt_port": self.mqtt_port,
            "root_ca_path": str(iot.root_ca_path) if iot is not None else None,
            "data_dir": str(self.data_dir),
            "pid": os.getpid(),
            "iam": "enforced" if self.iam_enforced else "off",
        }

    def _health(self, _request: AwsRequest) -> AwsResponse:
        return json_response({"status": "ok"}) if self._ready.is_set() else self._not_ready()

    def _info(self, _request: AwsRequest) -> AwsResponse:
        return json_response(self.info()) if self._ready.is_set() else self._not_ready()

    @staticmethod
    def _not_ready() -> AwsResponse:
        return json_response({"status": NOT_READY}, status=503)

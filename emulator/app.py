"""Assemble the emulator from its components, in dependency order.

Each component's constructor receives the `Emulator`, registers its gateway handlers and sets
itself as an attribute (`emulator.iam`, `.iot`, `.lambdas`, `.firehose`, `.rules`,
`.cloudformation`, `.shadow`, `.broker`), so that components find each other late, at call
time. Start order is the order of `add`: the Lambda runtime and Firehose (which recovers its
spool) before the broker accepts devices; stop runs in reverse, so the broker stops taking
messages first.
"""

from __future__ import annotations

from typing import Any

from emulator.cloudformation.deployer import CloudFormationDeployer
from emulator.firehose.service import FirehoseService
from emulator.iam.service import IamService
from emulator.iot.core import IotCore
from emulator.lambda_.runtime import LambdaRuntime
from emulator.mqtt.broker import Broker
from emulator.rules.engine import RulesEngine
from emulator.server import Emulator
from emulator.shadow.service import ShadowService


def build_emulator(**kwargs: Any) -> Emulator:
    emulator = Emulator(**kwargs)
    for component in (
        IamService,
        IotCore,
        LambdaRuntime,
        FirehoseService,
        RulesEngine,
        CloudFormationDeployer,
        ShadowService,
        Broker,
    ):
        emulator.add(component(emulator))
    return emulator

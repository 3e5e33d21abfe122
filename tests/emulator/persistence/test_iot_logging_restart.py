"""AWS IoT v2 logging options survive a kill -9 of the emulator (AWS keeps them until changed),
and the file that holds them is private."""

from __future__ import annotations

import stat


def test_logging_options_survive_kill_9_and_are_private(emulators, data_dir):
    # Given logging set with a role and a client-id level
    first = emulators()
    iot = first.client("iot")
    role = "arn:aws:iam::123456789012:role/iot-logging"
    iot.set_v2_logging_options(roleArn=role, defaultLogLevel="WARN")
    iot.set_v2_logging_level(
        logTarget={"targetType": "CLIENT_ID", "targetName": "dev-1"}, logLevel="ERROR"
    )
    # When the emulator is killed without warning and started again
    first.kill9()
    second = emulators()
    iot = second.client("iot")
    # Then the options are as they were answered
    got = iot.get_v2_logging_options()
    assert (got["roleArn"], got["defaultLogLevel"], got["disableAllLogs"]) == (role, "WARN", False)
    levels = iot.list_v2_logging_levels()["logTargetConfigurations"]
    assert levels == [
        {"logTarget": {"targetType": "CLIENT_ID", "targetName": "dev-1"}, "logLevel": "ERROR"}
    ]
    # and the state file is 0600 in a 0700 folder
    path = data_dir / "iot-logging" / "options.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

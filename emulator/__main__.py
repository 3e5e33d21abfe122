"""`python -m emulator` (console script `iot-emulator`): run the local AWS on 127.0.0.1.

Prints the endpoint URL, the MQTT port and the root CA path, writes them to
`<data-dir>/emulator.json` so that other processes (notebooks, `make run`) can find a running
emulator, and stops cleanly on SIGINT/SIGTERM.

    python -m emulator status   # the running instance (pid, ports, data dir, log) and its state
    python -m emulator stop     # stop the instance running on the data dir (default or --data-dir)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from emulator.constants import DEFAULT_HOST, DEFAULT_MQTT_PORT, DEFAULT_PORT, DEFAULT_REGION
from emulator.process import STATE_FILE


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="AWS API port (0: any free port)"
    )
    parser.add_argument(
        "--mqtt-port",
        type=int,
        default=DEFAULT_MQTT_PORT,
        help="MQTT over TLS port (0: any free port)",
    )
    parser.add_argument("--region", default=DEFAULT_REGION)
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir", type=Path, help="where state is kept (default: a per-user directory)"
    )
    where.add_argument(
        "--ephemeral", action="store_true", help="throw-away state in a temporary directory"
    )
    parser.add_argument(
        "--no-iam",
        action="store_true",
        help="do not check the IAM roles services act with (also: IOT_EMULATOR_IAM=off)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        help="emulator-only: divide every Firehose buffer interval by this factor (>= 1), so "
        "AWS-valid hints (60 s and more) flush in seconds (also: IOT_EMULATOR_TIME_SCALE)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    parser.add_argument(
        "--status",
        action="store_true",
        help="print what the data dir holds and exit (also: status)",
    )
    parser.add_argument(
        "--stop", action="store_true", help="stop the emulator running on the data dir (also: stop)"
    )
    parser.add_argument(
        "--log-path", help="where this process's output goes (recorded for `status`)"
    )
    parser.add_argument("--reset", action="store_true", help="delete the saved state and exit")
    parser.add_argument(
        "--yes", action="store_true", help="with --reset: do not ask for confirmation"
    )
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] in (["status"], ["stop"]):
        argv = [f"--{argv[0]}", *argv[1:]]
    return parser.parse_args(argv)


def show_running(data_dir: Path) -> int:
    """Print the emulator running on `data_dir` (0), or say that none is (1)."""
    from emulator import process

    info = process.find_running(data_dir)
    if info is None:
        print(f"no emulator is running on {data_dir}")
        return 1
    state = process.read_state(data_dir) or {}
    print(f"running:       pid {info.pid}")
    print(f"AWS endpoint:  {info.endpoint_url}")
    print(f"MQTT (TLS):    {info.mqtt_host}:{info.mqtt_port}")
    print(f"Data dir:      {info.data_dir}")
    print(f"Log:           {state.get('log_path') or 'the terminal that started it'}")
    print("Stop it with:  python -m emulator stop" + _dir_flag(data_dir))
    return 0


def _dir_flag(data_dir: Path) -> str:
    from emulator.server import default_data_dir

    return "" if Path(data_dir) == default_data_dir() else f" --data-dir {data_dir}"


def stop_running(data_dir: Path) -> int:
    """Stop the emulator running on `data_dir`; only a process that answers on the endpoint its
    state file names, with the same pid, is signalled (never a pid from a stale file)."""
    from emulator import process

    info = process.find_running(data_dir)
    if info is None:
        stale = data_dir / STATE_FILE
        if stale.exists() and process.read_state(data_dir) is not None:
            stale.unlink()  # the emulator that wrote it is gone (killed): nothing to stop
        print(f"no emulator is running on {data_dir}: nothing to stop")
        return 0
    process.stop(info)
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    print(f"stopped the emulator (pid {info.pid}, {info.endpoint_url}); state kept in {data_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.status or args.reset or args.stop:
        from emulator.persistence import cli
        from emulator.server import default_data_dir

        data_dir = args.data_dir or default_data_dir()
        if args.stop:
            return stop_running(data_dir)
        if args.status:
            show_running(data_dir)
            print()
            return cli.status(data_dir)
        return cli.reset(data_dir, args.yes)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}, beyond the loopback interface", file=sys.stderr)

    from emulator.firehose.service import TIME_SCALE_ENV, time_scale_from_environment

    if args.time_scale is not None:
        if not args.time_scale >= 1:  # checked before the environment is changed (NaN too)
            print(
                f"error: --time-scale {args.time_scale}: give a number >= 1 (1: AWS's timing)",
                file=sys.stderr,
            )
            return 2
        os.environ[TIME_SCALE_ENV] = repr(args.time_scale)
    try:
        time_scale = time_scale_from_environment()
    except ValueError as exc:
        print(f"error: {exc} (--time-scale)", file=sys.stderr)
        return 2
    from emulator.app import build_emulator

    # These options are the Emulator's parameters of the same name, passed on as given.
    given = ("host", "port", "mqtt_port", "data_dir", "region", "ephemeral")
    emulator = build_emulator(
        **{name: getattr(args, name) for name in given}, iam=False if args.no_iam else None
    )
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    from emulator.persistence import StateFormatError

    try:
        emulator.start()
    except StateFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    info = {**emulator.info(), "log_path": args.log_path, "time_scale": time_scale}
    state_file = emulator.data_dir / STATE_FILE
    state_file.touch(mode=0o600)  # private like the rest of the data dir
    state_file.write_text(json.dumps(info, indent=2))
    print(
        f"AWS endpoint:  {info['endpoint_url']}   (export AWS_ENDPOINT_URL={info['endpoint_url']})"
    )
    print(f"MQTT (TLS):    {info['mqtt_host']}:{info['mqtt_port']}")
    print(f"Root CA:       {info['root_ca_path']}")
    print(f"Data dir:      {info['data_dir']}")
    print(f"IAM:           {emulator.iam_mode()}")
    if time_scale != 1:
        print(
            f"Time scale:    {time_scale:g}x: Firehose buffer intervals are divided by "
            f"{time_scale:g} (emulator-only; AWS waits the full interval)"
        )
    sys.stdout.flush()

    stopping.wait()
    emulator.stop()
    if not args.ephemeral:
        state_file.unlink(missing_ok=True)
    print("emulator stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

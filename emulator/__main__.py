"""`python -m emulator` (console script `iot-emulator`): run the local AWS on 127.0.0.1.

Prints the endpoint URL, the MQTT port and the root CA path, writes them to
`<data-dir>/emulator.json` so that other processes (notebooks, `make run`) can find a running
emulator, and stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from emulator.server import DEFAULT_HOST, DEFAULT_MQTT_PORT, DEFAULT_PORT, DEFAULT_REGION

STATE_FILE = "emulator.json"


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
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    parser.add_argument(
        "--status",
        action="store_true",
        help="print what the data dir holds and exit (also: status)",
    )
    parser.add_argument("--reset", action="store_true", help="delete the saved state and exit")
    parser.add_argument(
        "--yes", action="store_true", help="with --reset: do not ask for confirmation"
    )
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["status"]:
        argv = ["--status", *argv[1:]]
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.status or args.reset:
        from emulator.persistence import cli
        from emulator.server import default_data_dir

        data_dir = args.data_dir or default_data_dir()
        return cli.status(data_dir) if args.status else cli.reset(data_dir, args.yes)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}, beyond the loopback interface", file=sys.stderr)

    from emulator.app import build_emulator

    emulator = build_emulator(
        host=args.host,
        port=args.port,
        mqtt_port=args.mqtt_port,
        data_dir=args.data_dir,
        region=args.region,
        ephemeral=args.ephemeral,
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
    info = emulator.info()
    state_file = emulator.data_dir / STATE_FILE
    state_file.touch(mode=0o600)  # private like the rest of the data dir
    state_file.write_text(json.dumps(info, indent=2))
    print(
        f"AWS endpoint:  {info['endpoint_url']}   (export AWS_ENDPOINT_URL={info['endpoint_url']})"
    )
    print(f"MQTT (TLS):    {info['mqtt_host']}:{info['mqtt_port']}")
    print(f"Root CA:       {info['root_ca_path']}")
    print(f"Data dir:      {info['data_dir']}")
    sys.stdout.flush()

    stopping.wait()
    emulator.stop()
    if not args.ephemeral:
        state_file.unlink(missing_ok=True)
    print("emulator stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

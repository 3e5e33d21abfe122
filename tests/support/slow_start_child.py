"""A child emulator whose one component takes as long to start as the test wants.

Usage: python slow_start_child.py; prints the endpoint URL once the API server is up and the
component is starting, then waits for a line on stdin before the component's start returns,
then serves until killed."""

from __future__ import annotations

import sys
import time

from emulator.server import Emulator


class SlowStart:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def start(self) -> None:
        print(self.emulator.endpoint_url, flush=True)
        sys.stdin.readline()


def main() -> None:
    emulator = Emulator(port=0, mqtt_port=0, ephemeral=True)
    emulator.add(SlowStart(emulator))
    emulator.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()

"""A child emulator process for the durability test: endpoint + Firehose on a given data dir.

Usage: python firehose_child.py <data_dir>; prints the endpoint URL, then serves until killed.
"""

from __future__ import annotations

import sys
import time

from emulator.firehose.service import FirehoseService
from emulator.iam.service import IamService
from emulator.server import Emulator


def main() -> None:
    emulator = Emulator(port=0, data_dir=sys.argv[1], ephemeral=False)
    emulator.add(IamService(emulator))  # Firehose checks its RoleARN with it
    emulator.add(FirehoseService(emulator))
    emulator.start()
    print(emulator.endpoint_url, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()

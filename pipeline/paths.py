"""Repository paths, from one place.

Paths come from this file's location, never from the working directory, so notebooks, tests and
`python -m` entries agree wherever they are started from.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"  # sample telemetry and recorded events (small, committed)
EVENTS = DATA / "events"  # recorded Lambda events shared by unit tests and local invokes
TEMPLATE = ROOT / "template.yaml"  # the SAM stack
SECRETS = ROOT / "secrets"  # device keys and certificates (git-ignored, keys mode 0600)
RUNS = ROOT / "runs"  # executed notebooks and their JSON summaries (git-ignored)
BUILD = ROOT / "build"  # derived artefacts (git-ignored)
BUILD_LAMBDA = BUILD / "lambda"  # the Lambda code directory: `CodeUri: build/lambda`

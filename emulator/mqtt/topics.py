"""Which topic names a message may be published to: one check for every way in.

MQTT PUBLISH (and a last will), iot-data Publish and a rule's republish action all go through
`publish_topic_error`, so a topic AWS IoT refuses on one path is refused on all of them.

Two kinds of refusal:
- `INVALID`: not a topic name at all, or over the quotas: empty, a wildcard (`+`, `#`), U+0000
  (MQTT 3.1.1 section 1.5.3, MQTT 5 section 1.5.4), over 256 bytes or 7 forward slashes, the
  Basic Ingest prefix `$aws/rules/<rule>/` not counted
  (https://docs.aws.amazon.com/general/latest/gr/iot-core.html, message broker limits;
  https://docs.aws.amazon.com/iot/latest/developerguide/topics.html).
- `RESERVED`: a topic beginning with `$` that clients may not publish to. "You can subscribe and
  publish to these reserved topics as they allow; however, you can't create new topics that
  begin with a dollar sign" (https://docs.aws.amazon.com/iot/latest/developerguide/
  reserved-topics.html). Event topics (`$aws/events/...`, lifecycle and subscription events),
  the services' answers (`.../accepted`, `.../rejected`, `.../delta`, `notify`) and any other
  `$` topic are AWS IoT's to publish. A reserved topic cannot be retained either ("You can't
  publish to a reserved topic with the RETAIN flag set", MQTT retained messages,
  https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html).
"""

from __future__ import annotations

import re

from emulator.mqtt.limits import topic_limit_error

INVALID = "invalid"
RESERVED = "reserved"

_LEVEL = r"[^/]+"
_FORMAT = r"(?:json|cbor)"
# The reserved topics whose "allowed operations" include Publish, from the tables of
# reserved-topics.html: Device Shadow, jobs, Device Defender, fleet provisioning, MQTT-based
# file delivery, Device Location and commands. Basic Ingest ($aws/rules/<rule>/...) too.
_PUBLISHABLE = re.compile(
    "|".join(
        (
            rf"\$aws/rules/{_LEVEL}/.+",
            rf"\$aws/things/{_LEVEL}/shadow(?:/name/{_LEVEL})?/(?:get|update|delete)",
            rf"\$aws/things/{_LEVEL}/jobs/(?:get|start-next)",
            rf"\$aws/things/{_LEVEL}/jobs/{_LEVEL}/(?:get|update)",
            rf"\$aws/things/{_LEVEL}/defender/metrics/{_FORMAT}",
            rf"\$aws/certificates/create(?:-from-csr)?/{_FORMAT}",
            rf"\$aws/provisioning-templates/{_LEVEL}/provision/{_FORMAT}",
            rf"\$aws/things/{_LEVEL}/streams/{_LEVEL}/(?:get|describe)/{_FORMAT}",
            rf"\$aws/device_location/{_LEVEL}/get_position_estimate",
            rf"\$aws/commands/(?:things|clients)/{_LEVEL}/executions/{_LEVEL}/response(?:/{_LEVEL})?",
        )
    )
)


def topic_name_error(topic: str) -> str | None:
    """Why `topic` is not a topic name AWS IoT accepts (syntax and size quotas), or None."""
    if not topic:
        return "the topic name is empty"
    if "+" in topic or "#" in topic:
        return f"topic {_shown(topic)} contains a wildcard ('+' or '#'): publish to a topic name"
    if "\x00" in topic:
        return f"topic {_shown(topic)} contains the null character U+0000"
    problem = topic_limit_error(topic)
    if problem:
        return f"{problem} ({_shown(topic)})"
    return None


def reserved_topic_error(topic: str, retain: bool = False) -> str | None:
    """Why a client may not publish to the reserved topic `topic`, or None (not reserved, or
    one of the reserved topics clients publish to)."""
    if not topic.startswith("$"):
        return None
    if retain:
        return f"reserved topic {_shown(topic)} cannot be published with the RETAIN flag"
    if _PUBLISHABLE.fullmatch(topic) is None:
        return (
            f"topic {_shown(topic)} is reserved for AWS IoT: clients may publish only to the "
            "reserved topics that allow it (shadow, jobs, Device Defender, fleet provisioning, "
            "file delivery, Device Location, commands, Basic Ingest $aws/rules/<rule>/...)"
        )
    return None


def publish_topic_error(topic: str, retain: bool = False) -> tuple[str, str] | None:
    """(INVALID or RESERVED, why) if a message may not be published to `topic`, else None."""
    problem = topic_name_error(topic)
    if problem:
        return INVALID, problem
    if topic[0] == "$":
        problem = reserved_topic_error(topic, retain)
        if problem:
            return RESERVED, problem
    return None


def _shown(topic: str) -> str:
    """The topic for a message: quoted, control characters escaped, long ones shortened."""
    text = topic if len(topic) <= 80 else topic[:77] + "..."
    return repr(text)

"""The SAM template as data: lint it with cfn-lint and list what it declares.

cfn-lint checks the template offline against CloudFormation's resource specifications, so a
mistake shows here before any deploy, with the rule id and line to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.paths import TEMPLATE


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as a dict, with intrinsic functions (!Ref, !Sub, ...) in their long form."""
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(path))


def lint(path: Path = TEMPLATE) -> list[dict[str, Any]]:
    """cfn-lint's findings (errors, warnings and informational), one dict each; [] when clean."""
    from cfnlint.api import lint_file

    return [
        {
            "rule": match.rule.id,
            "severity": match.rule.severity,
            "line": match.linenumber,
            "message": match.message,
        }
        for match in lint_file(Path(path))
    ]


def resources(path: Path = TEMPLATE) -> list[dict[str, Any]]:
    """Each resource the template declares: logical id, type, deletion policy."""
    template = load(path)
    return [
        {
            "logical id": name,
            "type": body["Type"],
            "deletion policy": body.get("DeletionPolicy", "Delete"),
        }
        for name, body in template["Resources"].items()
    ]


def parameters(path: Path = TEMPLATE) -> list[dict[str, Any]]:
    template = load(path)
    return [
        {
            "parameter": name,
            "default": body.get("Default"),
            "description": body.get("Description", ""),
        }
        for name, body in template.get("Parameters", {}).items()
    ]

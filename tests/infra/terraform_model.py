"""infra/*.tf parsed with python-hcl2 into plain dictionaries the tests can query.

Terraform cannot run here (it cannot download providers), so the tests read the
configuration itself: blocks by type and name, variable defaults, locals, and the
references between them (``${aws_s3_bucket.data["raw"].arn}`` stays a string to match).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
_OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
_VAR_REF = re.compile(r"^\$\{var\.(\w+)\}$")
#: ECS ``cpu_architecture`` -> Docker's name for it.
_DOCKER_ARCHITECTURES = {"X86_64": "amd64", "ARM64": "arm64"}


def parse(path: Path) -> dict[str, Any]:
    """One HCL file as python-hcl2 sees it."""
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


@dataclass
class Terraform:
    """Every block of a Terraform directory, merged across its files."""

    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path = INFRA) -> Terraform:
        model = cls()
        for path in sorted(folder.glob("*.tf")):
            model._add(parse(path))
        return model

    def _add(self, parsed: dict[str, Any]) -> None:
        for kind, into in (("resource", self.resources), ("data", self.data)):
            for block in parsed.get(kind, []):
                for type_name, by_name in block.items():
                    into.setdefault(type_name, {}).update(by_name)
        for kind, into in (("variable", self.variables), ("output", self.outputs),
                           ("provider", self.providers), ("check", self.checks)):
            for block in parsed.get(kind, []):
                into.update(block)
        for block in parsed.get("locals", []):
            self.locals.update(block)

    def resource(self, type_name: str, name: str) -> dict[str, Any]:
        return self.resources[type_name][name]

    def default(self, variable: str) -> Any:
        return self.variables[variable]["default"]

    def value(self, expression: Any) -> Any:
        """A bare ``${var.x}`` reference resolved to the variable's default; anything else as is."""
        if isinstance(expression, str) and (match := _VAR_REF.match(expression)):
            return self.default(match.group(1))
        return expression

    def all_of(self, type_name: str) -> dict[str, dict[str, Any]]:
        return self.resources.get(type_name, {})

    def image_platform(self) -> str:
        """The Docker platform (``linux/arm64``) every task definition runs: the one image they share
        must be built for it, and they must agree on it."""
        platforms = {(platform["operating_system_family"], platform["cpu_architecture"])
                     for task in self.all_of("aws_ecs_task_definition").values()
                     for platform in blocks(task, "runtime_platform")}
        assert len(platforms) == 1, f"task definitions disagree on their platform: {platforms}"
        (system, architecture), = platforms
        return f"{system.lower()}/{_DOCKER_ARCHITECTURES[architecture]}"


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block ``name`` of a block body (hcl2 keeps nested blocks as lists)."""
    blocks = body[name]
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected one {name} block, got {blocks!r}"
    return blocks[0]


def blocks(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Every nested block ``name`` of a block body (none is an empty list)."""
    return list(body.get(name, []))


def ref(expression: str) -> str:
    """``${x}`` -> ``x``, to compare references without the interpolation wrapper."""
    return expression.removeprefix("${").removesuffix("}")

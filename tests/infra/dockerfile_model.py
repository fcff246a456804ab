"""The runtime stage of the Dockerfile as the tests need it: environment, user, volumes, the
ownership its RUN steps give to directories, and the health check.

Fargate mounts a task's bind-mount volume (our ``/tmp``) root-owned with mode 0755, unless the
image declares ``VOLUME`` on that exact path: then the directory's contents, owner and mode
in the image are copied to the volume (Amazon ECS developer guide, "Bind mounts").
:meth:`Image.runtime_owner` applies that rule.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tests.infra.terraform_model import ROOT

#: Fargate's ownership of a bind mount the image does not declare as a VOLUME: root, 0755.
FARGATE_DEFAULT = ("0", 0o755)


@dataclass
class Image:
    """What the final stage sets: ENV, the USER's uid, VOLUMEs, per-directory owner and mode."""

    env: dict[str, str] = field(default_factory=dict)
    user: str = "0"
    volumes: list[str] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    healthcheck: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, text: str | None = None) -> Image:
        text = text if text is not None else (ROOT / "Dockerfile").read_text(encoding="utf-8")
        image = cls()
        for instruction, argument in _instructions(text):
            if instruction == "FROM":
                image = cls()  # only the last stage is what runs
            elif instruction == "ENV":
                image.env.update(dict(pair.split("=", 1) for pair in shlex.split(argument)))
            elif instruction == "USER":
                image.user = argument.split(":")[0]
            elif instruction == "VOLUME":
                image.volumes += json.loads(argument) if argument.startswith("[") else argument.split()
            elif instruction == "RUN":
                image._run(argument)
            elif instruction == "HEALTHCHECK":
                image.healthcheck = json.loads(argument.split(" CMD ", 1)[1])
            elif instruction == "CMD":
                image.cmd = json.loads(argument)
        return image

    def _run(self, script: str) -> None:
        for command in re.split(r"&&|;", script):
            words = shlex.split(command)
            if not words:
                continue
            paths = [w for w in words[1:] if w.startswith("/")]
            if words[0] == "chown":
                owner = next(w for w in words[1:] if not w.startswith("-")).split(":")[0]
                self.owners.update(dict.fromkeys(paths, owner))
            elif words[0] == "chmod":
                mode = int(next(w for w in words[1:] if not w.startswith("-")), 8)
                self.modes.update(dict.fromkeys(paths, mode))

    def runtime_owner(self, mount_path: str) -> tuple[str, int]:
        """Owner uid and mode of a Fargate bind mount at ``mount_path`` when the task starts."""
        if mount_path not in self.volumes:
            return FARGATE_DEFAULT
        return self.owners.get(mount_path, "0"), self.modes.get(mount_path, FARGATE_DEFAULT[1])

    def user_can_write(self, mount_path: str) -> bool:
        owner, mode = self.runtime_owner(mount_path)
        return self.user == "0" or (owner == self.user and mode & 0o200 != 0) or mode & 0o002 != 0


def under(path: str, folder: str) -> bool:
    return PurePosixPath(path).is_relative_to(PurePosixPath(folder))


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        current += " " + stripped.removesuffix("\\").strip() if current else stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            lines.append(current)
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]

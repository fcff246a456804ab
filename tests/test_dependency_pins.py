"""Every package the project installs is pinned: the requirements pin what the code imports, and
constraints.txt what those pull in. An unpinned dependency resolves to its newest release on a
fresh machine, and one such release (botocore) once broke every aws test in a fresh clone only."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from scripts.write_constraints import normalized, pinned_lines

ROOT = Path(__file__).resolve().parents[1]


def _pins(file: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (version, extras) of each ``name[extras]==version`` line."""
    pins = {}
    for name, line in pinned_lines(ROOT, (file,)).items():
        requirement = Requirement(line)
        (version,) = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        pins[name] = (version, set(requirement.extras))
    return pins


def _installed_closure(roots: dict[str, set[str]]) -> set[str]:
    """The installed distributions the roots (name -> extras asked for) need, transitively."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(name, frozenset(extras)) for name, extras in roots.items()]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                todo.append((normalized(requirement.name), frozenset(requirement.extras)))
    return {name for name, _ in seen}


def test_every_installed_dependency_is_pinned_at_its_installed_version() -> None:
    top = {**_pins("requirements.txt"), **_pins("requirements-dev.txt")}
    constraints = _pins("constraints.txt")
    assert not set(top) & set(constraints), "a package is pinned in one place only"
    pins = {**top, **constraints}
    closure = _installed_closure({name: extras for name, (_, extras) in top.items()})
    unpinned = sorted(closure - set(pins))
    assert not unpinned, f"not pinned (run make constraints): {unpinned}"
    drifted = {name: (pins[name][0], metadata.version(name)) for name in closure
               if metadata.version(name) != pins[name][0]}
    assert not drifted, f"installed versions differ from the pins (pinned, installed): {drifted}"


def test_every_install_applies_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "-r requirements.txt -r requirements-dev.txt -c constraints.txt" in makefile
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "-r /tmp/requirements.txt -c /tmp/constraints.txt" in dockerfile
    assert "!constraints.txt" in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()

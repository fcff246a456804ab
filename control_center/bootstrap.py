"""``python -m control_center.bootstrap``: what `make run` does before starting the portal.

On the first run it generates the demo data and trains and publishes a model, so the portal
opens on a working setup; later runs find both and return at once. It does not replay
anything: the Overview's *Start demo pipeline* does that live, in front of the user.
"""

from __future__ import annotations

import sys

from engine.backend import open_backend
from engine.demo_pipeline import prepare_demo
from engine.errors import PetroStreamError


def main() -> int:
    try:
        backend = open_backend()
        print(f"PetroStream home: {backend.settings.home} (backend {backend.name})")
        print("preparing demo data and a model (first run: about a minute)…", flush=True)
        ready = prepare_demo(backend)
    except PetroStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"demo data: {ready.data}")
    print(f"active model: {ready.model_version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One click from nothing to live anomalies: demo data, a model, a paced replay and a consumer.

At :data:`DEMO_SPEED` times real time the demo's first alarm (some 40 minutes into its data)
is active in the lake about half a minute after the click, so a newcomer sees one soon; the
replay runs detached and keeps going whatever happens to the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.backend import Backend
from engine.data_sources import demo_folder
from engine.errors import BackendError
from engine.quickstart import ensure_demo_data, ensure_model
from engine.readers import discover
from engine.replay_control import ReplayControl, ReplayRequest
from engine.replay_log import FINISHED, replay_id_for
from engine.scaling import Scaler

#: Replay speed of the demo: an hour and a half of well data per wall-clock minute (its 8 h in about 5 min).
DEMO_SPEED = 90.0


@dataclass(frozen=True)
class DemoReady:
    """What :func:`prepare_demo` made sure exists."""

    data: Path
    model_version: str


def prepare_demo(backend: Backend) -> DemoReady:
    """Generate the demo data and train a model on it, unless they exist already."""
    data = ensure_demo_data(demo_folder(backend.settings.home))
    return DemoReady(data, ensure_model(backend, data))


def start_demo_pipeline(backend: Backend) -> str:
    """Prepare the demo, start its replay (unless one runs) and at least one consumer; say what happened."""
    control, scaler = _controls(backend)
    ready = prepare_demo(backend)
    done = [f"model {ready.model_version} active"]
    files = discover([ready.data])
    previous = backend.replays.load(replay_id_for(f.path for f in files))
    if control.state().running:
        done.append("a replay was already running")
    elif previous is not None and previous.status == FINISHED:
        done.append("the demo replay already ran to its end; its data is in the lake")
    else:
        control.start(ReplayRequest(tuple(f.path for f in files), speed=DEMO_SPEED))
        done.append(f"demo replay started at {DEMO_SPEED:.0f}× real time")
    if scaler.desired() < 1:
        scaler.set_desired(1)
    state = scaler.reconcile()
    done.append(f"{state.running} consumer(s) running")
    return "; ".join(done)


def stop_pipeline(backend: Backend) -> str:
    """Stop the replay and every consumer (auto-scaling off, so nothing restarts them)."""
    control, scaler = _controls(backend)
    stopped = control.stop()
    scaler.stop_all()
    return ("replay stopped" if stopped else "no replay was running") + "; consumers stopped"


def reset_demo(backend: Backend) -> str:
    """Stop everything, erase the pipeline's data and start the demo again from its first row.

    "Replay from the start" alone lands nothing new: consumers drop rows at or before each
    well's last landed time. A reset forgets those marks with the data, so the demo's alarms
    open again in front of the user. Models and the well registry are kept.
    """
    control, scaler = _controls(backend)
    if backend.erase_data is None:
        raise BackendError(f"the {backend.name} backend keeps its data: erase it with its own tools "
                           "(on AWS, project_down.sh), then start the demo")
    stop_pipeline(backend)
    if control.state().running or scaler.workers():
        raise BackendError("the replay or a consumer is still stopping; try the reset again in a few seconds")
    backend.erase_data()
    return "data erased; " + start_demo_pipeline(backend)


def _controls(backend: Backend) -> tuple[ReplayControl, Scaler]:
    if backend.replay_control is None or backend.scaling is None:
        raise BackendError(f"the {backend.name} backend cannot start or stop workers yet")
    return backend.replay_control, backend.scaling

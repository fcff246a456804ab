"""What every page shares: this session's backend, errors as messages, empty states, formatting.

Pages stay thin by leaning on these: a page lays out widgets, calls the engine inside
:func:`shielded`, and formats numbers with the helpers below.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pyarrow as pa
import streamlit as st

from engine.backend import Backend, open_backend
from engine.config import Settings
from engine.errors import PetroStreamError
from engine.insights import WellSnapshot, WellStatus, status_counts

log = logging.getLogger("petrostream.portal")

PAGES = Path(__file__).resolve().parents[1] / "pages"
Port = TypeVar("Port")

_BACKEND_KEY = "_petrostream_backend"
_FLASH_KEY = "_petrostream_flash"

#: How each well status looks everywhere (tiles, map markers, legends).
STATUS_COLOURS: dict[WellStatus, str] = {
    WellStatus.NORMAL: "#2e7d32",
    WellStatus.ANOMALY: "#c62828",
    WellStatus.STALE: "#f9a825",
    WellStatus.NO_DATA: "#9e9e9e",
}
#: Markdown badge colour of each status (badges need no emoji font on the viewer's machine).
_BADGES: dict[WellStatus, str] = {
    WellStatus.NORMAL: "green", WellStatus.ANOMALY: "red", WellStatus.STALE: "orange", WellStatus.NO_DATA: "gray",
}

#: Each well's own colour (lines, tile and marker rims); no red, green or amber, which mean a status.
WELL_PALETTE: tuple[str, ...] = ("#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#393b79", "#bcbd22",
                                 "#7b4173", "#008080", "#ff7f0e", "#5254a3", "#843c39")


def well_colours(wells: Sequence[str]) -> dict[str, str]:
    """A colour per well, by its place among all wells sorted, so every page colours a well alike."""
    return {well: WELL_PALETTE[n % len(WELL_PALETTE)] for n, well in enumerate(sorted(wells))}


#: Athena bills every statement (10 MB at least), so on a cloud backend live views poll at most this often.
CLOUD_MIN_REFRESH_SECONDS = 60


def refresh_seconds(seconds: int, backend: Backend) -> int:
    """How often a self-refreshing view of the lake re-runs: as asked locally, less often where SQL is billed."""
    return max(seconds, CLOUD_MIN_REFRESH_SECONDS) if backend.sql_billed_per_query else seconds


def backend() -> Backend:
    """This browser session's backend, opened on first use.

    Each session keeps its own: the local backend holds SQLite connections whose transactions
    must not interleave between sessions. If the backend cannot be opened the page says why
    and stops there.
    """
    try:
        settings = Settings.from_env()
        cached = st.session_state.get(_BACKEND_KEY)
        if cached is None or cached.settings != settings:
            cached = st.session_state[_BACKEND_KEY] = open_backend(settings)
        return cached
    except PetroStreamError as exc:
        st.error(f"The backend is unreachable: {exc}")
    except Exception as exc:  # a driver or OS error opening the stores
        log.exception("opening the backend failed")
        st.error(f"The backend is unreachable: {_one_line(exc)}")
    st.info("Check `PETROSTREAM_BACKEND` and `PETROSTREAM_HOME` (or the cloud settings), then reload the page.")
    st.stop()


def required(port: Port | None, backend: Backend, ability: str, command: str) -> Port:
    """A port the page cannot work without; where the backend lacks it, say so and stop the page."""
    if port is None:
        st.warning(f"The `{backend.name}` backend cannot {ability} from the portal yet; use `{command}` instead.")
        st.stop()
    return port


@contextmanager
def shielded(action: str) -> Iterator[None]:
    """Run a block of page code; a failure becomes an error message, never a traceback.

    Engine errors carry a message fit for users; anything else is logged with its traceback
    for the operator and summarised on the page. Streamlit's own control flow (stop, rerun)
    passes through, as it derives from BaseException.
    """
    try:
        yield
    except PetroStreamError as exc:
        st.error(f"{action}: {without_internal_paths(str(exc))}")
    except Exception as exc:
        log.exception("%s failed", action)
        st.error(f"{action} failed unexpectedly: {without_internal_paths(_one_line(exc))}")


def without_internal_paths(text: str) -> str:
    """A message with paths inside the temp folder or the backend's home cut to their file name.

    Those folders are the portal's business (uploads, the lake, scratch files); their names mean
    nothing to a user and tell a stranger how the server is laid out.
    """
    roots = [Path(tempfile.gettempdir()).resolve()]
    cached = st.session_state.get(_BACKEND_KEY)
    if cached is not None:
        roots.append(Path(cached.settings.home).resolve())

    def shorten(match: re.Match[str]) -> str:
        path = Path(match.group(0))
        return path.name if any(path.resolve().is_relative_to(root) for root in roots) else match.group(0)

    return re.sub(r"/[^\s'\"(),:;]+", shorten, text)


def flash(message: str) -> None:
    """Rerun the page now (so everything shows the change just made) with ``message`` on top."""
    st.session_state[_FLASH_KEY] = message
    st.rerun()


def show_flash() -> None:
    """The message of the action that caused this rerun, if any."""
    message = st.session_state.pop(_FLASH_KEY, None)
    if message:
        st.success(message)


def empty_state(message: str, hint: str | None = None) -> None:
    """An explanation of why there is nothing to show yet, and what to do about it."""
    st.info(message, icon="ℹ️")
    if hint:
        st.caption(hint)


def page_link(page: str, label: str) -> None:
    """A link to another page of the portal by its file name (``"model"`` for pages/model.py)."""
    st.page_link(PAGES / f"{page}.py", label=label, icon=":material/arrow_forward:")


def arrow_times(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its time-zoned columns held as Arrow timestamps, for ``st.dataframe``.

    Streamlit hands a frame to pyarrow, which reads a NumPy-backed time-zoned column through
    ``Series.values``: deprecated in pandas 3.1 (``Pandas4Warning``), as it drops the zone. An
    Arrow-backed column is taken as it is, to the same Arrow type, so the table shows the same.
    """
    zoned = {name: pd.ArrowDtype(pa.timestamp(dtype.unit, tz=str(dtype.tz)))
             for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.DatetimeTZDtype)}
    return frame.astype(zoned) if zoned else frame


def now() -> datetime:
    return datetime.now(UTC)


def age(moment: datetime | None, reference: datetime | None = None) -> str:
    """How long ago, in words a control room reads at a glance."""
    if moment is None:
        return "never"
    seconds = max(0.0, ((reference or now()) - moment).total_seconds())
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def number(value: float | int | None, digits: int = 0, unit: str = "") -> str:
    """A number with thousands separators, or an em dash when unknown."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def duration(seconds: float) -> str:
    """``90`` -> ``1.5 min``: bucket widths and windows in words."""
    for unit, size in (("day", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def file_name(*parts: str, suffix: str) -> str:
    """A download name from data values (well ids come from files users supplied): safe characters only."""
    stem = "_".join(re.sub(r"[^A-Za-z0-9_-]+", "-", part).strip("-") for part in parts if part)
    return f"{stem or 'petrostream'}.{suffix}"


def plain(text: object) -> str:
    """Data (a well id from a file name, a registry's text) shown in markdown as written, never as markup."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~:$])", r"\\\1", str(text))


def when(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def status_label(status: WellStatus) -> str:
    """A coloured badge for Streamlit markdown."""
    return f":{_BADGES[status]}-badge[{status.value}]"


def status_summary(wells: Sequence[WellSnapshot]) -> None:
    """How many wells have each status, of all wells known (registry and lake): the same line on every view."""
    counts = status_counts(list(wells))
    st.markdown(" · ".join(f"{status_label(status)}: **{count}**" for status, count in counts.items())
                + f" of **{len(wells)}** well(s)")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__

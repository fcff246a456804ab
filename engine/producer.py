"""The producer: replays 3W instance files into the stream as if the wells were live.

Files are merged by timestamp across wells and sent in time windows: each window becomes
one record per well (or a few, if a well has many rows in it), encoded with the columnar
codec. The producer keeps, per well, the last event time it sent, and stores it when it stops
(a signal, the end, a row limit) and every few seconds while running, so a replay resumes right
after where it stopped. A crash re-sends what it sent since the last store; the consumer drops
those rows as already seen.
Periods where no well has data are skipped instead of waited through.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine import codec
from engine.arrow_numpy import values
from engine.backend import Backend
from engine.readers import STREAM_CHUNK_ROWS, InstanceFile, file_rows, open_instance, open_instances
from engine.replay_log import AT_LIMIT, FINISHED, STOPPED, ReplayProgress, replay_id_for
from engine.stream import OutgoingRecord
from engine.well_rows import well_rows

#: Event time one window covers when replaying as fast as possible.
FAST_WINDOW_MS = 3_600_000
#: Kinesis accepts at most 500 records per PutRecords call.
MAX_RECORDS_PER_PUT = 500


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay: ``speed`` times real time (0 = as fast as possible), how much, how packed, and whether
    to forget the stored progress and send the files from their first row again (``from_start``)."""

    speed: float = 0.0
    max_rows: int | None = None
    rows_per_record: int = 2_000
    from_start: bool = False


def count_rows(files: Sequence[InstanceFile]) -> int:
    """Rows the files hold, read from Parquet footers or by counting CSV lines."""
    return sum(file_rows(instance.path) for instance in files)


class _WellCursor:
    """One well's files, read one at a time in chunks (bounded memory whatever a file holds),
    handed out in time slices.

    The pending rows' event times are kept as a NumPy array beside them (chunks come in time
    order), so asking a cursor for its next time or cutting a window is a lookup, not an Arrow
    call: with thousands of wells the producer asks every cursor in every window.

    ``files`` are the well's files in name order, ``first`` the first one opened (:func:`open_instance`).
    With ``count``, the cursor also counts its files' rows (:attr:`total_rows`), the first file's from
    its opened footer: a well of one short file has its footer parsed once, not twice.
    With ``prefetch``, the well's next chunk is read there while the producer encodes and sends
    (Arrow decodes without the GIL): one chunk more per well in memory, none when nothing follows.
    """

    def __init__(self, well: str, files: list[InstanceFile], first: tuple[int, Iterator[pa.Table]],
                 watermark: int | None, count: bool = False, prefetch: Executor | None = None) -> None:
        self.well = well
        self.files = files[1:]
        self.watermark = watermark
        self.pending: pa.Table | None = None
        self._times = np.empty(0, dtype=np.int64)
        self._file_rows, self._chunks = first
        self.total_rows = self._file_rows + count_rows(self.files) if count else None
        self._prefetch = prefetch
        self._ahead: Future[pa.Table | None] | None = None
        self._advance()

    def _read_chunk(self) -> pa.Table | None:
        """The well's next chunk across its files, None once they are all read."""
        while (table := next(self._chunks, None)) is None and self.files:
            self._file_rows, self._chunks = open_instance(self.files.pop(0).path)
        return table

    def _take_chunk(self) -> pa.Table | None:
        table = self._read_chunk() if self._ahead is None else self._ahead.result()
        more = bool(self.files) or self._file_rows > STREAM_CHUNK_ROWS  # a one-chunk last file has no next
        self._ahead = (self._prefetch.submit(self._read_chunk)
                       if table is not None and more and self._prefetch is not None else None)
        return table

    def _advance(self) -> None:
        while len(self._times) == 0:
            table = self._take_chunk()
            if table is None:
                return
            times = values(table["event_time"])
            if self.watermark is not None:  # chunks are in time order: the rows sent already come first
                sent = int(np.searchsorted(times, self.watermark, side="right"))
                table, times = table.slice(sent), times[sent:]
            self.pending, self._times = table, times

    def next_time(self) -> int | None:
        return int(self._times[0]) if len(self._times) else None

    def take_before(self, end_ms: int) -> pa.Table | None:
        """Rows with event time before ``end_ms`` (possibly spanning files)."""
        taken = []
        while len(self._times) and self._times[0] < end_ms:
            cut = int(np.searchsorted(self._times, end_ms))
            if cut == len(self._times):  # all pending rows (a short well's whole file): no slicing
                taken.append(self.pending)
                self.pending, self._times = None, self._times[:0]
            else:
                taken.append(self.pending.slice(0, cut))
                self.pending, self._times = self.pending.slice(cut), self._times[cut:]
            self._advance()
        return None if not taken else taken[0] if len(taken) == 1 else pa.concat_tables(taken)


class Producer:
    """Replays a set of files into a backend's stream; resumable by design."""

    def __init__(self, backend: Backend, files: Sequence[InstanceFile], options: ReplayOptions,
                 on_progress: Callable[[ReplayProgress], None] | None = None) -> None:
        self.backend = backend
        self.files = list(files)
        self.options = options
        self.on_progress = on_progress
        self._stored_at = -backend.progress_save_seconds
        replay_id = replay_id_for(f.path for f in self.files)
        stored = None if options.from_start else backend.replays.load(replay_id)
        # A new replay's rows are counted by run() as it opens the files, before the first report.
        self._count = stored is None
        self.progress = stored or ReplayProgress(replay_id, [str(f.path) for f in self.files], options.speed, 0)
        self.progress.speed = options.speed
        self.progress.stop_at = None if options.max_rows is None else self.progress.sent_rows + options.max_rows

    def run(self, stop: threading.Event) -> ReplayProgress:
        """Send until the files are exhausted, ``max_rows`` are sent, or ``stop`` is set."""
        # One thread reads ahead (each well's next chunk); Arrow decodes on its own threads too. A stop
        # drops the reads still queued instead of reading a chunk for every well first.
        prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
        try:
            return self._run(stop, prefetch)
        finally:
            prefetch.shutdown(cancel_futures=True)

    def _run(self, stop: threading.Event, prefetch: Executor) -> ReplayProgress:
        by_well: dict[str, list[InstanceFile]] = defaultdict(list)
        for instance in self.files:
            by_well[instance.well_id].append(instance)
        wells = [(well, sorted(files, key=lambda f: f.path.name)) for well, files in by_well.items()]
        # Every cursor reads its first file now: short ones in batches on open_instances' threads, longer
        # ones in the cursors; Arrow decodes without the GIL, so on more than one core those are read side by side.
        firsts = open_instances([files[0].path for _, files in wells])
        with ThreadPoolExecutor(max_workers=min(len(wells), os.cpu_count() or 1) or 1) as pool:
            cursors = list(pool.map(lambda well, files, first: _WellCursor(
                well, files, first, self.progress.watermarks.get(well), self._count, prefetch),
                [well for well, _ in wells], [files for _, files in wells], firsts))
        if self._count:
            self.progress.total_rows, self._count = sum(c.total_rows or 0 for c in cursors), False
        budget = self.options.max_rows
        window = (FAST_WINDOW_MS if self.options.speed <= 0
                  else int(max(self.backend.min_record_seconds, self.options.speed) * 1000))
        self.progress.pid = os.getpid()
        self._update("running")
        anchor: tuple[int, float] | None = None
        previous: int | None = None
        started, sent_this_run = time.monotonic(), 0
        while not stop.is_set() and (budget is None or budget > 0):
            pending = [t for c in cursors if (t := c.next_time()) is not None]
            if not pending:
                break
            window_start = min(pending)
            if previous is None or window_start - previous > 2 * window:  # skip gaps with no data
                anchor = (window_start, time.monotonic())
            previous = window_start
            parts = [(c.well, part) for c in cursors if (part := c.take_before(window_start + window)) is not None]
            rows = sum(part.num_rows for _, part in parts)
            if budget is not None and rows > budget:
                parts, rows = _earliest(parts, budget), budget
            assert anchor is not None
            self._pace(anchor, window_start + window, stop)
            self._send(parts, rows)
            sent_this_run += rows
            budget = None if budget is None else budget - rows
            self.progress.rate = sent_this_run / max(time.monotonic() - started, 1e-9)
            self._update("running")
        finished = all(c.next_time() is None for c in cursors)
        self.progress.pid = None
        self._update(FINISHED if finished else AT_LIMIT if budget is not None and budget <= 0 else STOPPED)
        return self.progress

    def _pace(self, anchor: tuple[int, float], window_end: int, stop: threading.Event) -> None:
        if self.options.speed <= 0:
            return
        due = anchor[1] + (window_end - anchor[0]) / 1000.0 / self.options.speed
        stop.wait(max(0.0, due - time.monotonic()))

    def _send(self, parts: list[tuple[str, pa.Table]], rows: int) -> None:
        """Send a window: each well's rows (in time order) as records of at most ``rows_per_record``."""
        records = []
        size = self.options.rows_per_record
        for well, part in parts:
            records.extend(OutgoingRecord(well, codec.encode(part.slice(first, size)))
                           for first in range(0, part.num_rows, size))
            self.progress.watermarks[well] = part["event_time"][-1].value
        for start in range(0, len(records), MAX_RECORDS_PER_PUT):
            self.backend.stream.put_records(records[start:start + MAX_RECORDS_PER_PUT])
        self.progress.sent_rows += rows

    def _update(self, status: str) -> None:
        """Report progress every window; store it when the status changes or every
        ``backend.progress_save_seconds``.

        A store is a write to the backend (a DynamoDB item on aws) carrying the file list, so a
        fast replay does not write one per window; progress lost to a crash since the last store
        is only re-sent, and the consumer drops re-sent rows.
        """
        now = time.monotonic()
        if status != self.progress.status or now - self._stored_at >= self.backend.progress_save_seconds:
            self.progress.status = status
            self.progress.updated_at = time.time()
            self.backend.replays.save(self.progress)
            self._stored_at = now
        if self.on_progress:
            self.on_progress(self.progress)


def _earliest(parts: list[tuple[str, pa.Table]], count: int) -> list[tuple[str, pa.Table]]:
    """The ``count`` earliest rows of a window, still per well in time order."""
    batch = pa.concat_tables(part for _, part in parts)
    order = pc.sort_indices(batch, [("event_time", "ascending"), ("well_id", "ascending")])
    earliest = batch.take(np.sort(order.slice(0, count).to_numpy()))
    return [(well, earliest.take(positions)) for well, positions in well_rows(earliest["well_id"])]

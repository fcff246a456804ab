"""The environment of the worker processes ``consume --workers N`` starts on one machine.

Each worker is a whole process, and each sizes its thread pools for every core of the machine:
pyarrow's CPU pool (it decodes the columns of the row groups a compaction reads in parallel) and
OpenBLAS's (its threads spin for some 50 ms at start although a consumer makes no BLAS call).
N workers on C cores so run N × C pool threads on C cores, where one worker per core already keeps
them busy: the extra threads only add hand-offs, context switches and a jemalloc arena each (fresh
memory to fault in). A worker gets its share of the cores instead, through the variables both
libraries read once, as they load: Arrow sizes its CPU pool by ``OMP_NUM_THREADS``. A variable
already set is an operator's choice and wins. Neither pool changes a result: the consumer's numbers
are computed on its own thread, and a Parquet column decodes the same on any thread.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Variables that size a worker's thread pools (Arrow's CPU pool and OpenBLAS's).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: One health port cannot serve N processes: the workers run without the endpoint.
HEALTH_PORT_VARIABLE = "PETROSTREAM_HEALTH_PORT"


def worker_environment(environment: Mapping[str, str], workers: int, cores: int | None) -> dict[str, str]:
    """``environment`` for one of ``workers`` processes sharing ``cores`` (None: unknown, taken as one)."""
    threads = str(max(1, (cores or 1) // workers))
    child = {name: value for name, value in environment.items() if name != HEALTH_PORT_VARIABLE}
    for name in THREAD_VARIABLES:
        child.setdefault(name, threads)
    return child

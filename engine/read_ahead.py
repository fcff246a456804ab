"""A function mapped over items on a few threads, a bounded number of items ahead, results in order.

Reading a short Parquet file is some 0.5 ms of work in Arrow, which releases the GIL while it
decodes: the producer reads and converts thousands of them on every core while its own thread
hands out what was read. The work in flight is bounded (``depth`` items), so read-ahead memory
is too, whatever the number of items.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def read_ahead(function: Callable[[T], R], items: Iterable[T], threads: int, depth: int) -> Iterator[R]:
    """``map(function, items)``, computed on ``threads`` threads at most ``depth`` items ahead of the caller.

    An exception is raised where its item's result would have been, after the results before it;
    the items not started yet are dropped then, or when the caller stops asking. With one thread
    there is nothing to overlap: the items are mapped on the caller's thread, as they are asked for.
    """
    if threads <= 1:
        yield from map(function, items)
        return
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="read-ahead")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)

"""``read_ahead``: a function over items on threads, results in order, a bounded number ahead."""

from __future__ import annotations

import threading

import pytest

from engine.read_ahead import read_ahead


def test_results_come_in_the_order_of_the_items_whatever_finishes_first() -> None:
    def slower_first(item: int) -> int:
        threading.Event().wait(0.002 * (20 - item) if item < 20 else 0)
        return item * item

    assert list(read_ahead(slower_first, range(40), threads=3, depth=5)) == [i * i for i in range(40)]


def test_work_runs_on_other_threads_and_at_most_depth_items_ahead() -> None:
    started: list[int] = []
    where: set[str] = set()

    def record(item: int) -> int:
        started.append(item)
        where.add(threading.current_thread().name)
        return item

    results = read_ahead(record, range(100), threads=2, depth=4)
    assert next(results) == 0
    assert max(started) <= 4  # the first result, and four more at most, before the caller asked again
    assert list(results) == list(range(1, 100))
    assert threading.current_thread().name not in where and all(n.startswith("read-ahead") for n in where)


def test_an_error_is_raised_in_place_of_its_result_after_the_results_before_it() -> None:
    def failing_at_seven(item: int) -> int:
        if item == 7:
            raise ValueError("item 7")
        return item

    results = read_ahead(failing_at_seven, range(30), threads=2, depth=3)
    assert [next(results) for _ in range(7)] == list(range(7))
    with pytest.raises(ValueError, match="item 7"):
        next(results)


def test_one_thread_maps_on_the_callers_thread_as_results_are_asked_for() -> None:
    started: list[tuple[int, str]] = []

    def record(item: int) -> int:
        started.append((item, threading.current_thread().name))
        return item

    results = read_ahead(record, range(5), threads=1, depth=4)
    assert next(results) == 0 and started == [(0, threading.current_thread().name)]
    assert list(results) == [1, 2, 3, 4]

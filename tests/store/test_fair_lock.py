"""The embedded store's lock: waiting threads get it in the order they asked."""

from __future__ import annotations

import threading

from optima_bi_mcp.store.client import FairLock
from tests.waiting import wait_for


def test_waiters_are_served_in_arrival_order() -> None:
    lock = FairLock()
    served: list[int] = []
    lock.__enter__()  # held while the waiters line up
    threads = []
    for n in range(8):
        thread = threading.Thread(target=lambda n=n: _take(lock, served, n))
        thread.start()
        threads.append(thread)
        wait_for(lambda n=n: len(lock._waiters) == n + 1, 5, f"waiter {n} in line")
    lock.__exit__()
    for thread in threads:
        thread.join(5)
    assert served == list(range(8))


def test_reentrant_for_its_owner_and_exclusive_for_others() -> None:
    lock = FairLock()
    entered = threading.Event()
    with lock, lock:  # the owner enters twice
        other = threading.Thread(target=lambda: (lock.__enter__(), entered.set(), lock.__exit__()))
        other.start()
        wait_for(lambda: len(lock._waiters) == 1, 5, "the other thread waiting")
        assert not entered.is_set()
    other.join(5)
    assert entered.is_set()
    with lock:  # free again
        pass


def _take(lock: FairLock, served: list[int], n: int) -> None:
    with lock:
        served.append(n)

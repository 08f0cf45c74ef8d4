"""The embedded store's connection pool: bounded, handed out in arrival order, reentrant."""

from __future__ import annotations

import threading
from typing import Any

from optima_bi_mcp.store.client import ConnectionPool, Store
from tests.waiting import wait_for


class Opened:
    """Counts the clients the pool opens (plain objects: the pool's logic, not the engine).

    With `fail`, the first open waits for `go` and then fails: an engine refusing a
    connection cannot be provoked on demand, so this stands in for it.
    """

    def __init__(self, fail: bool = False) -> None:
        self.count = 0
        self.fail = fail
        self.go = threading.Event()

    def __call__(self) -> Any:
        if self.fail:
            self.fail = False
            assert self.go.wait(5)
            raise OSError("cannot open")
        self.count += 1
        return Client(self.count)


class Client:
    def __init__(self, n: int) -> None:
        self.n = n

    def close(self) -> None:
        pass


def test_waiters_are_served_in_arrival_order() -> None:
    """With every client taken, a freed one goes to the thread that asked first."""
    pool = ConnectionPool(1, Opened())
    served: list[int] = []
    with pool.client():  # held while the waiters line up
        threads = []
        for n in range(8):
            thread = threading.Thread(target=_take, args=(pool, served, n))
            thread.start()
            threads.append(thread)
            wait_for(lambda n=n: len(pool._waiters) == n + 1, 5, f"waiter {n} in line")
    for thread in threads:
        thread.join(5)
    assert served == list(range(8))


def test_never_more_clients_than_its_size() -> None:
    """Two holders get two clients; a third thread waits for one of theirs."""
    opened = Opened()
    pool = ConnectionPool(2, opened)
    got: list[int] = []
    with pool.client() as first, pool_client_in_thread(pool) as second:
        third = threading.Thread(target=lambda: _record(pool, got))
        third.start()
        wait_for(lambda: len(pool._waiters) == 1, 5, "the third thread waiting")
        assert {first.n, second.n} == {1, 2}
    third.join(5)
    assert opened.count == 2 and got and got[0] in (1, 2)


def test_reentrant_for_the_thread_that_holds_a_client() -> None:
    """Asking again while holding a client gives the same client, not a second one."""
    opened = Opened()
    pool = ConnectionPool(1, opened)
    with pool.client() as outer, pool.client() as inner:
        assert inner is outer
    assert opened.count == 1


def test_a_failed_open_lets_the_next_waiter_open() -> None:
    """An engine that refuses one connection does not strand the thread waiting behind it."""
    opened = Opened(fail=True)
    pool = ConnectionPool(1, opened)
    failed: list[BaseException] = []
    first = threading.Thread(target=lambda: _fail(pool, failed))
    first.start()
    wait_for(lambda: pool._opening == 1, 5, "the first open under way")
    got: list[int] = []
    second = threading.Thread(target=lambda: _record(pool, got))
    second.start()
    wait_for(lambda: len(pool._waiters) == 1, 5, "the second thread waiting")
    opened.go.set()
    first.join(5)
    second.join(5)
    assert [type(e) for e in failed] == [OSError] and got == [1]


def test_chdb_answers_two_connections_at_once(make_store: Any) -> None:
    """Two threads each hold one of the pool's chDB connections and both get answers."""
    store = Store(make_store("pool").location, connections=2)
    barrier = threading.Barrier(2, timeout=30)
    answers: list[int] = []

    def ask() -> None:
        with store._client() as client:
            barrier.wait()  # both threads hold a connection before either asks
            rows = client.query("SELECT sum(number) FROM numbers(1000)").result_rows
            answers.append(int(rows[0][0]))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [499500, 499500]
    store._pool.close()


class pool_client_in_thread:  # noqa: N801 - used as a context manager, like pool.client()
    """Hold one of the pool's clients from another thread for the block's duration."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.taken = threading.Event()
        self.done = threading.Event()
        self.client: Any = None

    def __enter__(self) -> Any:
        threading.Thread(target=self._hold, daemon=True).start()
        assert self.taken.wait(5)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.done.set()

    def _hold(self) -> None:
        with self.pool.client() as client:
            self.client = client
            self.taken.set()
            self.done.wait(5)


def _take(pool: ConnectionPool, served: list[int], n: int) -> None:
    with pool.client():
        served.append(n)


def _fail(pool: ConnectionPool, failed: list[BaseException]) -> None:
    try:
        with pool.client():
            pass
    except OSError as exc:
        failed.append(exc)


def _record(pool: ConnectionPool, got: list[int]) -> None:
    with pool.client() as client:
        got.append(client.n)

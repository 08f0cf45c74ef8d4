"""Store.insert: column types learned once per table, and forgotten when a table changes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from optima_bi_mcp.store import Store


@pytest.fixture
def store(make_store: Callable[[str], Store]) -> Store:
    store = make_store("ins")
    store.command("CREATE TABLE notes (id UInt32, body String) ENGINE = MergeTree ORDER BY id")
    return store


def test_repeated_inserts_keep_every_row(store: Store) -> None:
    """Inserts after the first reuse the learned types and still write exact values."""
    for n in range(3):
        store.insert("notes", [(n, f"note {n}")], ["id", "body"])
    assert store.query("SELECT id, body FROM notes ORDER BY id") == [
        (0, "note 0"),
        (1, "note 1"),
        (2, "note 2"),
    ]


def test_a_changed_column_type_is_learned_again(store: Store) -> None:
    """After a table is made anew with other types, the next insert encodes values of those."""
    store.insert("notes", [(1, "first")], ["id", "body"])
    store.command("DROP TABLE notes")
    store.command("CREATE TABLE notes (id UInt32, body UInt64) ENGINE = MergeTree ORDER BY id")
    store.insert("notes", [(2, 2**40)], ["id", "body"])
    assert store.query("SELECT id, body FROM notes") == [(2, 2**40)]


def test_a_failed_insert_is_reported_and_the_next_one_works(store: Store) -> None:
    """A value the column cannot hold fails that insert only; the next insert writes."""
    store.insert("notes", [(1, "first")], ["id", "body"])
    with pytest.raises(ValueError, match="not a number"):  # the driver cannot encode it
        store.insert("notes", [("not a number", "x")], ["id", "body"])
    store.insert("notes", [(3, "third")], ["id", "body"])
    assert store.query("SELECT count() FROM notes") == [(2,)]

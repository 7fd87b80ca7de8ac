"""Keyset cursors: the store's naive datetimes are UTC, whatever the host's time zone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from store.keyset import Key, decode_cursor, encode_cursor, typed


@pytest.fixture
def shanghai_host() -> Iterator[None]:
    """The host's local time zone is the city's (UTC+8), as on a server set up in China."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_a_naive_datetime_from_the_store_keeps_its_moment_in_the_cursor(shanghai_host: None) -> None:
    # SQLite hands back naive values meaning UTC; read as local time they would move 8 hours and the
    # next page (and every export batch) would skip or repeat rows.
    stored = datetime(2026, 12, 1, 10, 0)
    [value, event_id] = [typed(Key(None, "dt"), v) if i == 0 else v
                         for i, v in enumerate(decode_cursor(encode_cursor([stored, "EV-1"]), 2))]
    assert value == stored.replace(tzinfo=UTC) and event_id == "EV-1"

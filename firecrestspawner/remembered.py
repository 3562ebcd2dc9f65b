"""What one spawn learns that the next may reuse: a small map with expiry.

A pooled FirecREST client (one identity at one URL) keeps in one of these the
answers that do not change from spawn to spawn: the user's default account on
a system, and that the private directory of token files exists and is 0700.
Every entry has an age (the reader says how old is too old: ``max_age``), the map holds at most ``max_entries`` (the
oldest goes first), and the caller forgets an entry as soon as an answer
proves it wrong. No I/O, no locks: it is used from the hub's event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any


class Remembered:
    """Key -> value with the time it was learned; ``get`` is None when missing or too old."""

    def __init__(self, max_entries: int = 256, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max(1, int(max_entries))
        self._clock = clock
        self._items: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, max_age: float) -> Any:
        """The value learned less than ``max_age`` seconds ago, else None."""
        item = self._items.get(key)
        if item is None:
            return None
        learned, value = item
        if self._clock() - learned >= max_age:
            del self._items[key]
            return None
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` (None forgets the key); the oldest entry goes when full."""
        self._items.pop(key, None)
        if value is None:
            return
        while len(self._items) >= self.max_entries:
            del self._items[next(iter(self._items))]
        self._items[key] = (self._clock(), value)

    def forget(self, key: Hashable) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


__all__ = ["Remembered"]

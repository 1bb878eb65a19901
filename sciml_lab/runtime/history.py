"""A bounded, thinned history: what the kernel keeps in memory of a long job.

The run folder keeps every step (``events.jsonl``); memory keeps the latest
``recent`` items in full and an older part thinned evenly: each time the older
part reaches ``recent`` items every other one is dropped and the stride doubles.
So a job of any length holds at most ``2 * recent`` items, the latest exactly,
the whole run at a resolution that halves as it doubles in length: enough for a
chart or a late view, and memory no longer grows with the number of steps.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Generic, Iterator, TypeVar

__all__ = ["ThinnedHistory", "HISTORY_RECENT"]

T = TypeVar("T")

#: items kept in full at the end of a job's in-memory history (the older part holds at most as many)
HISTORY_RECENT = 5_000


class ThinnedHistory(Generic[T]):
    """An append-only sequence that keeps the last ``recent`` items and an evenly
    thinned older part, at most ``2 * recent`` items in all.

    Arguments:
        recent: items kept in full at the end (>= 1).

    Example:
        >>> h = ThinnedHistory(recent=4)
        >>> for i in range(100): h.append(i)
        >>> len(h) <= 8, h[-1], h[0]
        (True, 99, 0)
        >>> h.appended
        100
    """

    def __init__(self, recent: int = HISTORY_RECENT):
        if isinstance(recent, bool) or not isinstance(recent, int) or recent < 1:
            raise ValueError(f"recent: expected a positive integer, got {recent!r}")
        self.recent = recent
        self._new: deque[T] = deque()
        self._old: list[T] = []
        self._stride = 1
        self._aged = 0  # items that have left the recent part so far
        self.appended = 0  # items ever appended (kept or not)

    def append(self, item: T) -> None:
        self._new.append(item)
        self.appended += 1
        if len(self._new) > self.recent:
            aged = self._new.popleft()
            if self._aged % self._stride == 0:
                self._old.append(aged)
                if len(self._old) >= self.recent:
                    self._old = self._old[::2]
                    self._stride *= 2
            self._aged += 1

    def extend(self, items) -> None:
        for x in items:
            self.append(x)

    def retain(self, keep: Callable[[T], bool]) -> None:
        """Keep only the items for which ``keep(item)`` holds (a resumed run forgets
        the steps logged after its checkpoint)."""
        self._old = [x for x in self._old if keep(x)]
        self._new = deque(x for x in self._new if keep(x))

    def clear(self) -> None:
        self.__init__(self.recent)

    def __len__(self) -> int:
        return len(self._old) + len(self._new)

    def __iter__(self) -> Iterator[T]:
        yield from self._old
        yield from self._new

    def __getitem__(self, i: int) -> T:
        if isinstance(i, int) and -len(self._new) <= i < 0:
            return self._new[i]
        return list(self)[i]

    def __bool__(self) -> bool:
        return len(self) > 0

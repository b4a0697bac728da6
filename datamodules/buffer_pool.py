"""Output arrays that are reused once nothing references them any more.

A batch of T = 243 windows is ~85 MB; a fresh ``np.empty`` of that size is new memory, and the
kernel's first-touch page faults cost about a third of the gather itself (docs/speed.md). The
loader hands each batch on as tensors made by ``torch.from_numpy``; a tensor, and every view or
storage made from it, holds a reference to its array, so an array whose reference count is back
to the pool's own is free to be overwritten. Arrays still held (a consumer keeping batches) are
never touched: the pool then allocates a new one.
"""

from __future__ import annotations

import sys

import numpy as np


def _refs(arrays: list[np.ndarray], k: int) -> int:
    """Reference count of ``arrays[k]`` as seen from here (interpreter-dependent: compared
    only with the count of an array held by a list alone, measured the same way)."""
    return sys.getrefcount(arrays[k])


_FREE_REFS = _refs([np.empty(0)], 0)  # an array only the list holds


class BufferPool:
    """Up to ``size`` sets of arrays, each set reused when none of its arrays is referenced
    elsewhere. Not thread-safe (one per dataset per process); drop it when pickling.

    Args:
        size: how many sets to keep (0: always allocate).
    """

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._sets: list[list[np.ndarray]] = []

    def take(self, specs: list[tuple[tuple[int, ...], np.dtype]]) -> list[np.ndarray]:
        """Arrays of the given ``(shape, dtype)``: a free kept set of exactly those, else new
        ones (kept while the pool holds fewer than ``size`` sets). Contents are undefined."""
        for arrays in self._sets:
            if [(a.shape, a.dtype) for a in arrays] == specs and all(
                _refs(arrays, k) == _FREE_REFS for k in range(len(arrays))
            ):
                return list(arrays)
        fresh = [np.empty(shape, dtype) for shape, dtype in specs]
        if len(self._sets) < self.size:
            self._sets.append(fresh)
        elif self.size:  # keep the newest shapes (e.g. after a smaller last batch)
            self._sets = [*self._sets[1:], fresh]
        return list(fresh)

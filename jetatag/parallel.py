"""An ordered map over worker processes, for the stages that decode or analyse many clips."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any


@contextmanager
def ordered_map(workers: int) -> Iterator[Callable[..., Iterable[Any]]]:
    """An ordered ``map(fn, items)``: in this process for one worker, else over a pool of ``workers`` processes."""
    if workers == 1:
        yield map
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield pool.map

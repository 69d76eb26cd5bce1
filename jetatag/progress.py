"""Progress bars on a terminal only: one helper, :func:`progress`, for every loop that wants a bar.

A bar is drawn on stderr when stderr is a terminal. Otherwise (pipeline jobs, ``--log-file`` runs,
CI, redirected output) the bar is disabled and writes nothing: logs stay readable, and stages that
want a record log one line per unit of work themselves.

Usage::

    from jetatag.progress import progress

    for path in progress(paths, desc="probe", unit="mp3"):  # wrap an iterable
        ...
    with progress(total=n_bytes, desc=name, unit="B", unit_scale=True) as bar:  # update by hand
        bar.update(len(block))
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def stderr_is_terminal() -> bool:
    """True if ``sys.stderr`` (as it is now, not at import) is an open terminal."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced stream without isatty, or a closed one
        return False


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: float | None = None,
    desc: str | None = None,
    unit: str = "it",
    disable: bool = False,
    **tqdm_kwargs: Any,
) -> tqdm[T]:
    """A tqdm progress bar on stderr that is drawn only when stderr is a terminal.

    Parameters
    ----------
    iterable : iterable or None
        Items to wrap, as in ``for x in progress(items): ...``. Leave out and pass ``total``
        to update the bar by hand (``bar.update(n)``), preferably in a ``with`` block.
    total : number or None
        Expected number of units; defaults to ``len(iterable)`` where it has one.
    desc : str or None
        Short label shown before the bar, e.g. the stage name.
    unit : str
        Name of one unit of work, e.g. ``"clip"``, ``"file"``, ``"B"``.
    disable : bool
        Hide the bar even on a terminal (e.g. for a single item).
    **tqdm_kwargs
        Passed on to :class:`tqdm.tqdm` (``leave``, ``initial``, ``unit_scale``, ...).

    Returns
    -------
    tqdm
        Iterate over it, or call ``update``/``set_postfix``; when disabled, these do nothing and
        iteration yields the items unchanged.
    """
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=disable or not stderr_is_terminal(),
        **tqdm_kwargs,
    )

"""Small helpers the book's notebooks call to publish numbers, figures and tables.

* :func:`glue` hands a value to myst-nb's ``glue`` so that prose can cite it (``{glue:text}``,
  ``{glue:figure}``); outside a Jupyter Book build (e.g. on Colab, where myst-nb is
  usually absent) it shows the value instead, or does nothing for plain numbers.
* :func:`table` turns rows of numbers into a rendered pandas table with fixed formats.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping, Optional, Sequence


def glue(name: str, value: Any, display: bool = False) -> None:
    """Publish ``value`` under ``name`` for the book's prose (myst-nb ``glue``).

    Parameters
    ----------
    name : str
        Key used in ``{glue:text}`name``` or ``{glue:figure} name``.
    value : object
        A number, string, matplotlib Figure or table.
    display : bool
        Also show the value in the cell's output.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # not building the book: show figures and tables, skip bare numbers
        if not isinstance(value, (int, float, str)):
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)


def table(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str],
          formats: Optional[Mapping[str, str]] = None, caption: Optional[str] = None):
    """A rendered table (pandas Styler, no index) of ``rows``.

    Parameters
    ----------
    rows : sequence of mapping
        One mapping per row; only the keys named in ``columns`` are shown.
    columns : mapping
        Row key -> column header, in display order.
    formats : mapping, optional
        Row key -> format string such as ``"{:.3f}"``.
    caption : str, optional

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover - pandas is a book dependency
        raise ImportError("table() needs pandas: pip install pandas") from err
    missing = [k for k in columns if any(k not in r for r in rows)]
    if missing:
        raise ValueError(f"columns {missing} are missing from some rows; row keys are {sorted(rows[0]) if rows else []}")
    frame = pd.DataFrame([{columns[k]: r[k] for k in columns} for r in rows])
    styler = frame.style.hide(axis="index").format({columns[k]: f for k, f in (formats or {}).items()})
    # HTML ids from the content, not random, so that re-running a notebook leaves its output unchanged
    styler = styler.set_uuid(hashlib.sha256((frame.to_csv() + (caption or "")).encode()).hexdigest()[:8])
    return styler.set_caption(caption) if caption else styler


def optional(load, name: str, **kwargs):
    """``load(name, **kwargs)``, or None with a printed reason when the data is not on this machine.

    Chapters call it for datasets that a fresh machine (e.g. Colab) may lack, and skip what needs them.

    Parameters
    ----------
    load : callable
        E.g. :func:`lilaw_edu.datasets.load_dataset`.
    name : str
        Passed as the first argument.

    Returns
    -------
    object or None
    """
    try:
        return load(name, **kwargs)
    except (FileNotFoundError, ValueError) as err:
        print(f"[{name}] not available here, skipping it:\n  {err}")
        return None

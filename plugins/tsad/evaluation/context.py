"""Name the file in everything said while it is evaluated: log lines, warnings, errors.

An evaluation fits and scores dozens of files; a warning such as "the autoencoder copies its
input" is useless unless it says on which file (and for which detector). ``about(label)`` wraps
one piece of per-file work:

- log records created inside it (any logger, any level) get ``"{label}: "`` before their
  message, through a log-record factory installed once that reads a context variable (so other
  threads and code outside the block are untouched);
- Python warnings raised inside it are caught and raised again, after the block, with
  ``"{label}: "`` before their text (same category and origin, so filters still apply);
- a ``TsadError`` or ``ValueError`` escaping it is raised again with the label before its
  message; any other exception gets a note naming it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from tsad.errors import TsadError

_label: ContextVar[str | None] = ContextVar("tsad_evaluation_label", default=None)
_install_lock = threading.Lock()
_installed = False


def _install_factory() -> None:
    """Wrap the current log-record factory once; the wrapper only acts inside ``about``."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            label = _label.get()
            if label is not None:
                prefix = label.replace("%", "%%") if record.args else label
                record.msg = f"{prefix}: {record.msg}"
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


@contextlib.contextmanager
def about(label: str) -> Iterator[None]:
    """Everything logged, warned or raised inside names ``label`` (a file, maybe a detector)."""
    _install_factory()
    token = _label.set(label)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield
    except (TsadError, ValueError) as exc:
        if str(exc).startswith(label):
            raise
        try:
            renamed = type(exc)(f"{label}: {exc}")
        except Exception:  # an exception class with another signature: keep it, add a note
            exc.add_note(f"while evaluating {label}")
            raise exc from None
        raise renamed from exc
    except Exception as exc:
        exc.add_note(f"while evaluating {label}")
        raise
    finally:
        _label.reset(token)
        for w in caught:
            warnings.warn_explicit(f"{label}: {w.message}", w.category, w.filename, w.lineno,
                                   source=w.source)

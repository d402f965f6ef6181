"""Tracebacks of user code without the runtime's own frames."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import traceback

# Frames of these directories come before the user's first frame whenever the
# runtime calls user code: the package itself, and the standard library's glue
# that runs coroutines on the event loop thread and hands results back.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GLUE_DIRS = (
    _PACKAGE_DIR,
    os.path.dirname(os.path.abspath(asyncio.__file__)),
    os.path.dirname(os.path.abspath(concurrent.futures.__file__)),
)


def format_user_traceback(error: BaseException) -> str:
    """Format ``error`` like Python does, keeping only the frames of user code.

    Leading frames of the runtime, importlib, asyncio and concurrent.futures are
    dropped; later frames of the orchestrator package (e.g. ``Function.__call__``)
    are dropped wherever they appear. Chained exceptions are filtered the same way.
    """
    summary = traceback.TracebackException.from_exception(error)
    _filter_frames(summary, seen=set())
    return "".join(summary.format())


def _filter_frames(summary: traceback.TracebackException, seen: set[int]) -> None:
    if id(summary) in seen:
        return
    seen.add(id(summary))
    frames = list(summary.stack)
    while frames and _is_glue(frames[0].filename):
        frames.pop(0)
    user_frames = [frame for frame in frames if not _is_in_package(frame.filename)]
    summary.stack = traceback.StackSummary.from_list(user_frames)

    chained = [summary.__cause__, summary.__context__]
    chained.extend(getattr(summary, "exceptions", None) or ())
    for linked in chained:
        if linked is not None:
            _filter_frames(linked, seen)


def _is_glue(filename: str) -> bool:
    if filename.startswith("<frozen importlib"):
        return True
    path = os.path.abspath(filename)
    return any(path.startswith(directory + os.sep) for directory in _GLUE_DIRS)


def _is_in_package(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep)

"""The one exception type for mistakes a user can fix (bad input, a folder we must not touch).

The CLIs print it as a single ``error: <message>`` line and exit with status 2, without a
traceback (``POSE_TRACEBACK=1`` shows it). The message names the file and the way out.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class UserError(Exception):
    """A one-line, actionable error about the user's input or files (exit status 2)."""


class BadInputError(UserError, ValueError):
    """A user file whose content is wrong (layout, NaN, missing keys...); also a ValueError, so
    callers that catch ValueError keep working."""


def exit_code(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> int:
    """Run ``main(argv)`` for a command line without Lightning (prepare, infer...): a
    :class:`UserError` or ``FileNotFoundError`` becomes one ``error: <message>`` on stderr and
    status 2; ``POSE_TRACEBACK=1`` re-raises it with the traceback. Otherwise the status is
    what ``main`` returned when that is an int, else 0."""
    try:
        status = main(argv)
    except (UserError, FileNotFoundError) as e:
        if os.environ.get("POSE_TRACEBACK"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0

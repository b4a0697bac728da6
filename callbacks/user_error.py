"""The one exception type for mistakes a user can fix (bad input, a folder we must not touch).

The CLIs print it as a single ``error: <message>`` line and exit with status 2, without a
traceback (``POSE_TRACEBACK=1`` shows it). The message names the file and the way out.
"""

from __future__ import annotations


class UserError(Exception):
    """A one-line, actionable error about the user's input or files (exit status 2)."""

"""The one exception type a user should ever see.

Anything raised as :class:`StudybenchError` is a problem with the user's input
(a file, a column, a key, a value). The CLI prints its message on one line and
exits with code 2; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class StudybenchError(Exception):
    """A problem with the user's input; the message names the file, row or key."""

    exit_code = 2

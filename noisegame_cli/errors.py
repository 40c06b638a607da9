"""The one exception type for user mistakes.

Library code raises ``UserError`` for anything a user can fix (a missing file, a bad name, an
out-of-range value); the command line prints its message as one line on stderr and exits non-zero.
Every other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input, reported as one line without a traceback."""

"""The one exception type for bad input.

Anything a user can get wrong (a name, a key, a value, a path) raises `UsageError` with a one-line
message that names the bad value and the valid choices. The CLI turns it into that line on stderr and
exit code 2 — never a traceback — so raise it before any work starts and before anything is written.
"""


class UsageError(Exception):
    """Bad input from the user: printed as one line by the CLI, exit code 2."""

"""User errors: reported as one clear message with exit code 2, never a traceback."""


class EdgecError(Exception):
    """A problem with the user's input or environment that the user can fix."""

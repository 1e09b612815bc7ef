"""The one exception type a user sees: the CLI prints its message as one line and exits non-zero."""


class GenlabError(Exception):
    """Bad input or an unusable environment, described in one line for the user."""

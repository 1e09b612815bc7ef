"""The one exception type a user sees: the CLI prints its message as one line and exits non-zero."""


class GenlabError(Exception):
    """Bad input or an unusable environment, described in one line for the user."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """What an error line quotes of an exception: its message's first line (cut to `limit` characters), or its
    type's name where the message is empty — never an IndexError of its own."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]

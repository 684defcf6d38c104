"""The one exception family for errors a user can cause (bad config, bad molecule, missing file),
and how their messages quote values."""

import reprlib


class IrrepscopeError(Exception):
    """Base class: the CLI prints the message alone, without a traceback."""


class ConfigError(IrrepscopeError, ValueError):
    """A configuration file or override is invalid; the message names the key and the fix."""


class DataError(IrrepscopeError, ValueError):
    """Input data is missing, truncated or invalid; the message names the molecule and problem."""


class RunDirError(IrrepscopeError, FileNotFoundError):
    """A run directory lacks a file a step needs; the message says which step writes it."""


class DiskFullError(IrrepscopeError):
    """A file could not be written: its file system is full (or the quota is used up); the
    message names the file, the space it needs and the space that is free (``path``,
    ``needed`` and ``free``, as text)."""

    def __init__(self, message: str, path: str = "", needed: str = "", free: str = "") -> None:
        super().__init__(message)
        self.path, self.needed, self.free = path, needed, free


def quoted(value: object, limit: int = 80) -> str:
    """``repr(value)`` for an error message, at most about ``limit`` characters: long strings
    and lists are cut (lazily: a huge nested value is never turned into text whole)."""
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxtuple, short.maxdict, short.maxset = 3, 8, 8, 8, 8
    short.maxstring = short.maxother = short.maxlong = limit
    text = short.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."

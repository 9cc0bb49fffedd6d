"""Errors a user can fix; the fd CLI prints them as one line."""

from fer.errors import FerError


class FdError(FerError):
    """A fatal problem with a face dataset or option (no source, unreadable annotations, ...)."""

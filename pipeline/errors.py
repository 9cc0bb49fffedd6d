"""Errors about the user's inputs, options and models, printed as one line by the CLI."""

from fer.errors import FerError


class PipelineError(FerError):
    """A fatal problem: a missing or wrong model, a camera or display that is not there (exit 1)."""


class ConfigError(PipelineError):
    """A bad option, config value or output path, found before any work starts (exit 2, as click
    does for bad options)."""


class InputError(PipelineError):
    """One input (image, video, camera) that cannot be used; a batch reports it and goes on."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source, self.reason = source, reason


class ImageTooLarge(InputError):
    """An image whose decoding would take more memory than allowed (a decompression bomb, or just
    a huge scan): refused from its header, before a byte of it is decoded."""


class PartlyRead(InputError):
    """An input that ended early (a truncated video): what could be read was analysed and written,
    and it still counts as failed, so the exit status says so."""

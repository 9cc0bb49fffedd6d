"""Errors about the user's inputs and models, printed as one line by the CLI."""

from fer.errors import FerError


class PipelineError(FerError):
    """A fatal problem: a missing or wrong model, an unusable option."""


class InputError(PipelineError):
    """One input (image, video, camera) that cannot be used; a batch reports it and goes on."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source, self.reason = source, reason

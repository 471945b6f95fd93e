"""The codec's exception types: every failure a user can cause is an ``NncError``."""


class NncError(Exception):
    """Base class of every error nnc raises on bad input; its message is one line."""


class FormatError(NncError):
    """The bytes are not a valid .nnc file (bad magic, CRC mismatch, truncated, ...)."""


class LimitError(NncError):
    """An image or a section exceeds a configured limit (pixel count, side, length)."""


class ModelMismatchError(NncError):
    """The file names a model version whose weights are not installed."""


class InputImageError(NncError):
    """An input image cannot be read or has an unusable size or mode."""


class WeightsError(NncError):
    """A weight file is missing, altered (SHA-256 mismatch) or does not fit its network."""

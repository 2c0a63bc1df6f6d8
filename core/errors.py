"""Exceptions that carry a one-line message meant for the user.

Everything that rejects user input (a bad spec, an unreadable folder, an unknown block
name, a NaN in a tensor handed to a public function) raises a subclass of
:class:`FpxError`. The CLI prints ``fpx: error: <message>`` for these and exits non-zero;
anything else is a bug and keeps its traceback.
"""


class FpxError(Exception):
    """Base class: the message is complete, one line, and names the bad value."""


class InvalidInputError(FpxError, ValueError):
    """A value, tensor, file or folder handed to fpx cannot be used."""


class NoImagesError(InvalidInputError):
    """A set of images to analyse turned out empty (nothing found, or nothing usable).

    Callers that can say *why* (files skipped as too small, say) catch this type and
    raise their own, more specific message.
    """


class SpecError(InvalidInputError):
    """A generator spec (or its JSON) is malformed; the message names the field."""


class UnknownNameError(FpxError, KeyError):
    """A registry lookup missed; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""

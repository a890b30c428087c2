"""The one exception type of the package."""

from __future__ import annotations


class BxmlError(ValueError):
    """Invalid BXML: the message names the verb, the attribute and the rule broken.

    ``line`` is the line of the offending element when the error comes from a parsed
    document and lxml knows it, else None.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message

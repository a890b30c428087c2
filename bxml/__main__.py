"""Validate BXML files: ``python -m bxml [--event TYPE] FILE...`` (``-`` reads stdin).

Prints each problem as ``file:line: message`` (or ``file: message`` when lxml knows no
line) and exits 1 if there is any; otherwise prints one OK line and exits 0.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bxml.errors import BxmlError
from bxml.parsing import parse
from bxml.replies import EVENT_TYPES, check_reply
from bxml.safe_xml import MAX_DOCUMENT_BYTES


def problem_in(path: str, event_type: str | None) -> str | None:
    """The problem with one file, formatted with its location, or None if it is valid."""
    label = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1)
        else:
            with open(path, "rb") as file:
                data = file.read(MAX_DOCUMENT_BYTES + 1)  # one byte more shows "too large"
    except OSError as error:
        return f"{label}: cannot read: {error.strerror or error}"
    try:
        document = parse(data)
        if event_type is not None:
            check_reply(document, event_type)
    except BxmlError as error:
        where = f"{label}:{error.line}" if error.line is not None else label
        return f"{where}: {error}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bxml", description="Check Bandwidth BXML documents."
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="a BXML file, or - for stdin")
    parser.add_argument(
        "--event",
        metavar="TYPE",
        choices=sorted(EVENT_TYPES),
        help="also check the document as the reply to this callback (e.g. transferAnswer)",
    )
    args = parser.parse_args(argv)
    problems = [p for p in (problem_in(path, args.event) for path in args.files) if p]
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} of {len(args.files)} file(s) invalid", file=sys.stderr)
        return 1
    print(f"OK: {len(args.files)} file(s) valid BXML")
    return 0


if __name__ == "__main__":
    sys.exit(main())

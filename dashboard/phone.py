"""Which numbers click-to-call may dial: E.164 syntax is not a policy (reliability.md 2.5).

A number is read with ``phonenumbers``: ``+`` international form, or the national form of
any allowed region (``(202) 555-0123`` for US/CA).  It is refused unless

- it is a valid number, without an extension;
- its region is in CLICK_TO_CALL_COUNTRIES (default US and CA).  The region is the
  number's own, not its country calling code: +1 876 is Jamaica and +1 809 the Dominican
  Republic, both +1 like the US, and both refused unless JM/DO are allowed;
- its type is an ordinary line: fixed, mobile, or either.  Premium-rate (+1 900),
  shared-cost, personal (+1 500), toll-free, pager, UAN, voicemail, VoIP and UNKNOWN
  types are refused: they are where toll fraud and revenue-share schemes live;
- it is not the agent's number or our own caller id (a call to ourselves).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import phonenumbers
from phonenumbers import PhoneNumberType

ALLOWED_TYPES = frozenset(
    {PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
)
MAX_INPUT = 40
REGION_NAMES = {"US": "the United States", "CA": "Canada"}


class NumberRefused(ValueError):
    """A number click-to-call will not dial; the message is for the visitor."""


def regions(setting: str | Iterable[str] | None) -> list[str]:
    """CLICK_TO_CALL_COUNTRIES as region codes (``"US,CA"`` -> ``["US", "CA"]``)."""
    items = setting.split(",") if isinstance(setting, str) else list(setting or ())
    return [item.strip().upper() for item in items if item and item.strip()]


def _describe(allowed: Sequence[str]) -> str:
    names = [REGION_NAMES.get(code, code) for code in allowed]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _parse(text: str, allowed: Sequence[str]) -> phonenumbers.PhoneNumber:
    """The number as written; national forms are read as each allowed region in turn."""
    candidates = [None] if text.lstrip().startswith("+") else list(allowed)
    first: phonenumbers.PhoneNumber | None = None
    for region in candidates:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number) and (
            phonenumbers.region_code_for_number(number) in allowed
        ):
            return number
        first = first or number
    if first is None:
        raise NumberRefused("That does not look like a phone number.")
    return first


def normalise(raw: object, allowed: Sequence[str], *, never: Iterable[str] = ()) -> str:
    """The E.164 form of ``raw`` if click-to-call may dial it; NumberRefused otherwise."""
    if not isinstance(raw, str) or not raw.strip():
        raise NumberRefused("Enter your phone number.")
    text = raw.strip()
    if len(text) > MAX_INPUT or any(ord(c) < 32 for c in text):
        raise NumberRefused("That does not look like a phone number.")
    if not allowed:
        raise NumberRefused("Click-to-call is not available for any country right now.")
    number = _parse(text, allowed)
    if number.extension:
        raise NumberRefused("Enter the number without an extension.")
    if not phonenumbers.is_valid_number(number):
        raise NumberRefused("That is not a valid phone number. Check the digits and try again.")
    if phonenumbers.region_code_for_number(number) not in allowed:
        raise NumberRefused(f"Sorry, we can only call numbers in {_describe(allowed)}.")
    if phonenumbers.number_type(number) not in ALLOWED_TYPES:
        raise NumberRefused(
            "Sorry, we cannot call premium-rate, shared-cost, toll-free or other special "
            "numbers. Enter a landline or mobile number."
        )
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if e164 in set(never):
        raise NumberRefused("That number cannot be called from here.")
    return e164

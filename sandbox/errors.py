"""The Voice API's errors, in Bandwidth's shape: status, ``type``, ``description``, ``id``."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from sandbox.payloads import new_error_id

REQUIRED = ("from", "to", "answerUrl", "applicationId")


class ApiError(Exception):
    """An error answer in Bandwidth's shape: status, ``type``, ``description``."""

    def __init__(self, status: int, type_: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.type = type_
        self.description = description

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "description": self.description, "id": new_error_id()}


class RateLimited(ApiError):
    """429 with ``Retry-After``, as Bandwidth answers over an account limit (empty ``id``)."""

    CPS = "Account call creation rate limit exceeded"
    CONCURRENT = "Account concurrent call limit exceeded"

    def __init__(self, description: str, retry_after: int = 1) -> None:
        super().__init__(429, "error", description)
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "description": self.description, "id": ""}


def not_found(call_id: str) -> ApiError:
    return ApiError(404, "validation", f"Call [{call_id}] not found")


def conflict(call_id: str) -> ApiError:
    return ApiError(409, "validation", f"Call [{call_id}] cannot be modified in its current state")


def describe(error: ValidationError, required: tuple[str, ...] = REQUIRED) -> str:
    """Bandwidth-style text for schema errors: ``Invalid to: ...``."""
    messages = error.messages if isinstance(error.messages, dict) else {"_": error.messages}
    missing = [
        key
        for key, value in messages.items()
        if key in required and any("Missing data" in str(m) for m in _flat(value))
    ]
    if missing:
        return "Missing at least one required field. Required fields are [from, to, answerUrl, applicationId]"
    parts = [f"Invalid {key}: {' '.join(_flat(value))}" for key, value in sorted(messages.items())]
    return "; ".join(parts)


def _flat(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [f"{k}: {m}" for k, v in value.items() for m in _flat(v)]
    if isinstance(value, list):
        return [m for item in value for m in _flat(item)]
    return [str(value)]

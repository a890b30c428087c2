"""The outbound edge: Create Call / Get Call / Update Call against Bandwidth's Voice API.

- :class:`VoiceClient`: the HTTP client (one pooled session, timeouts, safe retries).
- :mod:`calls.schemas`: marshmallow request schemas, also usable by a server.
- :mod:`calls.errors`: the error hierarchy; ``call_may_exist`` says whether a retry could
  place a second call.
"""

from calls.client import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    USER_AGENT,
    BxmlDocument,
    CreateCallOptions,
    MachineDetectionOptions,
    UpdateCallOptions,
    VoiceClient,
    parse_retry_after,
)
from calls.errors import (
    AuthenticationFailed,
    CallConflict,
    CallNotFound,
    CallRejected,
    ConnectionFailed,
    OutcomeUnknown,
    RateLimited,
    ServiceUnavailable,
    TemporaryFailure,
    VoiceApiError,
)
from calls.schemas import (
    CamelCaseSchema,
    CreateCallSchema,
    MachineDetectionSchema,
    UpdateCallSchema,
    create_call_payload,
    to_json,
    update_call_payload,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "AuthenticationFailed",
    "BxmlDocument",
    "CallConflict",
    "CallNotFound",
    "CallRejected",
    "CamelCaseSchema",
    "ConnectionFailed",
    "CreateCallOptions",
    "CreateCallSchema",
    "MachineDetectionOptions",
    "MachineDetectionSchema",
    "OutcomeUnknown",
    "RateLimited",
    "ServiceUnavailable",
    "TemporaryFailure",
    "UpdateCallOptions",
    "UpdateCallSchema",
    "VoiceApiError",
    "VoiceClient",
    "create_call_payload",
    "parse_retry_after",
    "to_json",
    "update_call_payload",
]

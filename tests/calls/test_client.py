"""VoiceClient against a real HTTP server: what is sent, and what is (never) sent twice."""

from __future__ import annotations

import base64
import email.utils
import json
import time

import pytest
import requests
import urllib3
from marshmallow import ValidationError

from calls import (
    DEFAULT_TIMEOUT,
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
    VoiceClient,
    create_call_payload,
    parse_retry_after,
)
from calls.client import classify_exception
from tests.calls.fake_bandwidth import (
    ACCOUNT_ID,
    API_PASSWORD,
    API_USER,
    CALL_ID,
    Reply,
    created_call,
)
from tests.servers import closed_port

CALLS_PATH = f"/api/v2/accounts/{ACCOUNT_ID}/calls"
RATE_LIMITED = {
    "type": "error",
    "description": "Account call creation rate limit exceeded",
    "id": "",
}
AT_CAPACITY = {"type": "system-overloaded", "description": "Managing too many concurrent calls"}


def call_args(**overrides):
    args = {
        "to": "+12025550123",
        "from_": "+12025550199",
        "application_id": "04e88489-df02-4e34-a0ee-27a91849555f",
        "answer_url": "https://cb.example.com/callbacks/answer",
    }
    args.update(overrides)
    return args


class Document:
    """Stands in for a bxml document: anything with to_bxml()."""

    def __init__(self, xml: str) -> None:
        self.xml = xml

    def to_bxml(self) -> str:
        return self.xml


BXML = '<?xml version="1.0" encoding="UTF-8"?><Bxml><SpeakSentence>Olá</SpeakSentence></Bxml>'


##### create_call: success and what goes on the wire #####


def test_create_call_posts_camelcase_json_and_returns_the_body(bandwidth, voice):
    bandwidth.script(Reply(201, created_call(), {"Location": f"{CALLS_PATH}/{CALL_ID}"}))

    call = voice.create_call(**call_args(call_timeout=30, tag="order-7"))

    assert call["callId"] == CALL_ID
    (request,) = bandwidth.received
    assert (request.method, request.path) == ("POST", CALLS_PATH)
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.json() == {
        "to": "+12025550123",
        "from": "+12025550199",
        "applicationId": "04e88489-df02-4e34-a0ee-27a91849555f",
        "answerUrl": "https://cb.example.com/callbacks/answer",
        "callTimeout": 30,
        "tag": "order-7",
    }


def test_basic_auth_user_agent_and_accept_headers(bandwidth, voice):
    bandwidth.script(Reply(201, created_call()))

    voice.create_call(**call_args())

    headers = bandwidth.received[0].headers
    token = base64.b64encode(f"{API_USER}:{API_PASSWORD}".encode()).decode()
    assert headers["Authorization"] == f"Basic {token}"
    assert headers["User-Agent"].startswith("bandwidth-voice-callbacks/0.1 python-requests/")
    assert headers["Accept"] == "application/json"


def test_every_request_carries_the_connect_and_read_timeouts(bandwidth, make_client):
    voice = make_client(timeout=(1.5, 4.0))
    adapter = voice.session.get_adapter(bandwidth.base_url)
    seen = []
    send = adapter.send

    def spy(request, **kwargs):
        seen.append((request.method, kwargs["timeout"]))
        return send(request, **kwargs)

    adapter.send = spy
    bandwidth.script(Reply(201, created_call()), Reply(200, {"state": "answered"}))
    bandwidth.script(Reply(200), Reply(204))

    voice.create_call(**call_args())
    voice.get_call(CALL_ID)
    voice.update_call(CALL_ID, state="completed")
    voice.update_call_bxml(CALL_ID, Document(BXML))

    assert seen == [
        ("POST", (1.5, 4.0)),
        ("GET", (1.5, 4.0)),
        ("POST", (1.5, 4.0)),
        ("PUT", (1.5, 4.0)),
    ]


def test_default_timeout_is_well_under_a_gunicorn_worker_timeout():
    connect, read = DEFAULT_TIMEOUT
    assert connect < 5 and read <= 10
    client = VoiceClient(account_id=ACCOUNT_ID, username="u", password="p")
    try:
        assert client.timeout == DEFAULT_TIMEOUT
        assert client.base_url == "https://voice.bandwidth.com/api/v2"
    finally:
        client.close()


def test_invalid_arguments_send_nothing(bandwidth, voice):
    with pytest.raises(ValidationError) as excinfo:
        voice.create_call(**call_args(to="5555551212"))
    assert "to" in excinfo.value.messages
    assert bandwidth.count == 0


def test_unknown_keyword_is_a_validation_error_and_sends_nothing(bandwidth, voice):
    with pytest.raises(ValidationError) as excinfo:
        voice.create_call(**call_args(answerUrl="https://cb.example.com/a"))
    assert excinfo.value.messages == {"answerUrl": ["Unknown field."]}
    assert bandwidth.count == 0


def test_send_create_call_takes_only_a_validated_payload(bandwidth, voice):
    unchecked = {"to": "5555551212", "from": "+1", "applicationId": "a", "answerUrl": "x"}
    with pytest.raises(TypeError):
        voice.send_create_call(unchecked)  # type: ignore[arg-type]
    assert bandwidth.count == 0
    bandwidth.script(Reply(201, created_call()))
    payload = create_call_payload(**call_args())
    assert voice.send_create_call(payload)["callId"] == CALL_ID
    assert bandwidth.received[0].json() == payload


##### create_call: the retry policy #####


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The client's waits between attempts, recorded instead of slept: the tests check the
    waits asked for, never how long the machine took."""
    import threading

    import calls.client as client_module

    recorded: list[float] = []
    caller = threading.get_ident()
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if threading.get_ident() == caller:
            recorded.append(seconds)
        else:  # the fake API's own threads (scripted delays) really sleep
            real_sleep(seconds)

    monkeypatch.setattr(client_module.time, "sleep", sleep)
    return recorded


def test_429_with_retry_after_then_201_waits_and_succeeds(bandwidth, voice, waits):
    bandwidth.script(Reply(429, RATE_LIMITED, {"Retry-After": "1"}), Reply(201, created_call()))

    call = voice.create_call(**call_args())

    assert call["callId"] == CALL_ID
    assert bandwidth.count == 2
    assert waits == [1]
    assert bandwidth.received[0].body == bandwidth.received[1].body


def test_two_429_then_201_gives_exactly_three_requests(bandwidth, voice, waits):
    bandwidth.script(
        Reply(429, RATE_LIMITED, {"Retry-After": "1"}),
        Reply(429, RATE_LIMITED, {"Retry-After": "1"}),
        Reply(201, created_call()),
    )

    assert voice.create_call(**call_args())["callId"] == CALL_ID

    assert bandwidth.count == 3
    assert waits == [1, 1]


def test_429_retry_after_beyond_the_budget_raises_at_once(bandwidth, voice, waits):
    bandwidth.script(Reply(429, RATE_LIMITED, {"Retry-After": "3600"}), Reply(201, created_call()))

    with pytest.raises(RateLimited) as excinfo:
        voice.create_call(**call_args())

    assert waits == []
    assert bandwidth.count == 1
    error = excinfo.value
    assert error.retry_after == 3600
    assert (error.status, error.type, error.call_may_exist) == (429, "error", False)
    assert error.description == "Account call creation rate limit exceeded"


def test_the_budget_counts_all_waits_together(bandwidth, make_client, waits):
    voice = make_client(retry_budget=1.5)
    bandwidth.script(
        Reply(429, RATE_LIMITED, {"Retry-After": "1"}),
        Reply(429, RATE_LIMITED, {"Retry-After": "1"}),
        Reply(201, created_call()),
    )

    with pytest.raises(RateLimited):
        voice.create_call(**call_args())

    assert bandwidth.count == 2  # 1 s waited; another 1 s would exceed 1.5 s
    assert waits == [1]


def test_retries_stop_after_max_retries(bandwidth, voice):
    bandwidth.script(*[Reply(429, RATE_LIMITED, {"Retry-After": "0"}) for _ in range(5)])

    with pytest.raises(RateLimited):
        voice.create_call(**call_args())

    assert bandwidth.count == 3


def test_retry_after_as_an_http_date(bandwidth, voice, waits):
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    bandwidth.script(Reply(429, RATE_LIMITED, {"Retry-After": when}), Reply(201, created_call()))

    assert voice.create_call(**call_args())["callId"] == CALL_ID
    assert bandwidth.count == 2
    [wait] = waits
    assert 0 < wait <= 2  # until that time (HTTP dates have whole seconds)


def test_503_then_201_works(bandwidth, voice, waits):
    bandwidth.script(Reply(503, AT_CAPACITY), Reply(201, created_call()))

    assert voice.create_call(**call_args())["callId"] == CALL_ID

    assert bandwidth.count == 2
    [wait] = waits
    assert 0 < wait < 1.5  # short backoff without Retry-After


def test_503_with_retry_after_beyond_the_budget_raises_service_unavailable(bandwidth, voice):
    bandwidth.script(Reply(503, AT_CAPACITY, {"Retry-After": "60"}))

    with pytest.raises(ServiceUnavailable) as excinfo:
        voice.create_call(**call_args())

    assert bandwidth.count == 1
    assert excinfo.value.retry_after == 60
    assert excinfo.value.call_may_exist is False
    assert excinfo.value.type == "system-overloaded"


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_are_never_retried_and_leave_the_outcome_unknown(bandwidth, voice, status):
    body = {"type": "internal-error", "description": "An unknown internal error occurred"}
    bandwidth.script(Reply(status, body, {"Retry-After": "0"}), Reply(201, created_call()))

    with pytest.raises(OutcomeUnknown) as excinfo:
        voice.create_call(**call_args())

    assert bandwidth.count == 1
    assert excinfo.value.status == status
    assert excinfo.value.call_may_exist is True


def test_read_timeout_is_outcome_unknown_and_not_retried(bandwidth, make_client):
    voice = make_client(timeout=(2.0, 0.3))
    bandwidth.script(Reply(201, created_call(), delay=1.0), Reply(201, created_call()))

    with pytest.raises(OutcomeUnknown) as excinfo:
        voice.create_call(**call_args())

    # create_call is synchronous: a (wrong) retry would have been sent, and answered 201 by
    # the script, before it returned.
    assert bandwidth.count == 1
    assert excinfo.value.status is None
    assert excinfo.value.call_may_exist is True
    assert isinstance(excinfo.value.__cause__, requests.RequestException)


def test_connection_dropped_after_sending_is_outcome_unknown(bandwidth, voice):
    bandwidth.script(Reply(drop=True), Reply(201, created_call()))

    with pytest.raises(OutcomeUnknown):
        voice.create_call(**call_args())

    assert bandwidth.count == 1


def test_connection_refused_is_connection_failed_and_no_call(make_client):
    voice = make_client(base_url=f"http://127.0.0.1:{closed_port()}/api/v2")

    with pytest.raises(ConnectionFailed) as excinfo:
        voice.create_call(**call_args())

    assert excinfo.value.call_may_exist is False
    assert excinfo.value.status is None
    assert isinstance(excinfo.value, TemporaryFailure)


def test_redirects_are_not_followed(bandwidth, voice):
    bandwidth.script(Reply(302, "", {"Location": "/elsewhere"}), Reply(201, created_call()))

    with pytest.raises(OutcomeUnknown):
        voice.create_call(**call_args())

    assert bandwidth.count == 1


def test_201_without_a_json_body_is_outcome_unknown(bandwidth, voice):
    bandwidth.script(Reply(201, "created"))

    with pytest.raises(OutcomeUnknown) as excinfo:
        voice.create_call(**call_args())

    assert excinfo.value.status == 201


##### rejections #####


def test_400_carries_bandwidths_type_description_and_id(bandwidth, voice):
    body = {
        "type": "validation",
        "description": "Invalid to: must be an E164 telephone number",
        "id": "4642074b-7b58-478b-96e4-3a60955c6765",
    }
    bandwidth.script(Reply(400, body), Reply(201, created_call()))

    with pytest.raises(CallRejected) as excinfo:
        voice.create_call(**call_args())

    error = excinfo.value
    assert bandwidth.count == 1
    assert (error.status, error.type, error.id) == (400, "validation", body["id"])
    assert error.description == "Invalid to: must be an E164 telephone number"
    assert error.call_may_exist is False
    assert "Invalid to" in str(error)


def test_401_with_a_plain_text_body(bandwidth, voice):
    bandwidth.script(Reply(401, "Unauthorized"))

    with pytest.raises(AuthenticationFailed) as excinfo:
        voice.create_call(**call_args())

    error = excinfo.value
    assert isinstance(error, CallRejected)
    assert (error.status, error.type, error.description, error.id) == (
        401,
        None,
        "Unauthorized",
        None,
    )


def test_empty_error_body_uses_the_reason_phrase(bandwidth, voice):
    bandwidth.script(Reply(403))

    with pytest.raises(AuthenticationFailed) as excinfo:
        voice.create_call(**call_args())

    assert excinfo.value.description == "Forbidden"


##### get_call, update_call, update_call_bxml #####


def test_get_call_retries_a_500_then_succeeds(bandwidth, voice):
    state = {"callId": CALL_ID, "state": "answered", "direction": "outbound"}
    bandwidth.script(Reply(500, {"type": "internal-error", "description": "x"}), Reply(200, state))

    assert voice.get_call(CALL_ID) == state
    assert bandwidth.count == 2
    assert all(r.method == "GET" for r in bandwidth.received)
    assert bandwidth.received[0].path == f"{CALLS_PATH}/{CALL_ID}"


def test_get_call_retries_a_read_timeout(bandwidth, make_client):
    voice = make_client(timeout=(2.0, 0.3))
    bandwidth.script(Reply(200, {"state": "queued"}, delay=1.0), Reply(200, {"state": "answered"}))

    assert voice.get_call(CALL_ID) == {"state": "answered"}
    assert bandwidth.count == 2


def test_get_call_read_timeouts_seen_through_the_requests_trap(bandwidth, make_client):
    voice = make_client(timeout=(2.0, 0.2))
    bandwidth.script(*[Reply(200, {"state": "queued"}, delay=0.6) for _ in range(3)])

    with pytest.raises(OutcomeUnknown) as excinfo:
        voice.get_call(CALL_ID)

    assert bandwidth.count == 3
    # With a mounted Retry, requests reports a GET's read timeout as ConnectionError
    # (psf/requests#5430): classified by urllib3's reason, it is still "no answer".
    cause = excinfo.value.__cause__
    assert isinstance(cause, requests.ConnectionError)
    assert not isinstance(cause, requests.Timeout)
    assert isinstance(excinfo.value, OutcomeUnknown)
    assert not isinstance(excinfo.value, ConnectionFailed)


def test_get_call_gives_up_after_max_retries(bandwidth, voice):
    bandwidth.script(*[Reply(502, "Bad Gateway") for _ in range(4)])

    with pytest.raises(OutcomeUnknown):
        voice.get_call(CALL_ID)

    assert bandwidth.count == 3


def test_get_call_404_is_not_retried(bandwidth, voice):
    body = {"type": "validation", "description": f"Call [{CALL_ID}] not found"}
    bandwidth.script(Reply(404, body))

    with pytest.raises(CallNotFound):
        voice.get_call(CALL_ID)

    assert bandwidth.count == 1


@pytest.mark.parametrize("call_id", ["", "..", "c-1/../../x", "c 1", "c-1?x=1", 42])
def test_call_ids_that_would_change_the_url_are_refused(bandwidth, voice, call_id):
    with pytest.raises(ValueError, match="call_id"):
        voice.get_call(call_id)
    assert bandwidth.count == 0


def test_update_call_hang_up(bandwidth, voice):
    bandwidth.script(Reply(200))

    assert voice.update_call(CALL_ID, state="completed") is None

    (request,) = bandwidth.received
    assert (request.method, request.path) == ("POST", f"{CALLS_PATH}/{CALL_ID}")
    assert request.json() == {"state": "completed"}


def test_update_call_redirect(bandwidth, voice):
    bandwidth.script(Reply(200))

    voice.update_call(CALL_ID, redirect_url="https://cb.example.com/redirect", tag="menu")

    assert bandwidth.received[0].json() == {
        "state": "active",
        "redirectUrl": "https://cb.example.com/redirect",
        "tag": "menu",
    }


def test_update_call_is_validated_first(bandwidth, voice):
    with pytest.raises(ValidationError) as excinfo:
        voice.update_call(CALL_ID, state="completed", redirect_url="https://cb.example.com/r")
    assert excinfo.value.messages == {"redirectUrl": ["Not allowed when state is completed."]}
    assert bandwidth.count == 0


def test_update_call_is_not_retried_after_a_500(bandwidth, voice):
    bandwidth.script(Reply(500), Reply(200))

    with pytest.raises(OutcomeUnknown):
        voice.update_call(CALL_ID, state="completed")

    assert bandwidth.count == 1


def test_update_call_409_is_call_conflict(bandwidth, voice):
    body = {
        "type": "validation",
        "description": f"Call [{CALL_ID}] cannot be modified in its current state",
        "id": "",
    }
    bandwidth.script(Reply(409, body))

    with pytest.raises(CallConflict) as excinfo:
        voice.update_call(CALL_ID, redirect_url="https://cb.example.com/r")

    assert excinfo.value.id == ""


def test_update_call_bxml_puts_the_document_as_utf8_xml(bandwidth, voice):
    bandwidth.script(Reply(204))

    assert voice.update_call_bxml(CALL_ID, Document(BXML)) is None

    (request,) = bandwidth.received
    assert (request.method, request.path) == ("PUT", f"{CALLS_PATH}/{CALL_ID}/bxml")
    assert request.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert request.body == BXML.encode("utf-8")


def test_update_call_bxml_retries_a_429(bandwidth, voice):
    bandwidth.script(Reply(429, RATE_LIMITED, {"Retry-After": "0"}), Reply(204))

    voice.update_call_bxml(CALL_ID, Document(BXML))

    assert bandwidth.count == 2


def test_update_call_bxml_is_not_retried_after_a_504(bandwidth, voice):
    bandwidth.script(Reply(504), Reply(204))

    with pytest.raises(OutcomeUnknown):
        voice.update_call_bxml(CALL_ID, Document(BXML))

    assert bandwidth.count == 1


@pytest.mark.parametrize("document", [BXML, BXML.encode(), None, {"xml": BXML}])
def test_update_call_bxml_refuses_anything_but_a_document(bandwidth, voice, document):
    with pytest.raises(TypeError, match="to_bxml"):
        voice.update_call_bxml(CALL_ID, document)
    assert bandwidth.count == 0


def test_update_call_bxml_with_the_bxml_package_when_present(bandwidth, voice):
    bxml = pytest.importorskip("bxml")
    if not hasattr(bxml, "Bxml") or not hasattr(bxml, "SpeakSentence"):
        pytest.skip("bxml.Bxml is not available yet")
    document = bxml.Bxml(bxml.SpeakSentence("Hello & welcome"))
    bandwidth.script(Reply(204))

    voice.update_call_bxml(CALL_ID, document)

    assert bandwidth.received[0].body == document.to_bxml().encode("utf-8")


##### the client object #####


def test_context_manager_closes_the_session(bandwidth):
    with VoiceClient(
        account_id=ACCOUNT_ID, username="u", password="p", base_url=bandwidth.base_url
    ) as voice:
        bandwidth.script(Reply(200, {"state": "answered"}))
        voice.get_call(CALL_ID)
        closed = []
        voice.session.close = lambda: closed.append(True)  # type: ignore[method-assign]
    assert closed == [True]


@pytest.mark.parametrize("base_url", ["ftp://voice.example.com", "voice.bandwidth.com", ""])
def test_base_url_must_be_http(base_url):
    with pytest.raises(ValueError, match="base_url"):
        VoiceClient(account_id=ACCOUNT_ID, username="u", password="p", base_url=base_url)


##### errors and Retry-After #####


@pytest.mark.parametrize(
    ("cls", "may_exist", "parents"),
    [
        (CallRejected, False, ()),
        (AuthenticationFailed, False, (CallRejected,)),
        (CallNotFound, False, (CallRejected,)),
        (CallConflict, False, (CallRejected,)),
        (RateLimited, False, (CallRejected, TemporaryFailure)),
        (ServiceUnavailable, False, (TemporaryFailure,)),
        (ConnectionFailed, False, (TemporaryFailure,)),
        (OutcomeUnknown, True, ()),
    ],
)
def test_error_hierarchy(cls, may_exist, parents):
    assert issubclass(cls, VoiceApiError)
    assert cls.call_may_exist is may_exist
    for parent in parents:
        assert issubclass(cls, parent)
    assert not issubclass(cls, OutcomeUnknown) or may_exist


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("1", 1.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("-1", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("٣", None),  # a non-ASCII digit
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header) == expected


def test_parse_retry_after_future_date():
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30, abs=1)


def _wrapped(reason):
    """What requests raises when urllib3 gives up with ``reason`` under a mounted Retry."""
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/calls", reason))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (requests.ConnectTimeout("connect timed out"), ConnectionFailed),
        (requests.exceptions.SSLError("handshake failure"), ConnectionFailed),
        (_wrapped(urllib3.exceptions.NewConnectionError(None, "refused")), ConnectionFailed),
        (_wrapped(urllib3.exceptions.NameResolutionError("h", None, OSError())), ConnectionFailed),
        (_wrapped(urllib3.exceptions.ConnectTimeoutError("slow")), ConnectionFailed),
        (requests.ReadTimeout("read timed out"), OutcomeUnknown),
        (_wrapped(urllib3.exceptions.ReadTimeoutError(None, "/calls", "slow")), OutcomeUnknown),
        (_wrapped(urllib3.exceptions.ProtocolError("Connection aborted.")), OutcomeUnknown),
        (requests.exceptions.ChunkedEncodingError("broken body"), OutcomeUnknown),
        (requests.ConnectionError("something else"), OutcomeUnknown),
    ],
)
def test_classify_exception(exc, expected):
    assert type(classify_exception(exc)) is expected


def test_error_body_that_is_json_but_not_bandwidths_shape(bandwidth, voice):
    bandwidth.script(Reply(400, ["unexpected"]))

    with pytest.raises(CallRejected) as excinfo:
        voice.create_call(**call_args())

    assert excinfo.value.description == json.dumps(["unexpected"])

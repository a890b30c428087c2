"""callbacks.tags: signed state in Bandwidth's tag, with its limits, binding and expiry."""

from __future__ import annotations

import logging
import secrets
import time

import pytest
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from callbacks import tags
from callbacks.tags import (
    CALL_PREFIX,
    CALL_TAG_LIMIT,
    MAX_AGE_SECONDS,
    PREFIX,
    VERB_TAG_LIMIT,
    TagTooLong,
    decode_state,
    encode_state,
)

SECRET = "k" * 32
CALL_A = "c-15ed0f7e-e1a81a8c-8f2f-4d6d-a1a3-2b1d5e6f7a8b"
CALL_B = "c-2a913f94-7fa91773-a426-4bb6-b639-b41c0e3a7c2d"
NOT_VERIFIED = (
    "ignoring a tag whose signature does not verify for this call (forged, altered "
    "or issued for another call)"
)


def test_round_trip():
    state = {"flow": "click-to-call", "step": 2, "visitor": "token"}
    tag = encode_state(state, SECRET)
    assert tag.startswith(PREFIX)
    assert decode_state(tag, SECRET) == state


def test_the_format_is_itsdangerous_with_the_documented_salt():
    """Another service holding the secret reads the state with the salt named in the module;
    a token of the same secret under another salt (a session cookie, a CSRF token) is no
    tag state."""
    state = {"flow": "a"}
    tag = encode_state(state, SECRET)
    assert URLSafeTimedSerializer(SECRET, salt=tags.SALT).loads(tag[len(PREFIX) :]) == state
    assert tags.SALT == "bandwidth-tag-state"
    for other in (URLSafeTimedSerializer(SECRET), URLSafeTimedSerializer(SECRET, salt="x")):
        assert decode_state(PREFIX + other.dumps(state), SECRET) == {}


def test_bound_state_uses_a_salt_naming_the_call():
    tag = encode_state({"flow": "a"}, SECRET, call_id=CALL_A)
    serializer = URLSafeTimedSerializer(SECRET, salt=f"bandwidth-tag-state:call:{CALL_A}")
    assert serializer.loads(tag[len(CALL_PREFIX) :]) == {"flow": "a"}


@pytest.mark.parametrize(
    ("state", "compressed"),
    [
        ({"_flow": "reminders", "_attempt": "a-" + "0123456789abcdef" * 2}, False),  # short
        ({"notes": "again " * 40}, True),  # long and repetitive: zlib's form
    ],
)
def test_only_long_state_is_compressed_and_both_forms_read_back(state, compressed):
    tag = encode_state(state, SECRET, call_id=CALL_A)
    payload = tag[len(CALL_PREFIX) :]
    assert payload.startswith(".") is compressed
    assert decode_state(tag, SECRET, call_id=CALL_A) == state
    plain = URLSafeTimedSerializer(SECRET, salt=f"bandwidth-tag-state:call:{CALL_A}")
    assert plain.loads(payload) == state  # any itsdangerous reads it
    # and a tag itsdangerous compressed (issued before short state stopped being) verifies
    assert decode_state(CALL_PREFIX + plain.dumps(state), SECRET, call_id=CALL_A) == state


@pytest.mark.parametrize(
    "tag", [None, "", "plain tag from elsewhere", PREFIX, PREFIX + "garbage", CALL_PREFIX]
)
def test_no_state(tag):
    assert decode_state(tag, SECRET, call_id=CALL_A) == {}


def test_altered_tag_is_treated_as_absent(caplog):
    tag = encode_state({"flow": "a"}, SECRET)
    signature = tag.rpartition(".")[2]
    forged = encode_state({"flow": "b"}, SECRET).rpartition(".")[0] + "." + signature
    assert decode_state(forged, SECRET) == {}
    assert decode_state(tag, "another-secret") == {}
    assert caplog.messages[-1] == NOT_VERIFIED


def test_a_signed_but_malformed_payload_is_absent(caplog):
    signer = URLSafeTimedSerializer(SECRET, salt=tags.SALT)
    # A valid signature over bytes that are not base64 JSON.
    body = signer.make_signer(tags.SALT).sign(b"!!not-base64!!").decode()
    with caplog.at_level(logging.WARNING, logger="callbacks.tags"):
        assert decode_state(PREFIX + body, SECRET) == {}
    assert caplog.messages == ["ignoring a malformed tag state"]


@pytest.mark.parametrize("value", [["a", "list"], "text", 7, None])
def test_signed_state_that_is_not_a_dict_is_absent(value):
    signed = URLSafeTimedSerializer(SECRET, salt=tags.SALT).dumps(value)
    assert decode_state(PREFIX + signed, SECRET) == {}


def test_the_old_unbound_eternal_format_is_refused():
    old = "st1." + URLSafeSerializer(SECRET, salt=tags.SALT).dumps({"flow": "a"})
    assert decode_state(old, SECRET) == {}


def test_bound_state_verifies_on_its_call_and_its_transfer_legs_only(caplog):
    state = {"flow": "transfer", "step": 1}
    tag = encode_state(state, SECRET, call_id=CALL_A)
    assert tag.startswith(CALL_PREFIX)
    assert decode_state(tag, SECRET, call_id=CALL_A) == state
    # A <Transfer>'s B-leg event: its own callId, the A-leg as parentCallId.
    assert decode_state(tag, SECRET, call_id=CALL_B, parent_call_id=CALL_A) == state
    assert decode_state(tag, SECRET, call_id=CALL_A, parent_call_id=CALL_B) == state
    # Another call, or no call named at all: not this state.
    assert decode_state(tag, SECRET, call_id=CALL_B) == {}
    assert decode_state(tag, SECRET, call_id=CALL_B, parent_call_id=CALL_B) == {}
    assert decode_state(tag, SECRET) == {}
    assert caplog.messages[-1] == NOT_VERIFIED


def test_bound_state_under_the_unbound_prefix_is_refused():
    bound = encode_state({"flow": "a"}, SECRET, call_id=CALL_A)
    assert decode_state(PREFIX + bound[len(CALL_PREFIX) :], SECRET, call_id=CALL_A) == {}


def test_unbound_state_verifies_on_any_call():
    tag = encode_state({"flow": "conference"}, SECRET)
    assert decode_state(tag, SECRET, call_id=CALL_B) == {"flow": "conference"}


def _at(monkeypatch, epoch: float) -> None:
    monkeypatch.setattr(time, "time", lambda: epoch)


@pytest.mark.parametrize("call_id", [None, CALL_A])
def test_state_expires_after_max_age(monkeypatch, caplog, call_id):
    now = time.time()
    _at(monkeypatch, now)
    tag = encode_state({"flow": "a"}, SECRET, call_id=call_id)
    _at(monkeypatch, now + MAX_AGE_SECONDS)
    assert decode_state(tag, SECRET, call_id=call_id) == {"flow": "a"}
    _at(monkeypatch, now + MAX_AGE_SECONDS + 2)
    assert decode_state(tag, SECRET, call_id=call_id) == {}
    assert caplog.messages == [f"ignoring a tag state older than {MAX_AGE_SECONDS} seconds"]
    # Views of stored history may skip the age check; the signature is still checked.
    assert decode_state(tag, SECRET, call_id=call_id, max_age=None) == {"flow": "a"}
    assert decode_state(tag, "another-secret", call_id=call_id, max_age=None) == {}


def test_max_age_outlives_any_call():
    # Bandwidth ends a conference (its longest-lived object) after 24 hours.
    assert MAX_AGE_SECONDS > 24 * 3600


def test_limits():
    big = {"x": secrets.token_hex(150)}  # random: itsdangerous compresses repetitive state
    with pytest.raises(TagTooLong, match="over the limit of 256"):
        encode_state(big, SECRET, limit=VERB_TAG_LIMIT)
    assert len(encode_state(big, SECRET)) <= CALL_TAG_LIMIT
    with pytest.raises(TagTooLong, match="4096"):
        encode_state({"x": secrets.token_urlsafe(4000)}, SECRET)
    assert (CALL_TAG_LIMIT, VERB_TAG_LIMIT) == (4096, 256)


@pytest.mark.parametrize("call_id", [None, CALL_A])
def test_a_tag_of_exactly_the_limit_fits(monkeypatch, call_id):
    _at(monkeypatch, 1_800_000_000.0)  # the same signing time: the same length
    state = {"x": secrets.token_hex(20)}
    length = len(encode_state(state, SECRET, call_id=call_id))
    assert len(encode_state(state, SECRET, limit=length, call_id=call_id)) == length
    message = (
        f"encoded tag state is {length} characters, over the limit of {length - 1}; "
        "keep less state in the tag (store the rest and keep its id)"
    )
    with pytest.raises(TagTooLong) as refused:
        encode_state(state, SECRET, limit=length - 1, call_id=call_id)
    assert str(refused.value) == message


def test_state_must_be_a_dict():
    with pytest.raises(TypeError, match=r"^tag state must be a dict$"):
        encode_state(["not", "a", "dict"], SECRET)  # type: ignore[arg-type]


# --- the framework's own keys: the flow a call belongs to -------------------------------


def test_with_flow_gives_an_empty_or_absent_tag_the_flow_alone():
    for empty in (None, ""):
        tag = tags.with_flow(empty, "ivr", SECRET)
        assert tag.startswith(PREFIX)
        assert decode_state(tag, SECRET) == {"_flow": "ivr"}


def test_with_flow_keeps_a_plain_text_tag_beside_the_flow():
    tag = tags.with_flow("order-7", "ivr", SECRET)
    assert decode_state(tag, SECRET) == {"_raw": "order-7", "_flow": "ivr"}


def test_with_flow_keeps_signed_state_and_binds_it_as_asked():
    mine = encode_state({"step": 2}, SECRET)
    bound = tags.with_flow(mine, "ivr", SECRET, bind_to="c-1")
    assert bound.startswith(CALL_PREFIX)
    assert decode_state(bound, SECRET, call_id="c-1") == {"step": 2, "_flow": "ivr"}
    assert decode_state(bound, SECRET, call_id="c-2") == {}


def test_with_flow_reads_state_bound_to_the_callbacks_call():
    incoming = encode_state({"step": 2}, SECRET, call_id="c-1")
    kept = tags.with_flow(incoming, "ivr", SECRET, call_id="c-1")
    assert decode_state(kept, SECRET) == {"step": 2, "_flow": "ivr"}  # unbound, as asked
    via_parent = tags.with_flow(incoming, "ivr", SECRET, call_id="c-b", parent_call_id="c-1")
    assert decode_state(via_parent, SECRET) == {"step": 2, "_flow": "ivr"}
    elsewhere = tags.with_flow(incoming, "ivr", SECRET, call_id="c-2")
    assert decode_state(elsewhere, SECRET) == {"_flow": "ivr"}  # not believed, not carried


def test_with_flow_sends_a_tag_that_already_names_the_flow_as_is():
    unbound = encode_state({"step": 2, "_flow": "ivr"}, SECRET)
    assert tags.with_flow(unbound, "ivr", SECRET) is unbound
    bound = encode_state({"step": 2, "_flow": "ivr"}, SECRET, call_id="c-1")
    assert tags.with_flow(bound, "ivr", SECRET, bind_to="c-1", call_id="c-1") is bound
    # Bound where unbound is asked (or the other way round): signed again.
    again = tags.with_flow(bound, "ivr", SECRET, call_id="c-1")
    assert again.startswith(PREFIX) and not again.startswith(CALL_PREFIX)
    rebound = tags.with_flow(unbound, "ivr", SECRET, bind_to="c-1")
    assert rebound.startswith(CALL_PREFIX)
    # Another flow's tag is signed again with this flow.
    other = tags.with_flow(unbound, "sales", SECRET)
    assert decode_state(other, SECRET) == {"step": 2, "_flow": "sales"}


def test_with_flow_drops_state_that_does_not_verify():
    forged = encode_state({"admin": True}, "not-our-secret")
    assert decode_state(tags.with_flow(forged, "ivr", SECRET), SECRET) == {"_flow": "ivr"}


def test_with_flow_keeps_to_the_verb_tag_limit():
    big = encode_state({"notes": secrets.token_hex(200)}, SECRET)
    with pytest.raises(TagTooLong):
        tags.with_flow(big, "ivr", SECRET)
    assert len(tags.with_flow(big, "ivr", SECRET, limit=4096)) <= 4096


@pytest.mark.parametrize(
    ("tag", "bound", "claimed"),
    [
        (encode_state({"_flow": "ivr"}, SECRET), False, "ivr"),
        (encode_state({"_flow": "ivr"}, SECRET), True, None),  # unbound, bound asked
        (encode_state({"_flow": "ivr"}, SECRET, call_id="c-1"), True, "ivr"),
        (encode_state({"_flow": "ivr"}, SECRET, call_id="c-1"), False, None),
        (encode_state({"step": 1}, SECRET), False, None),
        (PREFIX + "not-base64!.x.y", False, None),
        (PREFIX + ".eJyrVopPK0rMTY1PyS8qUbIyNDQ0MQ.x.y", False, None),  # compressed
        (PREFIX + "WzFd.x.y", False, None),  # a list, not a dict
        ("order-7", False, None),
    ],
)
def test_the_flow_a_tag_claims_is_read_without_the_signature(tag, bound, claimed):
    assert tags._claimed_flow(tag, bound=bound) == claimed


def test_split_state_separates_the_frameworks_keys():
    state = {"step": 1, "_flow": "ivr", "_raw": "order-7", "_attempt": "a1"}
    own, reserved = tags.split_state(state)
    assert own == {"step": 1}
    assert reserved == {"_flow": "ivr", "_raw": "order-7", "_attempt": "a1"}
    assert tags.split_state({"_flow": 3, "x": 1}) == ({"x": 1}, {})  # only strings count
    plain = {"step": 1}
    assert tags.split_state(plain) == (plain, {})


def test_readable_tags_shows_what_signed_state_says():
    unbound = encode_state({"b": 2, "a": 1}, SECRET)
    bound = encode_state({"step": 3}, SECRET, call_id="c-1")
    text = f'<Tag>{unbound}</Tag><PhoneNumber tag="{bound}"/>'
    readable = tags.readable_tags(text, SECRET, call_id="c-1")
    assert readable == (
        '<Tag>{signed state: {"a": 1, "b": 2}}</Tag>'
        '<PhoneNumber tag="{signed state: {"step": 3}}"/>'
    )
    # State that does not verify here stays as it was.
    assert tags.readable_tags(text, SECRET, call_id="c-2").endswith(f'tag="{bound}"/>')
    old = encode_state({"a": 1}, SECRET)
    assert "signed state" in tags.readable_tags(old, SECRET)  # however old


def test_readable_tags_reads_a_transfer_legs_state_and_old_state(monkeypatch):
    now = time.time()
    _at(monkeypatch, now)
    leg = encode_state({"agent": "lee"}, SECRET, call_id="c-a")  # set on the A-leg
    _at(monkeypatch, now + MAX_AGE_SECONDS * 3)  # long after any call: stored history
    readable = tags.readable_tags(leg, SECRET, call_id="c-b", parent_call_id="c-a")
    assert readable == '{signed state: {"agent": "lee"}}'

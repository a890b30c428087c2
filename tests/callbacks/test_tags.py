"""callbacks.tags: signed state in Bandwidth's tag, with its limits."""

from __future__ import annotations

import secrets

import pytest

from callbacks.tags import PREFIX, TagTooLong, decode_state, encode_state

SECRET = "k" * 32


def test_round_trip():
    state = {"flow": "click-to-call", "step": 2, "visitor": "token"}
    tag = encode_state(state, SECRET)
    assert tag.startswith(PREFIX)
    assert decode_state(tag, SECRET) == state


@pytest.mark.parametrize("tag", [None, "", "plain tag from elsewhere", PREFIX, PREFIX + "garbage"])
def test_no_state(tag):
    assert decode_state(tag, SECRET) == {}


def test_altered_tag_is_treated_as_absent(caplog):
    tag = encode_state({"flow": "a"}, SECRET)
    signature = tag.rpartition(".")[2]
    forged = encode_state({"flow": "b"}, SECRET).rpartition(".")[0] + "." + signature
    assert decode_state(forged, SECRET) == {}
    assert decode_state(tag, "another-secret") == {}
    assert "does not verify" in caplog.text


def test_limits():
    big = {"x": secrets.token_hex(150)}  # random: itsdangerous compresses repetitive state
    with pytest.raises(TagTooLong, match="over the limit of 256"):
        encode_state(big, SECRET, limit=256)
    assert len(encode_state(big, SECRET)) <= 4096
    with pytest.raises(TagTooLong, match="4096"):
        encode_state({"x": secrets.token_urlsafe(4000)}, SECRET)


def test_state_must_be_a_dict():
    with pytest.raises(TypeError):
        encode_state(["not", "a", "dict"], SECRET)  # type: ignore[arg-type]

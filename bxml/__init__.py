"""Bandwidth BXML: build, render, parse and check call-control documents.

No Flask here; ``callbacks``, ``calls`` and the sandbox import this package.

Building::

    from bxml import Gather, Hangup, PlayAudio, Response, SpeakSentence
    doc = Response(
        SpeakSentence("Hello", voice="julie"),
        Gather(PlayAudio("https://a.example/b.wav"), gather_url="/gather", max_digits=3),
    )
    doc.append(Hangup())
    xml = doc.to_bxml()   # '<?xml version="1.0" encoding="UTF-8"?>\\n<Response>...'

- Every verb of the Voice API is a class here: Bridge, Conference, Forward, Gather, Hangup,
  Pause, PauseRecording, PlayAudio, Record, Redirect, Refer, ResumeRecording, Ring,
  SendDtmf, SpeakSentence, StartGather, StartRecording, StartStream (+ StreamParam),
  StartTranscription (+ CustomParam), StopGather, StopRecording, StopStream,
  StopTranscription, Tag, Transfer (+ PhoneNumber, SipUri); roots ``Response`` (webhook
  replies) and ``Bxml`` (``PUT .../bxml``).
- Text content is the first positional argument (``PhoneNumber("+15555550123")``); child
  verbs are positional arguments; attributes are snake_case keywords mapped to Bandwidth's
  camelCase (``gather_url`` -> ``gatherUrl``, ``from_`` -> ``from``).  ``None`` leaves an
  attribute out.  ``verb.append(child)`` adds a child later.
- Everything is checked when it is built (and on ``append``): unknown attributes, types,
  ranges, enums, lengths, nesting, required text and attributes, characters XML cannot
  carry.  A problem raises ``BxmlError`` (a ``ValueError``) naming verb, attribute and
  rule: ``Gather: maxDigits must be between 1 and 50, got 99``.
- ``to_bxml()`` is deterministic: attributes in Bandwidth's documented order, booleans
  ``true``/``false``, whole numbers without ``.0``.  Documents over 64 KB raise.
- SpeakSentence text is always text (escaped).  SSML is built from ``bxml.ssml`` elements
  (``SpeakSentence("Hi ", ssml.Break(time="1s"), "there")``) or parsed from an explicit
  string with ``SpeakSentence.from_ssml(markup)``, allow-listed, never by un-escaping.

Reading (for the sandbox, the callbacks framework, the dashboard)::

    doc = bxml.parse(body)        # str or bytes; equal (==) to the tree that rendered it
    for verb in doc: ...          # roots support len(), indexing and iteration

- ``verb.name``: the XML tag (``"Gather"``).
- ``verb.text``: the text content ("" for an empty ``Tag()``), or None for verbs without
  text; for SpeakSentence, the text with SSML markup left out (``verb.content`` holds the
  strings and ``bxml.ssml`` elements).
- ``verb.attrs``: XML attribute name (camelCase) -> typed Python value (int, float, bool,
  str), in render order (a new dict each time).
- ``verb.children``: the child verbs (a new list each time; ``append`` adds one).
- Verbs compare equal when they render the same; ``repr`` reads like the code that built them.
- ``parse`` uses one hardened lxml parser (no DTD, no entities, no network), accepts at most
  64 KB of UTF-8, refuses any DOCTYPE, applies the builder's checks, and raises only
  ``BxmlError`` (with ``.line`` set where lxml knows it).

Reply rules (reference section 4.4)::

    bxml.reply_expected("gather")            # True: Bandwidth runs the reply BXML
    bxml.reply_expected("disconnect")        # False: the reply body is ignored
    bxml.check_reply(doc, "transferAnswer")  # raises BxmlError for e.g. a <Transfer>
    bxml.EVENT_TYPES                         # every known event type (incl. recordingComplete)

``check_reply`` takes a verb tree, a rendered document (str/bytes, parsed first) or None
(no reply, fine for any event); unknown event types raise BxmlError.

``bxml.rewrite_tags(doc, transform)`` replaces every tag value a document sets (``<Tag>``
text, ``tag`` attributes, and a tag for each Transfer target), in place.

Command line: ``python -m bxml FILE... [-]`` prints each problem with file and line and
exits 1 if there is any (``--event TYPE`` also applies that callback's reply rules).
"""

from __future__ import annotations

from bxml import ssml
from bxml.errors import BxmlError
from bxml.parsing import parse
from bxml.replies import EVENT_TYPES, check_reply, reply_expected
from bxml.safe_xml import MAX_DOCUMENT_BYTES
from bxml.tagging import holds_tags, rewrite_tags
from bxml.verb import Root, Verb
from bxml.verbs import (
    Bridge,
    Bxml,
    Conference,
    CustomParam,
    Forward,
    Gather,
    Hangup,
    Pause,
    PauseRecording,
    PhoneNumber,
    PlayAudio,
    Record,
    Redirect,
    Refer,
    Response,
    ResumeRecording,
    Ring,
    SendDtmf,
    SipUri,
    SpeakSentence,
    StartGather,
    StartRecording,
    StartStream,
    StartTranscription,
    StopGather,
    StopRecording,
    StopStream,
    StopTranscription,
    StreamParam,
    Tag,
    Transfer,
)

__all__ = [
    "EVENT_TYPES",
    "MAX_DOCUMENT_BYTES",
    "Bridge",
    "Bxml",
    "BxmlError",
    "Conference",
    "CustomParam",
    "Forward",
    "Gather",
    "Hangup",
    "Pause",
    "PauseRecording",
    "PhoneNumber",
    "PlayAudio",
    "Record",
    "Redirect",
    "Refer",
    "Response",
    "ResumeRecording",
    "Ring",
    "Root",
    "SendDtmf",
    "SipUri",
    "SpeakSentence",
    "StartGather",
    "StartRecording",
    "StartStream",
    "StartTranscription",
    "StopGather",
    "StopRecording",
    "StopStream",
    "StopTranscription",
    "StreamParam",
    "Tag",
    "Transfer",
    "Verb",
    "check_reply",
    "holds_tags",
    "parse",
    "reply_expected",
    "rewrite_tags",
    "ssml",
]

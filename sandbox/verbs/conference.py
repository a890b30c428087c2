"""Conference: the call joins the live conference of that name in its account (the first
one in creates it; a name used again after the last member left makes a new conference)
and stays there until it hangs up, is redirected (Update Call), or the conference is ended
(Conferences API ``status: completed``); then it goes on with the verbs after
``<Conference>``.  At most 20 members: a 21st call goes on at once (noted).

The creator's attributes rule the conference: ``conferenceEventUrl`` (fallback, method,
credentials), ``callbackTimeout`` (else the creating call's) and the tag (its ``tag``
attribute, else the call's tag); a later member's are ignored (noted).  ``mute``, ``hold``
and ``callIdsToCoach`` are each member's own (the Conferences API changes them).

Events, only when the creator gave ``conferenceEventUrl``, in this order:
``conferenceCreated``, ``conferenceMemberJoin`` per member (the creator's first), then joins
and exits as they happen (``conferenceMemberExit`` also for members the API ejects), and
``conferenceCompleted`` when the last member has left.  ``conferenceRedirect`` goes to the
Update Conference ``redirectUrl``.  The replies to all but ``conferenceCompleted`` are
conference BXML (``run_on_conference``).  A member's runner sends the events of what it does;
the API's requests reach one member's runner as an input, so no request sends a callback.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import bxml
from sandbox import recorder
from sandbox.catalog import Catalog
from sandbox.conference_store import MAX_MEMBERS, ConferenceStore
from sandbox.delivery import Hook
from sandbox.execution import CallEnded, ConferenceChanged, Document, Interrupt
from sandbox.payloads import iso, iso_duration, new_recording_id

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.payloads import Leg

CHECK_REAL_SECONDS = 2.0  # a member re-reads its row this often (inputs wake it at once)
# StartRecording attributes a conference ignores (its tag is the conference's).
IGNORED_IN_CONFERENCE = ("tag", "transcribe", "transcriptionAvailableUrl", "multiChannel")
KEPT = ("recordingAvailableUrl", "recordingAvailableMethod", "username", "password")


def _flag(attrs: dict[str, Any], name: str) -> bool:
    return str(attrs.get(name, "false")).lower() == "true"


def coach_list(value: Any) -> list[str] | None:
    ids = [part.strip() for part in str(value or "").split(",") if part.strip()]
    return ids or None


def conference(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    attrs = verb.attrs
    name = (verb.text or "").strip()
    if leg is not call.leg:
        call.note("Conference on a transfer's B-leg is not simulated; skipped")
        return None
    store = ConferenceStore(call.db)
    details = {
        "from": leg.from_,
        "to": leg.to,
        "mute": _flag(attrs, "mute"),
        "hold": _flag(attrs, "hold"),
        "callIdsToCoach": coach_list(attrs.get("callIdsToCoach")),
    }
    joined = store.join(
        leg.account_id, name, leg.call_id, details, lambda: _config(call, leg, attrs, base)
    )
    conf = joined.conference
    if joined.full:
        call.note(f"Conference {name}: full ({MAX_MEMBERS} members); the call goes on")
        return None
    call.program["conference"] = {"id": conf["conference_id"], "name": name}
    call.save("Conference")
    if joined.rejoined:
        call.note(f"Conference {name}: resumed in {conf['conference_id']}")
        call.save("Conference")
    else:
        made = " (created it)" if joined.created else ""
        call.note(f"Conference {name}: joined {conf['conference_id']}{made}")
        if not joined.created:
            _note_ignored(call, conf, _config(call, leg, attrs, base))
        if joined.created:
            with turn(call, conf, joined.turn):
                send_event(call, conf, "conferenceCreated")
        with turn(call, conf, joined.turn + (1 if joined.created else 0)):
            send_event(call, conf, "conferenceMemberJoin", member=leg)
        call.save("Conference")
    try:
        stay(call, conf)
    except (CallEnded, Interrupt):
        leave(call, conf, leg)
        raise
    leave(call, conf, leg)
    return None


def _config(call: Call, leg: Leg, attrs: dict[str, Any], base: str) -> dict[str, Any]:
    """What the creating call fixes for the whole conference."""
    hook = None
    if attrs.get("conferenceEventUrl"):
        hook = call.hook(attrs, base, "conferenceEvent").__dict__
    return {
        "hook": hook,
        "tag": leg.tag,
        "timeout": float(attrs.get("callbackTimeout") or call.timeout),  # type: ignore[arg-type]
        "accountUrl": leg.call_url.rsplit("/calls/", 1)[0],
        "creator": leg.call_id,
    }


def _note_ignored(call: Call, conf: dict[str, Any], mine: dict[str, Any]) -> None:
    """A later member's event URL, timeout or tag that differ from the creator's are
    ignored: say so in its log."""
    theirs = conf["config"]
    differ = [key for key in ("hook", "timeout", "tag") if mine[key] != theirs.get(key)]
    if differ:
        shown = {"hook": "conferenceEventUrl", "timeout": "callbackTimeout", "tag": "tag"}
        call.note(
            f"Conference {conf['name']}: this call's "
            f"{', '.join(shown[key] for key in differ)} ignored; the creator's apply"
        )


def stay(call: Call, conf: dict[str, Any]) -> None:
    """Wait in the conference until this member is ejected (returns), or the call ends or
    is redirected (raises)."""
    conference_id = conf["conference_id"]
    store = ConferenceStore(call.db)
    scale = call.settings.time_scale
    step = CHECK_REAL_SECONDS / scale if scale else 3600.0
    while True:
        try:
            call.wait(step)
        except ConferenceChanged as changed:
            data = changed.data
            if data.get("conferenceId") != conference_id:
                continue
            if data.get("end"):
                call.note(f"Conference {conf['name']}: ended by the Conferences API")
                return
            if "heard" in data:  # members on hold hear nothing (they get no such input)
                call.note(f"Conference {conf['name']}: heard {data['heard']}")
            if "member" in data:
                shown = ", ".join(f"{k} {v}" for k, v in data["member"].items())
                call.note(f"Conference {conf['name']}: this member's {shown} (Conferences API)")
            if "redirect" in data or "bxml" in data:
                _api_request(call, conf, data)
            call.save("Conference")  # the log shows it now
            continue
        member = store.member(conference_id, call.call_id)
        if member is None or not member["active"]:
            call.note(f"Conference {conf['name']}: no longer a member")
            return


def _api_request(call: Call, conf: dict[str, Any], data: dict[str, Any]) -> None:
    """Update Conference's redirect, or Update Conference BXML, in the conference's turn."""
    number = ConferenceStore(call.db).take_turn(conf["conference_id"])
    if number is None:
        call.note(f"Conference {conf['name']}: ended before the API request ran")
        return
    with turn(call, conf, number):
        if "redirect" in data:
            redirect = data["redirect"]
            hook = call.hook(redirect, redirect["redirectUrl"], "redirect")
            call.note(f"Conference {conf['name']}: redirected (Conferences API)")
            send_event(call, conf, "conferenceRedirect", hook=hook)
        else:
            call.note(f"Conference {conf['name']}: its BXML was replaced (PUT .../bxml)")
            # Its relative URLs resolve against the conference's event URL.
            base = (conf["config"].get("hook") or {}).get("url") or ""
            run_on_conference(call, conf, Document(data["bxml"], base))


@contextlib.contextmanager
def turn(call: Call, conf: dict[str, Any], number: int) -> Iterator[None]:
    """Send the conference's event ``number`` (and run its reply) after the ones before it."""
    store = ConferenceStore(call.db)
    wait = 2 * float(conf["config"]["timeout"]) + 5
    if not store.wait_turn(conf["conference_id"], number, wait):
        call.note(f"Conference {conf['name']}: an earlier event was not sent in {wait:g} s")
    try:
        yield
    finally:
        store.done_turn(conf["conference_id"], number)


def leave(call: Call, conf: dict[str, Any], leg: Leg) -> None:
    """Out of the conference: ``conferenceMemberExit``; the last one out completes it
    (``conferenceCompleted``, then its recording's ``conferenceRecordingAvailable``)."""
    call.program.pop("conference", None)
    left = ConferenceStore(call.db).leave(conf["conference_id"], leg.call_id)
    if not left.member:
        return
    call.note(f"Conference {conf['name']}: left")
    with turn(call, conf, left.turn):
        send_event(call, conf, "conferenceMemberExit", member=leg)
    if not left.completed:
        return
    call.note(f"Conference {conf['name']}: completed (its last member left)")
    with turn(call, conf, left.turn + 1):
        send_event(call, conf, "conferenceCompleted")
        if left.recording is not None:  # it ends with the conference
            ended = recorder.stop({recorder.KEY: left.recording}, _clock(call), time.time())
            if ended is not None:
                _finish_recording(call, conf, ended)


# --- events -------------------------------------------------------------------------------


def payload(
    event_type: str, conf: dict[str, Any], member: Leg | None = None, **fields: Any
) -> dict[str, Any]:
    """A conference event: ``eventType, eventTime, conferenceId, name``, the member's
    ``from, to, callId`` (join, exit), then ``fields``; ``tag`` (the creator's) when set."""
    body: dict[str, Any] = {
        "eventType": event_type,
        "eventTime": iso(time.time()),
        "conferenceId": conf["conference_id"],
        "name": conf["name"],
    }
    if member is not None:
        body.update({"from": member.from_, "to": member.to, "callId": member.call_id})
    status = fields.pop("status", None)  # after the tag, in the spec's order
    body.update(fields)
    tag = conf["config"].get("tag")
    if tag:
        body["tag"] = tag
    body["status"] = status
    return {key: value for key, value in body.items() if value is not None}


def send_event(
    call: Call,
    conf: dict[str, Any],
    event_type: str,
    *,
    member: Leg | None = None,
    hook: Hook | None = None,
    fields: dict[str, Any] | None = None,
) -> None:
    """Send one conference event (to the conference's event URL unless ``hook`` is given)
    and run its BXML reply on the conference.  A failed delivery or a refused reply is
    noted; the conference goes on."""
    config = conf["config"]
    if hook is None:
        if not config.get("hook"):
            return
        hook = Hook(**config["hook"])
    call.check()
    call.driver.ensure_lease(call)
    body = payload(event_type, conf, member, **(fields or {}))
    wants_bxml = bxml.reply_expected(event_type)
    result = call.driver.deliverer.send(hook, body, config["timeout"], bxml=wants_bxml)
    for attempt in result.attempts:
        call.note(f"{event_type}: {attempt}")
    if not result.ok:
        call.note(f"{event_type} was not delivered: {result.error}")
        return
    if not wants_bxml or not result.body.strip():
        return
    try:
        text = result.body.decode("utf-8-sig")
        bxml.check_reply(bxml.parse(text), event_type)
    except (UnicodeDecodeError, bxml.BxmlError) as exc:
        call.note(f"{event_type}: the reply was rejected completely ({exc})")
        return
    run_on_conference(call, conf, Document(text, result.url or hook.url))


# --- conference BXML ----------------------------------------------------------------------


def _clock(call: Call) -> float:
    """The conference's simulated clock: real time over the time scale."""
    scale = call.settings.time_scale
    return time.time() / scale if scale else time.time()


def run_on_conference(call: Call, conf: dict[str, Any], doc: Document) -> None:
    """Execute conference BXML (PlayAudio, SpeakSentence, Start/Pause/Resume/StopRecording)
    against the conference.  Audio is heard by every member but those on hold (each one's log
    says so) and holds none of them; a verb that fails is skipped and the next one runs."""
    name = conf["name"]
    store = ConferenceStore(call.db)
    for verb in call.parse(doc.text):
        attrs = verb.attrs
        if verb.name in ("SpeakSentence", "PlayAudio"):
            played = (verb.text or "").strip()
            call.note(f"Conference {name}: {verb.name} to every member: {played!r}")
            heard = {"conferenceId": conf["conference_id"], "heard": f"{verb.name} {played!r}"}
            for member in store.members(conf["conference_id"]):
                if member["call_id"] != call.call_id and not member.get("hold"):
                    call.db.add_input(member["call_id"], "conference", heard)
            continue
        if verb.name == "StartRecording":
            _start_recording(call, conf, attrs, doc.base)
            continue
        if verb.name in ("PauseRecording", "ResumeRecording"):
            change = recorder.pause if verb.name == "PauseRecording" else recorder.resume
            clock = _clock(call)
            _, changed = store.change_state(
                conf["conference_id"], functools.partial(_at, change, clock)
            )
            call.note(f"Conference {name}: {verb.name}" + ("" if changed else " (no change)"))
            continue
        if verb.name == "StopRecording":
            _, ended = store.change_state(
                conf["conference_id"],
                lambda state: recorder.stop(state, _clock(call), time.time()),
            )
            if ended is None:
                call.note(f"Conference {name}: StopRecording (no recording running)")
            else:
                _finish_recording(call, conf, ended)
            continue
        call.note(f"Conference {name}: {verb.name} is not allowed in conference BXML; skipped")


def _at(change: Any, clock: float, state: dict[str, Any]) -> Any:
    return change(state, clock)


def _start_recording(call: Call, conf: dict[str, Any], attrs: dict[str, Any], base: str) -> None:
    """StartRecording in conference BXML: the conference's recording (one at a time)."""
    name = conf["name"]
    ignored = [key for key in IGNORED_IN_CONFERENCE if key in attrs]
    if ignored:
        call.note(f"Conference {name}: StartRecording's {', '.join(ignored)} ignored")
    recording_id = new_recording_id()
    details = {
        "recordingId": recording_id,
        "base": base,
        "fileFormat": str(attrs.get("fileFormat", "wav")),
        "attrs": {key: str(attrs[key]) for key in KEPT if key in attrs},
        "recordingName": attrs.get("recordingName"),
    }
    clock, wall = _clock(call), time.time()

    def start(state: dict[str, Any]) -> bool:
        return recorder.start(state, clock, wall, **details)

    live, started = ConferenceStore(call.db).change_state(conf["conference_id"], start)
    if not live:
        call.note(f"Conference {name}: StartRecording ignored (the conference ended)")
    elif started:
        call.note(f"Conference {name}: StartRecording {recording_id}")
    else:
        call.note(f"Conference {name}: StartRecording ignored (one is running)")


def _finish_recording(call: Call, conf: dict[str, Any], ended: dict[str, Any]) -> None:
    """Store an ended conference recording, make it available, then send
    ``conferenceRecordingAvailable`` to its StartRecording's ``recordingAvailableUrl``."""
    config = conf["config"]
    recording_id = ended["recordingId"]
    meta = {  # in the order of the event's fields
        "accountId": call.leg.account_id,
        "conferenceId": conf["conference_id"],
        "name": conf["name"],
        "recordingId": recording_id,
        "channels": 1,
        "startTime": iso(ended["started"]),
        "endTime": iso(ended["ended"]),
        "duration": iso_duration(ended["seconds"]),
        "fileFormat": ended["fileFormat"],
        "mediaUrl": (
            f"{config['accountUrl']}/conferences/{conf['conference_id']}"
            f"/recordings/{recording_id}/media"
        ),
        "recordingName": ended.get("recordingName"),
    }
    meta = {key: value for key, value in meta.items() if value is not None}
    catalog = Catalog(call.db)
    catalog.add_recording(meta, ended["started"], owner_id=conf["conference_id"])
    catalog.set_recording(recording_id, status="complete")
    call.note(f"Conference {conf['name']}: recording {recording_id} ({meta['duration']})")
    attrs = ended["attrs"]
    if "recordingAvailableUrl" not in attrs:
        return
    hook = call.hook(attrs, ended["base"], "recordingAvailable")
    fields = {k: v for k, v in meta.items() if k not in ("conferenceId", "name", "recordingName")}
    send_event(
        call,
        conf,
        "conferenceRecordingAvailable",
        hook=hook,
        fields={**fields, "status": "complete"},
    )


UNITS = {"Conference": conference}

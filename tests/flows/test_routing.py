"""A call belongs to one flow from its first callback to its disconnect, whatever the
callback: routing by tag, number, application and default, through the real routes."""

from __future__ import annotations

import secrets

import pytest

import bxml
from bxml import Conference, Gather, Hangup, PhoneNumber, Response, SpeakSentence, Tag, Transfer
from callbacks import Flow, FlowError, encode_state
from store import get_store
from tests.callbacks.helpers import (
    Bandwidth,
    answer_event,
    call_event,
    call_id,
    conference_event,
    disconnect_event,
)

IVR_NUMBER = "+12025550111"
SALES_NUMBER = "+12025550122"


@pytest.fixture
def bandwidth(client):
    return Bandwidth(client)


@pytest.fixture
def flows(app):
    """Two flows answering their own numbers, and a default flow; each records its calls."""
    seen: list[tuple[str, str, dict]] = []
    registry = app.extensions["flows"]
    made = {}
    for name, numbers, default in (
        ("ivr", [IVR_NUMBER], False),
        ("sales", [SALES_NUMBER], False),
        ("fallback", [], True),
    ):
        flow = Flow(name, numbers=numbers)
        made[name] = flow

        def record(event, name=name):
            seen.append((name, event.event_type, dict(event.state)))

        def reply(event, name=name, flow=flow, record=record):
            record(event)
            return Response(
                flow.tag({**event.state, "last": event.event_type}),
                Gather(SpeakSentence(f"{name} speaking"), gather_url=flow.url("gather")),
            )

        for event_type in ("initiate", "answer", "gather", "redirect", "transferComplete"):
            flow.on(event_type)(reply)
        flow.on("disconnect")(record)
        flow.on("transferDisconnect")(record)
        flow.on("conferenceMemberJoin")(record)
        flow.on("transferAnswer")(
            lambda event, name=name: (
                seen.append((name, event.event_type, dict(event.state))),
                Response(SpeakSentence(f"{name} agent leg")),
            )[1]
        )
        registry.register(flow, default=default)
    made["seen"] = seen
    return made


def tag_of(reply) -> str:
    """The call's tag after Bandwidth ran this reply: the last <Tag> in it."""
    tags = [verb for verb in bxml.parse(reply.data) if verb.name == "Tag"]
    return tags[-1].text


def inbound(event_type="initiate", **overrides):
    overrides.setdefault("direction", "inbound")
    overrides.setdefault("from", "+12025550199")
    overrides.setdefault("answerTime", None)
    payload = call_event(event_type, **overrides)
    return {k: v for k, v in payload.items() if v is not None}


def test_an_inbound_call_stays_with_the_flow_of_its_number(flows, bandwidth):
    cid = call_id()
    first = bandwidth.post("initiate", inbound(callId=cid, to=IVR_NUMBER))
    assert "ivr speaking" in first.get_data(as_text=True)
    tag = tag_of(first)
    # Later callbacks carry the tag the reply set; the number is no longer needed.
    gather = bandwidth.post("gather", inbound("gather", callId=cid, to=IVR_NUMBER, tag=tag))
    bandwidth.post("disconnect", disconnect_event(callId=cid, tag=tag_of(gather), cause="hangup"))
    assert [(name, kind) for name, kind, _ in flows["seen"]] == [
        ("ivr", "initiate"),
        ("ivr", "gather"),
        ("ivr", "disconnect"),
    ]
    # The handler's own state went along, without the framework's key.
    assert flows["seen"][1][2] == {"last": "initiate"}
    assert flows["seen"][2][2] == {"last": "gather"}


def test_the_tag_wins_over_the_number(flows, bandwidth, app):
    tag = encode_state({"_flow": "sales"}, app.config["SECRET_KEY"])
    bandwidth.post("gather", inbound("gather", to=IVR_NUMBER, tag=tag))
    assert flows["seen"][0][0] == "sales"


def test_an_outbound_call_is_routed_by_our_from_number(flows, bandwidth):
    bandwidth.post("answer", answer_event(**{"from": SALES_NUMBER, "to": "+12025550188"}))
    assert flows["seen"][0][:2] == ("sales", "answer")


def test_a_flow_can_claim_an_application(app, bandwidth):
    flow = app.extensions["flows"].register(Flow("app-flow", application_ids=["app-77"]))
    flow.on("answer")(lambda event: Response(SpeakSentence("by application")))
    reply = bandwidth.post("answer", answer_event(applicationId="app-77"))
    assert "by application" in reply.get_data(as_text=True)


def test_unclaimed_calls_go_to_the_default_flow(flows, bandwidth):
    bandwidth.post("initiate", inbound(to="+12025550177"))
    assert flows["seen"][0][:2] == ("fallback", "initiate")


def test_a_transfer_b_leg_comes_back_to_the_flow(app, flows, bandwidth):
    ivr = flows["ivr"]
    ivr.handlers.pop("gather")

    @ivr.on("gather")
    def transfer(event):
        return Response(
            Transfer(
                PhoneNumber("+12025550142", transfer_answer_url=ivr.url("transferAnswer")),
                transfer_complete_url=ivr.url("transferComplete"),
            )
        )

    cid = call_id()
    first = bandwidth.post("initiate", inbound(callId=cid, to=IVR_NUMBER))
    reply = bandwidth.post("gather", inbound("gather", callId=cid, tag=tag_of(first)))
    [transfer_verb] = bxml.parse(reply.data)
    [target] = transfer_verb.children
    b_leg_tag = target.attrs["tag"]  # the framework gave the B-leg a tag naming the flow
    b_leg = call_id()
    # The B-leg is another call, with another number pair: only its tag can route it.
    leg = {"callId": b_leg, "parentCallId": cid, "from": "+12025550199", "to": "+12025550142"}
    answered = bandwidth.post("transferAnswer", call_event("transferAnswer", tag=b_leg_tag, **leg))
    assert "ivr agent leg" in answered.get_data(as_text=True)
    bandwidth.post(
        "transferDisconnect",
        call_event("transferDisconnect", tag=b_leg_tag, cause="hangup", **leg),
    )
    bandwidth.post("transferComplete", inbound("transferComplete", callId=cid, tag=tag_of(first)))
    assert [(name, kind) for name, kind, _ in flows["seen"]] == [
        ("ivr", "initiate"),
        ("ivr", "transferAnswer"),
        ("ivr", "transferDisconnect"),
        ("ivr", "transferComplete"),
    ]


def test_a_handlers_own_transfer_target_tag_is_kept_beside_the_flow(app, flows, bandwidth):
    sales = flows["sales"]
    sales.handlers.pop("answer")

    @sales.on("answer")
    def transfer(event):
        return Response(Transfer(PhoneNumber("+12025550142", tag=sales.tag({"agent": "lee"}).text)))

    cid = call_id()
    reply = bandwidth.post("answer", answer_event(callId=cid, **{"from": SALES_NUMBER}))
    [_lead, transfer_verb] = bxml.parse(reply.data)
    b_leg_tag = transfer_verb.children[0].attrs["tag"]
    # The agent's leg is another call; its parentCallId is the call that transferred.
    bandwidth.post("transferAnswer", call_event("transferAnswer", tag=b_leg_tag, parentCallId=cid))
    assert flows["seen"][-1] == ("sales", "transferAnswer", {"agent": "lee"})


def test_conference_events_reach_the_flow_of_the_call_that_created_it(app, flows, bandwidth):
    ivr = flows["ivr"]
    ivr.handlers.pop("gather")
    ivr.on("gather")(
        lambda event: Response(Conference("team", conference_event_url=ivr.url("conference")))
    )
    ivr.on("conferenceCreated")(lambda event: flows["seen"].append(("ivr", "created", event.state)))
    cid = call_id()
    first = bandwidth.post("initiate", inbound(callId=cid, to=IVR_NUMBER))
    reply = bandwidth.post("gather", inbound("gather", callId=cid, tag=tag_of(first)))
    [conference] = bxml.parse(reply.data)
    # Bandwidth echoes the Conference's tag on every conference event: conferenceCreated
    # names no call, and a member's events name the member's call.
    conference_tag = conference.attrs["tag"]
    created = conference_event("conferenceCreated", tag=conference_tag)
    assert bandwidth.post("conference", created).status_code in (200, 204)
    member = conference_event("conferenceMemberJoin", callId=call_id(), tag=conference_tag)
    assert bandwidth.post("conference", member).status_code in (200, 204)
    assert flows["seen"][-2:] == [
        ("ivr", "created", {"last": "initiate"}),
        ("ivr", "conferenceMemberJoin", {"last": "initiate"}),
    ]


def test_a_plain_text_tag_of_the_handler_comes_back_as_written(app, bandwidth):
    flow = app.extensions["flows"].register(Flow("plain"), default=True)
    seen = []
    flow.on("answer")(lambda event: Response(Tag("order-7"), Hangup()))
    flow.on("disconnect")(lambda event: seen.append((event.tag, event.state, event.flow)))
    cid = call_id()
    reply = bandwidth.post("answer", answer_event(callId=cid))
    [tag_verb, _] = bxml.parse(reply.data)
    assert tag_verb.text != "order-7"  # signed, with the flow inside
    bandwidth.post("disconnect", disconnect_event(callId=cid, tag=tag_verb.text))
    assert seen == [("order-7", {}, "plain")]


def test_one_document_returned_for_every_call_gives_each_call_its_own_tag(app, bandwidth):
    """A handler may answer with a module-level constant: the framework's tags go into a
    copy, so the second call gets its own tag, not the first call's (bound to that call)."""
    flow = app.extensions["flows"].register(Flow("constant"), default=True)
    menu = Response(
        Tag("order-7"),
        Transfer(PhoneNumber("+12025550142")),
        Gather(gather_url="https://example.com/callbacks/gather", tag="menu"),
    )
    before = menu.to_bxml()
    seen = []
    flow.on("answer")(lambda event: menu)
    flow.on("disconnect")(lambda event: seen.append((event.call_id, event.tag, event.flow)))
    calls = [call_id(), call_id()]
    for cid in calls:
        reply = bandwidth.post("answer", answer_event(callId=cid))
        bandwidth.post("disconnect", disconnect_event(callId=cid, tag=tag_of(reply)))
    assert seen == [(cid, "order-7", "constant") for cid in calls]
    assert menu.to_bxml() == before  # the handler's document is left as it was written


def test_a_verb_tag_attribute_keeps_the_flow(app, bandwidth):
    flow = app.extensions["flows"].register(Flow("attr"), default=True)
    seen = []
    flow.on("answer")(
        lambda event: Response(
            Gather(gather_url=flow.url("gather"), tag=flow.tag({"menu": "main"}).text)
        )
    )
    flow.on("gather")(lambda event: seen.append((event.flow, event.state)) or Response())
    other = app.extensions["flows"].register(Flow("other"), default=True)
    other.on("gather")(lambda event: seen.append(("WRONG", {})) or Response())
    app.extensions["flows"].default_name = "attr"
    cid = call_id()
    reply = bandwidth.post("answer", answer_event(callId=cid))
    gather = next(verb for verb in bxml.parse(reply.data) if verb.name == "Gather")
    app.extensions["flows"].default_name = "other"  # the tag routes, not the default
    bandwidth.post("gather", call_event("gather", callId=cid, tag=gather.attrs["tag"], digits="1"))
    assert seen == [("attr", {"menu": "main"})]


def test_a_call_no_flow_claims_gets_the_safe_document_and_the_reason(app, bandwidth):
    registry = app.extensions["flows"]
    registry.flows.pop("demo-ivr")  # an app with no default flow
    payload = inbound(to="+12025550177")
    reply = bandwidth.post("initiate", payload)
    assert [verb.name for verb in bxml.parse(reply.data)] == ["SpeakSentence", "Hangup"]
    [row] = get_store(app).events_for_call(payload["callId"])
    assert "no flow answers this initiate (number +12025550177" in row["error_detail"]


def test_asynchronous_events_without_a_handler_are_stored_and_answered_204(flows, bandwidth, app):
    payload = call_event("recordingAvailable", to=IVR_NUMBER, recordingId="r-1")
    assert bandwidth.post("recordingAvailable", payload).status_code == 204
    assert len(get_store(app).events_for_call(payload["callId"])) == 1


def test_a_forged_tag_cannot_choose_the_flow(flows, bandwidth):
    forged = encode_state({"_flow": "sales"}, "not-our-secret")
    bandwidth.post("gather", inbound("gather", to=IVR_NUMBER, tag=forged))
    assert flows["seen"][0][:2] == ("ivr", "gather")  # by its number, not the forged tag


def test_state_set_on_one_call_does_not_route_another(app, flows, bandwidth):
    cid = call_id()
    first = bandwidth.post("initiate", inbound(callId=cid, to=IVR_NUMBER))
    # The same tag on another call's callback: bound to the first call, so not believed.
    bandwidth.post(
        "gather", inbound("gather", callId=call_id(), to="+12025550177", tag=tag_of(first))
    )
    assert flows["seen"][-1] == ("fallback", "gather", {})


def test_the_agent_leg_gets_the_callers_state(app, flows, bandwidth):
    sales = flows["sales"]
    sales.handlers.pop("answer")
    sales.on("answer")(
        lambda event: Response(sales.tag({"appointment": "A17"}), sales.transfer("+12025550142"))
    )
    cid = call_id()
    reply = bandwidth.post("answer", answer_event(callId=cid, **{"from": SALES_NUMBER}))
    [_tag, transfer_verb] = bxml.parse(reply.data)
    b_leg_tag = transfer_verb.children[0].attrs["tag"]
    bandwidth.post("transferAnswer", call_event("transferAnswer", tag=b_leg_tag, parentCallId=cid))
    assert flows["seen"][-1] == ("sales", "transferAnswer", {"appointment": "A17"})


def test_the_framework_keys_never_reach_the_handler(app, flows, bandwidth):
    tag = encode_state({"_flow": "ivr", "_attempt": "a1", "visit": 3}, app.config["SECRET_KEY"])
    bandwidth.post("gather", inbound("gather", tag=tag))
    assert flows["seen"][-1] == ("ivr", "gather", {"visit": 3})


def test_state_too_big_for_a_verb_tag_still_gets_an_answer(app, flows, bandwidth):
    """Create Call allows 4096 characters of tag, a <Tag> 256: the reply still works and the
    call stays with its flow by its number."""
    big = encode_state(
        {"notes": secrets.token_hex(500)}, app.config["SECRET_KEY"]
    )  # no compression
    sales = flows["sales"]
    sales.handlers.pop("answer")
    sales.on("answer")(lambda event: Response(sales.transfer("+12025550142")))
    reply = bandwidth.post("answer", answer_event(tag=big, **{"from": SALES_NUMBER}))
    [transfer_verb] = bxml.parse(reply.data)  # no leading <Tag>: the state would not fit
    assert transfer_verb.name == "Transfer"
    assert len(transfer_verb.children[0].attrs["tag"]) <= 256  # the flow alone


def test_declared_numbers_are_normalised_and_checked(app):
    registry = app.extensions["flows"]
    registry.register(Flow("a", numbers=["+1 (202) 555-0101"]))
    with pytest.raises(FlowError, match=r"both answer \+12025550101"):
        registry.register(Flow("b", numbers=["+12025550101"]))
    for bad in ("hello", "2025550123", ""):
        with pytest.raises(FlowError, match="not a phone number in international form"):
            Flow("c", numbers=[bad])
    assert Flow("sip", numbers=["sip:agent@example.com"]).numbers == ("sip:agent@example.com",)

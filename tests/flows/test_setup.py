"""Flows come from the user's own modules, are held per app, and a wrong set-up stops
start-up with one line naming both places."""

from __future__ import annotations

import json

import pytest
from flask import Flask

import bxml
import config
from app import create_app
from callbacks import Flow, FlowError
from tests.callbacks.helpers import Bandwidth, answer_event, call_event

IVR = """
from bxml import Response, SpeakSentence
from callbacks import Flow

ivr = Flow("{name}", numbers=["{number}"])

@ivr.on("initiate")
@ivr.on("answer")
def hello(event):
    return Response(SpeakSentence("{words}"))
"""


def ivr_module(flow_module, name="my-ivr", number="+12025550111", words="my own ivr"):
    return flow_module(IVR.format(name=name, number=number, words=words))


def spoken(reply) -> list[str]:
    return [verb.text for verb in bxml.parse(reply.data) if verb.name == "SpeakSentence"]


def test_voice_flows_loads_the_users_module_and_drops_the_demo(app_config, flow_module):
    app = create_app({**app_config, "VOICE_FLOWS": ivr_module(flow_module)})
    registry = app.extensions["flows"]
    assert sorted(registry.flows) == ["click-to-call", "my-ivr"]
    # The user's only flow takes the calls no other flow claims.
    assert registry.default.name == "my-ivr"
    reply = Bandwidth(app.test_client()).post("answer", answer_event(to="+12025550177"))
    assert spoken(reply) == ["my own ivr"]


def test_the_demo_answers_while_voice_flows_is_unset(app):
    assert app.extensions["flows"].default.name == "demo-ivr"


def test_two_apps_in_one_process_never_see_each_others_flows(app_config, flow_module, tmp_path):
    first = create_app({**app_config, "VOICE_FLOWS": ivr_module(flow_module, words="first")})
    second_config = {
        **app_config,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'second.db'}",
        "SPOOL_PATH": str(tmp_path / "second.jsonl"),
        "VOICE_FLOWS": ivr_module(flow_module, name="other", words="second"),
    }
    second = create_app(second_config)
    assert "other" not in first.extensions["flows"]
    assert "my-ivr" not in second.extensions["flows"]
    assert spoken(Bandwidth(first.test_client()).post("answer", answer_event())) == ["first"]
    assert spoken(Bandwidth(second.test_client()).post("answer", answer_event())) == ["second"]


def test_click_to_call_keeps_working_when_the_user_also_handles_answer(app_config, flow_module):
    voicemail = flow_module(
        """
        from bxml import Record, Response, SpeakSentence
        from callbacks import Flow

        voicemail = Flow("voicemail", default=True)

        @voicemail.on("answer")
        def record(event):
            return Response(SpeakSentence("Leave a message"), Record())
        """
    )
    app = create_app({**app_config, "VOICE_FLOWS": voicemail})
    bandwidth = Bandwidth(app.test_client())
    # A call placed by click-to-call carries its flow in the tag (see place_call).
    tag = encode_tag(app, {"visitor": "t", "_flow": "click-to-call"})
    reply = bandwidth.post("answer", answer_event(tag=tag))
    names = [verb.name for verb in bxml.parse(reply.data)]
    assert "Transfer" in names and "Record" not in names
    assert spoken(reply)[0].startswith("Thanks for your request. Connecting you to an agent")
    # Every other call gets the user's flow.
    assert spoken(bandwidth.post("answer", answer_event())) == ["Leave a message"]


def encode_tag(app, state):
    from callbacks import encode_state

    return encode_state(state, app.config["SECRET_KEY"])


# --- conflicts and wrong settings stop start-up, in one line --------------------------------


def test_two_handlers_for_one_event_in_one_flow_name_both_places(app_config, flow_module):
    module = flow_module(
        """
        from callbacks import Flow

        twice = Flow("twice")

        @twice.on("answer")
        def first(event):
            return None

        @twice.on("answer")
        def second(event):
            return None
        """
    )
    with pytest.raises(config.ConfigError) as caught:
        create_app({**app_config, "VOICE_FLOWS": module})
    message = str(caught.value)
    assert "\n" not in message
    assert "flow 'twice' has two handlers for 'answer'" in message
    assert f"{module}.py:6 (first)" in message and f"{module}.py:10 (second)" in message


def test_two_flows_with_one_name_name_both_places(app_config, flow_module):
    one = ivr_module(flow_module, name="same", number="+12025550111")
    two = ivr_module(flow_module, name="same", number="+12025550112")
    with pytest.raises(
        config.ConfigError, match=r"two flows are named 'same': .*\.py:5 and .*\.py:5"
    ):
        create_app({**app_config, "VOICE_FLOWS": f"{one}, {two}"})


def test_two_flows_claiming_one_number_name_both(app_config, flow_module):
    one = ivr_module(flow_module, name="a")
    two = ivr_module(flow_module, name="b")
    with pytest.raises(config.ConfigError) as caught:
        create_app({**app_config, "VOICE_FLOWS": f"{one},{two}"})
    assert "flows 'a' (" in str(caught.value) and "'b' (" in str(caught.value)
    assert "both answer +12025550111" in str(caught.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"VOICE_FLOWS": "no_such_module_here"}, "VOICE_FLOWS names 'no_such_module_here'"),
        ({"VOICE_FLOWS": "json"}, "module 'json' defines no callbacks.Flow"),
        ({"VOICE_DEFAULT_FLOW": "nobody"}, "VOICE_DEFAULT_FLOW='nobody' names no flow"),
        (
            {"VOICE_BACKEND": "bandwdith"},
            "VOICE_BACKEND must be 'sandbox' or 'bandwidth', got 'bandwdith'",
        ),
        (
            {"VOICE_BACKEND": "bandwidth"},
            "VOICE_BACKEND=bandwidth needs BW_ACCOUNT_ID, BW_USERNAME, BW_PASSWORD, "
            "BW_APPLICATION_ID, BW_FROM_NUMBER",
        ),
        ({"PUBLIC_BASE_URL": "cb.example.com"}, "PUBLIC_BASE_URL must be an http(s) URL"),
        ({"PUBLIC_BASE_URL": "https://u:p@cb.example.com"}, "no credentials"),
        ({"BW_VOICE_API_URL": "ftp://x"}, "BW_VOICE_API_URL must be an http(s) URL"),
        (
            {"ANSWER_FAILURE_MODE": "retry"},
            "ANSWER_FAILURE_MODE must be 'safe-document' or 'fallback', got 'retry'",
        ),
        ({"CLICK_TO_CALL_RATE_TOTAL": "lots"}, "CLICK_TO_CALL_RATE_TOTAL"),
        ({"CLICK_TO_CALL_AGENT": "555-0142"}, "CLICK_TO_CALL_AGENT must be an E.164 number"),
        ({"BW_FROM_NUMBER": "12025550100"}, "BW_FROM_NUMBER must be an E.164 number"),
        ({"CALLBACK_PASSWORD": None}, "set both CALLBACK_USERNAME and CALLBACK_PASSWORD"),
        (
            {"DATABASE_URL": "mysql://root@localhost/x"},
            "DATABASE_URL must be a sqlite:/// or postgresql://",
        ),
        ({"MAX_CONTENT_LENGTH": 0}, "MAX_CONTENT_LENGTH must be a whole number >= 1024, got 0"),
        ({"STORE_BUSY_TIMEOUT": -1}, "STORE_BUSY_TIMEOUT must be a number of seconds > 0"),
        (
            {"STORE_SQLITE_SYNCHRONOUS": "fast"},
            "STORE_SQLITE_SYNCHRONOUS must be one of OFF, NORMAL, FULL, EXTRA, got 'fast'",
        ),
    ],
)
def test_a_wrong_setting_stops_start_up_naming_it(app_config, settings, message):
    with pytest.raises(config.ConfigError) as caught:
        create_app({**app_config, **settings})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bandwidth_needs_a_public_base_url_it_can_reach(app_config):
    account = {
        "VOICE_BACKEND": "bandwidth",
        "BW_ACCOUNT_ID": "9900000",
        "BW_USERNAME": "u",
        "BW_PASSWORD": "p",
        "BW_APPLICATION_ID": "a",
        "BW_FROM_NUMBER": "+12025550100",
    }
    settings = {**app_config, **account}
    del settings["PUBLIC_BASE_URL"]
    with pytest.raises(config.ConfigError, match="VOICE_BACKEND=bandwidth needs PUBLIC_BASE_URL"):
        create_app(settings)
    assert create_app({**settings, "PUBLIC_BASE_URL": "https://cb.example.com"})


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"PORT": "19000"}, "http://127.0.0.1:19000"),
        ({"HOST": "0.0.0.0", "PORT": "5001"}, "http://127.0.0.1:5001"),
        ({"HOST": "10.1.2.3", "PORT": "80"}, "http://10.1.2.3:80"),
        ({"GUNICORN_BIND": "127.0.0.2:9001", "PORT": "1"}, "http://127.0.0.2:9001"),
        ({"HOST": "::1", "PORT": "8001"}, "http://[::1]:8001"),
        ({"FLASK_RUN_FROM_CLI": "true"}, "http://127.0.0.1:5000"),
        ({"FLASK_RUN_FROM_CLI": "true", "FLASK_RUN_PORT": "8080"}, "http://127.0.0.1:8080"),
    ],
)
def test_public_base_url_defaults_to_the_address_the_server_binds(environ, url):
    assert config.derived_public_base_url(environ) == url


def test_the_port_reaches_click_to_calls_callback_urls(app_config, monkeypatch):
    monkeypatch.setenv("PORT", "19000")
    settings = dict(app_config)
    del settings["PUBLIC_BASE_URL"]
    app = create_app(settings)
    assert app.config["PUBLIC_BASE_URL"] == "http://127.0.0.1:19000"
    assert config.voice_api(app.config)["base_url"] == "http://127.0.0.1:19000/sandbox/api/v2"


# --- an existing Flask app -----------------------------------------------------------------


def test_init_app_mounts_routes_store_and_flows_on_a_bare_flask_app(tmp_path):
    import callbacks

    hello = Flow("hello")

    @hello.on("answer")
    def greet(event):
        return bxml.Response(bxml.SpeakSentence(f"Hello {event.to}"))

    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    registry = callbacks.init_app(app, flows=[hello])
    assert registry.default is hello  # the app's only flow
    client = app.test_client()
    # A documented answer payload, as Bandwidth posts it (no credentials configured).
    payload = answer_event()
    reply = client.post(
        "/callbacks/answer", data=json.dumps(payload), content_type="application/json"
    )
    assert reply.status_code == 200, reply.data
    assert spoken(reply) == ["Hello +12025550123"]
    # The store took it, and the defaults are in place.
    from store import get_store

    [row] = get_store(app).events_for_call(payload["callId"])
    assert row["event_type"] == "answer" and row["reply_status"] == 200
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024
    assert (tmp_path / "instance" / "secret_key").exists()


def test_registering_the_blueprint_alone_also_works(tmp_path):
    from callbacks import bp

    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.register_blueprint(bp)
    reply = app.test_client().post(
        "/callbacks/disconnect",
        data=json.dumps(call_event("disconnect", cause="hangup")),
        content_type="application/json",
    )
    assert reply.status_code == 204


def test_flow_declarations_refuse_what_cannot_work():
    with pytest.raises(FlowError, match="unknown Bandwidth event type 'anser'"):
        Flow("x").on("anser")
    with pytest.raises(FlowError, match="non-empty name"):
        Flow(" ")
    with pytest.raises(FlowError, match="lists of strings"):
        Flow("x", numbers="+12025550111")


# --- outbound calls name their flow -------------------------------------------------------


def test_place_call_signs_the_flow_into_the_tag_and_refuses_an_unknown_one(app):
    from calls.outbound import place_call

    with app.test_request_context(), pytest.raises(ValueError, match="no flow named 'nope'"):
        place_call(to="+12025550123", flow="nope")

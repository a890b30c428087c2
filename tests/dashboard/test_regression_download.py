"""The call page's *Download as a regression test*: login required, a file named after the
call, the whole call (every leg), no secrets."""

from __future__ import annotations

import re

from callbacks.regression_export import file_name
from tests.callbacks.helpers import answer_event, call_event, call_id, disconnect_event
from tests.conftest import CALLBACK_PASSWORD, DASHBOARD_PASSWORD


def transferred_call(bw) -> tuple[str, str]:
    """A call and the agent's leg its transfer created, as stored callbacks."""
    caller, agent = call_id(), call_id()
    assert bw.post("answer", answer_event(callId=caller)).status_code == 200
    answered = call_event("transferAnswer", callId=agent, parentCallId=caller)
    assert bw.post("transferAnswer", answered).status_code == 200
    assert bw.post("disconnect", disconnect_event(callId=caller, cause="hangup")).status_code == 204
    return caller, agent


def download_url(cid: str) -> str:
    return f"/dashboard/calls/{cid}/regression-test.py"


def test_the_call_page_links_the_download(operator, bw):
    caller, _ = transferred_call(bw)
    html = operator.get(f"/dashboard/calls/{caller}").get_data(as_text=True)
    link = re.search(r'<a id="regression-test" download href="([^"]+)">', html)
    assert link and link.group(1) == download_url(caller)


def test_download_needs_a_login(client, bw):
    caller, _ = transferred_call(bw)
    reply = client.get(download_url(caller))
    assert reply.status_code == 302
    assert "/dashboard/login" in reply.headers["Location"]
    assert "Content-Disposition" not in reply.headers


def test_download_is_the_whole_call_named_after_it_without_secrets(operator, bw, app):
    caller, agent = transferred_call(bw)
    reply = operator.get(download_url(agent))  # from the agent's leg: the whole call
    assert reply.status_code == 200
    assert reply.headers["Content-Disposition"] == f'attachment; filename="{file_name(agent)}"'
    assert reply.mimetype == "text/x-python"
    assert reply.headers["Cache-Control"] == "no-store"
    text = reply.get_data(as_text=True)
    compile(text, file_name(agent), "exec")
    assert f'call_id="{caller}"' in text and f'"{agent}",' in text
    assert text.count("Callback(") == 3
    for secret in (CALLBACK_PASSWORD, DASHBOARD_PASSWORD, app.config["SECRET_KEY"]):
        assert secret not in text


def test_download_of_an_unknown_call_is_404(operator):
    assert operator.get(download_url("c-nothing-here")).status_code == 404

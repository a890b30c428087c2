"""The README's first flow and its test, run as a reader would copy them."""

from __future__ import annotations

import re

import bxml
from tests.callbacks.helpers import Bandwidth
from tests.servers import ROOT

README = (ROOT / "README.md").read_text()


def python_block_after(marker: str) -> str:
    start = README.index(marker)
    match = re.search(r"```python\n(.*?)```", README[start:], re.DOTALL)
    assert match, f"no python block after {marker!r}"
    return match.group(1)


def test_the_readme_flow_and_its_test_work_as_written(flow_module, monkeypatch, tmp_path):
    source = python_block_after("`my_ivr.py` next to `app.py`")
    module = flow_module(source)
    test_source = python_block_after("### Testing your call logic").replace("my_ivr", module)
    monkeypatch.chdir(tmp_path)  # create_app's instance folder and SQLite default stay here
    namespace: dict = {}
    exec(compile(test_source, "README.md", "exec"), namespace)  # noqa: S102  (our own README)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert tests
    for test in tests:
        test()


def test_the_readme_flow_answers_a_whole_call_through_the_routes(app_config, flow_module):
    from app import create_app

    module = flow_module(python_block_after("`my_ivr.py` next to `app.py`"))
    app = create_app({**app_config, "VOICE_FLOWS": module})
    bandwidth = Bandwidth(app.test_client())
    initiate = {
        "eventType": "initiate",
        "callId": "c-readme-1",
        "from": "+12025550199",
        "to": "+12025550123",
        "direction": "inbound",
        "accountId": "9900000",
        "applicationId": "a",
    }
    first = bxml.parse(bandwidth.post("initiate", initiate).data)
    tag = next(verb.text for verb in first if verb.name == "Tag")
    second = bxml.parse(
        bandwidth.post(
            "gather", {**initiate, "eventType": "gather", "digits": "2", "tag": tag}
        ).data
    )
    tag = next(verb.text for verb in second if verb.name == "Tag")
    third = bandwidth.post(
        "gather", {**initiate, "eventType": "gather", "digits": "1234", "tag": tag}
    ).get_data(as_text=True)
    assert "Order 1 2 3 4. Connecting you to support." in third
    [transfer] = [verb for verb in bxml.parse(third) if verb.name == "Transfer"]
    assert (
        transfer.attrs["transferCompleteUrl"] == "http://127.0.0.1:8000/callbacks/transferComplete"
    )

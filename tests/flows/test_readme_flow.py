"""The README's first flow and its test, run as a reader would copy them."""

from __future__ import annotations

import re
import subprocess
import sys

import bxml
from tests.callbacks.helpers import Bandwidth
from tests.servers import ROOT

README = (ROOT / "README.md").read_text()


def python_block_after(marker: str, index: int = 0) -> str:
    """The ``index``-th python block after ``marker`` (0: the first)."""
    start = README.index(marker)
    blocks = re.findall(r"```python\n(.*?)```", README[start:], re.DOTALL)
    assert len(blocks) > index, f"no python block {index} after {marker!r}"
    return str(blocks[index])


def test_the_readme_kit_test_passes_as_written(tmp_path):
    """The flow, the conftest.py and test_my_ivr.py of the README, copied into a folder of
    their own and run by pytest as a reader would."""
    (tmp_path / "my_ivr.py").write_text(python_block_after("`my_ivr.py` next to `app.py`"))
    (tmp_path / "conftest.py").write_text(python_block_after("### Testing your call logic"))
    (tmp_path / "test_my_ivr.py").write_text(python_block_after("### Testing your call logic", 1))
    (tmp_path / "test_sales.py").write_text(python_block_after("### Testing your call logic", 2))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tmp_path}:{ROOT}"},
    )
    out = result.stdout + result.stderr
    assert "2 passed" in out and "1 failed" in out, out
    # The failure the README shows is the one pytest prints (the call id aside).
    shown = re.search(r"```text\n(.*?)```", README[README.index("def test_sales") :], re.DOTALL)
    assert shown
    call_id = re.compile(r"c-[0-9a-f-]{40,}")
    for line in shown.group(1).splitlines():
        assert call_id.sub("CALL", line) in call_id.sub("CALL", out), line


def test_the_readme_flow_and_its_test_work_as_written(flow_module, monkeypatch, tmp_path):
    source = python_block_after("`my_ivr.py` next to `app.py`")
    module = flow_module(source)
    test_source = python_block_after("### Testing your call logic", 3).replace("my_ivr", module)
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

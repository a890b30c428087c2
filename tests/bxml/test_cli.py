"""``python -m bxml FILE...``: locations, exit codes, stdin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

GOOD = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <!-- a comment is fine -->
  <SpeakSentence voice="julie">Hello &amp; welcome</SpeakSentence>
  <Hangup/>
</Response>
"""
BAD = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <SpeakSentence>Hi</SpeakSentence>
  <Gather maxDigits="99"/>
</Response>
"""


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bxml", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_valid_files_exit_0_with_an_ok_line(tmp_path):
    good = tmp_path / "good.xml"
    good.write_text(GOOD)
    result = run(str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "OK: 1 file(s) valid BXML\n"


def test_problems_are_printed_with_file_and_line_and_exit_1(tmp_path):
    good, bad, broken = tmp_path / "good.xml", tmp_path / "bad.xml", tmp_path / "broken.xml"
    good.write_text(GOOD)
    bad.write_text(BAD)
    broken.write_text("<Response>\n<Hangup>\n</Response>")
    result = run(str(good), str(bad), str(broken), str(tmp_path / "missing.xml"))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{bad}:4: Gather: maxDigits must be between 1 and 50, got 99"
    assert lines[1].startswith(f"{broken}:3: not well-formed XML: Opening and ending tag mismatch")
    assert lines[2].startswith(f"{tmp_path / 'missing.xml'}: cannot read:")
    assert len(lines) == 3
    assert "3 of 4 file(s) invalid" in result.stderr


def test_stdin_and_reply_rules():
    doc = "<Response><Transfer><PhoneNumber>+15555550123</PhoneNumber></Transfer></Response>"
    assert run("-", stdin=doc).returncode == 0
    result = run("--event", "transferAnswer", "-", stdin=doc)
    assert result.returncode == 1
    assert result.stdout.startswith("<stdin>: transferAnswer: Transfer is not allowed")


def test_doctype_is_reported_with_its_line(tmp_path):
    evil = tmp_path / "evil.xml"
    evil.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n<Response/>'
    )
    result = run(str(evil))
    assert result.returncode == 1
    assert result.stdout == f"{evil}:2: DOCTYPE is not allowed (no DTDs, no entities)\n"


def test_usage_errors_exit_2():
    assert run().returncode == 2
    assert run("--event", "nonsense", "-").returncode == 2

"""Small pieces: ids and times, callee scripts, settings, the URL policy, the schema."""

from __future__ import annotations

import threading

import pytest

from sandbox import callee
from sandbox.db import SandboxDB
from sandbox.delivery import UrlPolicy
from sandbox.payloads import iso, iso_duration, new_call_id
from sandbox.settings import Settings, SettingsError


def test_ids_and_times_look_like_bandwidths():
    assert len(new_call_id()) == 47 and new_call_id().startswith("c-")
    assert iso(1561046065.435) == "2019-06-20T15:54:25.435Z"
    assert iso_duration(13.67) == "PT13.67S"


@pytest.mark.parametrize(
    ("number", "answer"),
    [
        ("+12025550123", "answer"),
        ("+12025550486", "busy"),
        ("+12025550408", "no-answer"),
        ("+12025550603", "reject"),
        ("sip:agent-603@pbx.example", "reject"),
    ],
)
def test_callee_by_number(number, answer):
    assert callee.by_number(number).answer == answer


@pytest.mark.parametrize(
    "script",
    [
        [],
        {"answer": "maybe"},
        {"gatherDigits": "12"},
        {"gatherDigits": ["1x"]},
        {"ringSeconds": -1},
        {"x": 1},
    ],
)
def test_bad_callee_scripts_are_refused(script):
    with pytest.raises(callee.ScriptError):
        callee.from_json(script)


def test_settings_are_checked():
    with pytest.raises(SettingsError, match="password"):
        Settings(database_url="sqlite://")
    with pytest.raises(SettingsError, match="SANDBOX_TIME_SCALE must be a float"):
        Settings.from_mapping({"SANDBOX_TIME_SCALE": "fast"}, database_url="x", password="p")
    settings = Settings.from_mapping(
        {},
        environ={"SANDBOX_CHALLENGE": "yes", "SANDBOX_TIME_SCALE": "0.5"},
        database_url="x",
        password="p",
    )
    assert settings.challenge is True and settings.scaled(4) == 2.0


def test_the_in_app_url_policy_allows_only_its_origin_and_loopback():
    policy = UrlPolicy(("https://app.example.com",))
    assert policy.problem("https://app.example.com/callbacks/answer") is None
    assert policy.problem("https://APP.example.com:443/x") is None
    assert policy.problem("http://127.0.0.1:9000/x") is None
    assert policy.problem("http://localhost/x") is None
    for bad in (
        "https://app.example.com.evil.example/x",
        "http://app.example.com/x",  # another scheme is another origin
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/x",
        "https://user:pw@app.example.com/x",
        "file:///etc/passwd",
    ):
        assert policy.problem(bad), bad
    assert UrlPolicy(None).problem("http://10.0.0.5/x") is None  # standalone drives anything


def test_workers_starting_together_create_the_tables_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    databases = [SandboxDB(url) for _ in range(4)]
    errors: list[BaseException] = []

    def migrate(db: SandboxDB) -> None:
        try:
            db.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in databases:
        db.dispose()
    assert errors == []


def test_the_sandbox_modules_import_each_other_in_one_direction():
    """No import cycle (counting imports for type checking): the driver runs the runner, the
    runner walks documents with the verb units, and none of them imports back up."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    modules: dict[str, set[tuple[str, str]]] = {}
    for path in (root / "sandbox").rglob("*.py"):
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        imported: set[tuple[str, str]] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.update((node.module, alias.name) for alias in node.names)
        modules[name] = imported
    graph = {}
    for name, pairs in modules.items():
        # ``from sandbox import callee`` imports the submodule, not the package's front
        deps = {f"{mod}.{item}" if f"{mod}.{item}" in modules else mod for mod, item in pairs}
        graph[name] = {dep for dep in deps if dep in modules and dep != name}
    assert "sandbox.runner" in graph["sandbox.driver"]

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for dep in graph[start]:
            if dep == goal or (dep not in seen and not seen.add(dep) and reaches(dep, goal, seen)):
                return True
        return False

    cycles = sorted(name for name in graph if reaches(name, name, set()))
    assert cycles == []

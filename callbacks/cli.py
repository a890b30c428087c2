"""``flask voice``: look at the app's flows from the command line.

flask --app app voice flows                 # each flow: numbers, handlers, default
flask --app app voice render answer.json    # the BXML the flows answer, side-effect free
flask --app app voice render --call c-1234  # the same for every stored callback of a call
flask --app app voice export-test c-1234    # the stored call as a regression test (pytest)
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from callbacks.dryrun import DryRun, dry_run
from callbacks.regression_export import (
    UnknownCall,
    file_name,
    recorded_call,
    source_of,
    unverified_tags,
)
from store import StoreUnavailable

voice_cli = AppGroup("voice", help="Call flows: list them, render their replies.")


@voice_cli.command("flows")
def list_flows() -> None:
    """List the app's flows, the numbers they answer and their handlers."""
    registry = current_app.extensions["flows"]
    default = registry.default
    for name, flow in sorted(registry.flows.items()):
        marks = [
            m
            for m, on in (("default", flow is default), ("built in", name in registry.builtin))
            if on
        ]
        click.echo(f"{name}{' (' + ', '.join(marks) + ')' if marks else ''}  [{flow.place}]")
        if flow.numbers:
            click.echo(f"  numbers: {', '.join(flow.numbers)}")
        if flow.application_ids:
            click.echo(f"  applications: {', '.join(flow.application_ids)}")
        click.echo(f"  handlers: {', '.join(sorted(flow.handlers)) or 'none'}")


@voice_cli.command("render")
@click.argument("payload_file", type=click.File("r"), required=False)
@click.option("--call", "call_id", help="Render every stored callback of this call instead.")
@click.option("--route", help="The callback route it arrived on (default: its event type).")
def render(payload_file: Any, call_id: str | None, route: str | None) -> None:
    """Print the BXML the flows answer to a callback payload (a JSON file, or - for stdin).

    Nothing is stored and no call is placed.  Exits 1 when a reply fails.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if call_id:
        rows = app.extensions["store"].events_for_call(call_id)
        if not rows:
            raise click.ClickException(f"no stored callbacks for call {call_id}")
        failed = False
        for row in rows:
            click.echo(f"--- {row.get('event_type')} at /callbacks/{row.get('route')}")
            failed |= _show(dry_run(app, row.get("payload"), row.get("route")))
        sys.exit(1 if failed else 0)
    if payload_file is None:
        raise click.UsageError("give a payload file (or -), or --call CALL_ID")
    try:
        payload = json.load(payload_file)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{payload_file.name} is not JSON: {exc}") from None
    sys.exit(1 if _show(dry_run(app, payload, route)) else 0)


@voice_cli.command("export-test")
@click.argument("call_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The file to write (default: test_call_<CALL_ID>.py here; - for stdout).",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
def export_test(call_id: str, output: str | None, force: bool) -> None:
    """Write stored call CALL_ID as a pytest file: its callbacks (every leg's) replayed
    against the current flows, side-effect free, each reply compared with the BXML the
    app answered then."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    path = output or file_name(call_id)
    if path != "-" and os.path.exists(path) and not force:
        raise click.ClickException(f"{path} exists; give --force to overwrite it")
    tag_log = logging.getLogger("callbacks.tags")
    level = tag_log.level
    tag_log.setLevel(logging.ERROR)  # one warning below, not a log line per tag on stdout
    try:
        call = recorded_call(app, call_id)
    except UnknownCall as exc:
        raise click.ClickException(str(exc)) from None
    except StoreUnavailable as exc:
        raise click.ClickException(f"the event store is unavailable: {exc}") from None
    finally:
        tag_log.setLevel(level)
    unverified = unverified_tags(call)
    if unverified:
        click.echo(
            f"warning: {unverified} signed tag(s) of the call do not verify with this app's "
            "SECRET_KEY, so the test cannot compare their state: run the command with the "
            "server's SECRET_KEY (or download the file from the dashboard's call page)",
            err=True,
        )
    loaded = app.extensions["flows"].flows
    missing = [name for name in call.flows if name not in loaded]
    if missing:
        click.echo(
            f"warning: the call was answered by flow(s) {', '.join(map(repr, missing))}, which "
            f"this app does not load (VOICE_FLOWS={app.config.get('VOICE_FLOWS') or ''}), so "
            "the test names the wrong modules: run the command with the server's VOICE_FLOWS "
            "(or download the file from the dashboard's call page)",
            err=True,
        )
    text = source_of(call, os.path.basename(path) if path != "-" else file_name(call_id))
    if path == "-":
        click.echo(text, nl=False)
        return
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)
    click.echo(
        f"wrote {path}: {len(call.callbacks)} callbacks of {len(call.legs)} leg(s); "
        f"run it with: python -m pytest {path}",
        err=True,
    )


def _show(result: DryRun) -> bool:
    """Print one result; True when it failed."""
    if result.flow:
        click.echo(f"flow: {result.flow}", err=True)
    for refusal in result.refused:
        click.echo(f"refused: {refusal}", err=True)
    if result.error:
        click.echo(f"error: {result.error}", err=True)
        if result.error_detail:
            click.echo(result.error_detail, err=True)
        return True
    click.echo(result.reply if result.reply is not None else "(asynchronous event: 204, no body)")
    return False

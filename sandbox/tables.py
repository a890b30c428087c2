"""The sandbox's tables (prefixed ``sandbox_``); ``sandbox.db`` says what each keeps and runs
the statements over them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, Index, Integer, MetaData, Table, Text, text

ID = BigInteger().with_variant(Integer(), "sqlite")
metadata = MetaData()

calls = Table(
    "sandbox_calls",
    metadata,
    Column("call_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("parent_call_id", Text),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("state", Text, nullable=False),  # queued / initiated / answered / disconnected
    Column("active", Integer, nullable=False),  # 1 until disconnected
    Column("to_number", Text, nullable=False),
    Column("from_number", Text, nullable=False),
    Column("request", Text, nullable=False),  # the create-call JSON (camelCase)
    Column("leg", Text, nullable=False),  # payloads.Leg as JSON (times, tag, ...)
    Column("disconnect_cause", Text),
    Column("error_message", Text),
    Column("error_id", Text),
    Column("activity", Text),  # what it is doing now, for the sandbox page
    Column("log", Text, nullable=False),  # JSON list of [epoch, text]
    Column("program", Text),  # JSON: where execution resumes
    Column("lease_owner", Text),
    Column("lease_expires", Double),
    Column("input_seen", BigInteger, nullable=False),
    Index("ix_sandbox_calls_active", "active", "lease_expires"),
    Index("ix_sandbox_calls_created_at", "created_at"),
    Index("ix_sandbox_calls_parent", "parent_call_id"),
)

inputs = Table(
    "sandbox_inputs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("call_id", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("kind", Text, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_sandbox_inputs_call_id", "call_id", "id"),
    # Ids only grow, even after the newest rows are deleted (finished calls' inputs are):
    # drivers read inputs past the highest id they saw, so a reused id would be lost.
    sqlite_autoincrement=True,
)

callees = Table(
    "sandbox_callees",
    metadata,
    Column("number", Text, primary_key=True),
    Column("script", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
)

applications = Table(
    "sandbox_applications",
    metadata,
    Column("application_id", Text, primary_key=True),
    Column("config", Text, nullable=False),  # JSON, the control API's camelCase body
    Column("updated_at", Double, nullable=False),
)

numbers = Table(
    "sandbox_numbers",
    metadata,
    Column("number", Text, primary_key=True),
    Column("application_id", Text, nullable=False),
    Index("ix_sandbox_numbers_application", "application_id"),
)

recordings = Table(
    "sandbox_recordings",
    metadata,
    Column("recording_id", Text, primary_key=True),
    Column("call_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("start_time", Double, nullable=False),
    Column("status", Text, nullable=False),  # processing / complete
    Column("media_deleted", Integer, nullable=False),
    Column("metadata", Text, nullable=False),  # JSON: callRecordingMetadata (camelCase)
    Column("transcription", Text),  # JSON: the transcript, when transcribed
    Index("ix_sandbox_recordings_call", "call_id"),
    Index("ix_sandbox_recordings_account", "account_id", "start_time"),
)

transcriptions = Table(
    "sandbox_transcriptions",
    metadata,
    Column("transcription_id", Text, primary_key=True),
    Column("call_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("data", Text, nullable=False),  # JSON: name and tracks
    Index("ix_sandbox_transcriptions_call", "call_id", "created_at"),
)

conferences = Table(
    "sandbox_conferences",
    metadata,
    Column("conference_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("completed_at", Double),
    Column("active", Integer, nullable=False),  # 1 until its last member left
    Column("config", Text, nullable=False),  # JSON: event hook, tag, timeout (the creator's)
    Column("state", Text, nullable=False),  # JSON: its recording, while one runs
    # One live conference per name and account: two calls joining a new name at once, in
    # different processes, end up in the same one.
    Index(
        "ux_sandbox_conferences_live",
        "account_id",
        "name",
        unique=True,
        sqlite_where=text("active = 1"),
        postgresql_where=text("active = 1"),
    ),
    Index("ix_sandbox_conferences_created", "account_id", "created_at"),
)

conference_members = Table(
    "sandbox_conference_members",
    metadata,
    Column("conference_id", Text, primary_key=True),
    Column("call_id", Text, primary_key=True),
    Column("joined_at", Double, nullable=False),
    Column("left_at", Double),
    Column("active", Integer, nullable=False),
    Column("details", Text, nullable=False),  # JSON: from, to, mute, hold, callIdsToCoach
    Index("ix_sandbox_conference_members_call", "call_id"),
)

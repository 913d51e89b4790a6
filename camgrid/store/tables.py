"""All tables. The single MetaData here is what Alembic migrations are checked against.

Times are stored as timezone-aware UTC. GB/T 28181 IDs are 20-character strings.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Devices that register to us: IPCs, NVRs, DVRs, lower platforms.
devices = Table(
    "devices",
    metadata,
    Column("id", String(20), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("manufacturer", String(100), nullable=False, default=""),
    Column("model", String(100), nullable=False, default=""),
    Column("firmware", String(100), nullable=False, default=""),
    # Digest secrets are never stored in clear: HA1 for each algorithm, for the realm noted.
    Column("ha1_md5", String(32), nullable=True),
    Column("ha1_sha256", String(64), nullable=True),
    Column("realm", String(20), nullable=True),
    Column("approval", String(10), nullable=False, default="approved"),  # approved | pending
    Column("status", String(10), nullable=False, default="offline"),  # online | offline
    Column("transport", String(4), nullable=True),  # udp | tcp
    Column("remote_addr", String(64), nullable=True),  # host:port the device reached us from
    Column("contact", String(300), nullable=True),
    Column("gb_version", String(8), nullable=True),
    Column("keepalive_interval_s", Integer, nullable=True),
    Column("keepalive_count", Integer, nullable=True),  # per-device HeartBeatCount; NULL = health.keepalive_count
    Column("register_expires_at", DateTime(timezone=True), nullable=True),
    Column("registered_at", DateTime(timezone=True), nullable=True),
    Column("last_seen_at", DateTime(timezone=True), nullable=True),
    Column("status_changed_at", DateTime(timezone=True), nullable=True),
    Column("channel_count", Integer, nullable=False, default=0),
    Column("catalog_partial", Boolean, nullable=False, default=False),
    Column("catalog_at", DateTime(timezone=True), nullable=True),
    # Operator-owned inventory attributes (import/export); a catalog never overwrites them.
    Column("civil_code", String(20), nullable=False, default=""),
    Column("address", String(300), nullable=False, default=""),
    Column("longitude", Float, nullable=True),
    Column("latitude", Float, nullable=True),
    Column("point_class", SmallInteger, nullable=True),  # 1 = class one, 2 = class two; new channels inherit it
    Column("organisation_id", String(20), nullable=True),  # new channels inherit it
    Column("extra", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_devices_status", devices.c.status)
Index("ix_devices_approval", devices.c.approval)

# Organisations: civil regions (GB/T 2260 codes), business groups (type 215),
# virtual organisations (type 216) and departments that own points.
organisations = Table(
    "organisations",
    metadata,
    Column("id", String(20), primary_key=True),
    Column("kind", String(16), nullable=False),  # region | business_group | virtual_org | department
    Column("name", String(200), nullable=False, default=""),
    Column("parent_id", String(20), nullable=True),
    Column("business_group_id", String(20), nullable=True),
    Column("source_device_id", String(20), nullable=True),  # the device whose catalog reported it
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_organisations_parent_id", organisations.c.parent_id)

# Channels: the video points (and alarm inputs etc.) a device reports in its catalog.
channels = Table(
    "channels",
    metadata,
    Column("pk", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(20), nullable=False),
    Column("device_id", String(20), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("manufacturer", String(100), nullable=False, default=""),
    Column("model", String(100), nullable=False, default=""),
    Column("owner", String(100), nullable=False, default=""),
    Column("civil_code", String(20), nullable=False, default=""),
    Column("block", String(100), nullable=False, default=""),
    Column("address", String(300), nullable=False, default=""),
    Column("parental", SmallInteger, nullable=False, default=0),
    Column("parent_id", String(20), nullable=True),
    Column("business_group_id", String(20), nullable=True),
    Column("safety_way", SmallInteger, nullable=True),
    Column("register_way", SmallInteger, nullable=True),
    Column("secrecy", SmallInteger, nullable=True),
    Column("ip_address", String(64), nullable=True),
    Column("port", Integer, nullable=True),
    Column("status", String(10), nullable=False, default="offline"),  # online | offline
    Column("fault", String(10), nullable=True),  # VLOST | DEFECT from catalog events
    Column("longitude", Float, nullable=True),
    Column("latitude", Float, nullable=True),
    Column("ptz_type", SmallInteger, nullable=True),
    Column("resolution", String(60), nullable=True),
    Column("point_class", SmallInteger, nullable=True),  # 1 = class one, 2 = class two
    Column("organisation_id", String(20), nullable=True),
    Column("type_code", String(3), nullable=False, default=""),  # digits 10-13 of the ID
    Column("extra", JSON, nullable=False, default=dict),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("device_id", "id", name="uq_channels_device_id_id"),
)
Index("ix_channels_id_pk", channels.c.id, channels.c.pk)
Index("ix_channels_status_id", channels.c.status, channels.c.id)
Index("ix_channels_civil_code", channels.c.civil_code)
Index("ix_channels_business_group_id", channels.c.business_group_id)
Index("ix_channels_parent_id", channels.c.parent_id)
Index("ix_channels_name", channels.c.name)
# The map (camgrid/api/routes/maps.py): a box is a range on longitude; covering, so a cell count reads no rows.
Index("ix_channels_lon_lat", channels.c.longitude, channels.c.latitude, channels.c.status, channels.c.device_id)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),  # argon2id
    Column("role", String(20), nullable=False),  # admin | operator | viewer
    Column("department_id", String(20), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_login_at", DateTime(timezone=True), nullable=True),
    Column("totp_secret", LargeBinary, nullable=True),  # sealed (camgrid.governance.totp); set before it is enabled
    Column("totp_enabled", Boolean, nullable=False, default=False),
    Column("totp_last_step", BigInteger, nullable=True),  # the last code's time step: no code is accepted twice
)

# Bearer tokens: only the SHA-256 of the token is stored.
tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
Index("ix_tokens_expires_at", tokens.c.expires_at)

# Every fact the platform publishes on its event bus, kept for the API and audits.
events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(64), nullable=False),  # e.g. device.online, device.offline, sip.ban
    Column("subject", String(64), nullable=False, default=""),  # usually a device or channel ID
    Column("data", JSON, nullable=False, default=dict),
)
Index("ix_events_at", events.c.at)
Index("ix_events_kind_at", events.c.kind, events.c.at)
Index("ix_events_subject_at", events.c.subject, events.c.at)

# Who did what through the API or CLI (views, exports, shares, admin changes).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False, default=""),
    Column("detail", JSON, nullable=False, default=dict),
    Column("source_addr", String(64), nullable=True),
)
Index("ix_audit_log_at", audit_log.c.at)


# Recorded footage on a media node's disk: one row per fMP4 segment file. A row's end_at and
# bytes only ever cover parts that were fsynced first, so the index never claims footage that
# is not on disk. Segments are at most MAX_SEGMENT_S long, which bounds the time-range scans.
recordings = Table(
    "recordings",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("channel_id", String(20), nullable=False),
    Column("device_id", String(20), nullable=False),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("path", String(400), nullable=False),  # relative to the node's recordings directory
    Column("codec", String(8), nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("state", String(12), nullable=False, default="open"),  # open | closed | recovered
    Column("audio_codec", String(8), nullable=True),  # aac | g711a | g711u; NULL: no audio track (0014)
    Column("node_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
# end_at and bytes ride along so that a months-long timeline is read from the index alone (0016)
Index("ix_recordings_channel_id_start_at", recordings.c.channel_id, recordings.c.start_at, recordings.c.end_at,
      recordings.c.bytes)
Index("ix_recordings_node_id_state", recordings.c.node_id, recordings.c.state)
Index("ix_recordings_end_at", recordings.c.end_at)

# What the platform records of a channel (continuous, on a weekly schedule, or not at all).
record_plans = Table(
    "record_plans",
    metadata,
    Column("channel_id", String(20), primary_key=True),
    Column("mode", String(12), nullable=False),  # continuous | schedule | off
    Column("schedule", JSON, nullable=False, default=list),  # [{"days": [0..6], "from": "08:00", "to": "18:00"}]
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False, default=""),
)

# Retention (how long footage is kept). A profile sets the ages; channels without a row in
# channel_retention use the built-in profile named "default" (created by migration 0006).
# max_age_days NULL = no age limit (only a low disk deletes); min_age_days: footage younger
# than this is never deleted, not even when the disk is full.
retention_profiles = Table(
    "retention_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("max_age_days", Integer, nullable=True),
    Column("min_age_days", Integer, nullable=False, default=0),
    Column("description", String(500), nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False, default=""),
)

channel_retention = Table(
    "channel_retention",
    metadata,
    Column("channel_id", String(20), primary_key=True),
    Column("profile_id", Integer, ForeignKey("retention_profiles.id", ondelete="RESTRICT"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False, default=""),
)
Index("ix_channel_retention_profile_id", channel_retention.c.profile_id)

# Legal holds: footage of a channel in [start_at, end_at) that no retention rule may delete
# while the hold is active (not released and `until` not passed; until NULL = indefinite).
legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel_id", String(20), nullable=False),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("case_ref", String(100), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("until", DateTime(timezone=True), nullable=True),
    Column("released_at", DateTime(timezone=True), nullable=True),
    Column("released_by", String(64), nullable=True),
    Column("release_reason", String(500), nullable=True),
)
Index("ix_legal_holds_channel_id_start_at", legal_holds.c.channel_id, legal_holds.c.start_at)
Index("ix_legal_holds_released_at", legal_holds.c.released_at)

# The last retention sweep of each media node: its disk figures and what it deleted, for the
# status API (the API may run on another machine than the node's disk).
retention_sweeps = Table(
    "retention_sweeps",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("result", JSON, nullable=False, default=dict),
)

# -- alarm centre (camgrid.ops.alarms) ---------------------------------------------------------
# One row per alarm; its id is stable for its whole life (work orders refer to it). open_key is
# the de-duplication key while the alarm is unresolved and NULL once resolved: at most one
# unresolved alarm per key, on every engine (NULLs never collide in a unique constraint).
alarms = Table(
    "alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedup_key", String(255), nullable=False),
    Column("open_key", String(255), nullable=True, unique=True),
    Column("type", String(64), nullable=False),  # e.g. alarm.video.motion, health.offline, vqd.blur
    Column("source", String(16), nullable=False),  # device | health | vqd | recording | media | platform
    Column("priority", SmallInteger, nullable=False),  # 1 (most urgent) .. 4, as GB/T 28181 AlarmPriority
    Column("state", String(16), nullable=False),  # open | acknowledged | dispatched | resolved
    Column("device_id", String(20), nullable=True),
    Column("channel_id", String(20), nullable=True),
    Column("title", String(300), nullable=False),
    Column("detail", JSON, nullable=False, default=dict),
    Column("count", Integer, nullable=False, default=1),
    Column("first_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
    Column("cleared_at", DateTime(timezone=True), nullable=True),  # the condition went away (kept for the workflow)
    Column("acknowledged_at", DateTime(timezone=True), nullable=True),
    Column("acknowledged_by", String(64), nullable=True),
    Column("dispatched_at", DateTime(timezone=True), nullable=True),
    Column("dispatched_by", String(64), nullable=True),
    Column("dispatched_to", String(100), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("resolved_by", String(64), nullable=True),
    Column("resolution", String(32), nullable=True),
)
Index("ix_alarms_state_priority", alarms.c.state, alarms.c.priority)
Index("ix_alarms_last_at", alarms.c.last_at)
Index("ix_alarms_device_id", alarms.c.device_id)
Index("ix_alarms_channel_id", alarms.c.channel_id)
Index("ix_alarms_dedup_key", alarms.c.dedup_key)

# Everything that happened to an alarm: raised, recurred, escalated, cleared, each workflow step
# and every note, with who and when.
alarm_history = Table(
    "alarm_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_id", Integer, ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),  # a username, or "system"
    Column("action", String(32), nullable=False),
    Column("note", String(2000), nullable=False, default=""),
    Column("data", JSON, nullable=False, default=dict),
)
Index("ix_alarm_history_alarm_id", alarm_history.c.alarm_id)

# A mark on a channel's recording timeline, set by an alarm linkage rule.
alarm_bookmarks = Table(
    "alarm_bookmarks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel_id", String(20), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("alarm_id", Integer, ForeignKey("alarms.id", ondelete="SET NULL"), nullable=True),
    Column("label", String(300), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_alarm_bookmarks_channel_id_at", alarm_bookmarks.c.channel_id, alarm_bookmarks.c.at)

# Notifications waiting to be delivered (webhook, MQTT), retried with backoff until delivered
# or given up; written in the same transaction as the change they announce.
alarm_outbox = Table(
    "alarm_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_id", Integer, nullable=True),
    Column("kind", String(16), nullable=False),  # webhook | mqtt
    Column("target", String(500), nullable=False),  # the URL, or the MQTT topic
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("last_error", String(500), nullable=True),
)
Index("ix_alarm_outbox_state_next_attempt_at", alarm_outbox.c.state, alarm_outbox.c.next_attempt_at)

# How far the alarm centre has read a source it tails (events media nodes write to the table).
alarm_sources = Table(
    "alarm_sources",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Availability of each channel per local day (camgrid.ops.rates): seconds observed, online and
# intact, the grouping it had that day, its measured resolution, and the state it ended the day
# in (what the next day starts from). Written once per closed day, with the group sums below in
# the same transaction.
rates_channel_daily = Table(
    "rates_channel_daily",
    metadata,
    Column("day", Date, nullable=False),
    Column("channel_id", String(20), nullable=False),
    Column("device_id", String(20), nullable=False),
    Column("point_class", SmallInteger, nullable=False, default=0),
    Column("organisation_id", String(20), nullable=False, default=""),
    Column("manufacturer", String(100), nullable=False, default=""),
    Column("type_code", String(3), nullable=False, default=""),
    Column("observed_s", Float, nullable=False),
    Column("online_s", Float, nullable=False),
    Column("intact_s", Float, nullable=False),
    Column("width", Integer, nullable=False, default=0),
    Column("height", Integer, nullable=False, default=0),
    Column("end_device_up", Boolean, nullable=False),
    Column("end_channel_up", Boolean, nullable=False),
    Column("end_faults", String(400), nullable=False, default=""),  # comma-separated open faults
    Column("present", Boolean, nullable=False, default=True),  # still in the registry at the day's end
    PrimaryKeyConstraint("day", "channel_id", name="pk_rates_channel_daily"),
)

# The same seconds summed per day, dimension (all | organisation | manufacturer | device_type),
# key and point class: what trends and group figures read, whatever the channel count.
rates_group_daily = Table(
    "rates_group_daily",
    metadata,
    Column("day", Date, nullable=False),
    Column("dimension", String(16), nullable=False),
    Column("key", String(100), nullable=False),
    Column("point_class", SmallInteger, nullable=False),
    Column("channels", Integer, nullable=False),
    Column("observed_s", Float, nullable=False),
    Column("online_s", Float, nullable=False),
    Column("intact_s", Float, nullable=False),
    Column("hd", Integer, nullable=False),  # channels whose measured resolution was HD
    Column("measured", Integer, nullable=False),  # channels with a measured resolution
    PrimaryKeyConstraint("day", "dimension", "key", "point_class", name="pk_rates_group_daily"),
)
Index("ix_rates_group_daily_dimension_day", rates_group_daily.c.dimension, rates_group_daily.c.day)

# Maintenance teams that work orders are assigned to (camgrid.ops.maintenance).
maintenance_teams = Table(
    "maintenance_teams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("contact", String(200), nullable=False, default=""),
    Column("members", JSON, nullable=False, default=list),  # usernames
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False, default=""),
)

# Work orders: a fault (usually an alarm) for a team to repair, with SLA deadlines. `active_alarm_id`
# holds the alarm's id while the order is active and NULL afterwards: one active order per alarm.
work_orders = Table(
    "work_orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_id", Integer, nullable=True),
    Column("active_alarm_id", Integer, nullable=True, unique=True),
    Column("dedup_key", String(255), nullable=True),  # the alarm's condition key: what "cleared" is checked on
    Column("type", String(64), nullable=False),
    Column("device_id", String(20), nullable=True),
    Column("channel_id", String(20), nullable=True),
    Column("title", String(300), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("verifiable", Boolean, nullable=False),  # the platform can see the fault clear
    Column("team_id", Integer, ForeignKey("maintenance_teams.id", ondelete="RESTRICT"), nullable=True),
    Column("assignee", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("assigned_at", DateTime(timezone=True), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("repaired_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("closed_by", String(64), nullable=True),
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
    Column("respond_due_at", DateTime(timezone=True), nullable=False),
    Column("resolve_due_at", DateTime(timezone=True), nullable=False),
    Column("respond_breached", Boolean, nullable=False, default=False),
    Column("resolve_breached", Boolean, nullable=False, default=False),
    Column("on_hold_since", DateTime(timezone=True), nullable=True),  # on hold: its SLA clocks are paused
    Column("hold_reason", String(300), nullable=True),
    Column("held_s", Float, nullable=False, default=0.0, server_default="0"),  # seconds on hold, ended holds
)
Index("ix_work_orders_state", work_orders.c.state)
Index("ix_work_orders_team_id_state", work_orders.c.team_id, work_orders.c.state)
Index("ix_work_orders_assignee_state", work_orders.c.assignee, work_orders.c.state)
Index("ix_work_orders_channel_id", work_orders.c.channel_id)

work_order_history = Table(
    "work_order_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("work_orders.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("note", String(2000), nullable=False, default=""),
    Column("data", JSON, nullable=False, default=dict),
)
Index("ix_work_order_history_order_id", work_order_history.c.order_id)

# Video quality diagnosis (camgrid.ops.vqd): one row per channel diagnosis (the history), each
# channel's state (open findings, reference picture, own thresholds), and the patrol's rounds.
vqd_results = Table(
    "vqd_results",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("channel_id", String(20), nullable=False),
    Column("device_id", String(20), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("round_id", Integer, nullable=True),
    Column("diagnosed", Boolean, nullable=False),  # False: no picture could be had (reason says why)
    Column("reason", String(300), nullable=False, default=""),
    Column("faults", JSON, nullable=False, default=list),  # [{"type", "score", "severity", ...}]
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("codec", String(16), nullable=True),
    Column("frames", Integer, nullable=False, default=0),
    Column("duration_s", Float, nullable=False, default=0.0),
    Column("stream", String(8), nullable=True),  # main | sub: which stream was diagnosed (NULL: main, before 0013)
)
Index("ix_vqd_results_channel_id_at", vqd_results.c.channel_id, vqd_results.c.at)
Index("ix_vqd_results_round_id", vqd_results.c.round_id)

vqd_channels = Table(
    "vqd_channels",
    metadata,
    Column("channel_id", String(20), primary_key=True),
    Column("last_at", DateTime(timezone=True), nullable=True),
    Column("last_result_id", BigInteger, nullable=True),
    Column("open_faults", JSON, nullable=False, default=list),  # fault types found by the last diagnosis
    Column("reference", LargeBinary, nullable=True),  # camgrid.ops.vqd.reference.Reference.to_bytes()
    Column("reference_at", DateTime(timezone=True), nullable=True),
    Column("reference_by", String(64), nullable=True),
    Column("thresholds", JSON, nullable=False, default=dict),  # this channel's own overrides
)

vqd_devices = Table(  # what the patrol learned about a device
    "vqd_devices",
    metadata,
    Column("device_id", String(20), primary_key=True),
    Column("substream_refused_at", DateTime(timezone=True), nullable=True),  # it refused the sub-stream then
    Column("substream_dialect", String(16), nullable=True),
    Column("substream_reason", String(300), nullable=True),
    Column("substream_ok_dialect", String(16), nullable=True),  # the selector it last served a sub-stream for (0015)
    Column("substream_ok_at", DateTime(timezone=True), nullable=True),
    Column("ptz_checked_at", DateTime(timezone=True), nullable=True),  # the last PTZ check of one of its channels
    Column("ptz_result", JSON, nullable=True),  # {"channel_id", "checked", "moved" | "why", "unresponsive"}
    # What an operator set for the device at runtime (console / API), over the configuration:
    Column("override_dialect", String(16), nullable=True),  # the sub-stream selector; NULL: the configured one
    Column("override_ptz_check", Boolean, nullable=True),  # PTZ check on / off for its channels; NULL: configured
    Column("override_by", String(64), nullable=True),
    Column("override_at", DateTime(timezone=True), nullable=True),
)

vqd_manufacturer_dialects = Table(  # an operator's sub-stream selector per manufacturer (0017), over the configuration's
    "vqd_manufacturer_dialects",
    metadata,
    Column("key", String(64), primary_key=True),  # lower-case; matches when part of the device's Manufacturer
    Column("dialect", String(16), nullable=False),
    Column("set_by", String(64), nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
)

vqd_rounds = Table(
    "vqd_rounds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("trigger", String(16), nullable=False),  # schedule | api | cli
    Column("by", String(64), nullable=False, default=""),
    Column("total", Integer, nullable=False, default=0),
    Column("diagnosed", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),  # no picture could be had
    Column("with_faults", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),  # device offline
)

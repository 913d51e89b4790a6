"""Typed settings. Every field carries a description; `camgrid config show` prints them.

Sources, lowest to highest priority: defaults, a YAML file (``<data_dir>/camgrid.yaml`` or
``--config``), environment variables ``CAMGRID__SECTION__FIELD`` (e.g. ``CAMGRID__SIP__PORT``),
then command-line flags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from camgrid.ops.vqd.thresholds import ThresholdPolicy

ENV_PREFIX = "CAMGRID__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SipSettings(_Section):
    id: str = Field(
        "34020000002000000001",
        description="This platform's 20-digit GB/T 28181 ID (type 200). Its first 10 digits are the SIP domain and digest realm.",
    )
    host: str = Field("0.0.0.0", description="Address the SIP listeners bind to.")
    port: int = Field(5060, ge=0, le=65535, description="SIP port for both UDP and TCP (0 picks a free port).")
    transports: list[Literal["udp", "tcp"]] = Field(["udp", "tcp"], description="Transports to listen on.")
    advertised_host: str | None = Field(
        None, description="Address put in Via/Contact when it differs from the bind address (NAT). Defaults to the address the peer reached us on."
    )
    max_message_bytes: int = Field(65536, ge=1024, description="Messages larger than this are refused (413 on TCP, dropped on UDP).")
    register_expires_min: int = Field(60, ge=10, description="Shortest registration accepted, in seconds (shorter requests get 423).")
    register_expires_max: int = Field(86400, ge=60, description="Longest registration granted, in seconds (longer requests are clamped).")
    overload_lag_s: float = Field(
        0.25, ge=0, description="Event-loop lag above which new REGISTERs are answered 503 with Retry-After (registration storms); 0 disables."
    )
    overload_retry_after_s: tuple[int, int] = Field(
        (30, 120), description="Range the Retry-After of an overload 503 is drawn from, in seconds (spreads the retries)."
    )
    nonce_ttl_s: int = Field(300, ge=10, description="How long a digest nonce stays valid, in seconds.")
    digest_algorithm: Literal["MD5", "SHA-256"] = Field(
        "MD5", description="Digest algorithm offered in the 401 challenge. Devices answering with either MD5 or SHA-256 are accepted."
    )
    digest_qop: bool = Field(True, description="Offer qop=auth in challenges. Devices that ignore qop are still accepted.")
    unknown_devices: Literal["refuse", "pending"] = Field(
        "refuse", description="What to do with a REGISTER from an ID that is not in the registry: refuse (403) or hold it as pending for an operator to approve."
    )
    ban_failures: int = Field(5, ge=1, description="Digest failures from one address or device ID within ban_window_s that trigger a temporary ban.")
    ban_window_s: int = Field(60, ge=1, description="Window in which digest failures are counted, in seconds.")
    ban_duration_s: int = Field(300, ge=1, description="How long a ban lasts, in seconds.")
    timezone: str = Field(
        "Asia/Shanghai", description="Zone of the local times GB/T 28181 carries (Date on REGISTER answers, AlarmTime, RecordInfo times)."
    )
    user_agent: str = Field("camgrid", description="Server / User-Agent header value.")
    gb_version: Literal["2.0", "3.0"] = Field("2.0", description="X-GB-Ver sent when the peer did not send one (2.0 = 2016 edition, 3.0 = 2022).")

    @field_validator("overload_retry_after_s")
    @classmethod
    def _retry_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1 <= low <= high:
            raise ValueError(f"overload_retry_after_s must be (low, high) with 1 <= low <= high, got {value}")
        return value

    @field_validator("id")
    @classmethod
    def _twenty_digits(cls, v: str) -> str:
        if len(v) != 20 or not v.isdigit():
            raise ValueError("the platform ID must be 20 digits, e.g. 34020000002000000001")
        return v

    @property
    def realm(self) -> str:
        return self.id[:10]


class HealthSettings(_Section):
    keepalive_interval_s: int = Field(60, ge=1, description="Keepalive interval assumed when a device does not state its own.")
    keepalive_count: int = Field(3, ge=1, description="Missed keepalives before a device is offline (timeout = interval x count).")
    restart_grace_s: int = Field(
        0, ge=0, description="Extra time after a platform start before stored-online devices may be marked offline. 0 means one full keepalive timeout."
    )
    flush_interval_s: float = Field(5.0, gt=0, description="How often queued last-seen times are written back to the database, in seconds.")
    last_seen_resolution_s: float = Field(
        300.0, ge=0, description="A device's stored last-seen time is rewritten only when the stored one is older than this, so a "
        "keepalive every 60 s costs one row write per 5 minutes, not one per keepalive. Status changes always store the exact "
        "time; the live value is in memory. 0 writes every flush."
    )
    sweep_interval_s: float = Field(1.0, gt=0, description="How often the timeout sweep runs, in seconds.")
    transition_batch_s: float = Field(
        0.2, ge=0, description="Online/offline changes are published at once and stored within this many seconds, so a "
        "registration storm costs one database transaction per batch, not one per device."
    )


class CatalogSettings(_Section):
    page_timeout_s: float = Field(15.0, gt=0, description="A paged answer (Catalog, RecordInfo) that stops arriving for this long is closed and flagged partial.")
    answer_timeout_s: float = Field(10.0, gt=0, description="How long to wait for a device's Response (DeviceInfo, DeviceStatus, DeviceControl, DeviceConfig) after it accepted the request.")
    subscribe_expires_s: int = Field(3600, ge=60, description="Catalog and alarm SUBSCRIBE duration; refreshed before it expires.")
    alarm_subscribe: bool = Field(
        True, description="Subscribe to each device's alarms (SUBSCRIBE, Event: presence, Query/Alarm for every priority and "
        "method) after it registers. Devices that refuse still send their alarms unasked; those are taken either way.")
    query_on_register: bool = Field(True, description="Ask a device for its catalog when it registers.")
    transaction_timeout_s: float = Field(32.0, gt=0, description="Timer F/B: how long a request may wait for a final answer.")


class HttpSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the HTTP API and console bind to.")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port (0 picks a free port).")
    token_ttl_s: int = Field(8 * 3600, ge=60, description="Lifetime of a bearer token, in seconds.")
    login_max_failures: int = Field(5, ge=1, description="Failed logins per username or address within login_window_s before login is throttled.")
    login_window_s: int = Field(300, ge=1, description="Window for counting failed logins, in seconds.")
    map_tile_url: str | None = Field(
        None, pattern=r"^(https?://[^\s]+|/[^\s]*)$",
        description="Map tiles the console's map draws under the points, as a URL template with {z}, {x} and {y} "
        "(e.g. http://tiles.example.local/{z}/{x}/{y}.png on the closed network, or a path on this server). "
        "Unset: a plain background with a latitude/longitude grid; nothing is ever loaded from the internet "
        "unless this names it. Its origin is added to the console's Content-Security-Policy (img-src).")
    map_tile_attribution: str = Field("", max_length=300, description="Attribution shown in the map's corner for the configured tiles.")


class StoreSettings(_Section):
    database_url: str | None = Field(
        None, description="SQLAlchemy URL. Unset means SQLite at <data_dir>/camgrid.db. PostgreSQL: postgresql+psycopg://user@host:5432/db"
    )


class MediaNodeRef(_Section):
    url: str = Field(description="Base URL of the node's API, e.g. http://10.0.0.5:8082.")
    secret: str = Field(min_length=16, description="The node's API secret (its --secret-file content).")


class MediaSettings(_Section):
    embedded: Literal["process", "inline", "off"] = Field(
        "process", description="How `camgrid serve` runs its own media node: a child process (default), inside the "
        "platform's process (tests, small sites), or not at all (only the nodes listed in `nodes`).")
    nodes: list[MediaNodeRef] = Field([], description="Further media nodes, each started with `camgrid media`.")
    host: str = Field("0.0.0.0", description="Address the RTP sockets bind to.")
    advertised_host: str | None = Field(
        None, description="Media address put in INVITE SDP (c=), when it differs from the address the device "
        "reaches the SIP port on (NAT, a public address in front of a LAN). Unset: the address facing the device.")
    rtp_ports: tuple[int, int] = Field((30000, 30999), description="Range of RTP ports for incoming streams, one per stream ((0, 0): any free port).")
    single_port: int | None = Field(
        None, ge=0, le=65535, description="Single-port mode: receive every UDP stream on this one port, routed by "
        "SSRC (one port to open in a firewall). Unset: one port per stream from rtp_ports. TCP streams keep their own ports.")
    http_host: str = Field("127.0.0.1", description="Address the node's API and live video (WebSocket) bind to.")
    http_port: int = Field(8082, ge=0, le=65535, description="Port of the node's API and live video (0 picks a free port).")
    public_url: str | None = Field(
        None, description="Base URL browsers use to reach this node's live video (ws:// or wss:// is derived "
        "from it). Unset: http://<http_host>:<http_port>.")
    transport: Literal["udp", "tcp-passive", "tcp-active"] = Field(
        "udp", description="How devices send RTP unless a request says otherwise: UDP, TCP where the device "
        "connects to us (passive), or TCP where we connect to the device (active, for devices behind NAT).")
    ssrc_strict: bool = Field(
        False, description="Drop RTP whose SSRC differs from the one offered. Off by default: many devices "
        "answer with their own SSRC.")
    invite_timeout_s: float = Field(10.0, gt=0, description="How long a device may take to answer an INVITE.")
    no_media_timeout_s: float = Field(
        10.0, gt=0, description="A stream that delivers no video for this long after the device accepted is "
        "torn down (BYE) with the reason found (no packets, SSRC mismatch, not PS, ...).")
    linger_s: float = Field(30.0, ge=0, description="A live stream ends (BYE) this long after its last viewer left.")
    jitter_latency_s: float = Field(0.2, gt=0, le=5, description="How long an out-of-order RTP packet is waited for before its gap counts as lost.")
    viewer_token_ttl_s: int = Field(60, ge=5, description="How long a viewer's live-video link stays valid for opening the stream.")
    recordings_dir: Path | None = Field(None, description="Where recorded segments are written. Unset: <data_dir>/recordings.")
    segment_s: float = Field(60.0, ge=2, le=3600, description="Length of a recorded segment file (cut at the next key frame).")
    part_s: float = Field(1.0, ge=0.2, le=10, description="Recorded video is written and fsynced in parts this long; a crash loses at most the part being gathered.")
    event_pre_s: float = Field(10.0, ge=0, le=120, description="Event recording: seconds kept from before the alarm.")
    event_post_s: float = Field(30.0, ge=1, le=3600, description="Event recording: seconds recorded after the last alarm.")
    recording_retry_s: float = Field(10.0, gt=0, description="How soon a channel that should be recording is asked for video again after its stream ended.")
    audio_transcode: bool = Field(
        True, description="Live audio for browsers: G.711 (which browsers cannot play) is transcoded to AAC while someone "
        "watches (about 0.1 % of a CPU core per watched stream). Off: G.711 streams are shown without sound. AAC is "
        "always passed through; recordings and exports keep the device's audio as it came.")


class RetentionSettings(_Section):
    """How a recording media node frees disk space. The ages themselves (max/min age per channel)
    are retention profiles in the database, managed through the API; these are the node's disk rules."""

    enabled: bool = Field(True, description="Run retention sweeps on each media node that records.")
    sweep_interval_s: float = Field(60.0, ge=1, description="How often a node deletes expired footage and checks its free space, in seconds.")
    min_free_percent: float = Field(
        5.0, ge=0, lt=100, description="Low water: when free space on the recordings' disk falls below the larger of this share "
        "of the disk and min_free_bytes, the oldest footage that may be deleted goes first (before its maximum age).")
    min_free_bytes: int = Field(1 << 30, ge=0, description="Low water in bytes (see min_free_percent).")
    target_free_percent: float = Field(
        10.0, ge=0, lt=100, validate_default=True, description="High water: footage is deleted for space until free space is at least the larger of "
        "this share of the disk and target_free_bytes.")
    target_free_bytes: int = Field(2 << 30, ge=0, validate_default=True, description="High water in bytes (see target_free_percent).")
    quota_bytes: int | None = Field(
        None, ge=1, description="Most bytes of recordings one node keeps. The free-space percentages above apply to it as to "
        "a disk of this size (so deleting starts before the quota is reached). Unset: only the disk's free space counts.")
    alarm_interval_s: float = Field(
        900.0, ge=0, description="A low-space alarm (recording.low_space) is raised at most this often while the condition "
        "lasts; a worse condition (nothing left that may be deleted) is raised at once.")
    batch_size: int = Field(500, ge=1, le=10_000, description="Segments read and deleted per database transaction.")
    orphan_grace_s: float = Field(
        86400.0, ge=600, description="A segment file with no index row (a node that died before writing its index), "
        "once unchanged this long, in seconds: indexed again when it is a whole segment of a known channel, moved to "
        "<recordings>/_quarantine when its channel is no longer in the registry, deleted when it holds no footage.")
    orphan_scan_interval_s: float = Field(
        6 * 3600.0, ge=60, description="How often the recent day directories are searched for orphan files; every "
        "directory is searched at the node's first sweep.")

    @field_validator("target_free_percent", "target_free_bytes")
    @classmethod
    def _high_above_low(cls, value: float, info: Any) -> float:  # info: pydantic.ValidationInfo
        low_name = "min_free_percent" if info.field_name == "target_free_percent" else "min_free_bytes"
        low = info.data.get(low_name)
        if low is not None and value < low:
            raise ValueError(f"{info.field_name} ({value}) must not be below {low_name} ({low}): deleting for space "
                             "stops at the target, so it has to be at or above the low water")
        return value

class AlarmWebhook(_Section):
    url: str = Field(pattern=r"^https?://", description="Where each notification is POSTed as JSON.")
    secret: str = Field(min_length=16, description="Key of the HMAC-SHA256 signature in the X-Camgrid-Signature header "
                        "(see docs/alarms.md); the receiver checks it with the same key.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="How long one delivery may take before it counts as failed.")


class AlarmMqtt(_Section):
    host: str = Field(description="MQTT broker host, e.g. 127.0.0.1.")
    port: int = Field(1883, ge=1, le=65535, description="MQTT broker port (1883 plain, 8883 with tls).")
    tls: bool = Field(False, description="Connect with TLS, checking the broker's certificate against the system's CAs.")
    username: str | None = Field(None, description="User name for the broker; unset: none.")
    password: str | None = Field(None, description="Password for the broker.")
    client_id: str = Field("", max_length=64, description="MQTT client id; empty: camgrid-<random>.")
    topic_prefix: str = Field("camgrid/alarms", min_length=1, description="Notifications go to <prefix>/<priority>/<type>, "
                              "e.g. camgrid/alarms/1/alarm.video.motion, QoS 1, not retained.")
    keepalive_s: int = Field(60, ge=5, description="MQTT keepalive.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="How long connecting or one publish (until PUBACK) may take.")


class AlarmLinkage(_Section):
    types: list[str] = Field(description="Alarm types this rule acts on: names or globs (alarm.*, vqd.*, health.offline).")
    channels: list[str] = Field([], description="Only alarms of these channels (empty: any channel).")
    max_priority: int = Field(4, ge=1, le=4, description="Only alarms this urgent or more (1 most urgent).")
    actions: list[Literal["record", "bookmark", "popup"]] = Field(
        description="record: trigger event recording (pre/post-event footage) on the record channels; bookmark: mark the "
        "time on the channel's recording timeline; popup: ask the console to open the channel's video.")
    record_channels: list[str] = Field([], description="Channels that record for the record action (empty: the alarm's own).")


class AlarmSettings(_Section):
    enabled: bool = Field(True, description="Run the alarm centre: turn events into alarms, notify, link.")
    flap_window_s: float = Field(600.0, gt=0, description="Window in which a device's offline transitions are counted for flapping.")
    flap_threshold: int = Field(
        4, ge=2, description="A device that goes offline this many times within flap_window_s is flapping: one health.flapping "
        "alarm, and no new offline alarms for it until it is stable.")
    flap_stable_s: float = Field(600.0, gt=0, description="A flapping device with no transition for this long is stable again "
                                 "(its flapping alarm clears; if it is offline then, a normal offline alarm follows).")
    priority_overrides: dict[str, int] = Field(
        {}, description="Priority (1 most urgent .. 4) per alarm type or glob, over the built-in one, e.g. {\"vqd.*\": 3}.")
    ignore_types: list[str] = Field([], description="Alarm types (names or globs) never raised, e.g. [\"recording.gap\"].")
    auto_resolve_on_clear: list[str] = Field(
        ["health.*", "media.*", "vqd.*"], description="Alarm types resolved by the system when their condition clears while "
        "nobody has acknowledged them yet; others stay in the workflow, marked cleared, until a person resolves them.")
    media_alarm_reasons: list[str] = Field(
        ["no video", "no media", "media node"], description="A media.stream_ended whose reason starts with one of these raises "
        "an alarm (the rest are normal ends: no viewers, the device's BYE, an operator).")
    table_kinds: list[str] = Field(
        ["recording.gap", "recording.write_failed", "recording.low_space"], description="Event kinds media nodes write straight "
        "to the events table (not on this process's bus); the centre reads them from there.")
    table_poll_s: float = Field(5.0, gt=0, description="How often the events table is read for table_kinds.")
    batch_size: int = Field(1000, ge=1, description="Events handled per database transaction.")
    max_buffer: int = Field(100_000, ge=1000, description="Events waiting to be handled beyond this are dropped (oldest first, counted).")
    webhooks: list[AlarmWebhook] = Field([], description="Webhook receivers; empty: none.")
    mqtt: AlarmMqtt | None = Field(None, description="MQTT broker to publish notifications to; unset: none.")
    notify_events: list[Literal["raised", "recurred", "escalated", "cleared", "acknowledged", "dispatched", "resolved"]] = Field(
        ["raised", "recurred", "escalated", "cleared", "acknowledged", "dispatched", "resolved"],
        description="Which changes of an alarm are notified (repeats of an open alarm never are).")
    notify_max_priority: int = Field(4, ge=1, le=4, description="Only alarms this urgent or more are notified (1 most urgent).")
    retry_base_s: float = Field(1.0, gt=0, description="First retry of a failed delivery after about this long; doubled each time.")
    retry_max_s: float = Field(300.0, gt=0, description="Longest wait between two attempts of one delivery.")
    give_up_after_s: float = Field(86400.0, gt=0, description="A delivery still failing this long after it was queued is given up "
                                   "(counted, kept as failed; POST /alarms/notifications/retry queues it again).")
    delivery_concurrency: int = Field(8, ge=1, le=256, description="Deliveries in flight at once.")
    keep_delivered_s: float = Field(86400.0, ge=0, description="Delivered notifications are kept this long, then deleted.")
    linkage: list[AlarmLinkage] = Field(
        default_factory=lambda: [AlarmLinkage(types=["alarm.*"], actions=["bookmark", "popup"])],
        description="Linkage rules: what happens when an alarm is raised (or comes back). Default: device alarms are "
        "bookmarked on the channel's timeline and pop up in the console.")

    @field_validator("priority_overrides")
    @classmethod
    def _priorities(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if not 1 <= v <= 4}
        if bad:
            raise ValueError(f"priorities are 1 (most urgent) to 4, not {bad}")
        return value


class RatesSettings(_Section):
    """Online, intactness and HD rates: how days are cut and what counts as HD (docs/rates.md)."""

    timezone: str = Field("Asia/Shanghai", description="Zone whose local days the rates are counted in (a day closes at its local midnight).")
    hd_min_height: int = Field(720, ge=1, description="A channel is HD when its measured video has at least this many lines (720: 1280x720 and above).")
    backfill_days: int = Field(
        7, ge=0, le=400, description="After downtime, closed days missed are rebuilt from the recorded events, at most this many days back.")
    refresh_s: float = Field(600.0, ge=5, description="How often the whole registry is re-read for groupings and channels added without an event, in seconds.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai or UTC)") from exc
        return value


class SlaSettings(_Section):
    respond_s: float = Field(gt=0, description="Seconds from opening until the work is started.")
    resolve_s: float = Field(gt=0, description="Seconds from opening until the work order is closed (the fault cleared).")


class MaintenanceRoute(_Section):
    team: str = Field(min_length=1, max_length=64, description="The team (by name) that gets these work orders.")
    types: list[str] = Field(["*"], description="Fault (alarm) types or globs, e.g. [\"vqd.*\", \"health.offline\"].")
    civil_prefixes: list[str] = Field([], description="Only faults whose channel's (else device's) civil code starts with one of these.")
    organisations: list[str] = Field([], description="Only faults whose channel (else device) belongs to one of these organisations.")


class MaintenanceSettings(_Section):
    """Work orders: which faults open one by themselves, who gets them, and the SLA (docs/maintenance.md)."""

    enabled: bool = Field(True, description="Open work orders automatically, check repairs, watch SLA deadlines.")
    auto_open_types: list[str] = Field(
        ["health.offline", "health.flapping", "health.video_lost", "vqd.*"],
        description="Alarm types (or globs) that open a work order by themselves when still there after auto_open_after_s.")
    auto_open_after_s: float = Field(
        600.0, ge=0, description="How long an alarm must stay (unresolved, not cleared) before it opens a work order: "
        "a camera back after a short outage needs no technician.")
    verify_types: list[str] = Field(
        ["health.*", "vqd.*", "media.*", "recording.interrupted", "recording.missed"],
        description="Faults the platform sees clear; their work orders close only when it does. Others close on the repair.")
    verify_timeout_s: float = Field(
        3600.0, gt=0, description="A repaired work order whose fault is still there after this long goes back in progress.")
    sla: dict[int, SlaSettings] = Field(
        {1: SlaSettings(respond_s=1800, resolve_s=4 * 3600), 2: SlaSettings(respond_s=3600, resolve_s=24 * 3600),
         3: SlaSettings(respond_s=4 * 3600, resolve_s=72 * 3600), 4: SlaSettings(respond_s=24 * 3600, resolve_s=7 * 86400)},
        description="Deadlines per priority (1 most urgent): respond (started) and resolve (closed), in seconds.")
    routes: list[MaintenanceRoute] = Field([], description="Which team gets which faults; the first route that matches wins.")
    default_team: str = Field("", max_length=64, description="The team for faults no route takes (empty: unassigned).")
    poll_s: float = Field(5.0, gt=0, description="How often alarms, repairs and deadlines are checked, in seconds.")

    def sla_for(self, priority: int) -> "SlaSettings":
        return self.sla.get(priority) or self.sla[max(self.sla)]


StreamDialect = Literal["none", "streamnumber", "streamprofile", "stream", "streammode", "all"]


class VqdSubstream(_Section):
    """How the patrol asks devices for their sub-stream (docs/vqd-patrol.md). GB/T 28181 has no one
    way: platforms put a selector in the Play INVITE's SDP and devices honour their vendor's."""

    dialect: StreamDialect = Field(
        "all", description="The selector for devices not named below: streamnumber (a=streamnumber:1, GB/T 28181-2022 "
        "and many devices), streamprofile (a=streamprofile:1, Hikvision-style), stream (a=stream:1, Dahua-style), "
        "streammode (a=streamMode:sub, TP-LINK), all (every one: devices ignore what they do not know), none (main stream).")
    devices: dict[str, StreamDialect] = Field({}, description="The selector per device ID, over the manufacturer's and the default.")
    manufacturers: dict[str, StreamDialect] = Field(
        {}, description="The selector per manufacturer: a key matches when it is part of the device's reported "
        "Manufacturer, case ignored (e.g. {\"hikvision\": \"streamprofile\", \"dahua\": \"stream\"}).")
    retry_after_s: float = Field(
        7 * 86400.0, ge=0, description="A device that refused the sub-stream (or sent no video on it) gets the main "
        "stream; it is asked for the sub-stream again after this long (a firmware update may have taught it).")

    def dialect_for(self, device_id: str, manufacturer: str = "") -> str:
        if device_id in self.devices:
            return self.devices[device_id]
        made_by = (manufacturer or "").lower()
        for key, dialect in self.manufacturers.items():
            if key and key.lower() in made_by:
                return dialect
        return self.dialect


class VqdPtzCheck(_Section):
    """Whether PTZ cameras still obey (ptz_unresponsive): opt-in per channel, off by default (docs/vqd-patrol.md)."""

    channels: list[str] = Field(
        [], description="Channel IDs (or globs) whose PTZ the patrol checks; only channels whose catalog PTZType is "
        "1 (dome), 2 (half-dome) or 4 (remote-controlled fixed) are moved.")
    groups: list[str] = Field([], description="Organisation IDs whose PTZ channels the patrol checks.")
    pan_speed: int = Field(64, ge=1, le=255, description="Pan speed of the test move (PTZCmd byte 5).")
    move_s: float = Field(1.0, gt=0, le=10, description="How long the test move lasts before the stop.")
    operator_quiet_s: float = Field(
        300.0, ge=0, description="A camera someone moved from the console (a command.ptz in the audit log) this "
        "recently is left alone: the check is skipped for this round.")
    presets: dict[str, int] = Field(
        {}, description="Channel ID → preset called to return the camera after the check; without one the camera "
        "is moved back the opposite way for as long.")

    def wants(self, channel_id: str, organisation_id: str | None) -> bool:
        import fnmatch

        return (any(p == channel_id or fnmatch.fnmatchcase(channel_id, p) for p in self.channels)
                or bool(organisation_id and organisation_id in self.groups))


class VqdSettings(_Section):
    """Video quality diagnosis patrol: how often and how gently every channel is looked at (docs/vqd.md)."""

    patrol: bool = Field(True, description="Diagnose every channel of an online device in rounds.")
    first_round_after_s: float = Field(600.0, ge=0, description="The first round starts this long after the platform starts.")
    round_interval_s: float = Field(
        4 * 3600.0, ge=60, description="A round starts this long after the previous one started (none while one is running).")
    concurrency: int = Field(2, ge=1, le=64, description="Channels diagnosed at the same time: streams the patrol holds open at once.")
    per_device: int = Field(1, ge=1, le=16, description="Channels of one device (an NVR) diagnosed at the same time.")
    sample_s: float = Field(4.0, ge=1, le=30, description="Seconds of video read per diagnosis (a few key frames and the last GOP).")
    first_frame_s: float = Field(10.0, gt=0, le=60, description="How long a stream may take to show video before it counts as signal loss.")
    auto_reference: bool = Field(
        True, description="A channel without a reference picture gets one from its first diagnosis without faults "
        "(scene_change is judged against it).")
    thresholds: ThresholdPolicy = Field(
        default_factory=ThresholdPolicy, description="Detector thresholds: defaults, overrides per group (an organisation "
        "ID) and per channel ID; see `camgrid vqd diagnose --help` and docs/vqd.md.")
    substream: VqdSubstream = Field(
        default_factory=VqdSubstream, description="Asking devices for their sub-stream when the patrol opens a stream itself.")
    ptz_check: VqdPtzCheck = Field(default_factory=VqdPtzCheck, description="Checking that PTZ cameras obey (opt-in).")


class Settings(_Section):
    data_dir: Path = Field(Path("./data"), description="Directory for the database, recordings and state. Nothing is written outside it.")
    sip: SipSettings = Field(default_factory=SipSettings, description="SIP / GB/T 28181 signaling.")
    health: HealthSettings = Field(default_factory=HealthSettings, description="Online/offline detection.")
    catalog: CatalogSettings = Field(default_factory=CatalogSettings, description="Device queries, commands and catalog subscriptions.")
    http: HttpSettings = Field(default_factory=HttpSettings, description="HTTP API and console.")
    store: StoreSettings = Field(default_factory=StoreSettings, description="Database.")
    media: MediaSettings = Field(default_factory=MediaSettings, description="Media nodes: live video, RTP ingest.")
    retention: RetentionSettings = Field(default_factory=RetentionSettings, description="Deleting old footage and keeping disk space free.")
    alarms: AlarmSettings = Field(default_factory=AlarmSettings, description="Alarm centre: alarms, notifications, linkage.")
    rates: RatesSettings = Field(default_factory=RatesSettings, description="Online, intactness and HD rates.")
    maintenance: MaintenanceSettings = Field(default_factory=MaintenanceSettings, description="Maintenance work orders and their SLA.")
    vqd: VqdSettings = Field(default_factory=VqdSettings, description="Video quality diagnosis patrol.")

    @property
    def export_key_file(self) -> Path:
        """The key that signs export manifests (created on first use, owner-only)."""
        return self.data_dir / "keys" / "export.key"

    @property
    def totp_key_file(self) -> Path:
        """The key that seals users' TOTP secrets in the database (created on first use, owner-only)."""
        return self.data_dir / "keys" / "totp.key"

    @property
    def recordings_dir(self) -> Path:
        return self.media.recordings_dir or self.data_dir / "recordings"

    @property
    def database_url(self) -> str:
        if self.store.database_url:
            return self.store.database_url
        return f"sqlite:///{(self.data_dir / 'camgrid.db').resolve()}"


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX):].split("__") if p]
        if not path:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = yaml.safe_load(value) if value else value
    return out


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def load_settings(
    data_dir: Path | str | None = None,
    config_file: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build settings from defaults, YAML, environment and explicit overrides (in that order)."""
    environ = dict(os.environ) if environ is None else environ
    layers: dict[str, Any] = {}
    env = _env_overrides(environ)
    dd = Path(data_dir) if data_dir else Path(env.get("data_dir", "./data"))
    path = Path(config_file) if config_file else dd / "camgrid.yaml"
    if path.exists():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        layers = _merge(layers, loaded)
    elif config_file:
        raise FileNotFoundError(f"config file {path} does not exist")
    layers = _merge(layers, env)
    layers = _merge(layers, overrides or {})
    layers["data_dir"] = str(dd)
    return Settings.model_validate(layers)


def describe(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted name, type, description) for every field, for docs and `config show --help`."""
    rows = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(describe(ann, f"{prefix}{name}."))
        else:
            rows.append((f"{prefix}{name}", getattr(ann, "__name__", str(ann)), field.description or ""))
    return rows

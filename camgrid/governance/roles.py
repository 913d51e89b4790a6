"""Roles and the permissions each grants. Routes state the permission they need; nothing else
decides access."""

from __future__ import annotations

ACCOUNT_SELF = "account:self"  # see and change one's own account; allowed while a password change is due
DEVICES_READ = "devices:read"
DEVICES_WRITE = "devices:write"
CHANNELS_READ = "channels:read"
COMMANDS_PTZ = "commands:ptz"
COMMANDS_DEVICE = "commands:device"
EVENTS_READ = "events:read"
HEALTH_READ = "health:read"
METRICS_READ = "metrics:read"
USERS_ADMIN = "users:admin"
VIDEO_LIVE = "video:live"  # watch live video (every view is audited)
RECORDINGS_MANAGE = "recordings:manage"  # decide what is recorded
VIDEO_PLAYBACK = "video:playback"  # watch recorded video (every view is audited)
VIDEO_EXPORT = "video:export"  # export footage as files, with a reason (audited)
RETENTION_MANAGE = "retention:manage"  # retention profiles and legal holds (admin)
ALARMS_READ = "alarms:read"  # see alarms, their history, the live alarm stream, bookmarks
ALARMS_HANDLE = "alarms:handle"  # acknowledge, dispatch, resolve alarms, add notes (audited)
ALARMS_CONFIGURE = "alarms:configure"  # notification status, test sends, re-queue given-up deliveries
MAINTENANCE_READ = "maintenance:read"  # see work orders, their history and SLA, and the teams
MAINTENANCE_HANDLE = "maintenance:handle"  # open, assign, start, record repairs, cancel work orders (audited)
MAINTENANCE_CONFIGURE = "maintenance:configure"  # maintenance teams and their members
VQD_MANAGE = "vqd:manage"  # run patrol rounds and diagnoses now, set reference pictures and thresholds (audited)

ALL_PERMISSIONS = frozenset({
    ACCOUNT_SELF, DEVICES_READ, DEVICES_WRITE, CHANNELS_READ, COMMANDS_PTZ, COMMANDS_DEVICE,
    EVENTS_READ, HEALTH_READ, METRICS_READ, USERS_ADMIN, VIDEO_LIVE, RECORDINGS_MANAGE, VIDEO_PLAYBACK, VIDEO_EXPORT, RETENTION_MANAGE,
    ALARMS_READ, ALARMS_HANDLE, ALARMS_CONFIGURE, MAINTENANCE_READ, MAINTENANCE_HANDLE, MAINTENANCE_CONFIGURE,
    VQD_MANAGE,
})

_VIEWER = frozenset({ACCOUNT_SELF, DEVICES_READ, CHANNELS_READ, EVENTS_READ, HEALTH_READ, VIDEO_LIVE, VIDEO_PLAYBACK,
                     ALARMS_READ, MAINTENANCE_READ})
_OPERATOR = _VIEWER | {COMMANDS_PTZ, COMMANDS_DEVICE, METRICS_READ, RECORDINGS_MANAGE, VIDEO_EXPORT, ALARMS_HANDLE,
                       MAINTENANCE_HANDLE, VQD_MANAGE}
# Field technicians: their work orders and the video that shows whether the repair worked; no PTZ or exports.
_MAINTAINER = frozenset({ACCOUNT_SELF, DEVICES_READ, CHANNELS_READ, HEALTH_READ, VIDEO_LIVE, ALARMS_READ,
                         MAINTENANCE_READ, MAINTENANCE_HANDLE, VQD_MANAGE})  # a fresh diagnosis shows the repair worked

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": _VIEWER,
    "operator": frozenset(_OPERATOR),
    "maintainer": _MAINTAINER,
    "admin": ALL_PERMISSIONS,
}
ROLES = tuple(ROLE_PERMISSIONS)


def has_permission(role: str, permission: str) -> bool:
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return permission in ROLE_PERMISSIONS.get(role, frozenset())

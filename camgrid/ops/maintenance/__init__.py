"""Maintenance: work orders opened from alarms, assigned to teams, with SLA deadlines, closed only
when the fault has cleared (docs/maintenance.md)."""

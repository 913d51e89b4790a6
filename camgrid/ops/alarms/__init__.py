"""The alarm centre: one model for alarms from devices, health, VQD, recording and media, with
de-duplication, flap suppression, priorities, the acknowledge → dispatch → resolve workflow,
linkage (bookmarks, event recording, console pop-ups) and notifications (webhook, MQTT).
See docs/alarms.md."""

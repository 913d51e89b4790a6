"""Registry: devices, channels, organisations, inventory import/export and the online-state machine."""

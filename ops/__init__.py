"""The operators' console: the festival's live state from MQTT, alerts, a LAN web page."""

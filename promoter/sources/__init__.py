"""Webhook sources: adapters that turn what registries, CI and monitoring send into events."""

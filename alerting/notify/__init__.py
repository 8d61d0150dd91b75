"""Telling people: one Notifier per channel type, made by the registry in registry.py."""

"""Kopf handlers. Importing this package registers them with Kopf's default registry."""

from perfguard.handlers import kinds, lifecycle

__all__ = ["kinds", "lifecycle"]

"""Placeholder: filled in by the converter work (issue #5)."""

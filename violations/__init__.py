"""Violations: the data model, import, late fees and lookup."""

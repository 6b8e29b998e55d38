"""Tests for the staff console, the reconciliation, the settlement feed and the audit chain."""

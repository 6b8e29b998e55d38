"""Kiosk lookups: counted per terminal, with the same per-client budget and per-plate counters as the web.

A kiosk is one client however many drivers use it, so its VIN keypad counts
against its terminal rather than its address; the per-plate budget is kept by
violations.services.prove_vehicle, so guessing at a kiosk costs the same as online.
"""
from flask import g

from violations import limits


def _terminal_key():
    return f"terminal:{g.kiosk_terminal.id}"


def limited(view):
    """Count every POST to ``view`` against the terminal's lookup budget."""
    return limits.limited(view, key_func=_terminal_key)

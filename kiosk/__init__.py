"""Kiosk terminals (see the kiosk issue)."""

"""Kiosk terminals: enrolled self-service machines where a driver looks up and pays fines on a touch screen."""

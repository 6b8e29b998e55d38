"""FinePay: pay traffic fines online or at a kiosk, reconciled every day.

This package is the base every area shares (settings, extensions, errors, audit log, languages,
observability); it imports no area. finepay.app.create_app puts the base and the areas together.
"""

"""The production entry point: gunicorn wsgi:app"""
from finepay.app import create_app

app = create_app()

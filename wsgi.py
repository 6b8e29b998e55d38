"""The production entry point: gunicorn wsgi:app"""
from finepay import create_app

app = create_app()

"""WSGI entry point: `gunicorn wsgi:app`."""

from microsite import create_app

app = create_app()

"""WSGI entry point: ``flask --app wsgi ...`` or any WSGI server."""

from impexmod import create_app

app = create_app()

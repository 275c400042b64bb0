"""Project configuration: settings, root URLs, WSGI and ASGI entry points."""

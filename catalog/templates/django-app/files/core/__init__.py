"""The core app: notes, the home page and the health check."""

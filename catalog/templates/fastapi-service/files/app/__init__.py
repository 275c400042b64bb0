"""{{PROJECT_NAME}}: {{DESCRIPTION}}."""

__version__ = "0.1.0"

"""Database migrations of the core app (`python manage.py makemigrations core`)."""

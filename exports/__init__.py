"""Data exports: a user's own data, and a room's history for an admin, built by a Celery task."""

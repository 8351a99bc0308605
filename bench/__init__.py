"""Benchmarks of the chat server against the Django Channels tutorial chat (``python -m bench``)."""

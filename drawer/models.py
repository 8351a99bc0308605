"""The talk drawer: each user's saved important messages (see drawer/services.py)."""

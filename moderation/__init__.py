"""Moderation: users report messages; moderators work the report queue and sanction accounts.

The sanctions' state lives where it is enforced (a room mute and a room ban in rooms, a
suspension in accounts); this app holds the reports and the moderator's actions over them.
"""

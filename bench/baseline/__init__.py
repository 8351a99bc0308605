"""The baseline: the Django Channels tutorial chat, as the tutorial writes it.

An ``AsyncWebsocketConsumer`` per socket, ``channels_redis`` ``RedisChannelLayer`` group_send to
the room, no authentication beyond the tutorial's middleware stack, no persistence. It runs under
daphne with the same flags, pinning and Redis as the product, so one command measures both.
"""

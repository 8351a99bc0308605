"""Real-time delivery: the Redis fan-out hub and group names (`hub`), the protocol's shared names: frames, ids, close codes (`protocol`), per-user limits in Redis (`limits`)."""

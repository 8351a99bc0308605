"""STOMP 1.0-1.2 over WebSocket and SockJS at /stomp/chat: the seed's protocol (docs/stomp.md)."""

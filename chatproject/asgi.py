"""ASGI entry point: HTTP through Django, WebSockets at /ws/chat/; STOMP at /stomp/chat (docs/stomp.md)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
django_asgi_app = get_asgi_application()

import autobahn.util  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from accounts.ws_auth import WebSocketAuthMiddleware  # noqa: E402
from chat_messages.consumers import ChatConsumer  # noqa: E402
from stomp.sockjs import sockjs_http  # noqa: E402
from stomp.transports import SockJSWebSocketConsumer, StompWebSocketConsumer  # noqa: E402
from streams.runtime import gc_tune  # noqa: E402

# autobahn builds a coloured debug line for every frame it writes, even with debug logging off;
# without click's colours that costs a plain string format instead.
autobahn.util._HAS_CLICK = False

application = ProtocolTypeRouter(
    {
        "http": sockjs_http(django_asgi_app),
        "websocket": WebSocketAuthMiddleware(
            URLRouter(
                [
                    path("ws/chat/", ChatConsumer.as_asgi()),
                    path("stomp/chat/websocket", StompWebSocketConsumer.as_asgi()),
                    re_path(
                        r"^stomp/chat/(?P<server>[^/.]+)/(?P<session>[^/.]+)/websocket$",
                        SockJSWebSocketConsumer.as_asgi(),
                    ),
                ]
            )
        ),
    }
)

# Everything the server needs is imported by now; see gc_tune for why.
gc_tune()

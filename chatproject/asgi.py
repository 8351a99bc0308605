"""ASGI entry point: HTTP through Django, WebSockets at /ws/chat/."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
django_asgi_app = get_asgi_application()

import autobahn.util  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from accounts.ws_auth import WebSocketAuthMiddleware  # noqa: E402
from chat_messages.consumers import ChatConsumer  # noqa: E402
from streams.runtime import gc_tune  # noqa: E402

# autobahn builds a coloured debug line for every frame it writes, even with debug logging off;
# without click's colours that costs a plain string format instead.
autobahn.util._HAS_CLICK = False

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebSocketAuthMiddleware(URLRouter([path("ws/chat/", ChatConsumer.as_asgi())])),
    }
)

# Everything the server needs is imported by now; see gc_tune for why.
gc_tune()

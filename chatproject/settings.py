"""Settings of the chat server, all read from the environment (see README.md for the list).

Where DATABASE_URL, REDIS_URL or KAFKA_BOOTSTRAP_SERVERS is unset, the addresses of the
services started by `make run` are used (`.devstack/run/services.json`).
"""

from __future__ import annotations

import dj_database_url

from .env import BASE_DIR, env_bool, env_float, env_int, env_list, env_str, local_secret_key, service_url

# The checkout's root (exposed as a setting so that apps need not import chatproject).
BASE_DIR = BASE_DIR
DEBUG = env_bool("DEBUG", False)
# No secret is committed: without SECRET_KEY, one is generated once per checkout into the
# ignored .devstack/ folder, so every local process (web, consumers, workers) shares it.
SECRET_KEY = env_str("SECRET_KEY", "") or local_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
PORT = env_int("PORT", 8000)

INSTALLED_APPS = [
    "daphne",
    # Django's admin with a site whose log-in shares the `login` throttle (chatproject/admin.py).
    "chatproject.apps.ChatAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "streams",
    "accounts",
    "rooms",
    "attachments",
    "chat_messages.apps.MessagesConfig",
    "drawer",
    "search",
    "audit",
    # Reports and sanctions (docs/moderation.md), and data exports (docs/exports.md).
    "moderation",
    "exports",
    # The seed's protocol, STOMP over SockJS or a WebSocket at /stomp/chat (docs/stomp.md).
    "stomp",
    "backup",
    # /metrics and the admin's Pipeline page (docs/operations.md).
    "ops",
]

MIDDLEWARE = [
    # First: the request's id is bound for every log line, and echoed even on a redirect.
    "streams.logs.request_id_middleware",
    "django.middleware.security.SecurityMiddleware",
    "chatproject.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatproject.urls"
ASGI_APPLICATION = "chatproject.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = service_url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chat")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
# A backup database kept in sync by change capture (`capture_changes` + `consume backup`);
# `make run` makes one beside its embedded PostgreSQL; unset = no backup.
BACKUP_DATABASE_URL = service_url("BACKUP_DATABASE_URL", "")
# Change capture reads this logical replication slot (pgoutput) over this publication (backup/slot.py);
# past this much WAL retained by the slot, capture_changes and the admin warn.
CHAT_CAPTURE_SLOT = env_str("CAPTURE_SLOT", "chat_backup")
CHAT_CAPTURE_PUBLICATION = env_str("CAPTURE_PUBLICATION", "chat_backup")
CHAT_CAPTURE_WAL_WARN_BYTES = env_int("CAPTURE_WAL_WARN_BYTES", 1024**3)
if BACKUP_DATABASE_URL:
    DATABASES["backup"] = dj_database_url.parse(BACKUP_DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    DATABASES["backup"].setdefault("OPTIONS", {})["connect_timeout"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

REDIS_URL = service_url("REDIS_URL", "redis://127.0.0.1:6379/0")
KAFKA_BOOTSTRAP_SERVERS = service_url("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")

CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# No Channels channel layer: fan-out goes through streams/realtime/hub.py (one Redis publish per
# group and one frame per process), which is several times cheaper per delivery.
CHANNEL_LAYERS: dict = {}

# Django's hashers unless set (comma-separated dotted paths; the first one hashes new passwords,
# the others still verify). The test suite puts a fast one first (tests/conftest.py).
PASSWORD_HASHERS = env_list(
    "PASSWORD_HASHERS",
    [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / ".devstack" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True

# --- Chat behaviour -----------------------------------------------------------------------------
RATE_LIMITS_ENABLED = env_str("RATE_LIMITS", "on").lower() not in ("off", "0", "false", "no")
CHAT_MAX_BODY_BYTES = env_int("CHAT_MAX_BODY_BYTES", 4096)
# WebSocket sends per user: a token bucket of this many messages per second, this burst.
CHAT_SEND_RATE = env_float("CHAT_SEND_RATE", 10.0)
CHAT_SEND_BURST = env_int("CHAT_SEND_BURST", 30)
# Sends of one socket on their way to the broker at once (docs/protocol.md): past it the server
# stops reading that socket until the oldest is answered.
CHAT_SOCKET_MAX_IN_FLIGHT = env_int("CHAT_SOCKET_MAX_IN_FLIGHT", 64)
CHAT_PAGE_SIZE = env_int("CHAT_PAGE_SIZE", 50)
CHAT_SYNC_MAX = env_int("CHAT_SYNC_MAX", 200)
# What may wait for one socket's reader in a web process: a backlog over it for 1 s while more
# arrives closes the socket with 4408 ("too slow: reconnect and sync"; chatproject/serve.py).
CHAT_SOCKET_MAX_BUFFER_BYTES = env_int("CHAT_SOCKET_MAX_BUFFER_BYTES", 1024 * 1024)
# How long after sending a message its sender may edit it, in seconds; 0: always. Deleting one's
# own message is always allowed.
CHAT_EDIT_WINDOW_S = env_float("CHAT_EDIT_WINDOW_S", 0.0)
# Per-user limits across all the user's sockets and server processes (kept in Redis; docs/limits.md).
CHAT_MAX_SOCKETS_PER_USER = env_int("CHAT_MAX_SOCKETS_PER_USER", 20)
CHAT_SOCKET_TTL_S = env_float("CHAT_SOCKET_TTL_S", 60.0)
# room.enter and sync each read a page of history: tokens per second and bucket size.
CHAT_READ_RATE = env_float("CHAT_READ_RATE", 5.0)
CHAT_READ_BURST = env_int("CHAT_READ_BURST", 20)
# room.read and room.mark_unread each write a read position.
CHAT_POSITION_RATE = env_float("CHAT_POSITION_RATE", 10.0)
CHAT_POSITION_BURST = env_int("CHAT_POSITION_BURST", 40)
# At most one `typing` per user and room per interval, whatever the number of sockets.
CHAT_TYPING_INTERVAL_S = env_float("CHAT_TYPING_INTERVAL_S", 1.0)
# Presence (streams/realtime/presence.py): a user with a socket open and no activity for this long
# is "away"; each web process checks its users' activity and lapsed sockets this often.
CHAT_AWAY_AFTER_S = env_float("CHAT_AWAY_AFTER_S", 300.0)
CHAT_PRESENCE_SWEEP_S = env_float("CHAT_PRESENCE_SWEEP_S", 5.0)
# Redis connections per process (each pool; a burst waits this long for a free one).
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 50)
REDIS_POOL_TIMEOUT_S = env_float("REDIS_POOL_TIMEOUT_S", 5.0)

# --- Attachments (attachments/; docs/limits.md) -------------------------------------------------
# Uploads: at most this many bytes, of these types (detected from the content, not the name).
CHAT_ATTACHMENT_MAX_BYTES = env_int("CHAT_ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024)
CHAT_ATTACHMENT_TYPES = env_list(
    "CHAT_ATTACHMENT_TYPES",
    [
        "image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf", "text/plain", "application/zip",
        "audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4", "video/mp4", "video/quicktime", "video/webm",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    ],
)  # fmt: skip
CHAT_ATTACHMENTS_PER_MESSAGE = env_int("CHAT_ATTACHMENTS_PER_MESSAGE", 10)
# Signed file URLs (/files/...) work without credentials for this long.
CHAT_ATTACHMENT_URL_TTL_S = env_int("CHAT_ATTACHMENT_URL_TTL_S", 3600)
# Images: a larger one is refused before it is decoded (decompression bombs); thumbnails' longer side.
CHAT_ATTACHMENT_MAX_PIXELS = env_int("CHAT_ATTACHMENT_MAX_PIXELS", 50_000_000)
CHAT_ATTACHMENT_THUMBNAIL_PX = env_int("CHAT_ATTACHMENT_THUMBNAIL_PX", 320)
# Uploads never sent in a message are deleted after this long (the attachments.sweep task).
CHAT_ATTACHMENT_UNATTACHED_TTL_S = env_int("CHAT_ATTACHMENT_UNATTACHED_TTL_S", 24 * 3600)
# Files deleted per run of the attachments.purge task (it queues itself again until none is left).
CHAT_ATTACHMENT_PURGE_CHUNK = env_int("CHAT_ATTACHMENT_PURGE_CHUNK", 500)
# Retention (chat_messages/retention.py): messages older than this many days are deleted like a
# deletion, by a beat task in chunks; 0 keeps them for ever. A room's retention_days overrides it,
# a room's legal hold suspends it. The drawer's saved copies keep their text only if
# CHAT_RETENTION_KEEPS_DRAWER says so.
CHAT_RETENTION_DAYS = env_int("CHAT_RETENTION_DAYS", 0)
CHAT_RETENTION_KEEPS_DRAWER = env_bool("CHAT_RETENTION_KEEPS_DRAWER", False)
CHAT_RETENTION_CHUNK = env_int("CHAT_RETENTION_CHUNK", 500)
# Message search (search/, docs/search.md): the index the chat-index consumer keeps.
# "postgres" (a table of this database) or "elasticsearch" (SEARCH_ELASTICSEARCH_URL).
CHAT_SEARCH_BACKEND = env_str("CHAT_SEARCH_BACKEND", "postgres")
CHAT_SEARCH_ELASTICSEARCH_URL = env_str("SEARCH_ELASTICSEARCH_URL", "")
CHAT_SEARCH_ELASTICSEARCH_INDEX = env_str("SEARCH_ELASTICSEARCH_INDEX", "chat-messages")

# STOMP at /stomp/chat (docs/stomp.md): the heart-beat the server offers ("send,receive" in ms);
# whether /pub/chat/enter also announces the entry to the room's STOMP subscribers, as the seed
# did; how long a SockJS session without a receiving request lives, and its own heart-beat.
CHAT_STOMP_HEART_BEAT = env_str("CHAT_STOMP_HEART_BEAT", "10000,10000")
CHAT_STOMP_ENTER_BROADCAST = env_bool("CHAT_STOMP_ENTER_BROADCAST", False)
CHAT_SOCKJS_DISCONNECT_DELAY_S = env_float("CHAT_SOCKJS_DISCONNECT_DELAY_S", 5.0)
CHAT_SOCKJS_HEARTBEAT_S = env_float("CHAT_SOCKJS_HEARTBEAT_S", 25.0)
# Where files are stored: a folder under the data directory, or an S3-compatible bucket
# (django-storages) when S3_BUCKET is set. Never served as static media: no MEDIA_URL.
MEDIA_ROOT = env_str("MEDIA_ROOT", "") or str(BASE_DIR / ".devstack" / "media")
S3_BUCKET = env_str("S3_BUCKET", "")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("S3_ENDPOINT_URL", "") or None,  # MinIO and other S3-compatible stores
            "access_key": env_str("S3_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY", "") or None,
            "region_name": env_str("S3_REGION", "") or None,
            "addressing_style": env_str("S3_ADDRESSING_STYLE", "path"),
            "signature_version": "s3v4",
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
# The address clients reach the bucket at, for presigned URLs, when it differs from S3_ENDPOINT_URL
# (the servers' own, inside the network).
S3_PUBLIC_ENDPOINT_URL = env_str("S3_PUBLIC_ENDPOINT_URL", "")

# --- Accounts -----------------------------------------------------------------------------------
# Deleting an account with more messages than this deactivates it at once and purges it in the
# accounts.tasks.account_purge Celery task, ACCOUNT_PURGE_CHUNK messages per transaction.
ACCOUNT_PURGE_INLINE_MAX = env_int("ACCOUNT_PURGE_INLINE_MAX", 5000)
ACCOUNT_PURGE_CHUNK = env_int("ACCOUNT_PURGE_CHUNK", 2000)

# --- Data exports (exports/, docs/exports.md) ---------------------------------------------------
# A finished export's ZIP is kept this long, then deleted by the exports.expire beat task (every
# EXPORT_SWEEP_S); an export still queued or running after EXPORT_STALE_HOURS is marked failed.
EXPORT_RETENTION_HOURS = env_float("EXPORT_RETENTION_HOURS", 72.0)
EXPORT_STALE_HOURS = env_float("EXPORT_STALE_HOURS", 6.0)
# Rows read per query while building (keyset pages: memory stays bounded whatever the history).
EXPORT_CHUNK = env_int("EXPORT_CHUNK", 1000)
# A user's export carries the files of their attachments while they total at most this many bytes
# (and the files are in a local folder); past it, their metadata only.
EXPORT_FILES_MAX_BYTES = env_int("EXPORT_FILES_MAX_BYTES", 500 * 1024 * 1024)

# --- Kafka --------------------------------------------------------------------------------------
KAFKA_PARTITIONS = env_int("KAFKA_PARTITIONS", 6)
KAFKA_REPLICATION = env_int("KAFKA_REPLICATION", 1)
KAFKA_TOPIC_PREFIX = env_str("KAFKA_TOPIC_PREFIX", "")
# Short group timeouts: a new member joins after about half the session timeout.
KAFKA_SESSION_TIMEOUT_MS = env_int("KAFKA_SESSION_TIMEOUT_MS", 6000)
KAFKA_HEARTBEAT_MS = env_int("KAFKA_HEARTBEAT_MS", 300)
KAFKA_PRODUCE_TIMEOUT_S = env_float("KAFKA_PRODUCE_TIMEOUT_S", 5.0)
# How long the producer and the consumers wait to fill a batch. Both Kafka clients, the broker and
# PostgreSQL pay per request and per transaction, not per record: at chat rates a few milliseconds
# of waiting turn requests of one record into requests of tens (bench/README.md, "Where the
# product's time goes"). Together they add about 30 ms before delivery at p50.
KAFKA_LINGER_MS = env_int("KAFKA_LINGER_MS", 20)
# A consumer group worker takes at most one batch per interval unless it is behind (a full batch).
KAFKA_BATCH_INTERVAL_MS = env_int("KAFKA_BATCH_INTERVAL_MS", 10)
# How long the broker may hold a fetch that finds nothing new (Tansu holds it that long even when
# records arrive meanwhile, so this bounds the delay it adds).
KAFKA_FETCH_MAX_WAIT_MS = env_int("KAFKA_FETCH_MAX_WAIT_MS", 20)
# The same two waits for the groups nobody waits on as they happen (chat-index, chat-backup) and for
# change capture's publishing: a search or a backup a quarter second later, in return for a fraction
# of the broker's requests and PostgreSQL's transactions (bench/README.md, "The shipped set").
KAFKA_BACKGROUND_INTERVAL_MS = env_int("KAFKA_BACKGROUND_INTERVAL_MS", 250)
KAFKA_CONSUMERS = {
    "persist": "chat_messages.workers.PersistWorker",
    "index": "search.workers.IndexWorker",
    "backup": "backup.workers.BackupWorker",
}

# --- REST ---------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "streams.web.schema.ChatAutoSchema",
    "EXCEPTION_HANDLER": "streams.web.api.exception_handler",
    # Proxies in front of daphne that append to X-Forwarded-For (1 behind nginx). With 0 the
    # client address is the socket's, so a forged header cannot dodge the throttles.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
    "DEFAULT_THROTTLE_RATES": {
        "send": env_str("THROTTLE_SEND", "60/min"),
        "read": env_str("THROTTLE_READ", "600/min"),
        "write": env_str("THROTTLE_WRITE", "120/min"),
        "signup": env_str("THROTTLE_SIGNUP", "20/hour"),
        "login": env_str("THROTTLE_LOGIN", "10/min"),
        "upload": env_str("THROTTLE_UPLOAD", "30/min"),
        # Starting a data export (each one reads the user's whole history).
        "export": env_str("THROTTLE_EXPORT", "10/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Chat server API",
    "DESCRIPTION": "REST API of the chat server; real-time events travel over the /ws/chat/ WebSocket.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Two choice sets share the field name "kind": each gets a name of its own in the schema.
    "ENUM_NAME_OVERRIDES": {
        "RoomKindEnum": "rooms.models.Room.Kind",
        "MessageKindEnum": "chat_messages.models.Message.Kind",
        "AttachmentKindEnum": "attachments.models.Attachment.Kind",
    },
}

# --- Celery -------------------------------------------------------------------------------------
# Push notifications to registered devices (accounts/push.py): the sender class; the default
# only logs. An FCM/APNs/Web Push sender implements accounts.push.PushSender.
PUSH_SENDER = env_str("PUSH_SENDER", "accounts.push.LogPushSender")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
# The persist consumer queues push tasks: a broker that cannot be reached, or hangs, must fail in
# seconds (the workers' own polling waits 1 s at a time, well inside these).
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "socket_keepalive": True}
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "redrive-retry-topic": {"task": "streams.tasks.redrive_retries", "schedule": 30.0},
    # Uploads never sent, and files whose message, room or account went (attachments/tasks.py).
    "attachments-sweep": {"task": "attachments.sweep", "schedule": env_float("CHAT_ATTACHMENT_SWEEP_S", 600.0)},
    # Messages past their room's retention (chat_messages/tasks.py); it re-queues itself until done.
    "messages-expire": {"task": "chat_messages.expire", "schedule": env_float("CHAT_RETENTION_SWEEP_S", 3600.0)},
    # Data exports past EXPORT_RETENTION_HOURS lose their file; stale ones are marked failed (exports/tasks.py).
    "exports-expire": {"task": "exports.expire", "schedule": env_float("EXPORT_SWEEP_S", 3600.0)},
}

# LOG_FORMAT: "text" (a line for people) or "json" (one object per line with the request and
# message ids, streams/logs.py; docs/operations.md, "Structured logs"). LOG_LEVELS sets some
# loggers' levels, e.g. "chat_messages=DEBUG,streams.realtime.hub=DEBUG" to follow each message.
LOG_FORMAT = env_str("LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ValueError(f"LOG_FORMAT must be 'text' or 'json', not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "streams.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "plain"}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "kafka": {"level": "WARNING"},
        # The Elasticsearch client logs every request at INFO.
        "elastic_transport": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}
for _name, _, _level in (item.partition("=") for item in env_list("LOG_LEVELS", [])):
    LOGGING["loggers"][_name.strip()] = {"level": _level.strip().upper() or "DEBUG"}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    CSRF_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SAMESITE = "Lax"

# --- Drain (a stop that stores what the broker holds first) -------------------------------------
# How long `manage.py drain`, and `make run` when it stops, wait for the consumer groups that store
# data to catch up with the broker before giving up (and, in `make run`, spilling what is left).
DRAIN_TIMEOUT_S = env_float("DRAIN_TIMEOUT_S", 60.0)

# --- Operations: /metrics and the admin's Pipeline page (ops/, docs/operations.md) ---------------
# The bearer token Prometheus sends to /metrics; empty: only a signed-in staff member may read it.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# How long a scrape (and the Pipeline page) waits for each source; past it the source's figures
# are reported unknown (chat_metric_up{source=...} 0) instead of hanging the scrape.
METRICS_TIMEOUT_S = env_float("METRICS_TIMEOUT_S", 4.0)

# --- Security: HTTPS, cookies, headers, hostile input (README.md, "Environment variables") ------
# HTTPS=on (the docker/ deployment, behind nginx) turns on the whole secure set; each setting can
# still be overridden by its own variable. Off by default: `make run` serves plain HTTP.
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
# Health checks come over plain HTTP from inside the network (compose, load balancers).
# Prometheus scrapes /metrics from inside the network too (with its bearer token).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
# Trust the proxy's X-Forwarded-Proto only behind one that sets it itself (nginx of docker/ does);
# a client reaching daphne directly could otherwise claim HTTPS.
if env_bool("SECURE_PROXY_SSL_HEADER", HTTPS):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Content-Security-Policy on every response (chatproject/middleware.py); `off` only to debug.
CSP_ENABLED = env_bool("CSP", True)
# A token is checked for its shape before the database is asked (a NUL in it was a 500).
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"][0] = "streams.web.authentication.ChatTokenAuthentication"
# /api/docs/: Swagger UI from drf-spectacular-sidecar's static files (no CDN, works offline) and
# its script from a URL of ours (SpectacularSwaggerSplitView), as the CSP allows no inline script.
INSTALLED_APPS.append("drf_spectacular_sidecar")
SPECTACULAR_SETTINGS.update(SWAGGER_UI_DIST="SIDECAR", SWAGGER_UI_FAVICON_HREF="SIDECAR", REDOC_DIST="SIDECAR")

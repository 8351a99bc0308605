"""docker/ describes the same server `make run` runs: parsed here, and checked against the code.

Nothing here runs Docker (the development machines have no engine). Each check reads the files
of docker/ and compares them with what the code says: the processes devstack supervises, the
steps of `manage.py bootstrap`, the variables settings.py reads, the management commands Django
knows, the WebSocket routes of the ASGI application, the events the backup consumer applies.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

from backup.tables import CAPTURED_TABLES
from devstack.__main__ import process_commands
from streams.pipeline import kafka

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
# BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile before the context's own.
DOCKERIGNORE = DOCKER / "Dockerfile.dockerignore"
NGINX = DOCKER / "nginx.conf"
CONNECTOR = DOCKER / "debezium" / "chat-backup.json"
RECORDED_EVENTS = ROOT / "tests" / "backup" / "debezium"

# Variables in the app containers that settings.py does not read, each read by someone else.
THIRD_PARTY_APP_VARIABLES = {
    # Python itself: logs reach `docker logs` at once, no .pyc files in a read-only image layer.
    "PYTHONUNBUFFERED": "read by the Python interpreter",
    "PYTHONDONTWRITEBYTECODE": "read by the Python interpreter",
    "PIP_NO_CACHE_DIR": "read by pip while the image is built",
}
# Services whose purpose is reached by something other than an app URL: named here with who uses them.
USED_WITHOUT_APP_URL = {
    "nginx": "publishes the site's port",
    "minio-bucket": "one-shot job the app services wait for (the bucket)",
    "migrate": "one-shot job: migrations and topics",
    "kafka-connect": "runs the Debezium connector (profile debezium)",
    "connect-register": "one-shot job registering the connector (profile debezium)",
}


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict]:
    return compose()["services"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) in order, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def image_cmd() -> list[str]:
    (cmd,) = [rest for word, rest in dockerfile_instructions() if word == "CMD"]
    return json.loads(cmd)


def app_services() -> dict[str, dict]:
    """The services that run this project's image (built from docker/Dockerfile)."""
    return {name: s for name, s in services().items() if "build" in s}


def argv_of(service: dict) -> list[str]:
    command = service.get("command", image_cmd())
    return shlex.split(command) if isinstance(command, str) else list(command)


def shell_steps(argv: list[str]) -> list[list[str]]:
    """The commands a service runs: its argv, or each `&&`-joined step of an `sh -c` line."""
    if argv[:2] == ["sh", "-c"]:
        return [shlex.split(step) for step in argv[2].split("&&")]
    return [argv]


def role(argv: list[str]) -> tuple[str, ...]:
    """What a command line runs, whatever the interpreter's path: ``("manage.py", "consume",
    "persist")``, ``("celery", "worker")``, ``("chatproject.serve", "chatproject.asgi:application")``."""
    names = [Path(a).name for a in argv]
    if "manage.py" in names:
        rest = argv[names.index("manage.py") + 1 :]
        positional = []
        for item in rest:
            if item.startswith("-"):
                break
            positional.append(item)
        return ("manage.py", *positional)
    if "-m" in argv:
        module, rest = argv[argv.index("-m") + 1], argv[argv.index("-m") + 2 :]
    else:
        module, rest = names[0], argv[1:]
    if module == "celery":
        # `celery -A app <subcommand>`: the subcommand is the first word that is not -A's value.
        words = [w for i, w in enumerate(rest) if not w.startswith("-") and (i == 0 or rest[i - 1] != "-A")]
        return ("celery", words[0])
    return (module, *[w for w in rest if re.fullmatch(r"[\w.]+:\w+", w)])


def interpolated(text: str) -> set[str]:
    """The variables compose substitutes (``${NAME}``, ``${NAME:-x}``, ``${NAME:?x}``), not ``$$NAME``."""
    return set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def settings_variables() -> set[str]:
    """Every environment variable settings.py reads: the first argument of env_str/env_int/
    env_float/env_bool/env_list/service_url and of os.environ.get/os.getenv, as a literal."""
    readers = {"env_str", "env_int", "env_float", "env_bool", "env_list", "service_url", "get", "getenv"}
    tree = ast.parse((ROOT / "chatproject" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in readers and isinstance(node.args[0].value, str):
                if name == "get" and not (isinstance(func.value, ast.Attribute) and func.value.attr == "environ"):
                    continue
                names.add(node.args[0].value)
    return names


def resolved(value: str) -> str:
    """A compose value with its substitutions filled in (``${X:?set X}`` would end a URL's netloc)."""
    return re.sub(r"\$\{[^}]*\}", "secret", value)


def host_of(value: str) -> set[str]:
    """The hosts a URL or a comma-separated host:port list names."""
    hosts = set()
    for item in resolved(value).split(","):
        item = item.strip()
        parsed = urlsplit(item if "://" in item else f"//{item}")
        if parsed.hostname:
            hosts.add(parsed.hostname)
    return hosts


# --- The processes -----------------------------------------------------------------------------


@pytest.mark.parametrize("process", sorted(process_commands("8000")))
def test_every_process_make_run_supervises_has_a_service(process):
    wanted = role(process_commands("8000")[process])
    running = {name: role(argv_of(s)) for name, s in app_services().items()}

    assert wanted in running.values(), f"`make run` supervises {process} ({wanted}); docker/ runs {running}"


def test_the_consumer_groups_the_services_run_are_the_ones_settings_define():
    groups = [r[2] for r in (role(argv_of(s)) for s in app_services().values()) if r[:2] == ("manage.py", "consume")]

    assert sorted(groups) == sorted(settings.KAFKA_CONSUMERS)


def test_the_web_service_serves_on_the_port_its_healthcheck_nginx_and_the_image_use():
    webs = [s for s in app_services().values() if role(argv_of(s)) == role(process_commands("8000")["web"])]
    assert len(webs) == 1, "one service runs the web role (scaled by its replicas)"
    (web,) = webs
    argv = argv_of(web)
    port = argv[argv.index("-p") + 1]
    exposed = [rest for word, rest in dockerfile_instructions() if word == "EXPOSE"]

    assert argv[argv.index("-b") + 1] == "0.0.0.0"  # reachable from nginx, not only inside its container
    assert exposed == [port]
    assert f":{port}/readyz" in " ".join(web["healthcheck"]["test"])
    # --proxy-headers: the client address daphne gives Django comes from nginx's X-Forwarded-For.
    assert "--proxy-headers" in argv


def test_one_scheduler_and_one_capture():
    """Two beats would run every periodic task twice; PostgreSQL refuses a second slot reader."""
    for process in ("beat", "capture"):
        wanted = role(process_commands("8000")[process])
        (service,) = [s for s in app_services().values() if role(argv_of(s)) == wanted]
        assert service.get("deploy", {}).get("replicas") == 1, process


# --- The one-shot migrate job --------------------------------------------------------------------


def bootstrap_steps() -> list[tuple[str, dict]]:
    """The call_command(...) steps of `manage.py bootstrap` (what `make run` does before starting
    its processes): the command name and its literal keyword arguments."""
    tree = ast.parse((ROOT / "streams" / "management" / "commands" / "bootstrap.py").read_text())
    steps = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "call_command":
            kwargs = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
            steps.append((node.args[0].value, kwargs))
    return steps


def deploy_steps() -> list[list[str]]:
    """What runs once per deploy: the migrate job's steps and the image's build-time RUN lines."""
    steps = shell_steps(argv_of(services()["migrate"]))
    for word, rest in dockerfile_instructions():
        if word == "RUN":
            steps.extend(shlex.split(step) for step in rest.split("&&"))
    return steps


@pytest.mark.parametrize(
    "command, options",
    bootstrap_steps(),
    ids=[c + (f"--database={o['database']}" if "database" in o else "") for c, o in bootstrap_steps()],
)
def test_each_bootstrap_step_runs_once_per_deploy(command, options):
    """`make run` migrates both databases and creates the topics before any process starts;
    the deployment does the same in `migrate` (static files: in the image)."""
    wanted = [f"--{k}" if v is True else f"--{k}={v}" for k, v in options.items() if k in ("database",)]
    found = []
    for argv in deploy_steps():
        if role(argv)[:2] == ("manage.py", command):
            words = " ".join(argv).replace("--database ", "--database=")
            found.append(all(w in words.split() for w in wanted))

    assert any(found), f"bootstrap runs {command} {options}; docker/ never does: {deploy_steps()}"


def test_the_app_roles_start_after_migrate_and_the_job_runs_once():
    migrate = services()["migrate"]

    assert migrate["restart"] == "no"
    assert role(argv_of(migrate)) != role(image_cmd())  # not a second web server
    for name, service in app_services().items():
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name


def test_the_migrate_job_reaches_the_backup_database():
    env = services()["migrate"]["environment"]

    # migrate on "default" also creates the capture publication when a backup is configured
    # (backup/apps.py); that needs BACKUP_DATABASE_URL in the job's environment.
    assert urlsplit(resolved(env["BACKUP_DATABASE_URL"])).hostname == "postgres-backup"


# --- Commands, variables and files named in docker/ ----------------------------------------------


def manage_commands_named() -> set[str]:
    named = set()
    for service in app_services().values():
        for argv in shell_steps(argv_of(service)):
            if role(argv)[0] == "manage.py":
                named.add(role(argv)[1])
    for argv in deploy_steps():
        if role(argv)[0] == "manage.py":
            named.add(role(argv)[1])
    for path in (DOCKER / "README.md",):
        named |= set(re.findall(r"manage\.py (\w+)", path.read_text()))
    return named


@pytest.mark.parametrize("command", sorted(manage_commands_named()))
def test_every_manage_py_command_named_in_docker_exists(command):
    assert command in get_commands()


def test_every_variable_the_app_containers_get_is_read_by_the_settings():
    read = settings_variables()
    given = set()
    for service in app_services().values():
        given |= set(service.get("environment", {}))
    for word, rest in dockerfile_instructions():
        if word == "ENV":
            given |= set(re.findall(r"(\w+)=", rest))
        if word == "RUN":
            given |= set(re.findall(r"(?:^|\s)([A-Z_]+)=", rest))

    assert given - read - set(THIRD_PARTY_APP_VARIABLES) == set()


def test_every_variable_the_compose_file_substitutes_is_documented():
    """An operator learns what prod.env must hold from the compose file's head and docker/README.md."""
    text = COMPOSE_FILE.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    readme = (DOCKER / "README.md").read_text()

    undocumented = {name for name in interpolated(text) if name not in header and f"`{name}`" not in readme}
    assert undocumented == set()


def test_every_file_docker_refers_to_exists():
    for word, rest in dockerfile_instructions():
        if word == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source  # the build context is the repository (`..`)
    for name, service in services().items():
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).is_file(), f"{name}: {source}"
    for path in re.findall(r"`(debezium/[\w./-]+)`", (DOCKER / "README.md").read_text()):
        assert (DOCKER / path).is_file(), path


def test_the_image_leaves_local_state_and_secrets_out():
    """`COPY . .` copies the checkout: without this, the virtualenv, the embedded services' data
    and `.devstack/secret_key` and `admin-password` would be baked into the image."""
    assert DOCKERIGNORE.is_file()
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.strip()}

    assert {".devstack", ".venv", ".git"} <= ignored
    for word, rest in dockerfile_instructions():
        if word == "COPY":
            *sources, _ = rest.split()
            assert not set(sources) & ignored


# --- Health ------------------------------------------------------------------------------------


def test_the_web_healthcheck_asks_readyz_as_nginx_would():
    """/readyz checks PostgreSQL, Redis and Kafka (streams/web/health.py); HTTPS=on redirects plain
    HTTP except /healthz and /readyz, and an unknown Host is refused, so the check sends an allowed one."""
    for name, service in app_services().items():
        if role(argv_of(service)) == role(image_cmd()) and name != "migrate":
            test = " ".join(service["healthcheck"]["test"])
            assert "/readyz" in test and "ALLOWED_HOSTS" in test, name
    assert any(p == r"^readyz$" for p in settings.SECURE_REDIRECT_EXEMPT)


# --- Kafka ---------------------------------------------------------------------------------------


def brokers() -> dict[str, dict]:
    return {name: s for name, s in services().items() if str(s.get("image", "")).startswith("apache/kafka")}


def test_three_brokers_with_replication_three_and_two_in_sync():
    nodes = brokers()
    app_env = next(iter(app_services().values()))["environment"]

    assert len(nodes) == 3
    assert len({s["environment"]["KAFKA_NODE_ID"] for s in nodes.values()}) == 3
    for name, service in nodes.items():
        env = service["environment"]
        voters = {v.split("@")[1].split(":")[0] for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")}
        assert voters == set(nodes), name
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3  # the groups' committed offsets
        assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"  # partitions are KAFKA_PARTITIONS'
    # The app creates its topics (kafka_topics) with KAFKA_REPLICATION and produces with acks=all.
    assert int(app_env["KAFKA_REPLICATION"]) == 3
    assert host_of(app_env["KAFKA_BOOTSTRAP_SERVERS"]) == set(nodes)
    assert '"acks": "all"' in (ROOT / "streams" / "pipeline" / "kafka.py").read_text()


def test_each_consumer_service_runs_no_more_copies_than_partitions():
    """A group gives each partition to one member: copies past the partition count stand idle."""
    partitions = int(next(iter(app_services().values()))["environment"]["KAFKA_PARTITIONS"])
    for name, service in app_services().items():
        if role(argv_of(service))[:2] == ("manage.py", "consume"):
            assert service.get("deploy", {}).get("replicas", 1) <= partitions, name


# --- nginx ---------------------------------------------------------------------------------------


def nginx_blocks(kind: str) -> dict[str, str]:
    """The bodies of the top-level-in-server `upstream NAME { }` or `location PREFIX { }` blocks."""
    text = re.sub(r"#[^\n]*", "", NGINX.read_text())
    return {
        m.group(1): m.group(2) for m in re.finditer(rf"{kind}\s+([^\s{{]+(?:\s+[^\s{{]+)?)\s*\{{([^{{}}]*)\}}", text)
    }


def websocket_paths() -> list[str]:
    """The paths the ASGI application routes WebSockets on (chatproject/asgi.py)."""
    tree = ast.parse((ROOT / "chatproject" / "asgi.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "websocket":
                    return [
                        "/" + n.args[0].value
                        for n in ast.walk(value)
                        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "path"
                    ]
    return []


def location_for(path: str) -> str:
    """The body of the prefix location nginx picks for ``path`` (the longest matching prefix)."""
    prefixes = [p for p in nginx_blocks("location") if not p.startswith("~") and path.startswith(p)]
    return nginx_blocks("location")[max(prefixes, key=len)]


def test_websocket_paths_reach_every_web_server_with_the_upgrade():
    paths = websocket_paths()
    assert {"/ws/chat/", "/stomp/chat/websocket"} <= set(paths)  # the parse found the routes
    map_block = re.search(r"map \$http_upgrade \$(\w+) \{([^}]*)\}", NGINX.read_text())
    upstreams = nginx_blocks("upstream")

    for path in paths:
        body = location_for(path)
        assert "proxy_http_version 1.1;" in body
        assert "proxy_set_header Upgrade $http_upgrade;" in body
        connection = re.search(r"proxy_set_header Connection (\S+);", body).group(1)
        assert connection == "$" + map_block.group(1) and re.search(r"default\s+upgrade;", map_block.group(2))
        upstream = re.search(r"proxy_pass http://(\w+);", body).group(1)
        servers = set(re.findall(r"server\s+(\S+?)[\s;]", upstreams[upstream]))
        # Compose's DNS gives every replica of a service its name: each web service must be listed.
        web_services = {
            f"{name}:{argv_of(s)[argv_of(s).index('-p') + 1]}"
            for name, s in app_services().items()
            if role(argv_of(s)) == role(image_cmd()) and name != "migrate"
        }
        assert servers == web_services


def test_nginx_is_the_one_proxy_the_app_counts():
    """NUM_PROXIES=1: the throttles take the client address nginx appended to X-Forwarded-For."""
    for path, body in nginx_blocks("location").items():
        if "proxy_pass http://chat_web" in body:
            assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in body, path
            assert "proxy_set_header X-Forwarded-Proto $scheme;" in body, path
    for service in app_services().values():
        assert service["environment"]["NUM_PROXIES"] == "1"


# --- Debezium ------------------------------------------------------------------------------------


def test_the_connector_reads_the_primary_the_app_writes_through_the_capture_publication():
    """tests/backup/test_debezium_config.py checks the event format; here, that the connector
    reads the database, slot and publication the deployment's app uses and migrate creates."""
    config = json.loads(CONNECTOR.read_text())
    database = urlsplit(resolved(next(iter(app_services().values()))["environment"]["DATABASE_URL"]))
    connect = services()["kafka-connect"]
    register = services()["connect-register"]

    assert (config["database.hostname"], int(config["database.port"])) == (database.hostname, database.port)
    assert (config["database.user"], config["database.dbname"]) == (database.username, database.path.lstrip("/"))
    assert config["publication.name"] == settings.CHAT_CAPTURE_PUBLICATION
    assert config["slot.name"] == settings.CHAT_CAPTURE_SLOT
    assert config["table.include.list"].split(",") == [f"public.{t}" for t in CAPTURED_TABLES]
    secret = re.fullmatch(r"\$\{env:(\w+)\}", config["database.password"]).group(1)
    assert secret in connect["environment"]
    assert register["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert f"/connectors/{config['name']}/config" in " ".join(register["command"])
    assert connect["environment"]["BOOTSTRAP_SERVERS"].split(",") == sorted(f"{b}:9092" for b in brokers())


def test_recorded_debezium_events_are_what_this_connector_writes():
    """The backup consumer's tests replay tests/backup/debezium/*.json; they only prove something
    about docker/ if those records carry this connector's topic, server name, database and key."""
    config = json.loads(CONNECTOR.read_text())
    for path in sorted(RECORDED_EVENTS.glob("*.json")):
        for record in json.loads(path.read_text()):
            assert record["topic"] == config["transforms.route.replacement"] == kafka.topic(kafka.CDC), path.name
            key = record["key"]
            if key is not None:  # a truncate has none
                assert set(key.get("payload", key)) == {"id"}, path.name  # the key our capture writes too
            value = record["value"]
            if value is None:
                continue
            source = value.get("payload", value)["source"]
            assert (source["name"], source["db"]) == (config["topic.prefix"], config["database.dbname"]), path.name


# --- Nothing unused ------------------------------------------------------------------------------


def test_every_service_is_used_and_every_volume_mounted():
    all_services = services()
    named = set()
    for service in app_services().values():
        for value in service.get("environment", {}).values():
            named |= host_of(str(value))
    depended = set()
    for service in all_services.values():
        depended |= set(service.get("depends_on", {}))

    for name, service in all_services.items():
        if name in app_services() and name != "migrate":
            continue  # a role of the app itself
        assert name in named or name in USED_WITHOUT_APP_URL, f"{name}: no app variable points at it"
        if name in USED_WITHOUT_APP_URL and "ports" not in service and service.get("restart") != "no":
            assert name in depended, f"{name}: a long-running service nothing waits for"

    mounted = set()
    for service in all_services.values():
        mounted |= {v.split(":")[0] for v in service.get("volumes", [])}
    assert set(compose().get("volumes", {})) <= mounted

"""Production security settings, the Content-Security-Policy header, and what /readyz tells anyone.

`manage.py check --deploy` runs with the environment of docker/docker-compose.yml and must be
clean; HTTPS=on turns the secure set on, each part overridable; every response carries the CSP;
/readyz names services and states, never addresses (those go to the log).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import pytest
import yaml
from django.test import Client

from tests.conftest import ROOT, free_port

COMPOSE = ROOT / "docker" / "docker-compose.yml"
# What `docker compose --env-file prod.env` fills in (docker/README.md's example).
PROD_ENV_FILE = {
    "SECRET_KEY": "k3J9-xq2vN8_wP5rT0yZ7aB4cD6eF1gH3iJ5kL7mN9oP2qR4sT6uV8wX0yZ2aB4cD",
    "ALLOWED_HOSTS": "chat.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
    "POSTGRES_PASSWORD": "not-used-by-the-check",
    "MINIO_ROOT_USER": "chat",
    "MINIO_ROOT_PASSWORD": "not-used-by-the-check-either",
    "S3_PUBLIC_ENDPOINT_URL": "https://chat.example.com",
}


def compose_app_environment() -> dict[str, str]:
    """The app containers' environment in docker-compose.yml, with ${VAR...} filled as compose does."""
    environment = yaml.safe_load(COMPOSE.read_text())["x-app"]["environment"]

    def fill(value) -> str:
        return re.sub(r"\$\{(\w+)[^}]*\}", lambda m: PROD_ENV_FILE.get(m.group(1), ""), str(value))

    return {name: fill(value) for name, value in environment.items()}


def run_manage(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    # Only the production environment: nothing of this machine's stack or of the tests' settings.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DEVSTACK_"))}
    for name in ("DEBUG", "HTTPS", "SECRET_KEY", "ALLOWED_HOSTS", "CSP", "LOG_LEVEL"):
        env.pop(name, None)
    env.update(DEVSTACK_STATE=os.devnull, **env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_under_the_production_environment_of_docker():
    environment = compose_app_environment()
    assert environment["HTTPS"] == "on"
    result = run_manage(environment, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_without_https_check_deploy_names_what_is_missing():
    environment = {**compose_app_environment(), "HTTPS": "off"}
    result = run_manage(environment, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


def settings_under(env: dict[str, str]) -> dict:
    names = [
        "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER",
    ]  # fmt: skip
    code = f"import json; from django.conf import settings; print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    result = run_manage({**PROD_ENV_FILE, **env}, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_https_on_turns_the_secure_set_on_and_each_part_can_be_overridden():
    assert settings_under({"HTTPS": "on"}) == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }
    changed = settings_under({"HTTPS": "on", "SECURE_HSTS_SECONDS": "300", "SECURE_HSTS_PRELOAD": "off"})
    assert (changed["SECURE_HSTS_SECONDS"], changed["SECURE_HSTS_PRELOAD"]) == (300, False)
    off = settings_under({})
    assert not off["SECURE_SSL_REDIRECT"] and not off["SESSION_COOKIE_SECURE"] and off["SECURE_HSTS_SECONDS"] == 0
    assert off["SECURE_PROXY_SSL_HEADER"] is None


# --- behind the proxy, with the secure set on --------------------------------------------------------


@pytest.fixture
def https_on(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


@pytest.mark.django_db
@pytest.mark.kafka  # /readyz answers 200 only with every service up
def test_plain_http_is_redirected_but_health_checks_are_not(https_on):
    client = Client()
    redirected = client.get("/login/")
    assert (redirected.status_code, redirected["Location"]) == (301, "https://testserver/login/")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_https_from_the_proxy_gets_hsts_and_a_socket_policy_for_wss_only(https_on):
    response = Client().get("/login/", HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="testserver")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    policy = dict(part.split(" ", 1) for part in response["Content-Security-Policy"].split("; "))
    assert policy["connect-src"] == "'self' wss://testserver"


# --- the Content-Security-Policy ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["/login/", "/signup/", "/api/docs/", "/api/v1/rooms/", "/static/css/app.css"])
def test_every_response_carries_the_policy(target):
    response = Client().get(target)
    policy = dict(part.split(" ", 1) for part in response["Content-Security-Policy"].split("; "))
    assert policy == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data: blob:",
        "connect-src": "'self' ws://testserver wss://testserver",
        "frame-ancestors": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "object-src": "'none'",
    }


@pytest.mark.django_db
def test_a_host_that_is_not_allowed_gets_no_socket_source_and_no_crash():
    response = Client(raise_request_exception=False).get("/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "evil" not in response["Content-Security-Policy"]


def test_no_template_has_inline_script_style_or_handler():
    """The policy would block them: scripts come from static/, data in json_script blocks."""
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"\sstyle\s*=", text), template
        assert not re.search(r"\son[a-z]+\s*=", text), template
        for script in re.finditer(r"<script\b([^>]*)>", text):
            assert "src=" in script.group(1), (template, script.group(0))
        assert "<style" not in text, template


# --- /readyz --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.kafka
def test_readyz_names_each_service_and_its_state_only():
    body = Client().get("/readyz").json()
    assert body == {
        "status": "ready",
        "services": {"postgres": {"state": "ready"}, "redis": {"state": "ready"}, "kafka": {"state": "ready"}},
    }


@pytest.mark.django_db
def test_readyz_keeps_a_dead_services_address_for_the_log(settings, caplog):
    dead = free_port()
    settings.REDIS_URL = f"redis://10.0.0.1:{dead}/0"
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{dead}"
    caplog.set_level(logging.WARNING, logger="streams.web.health")
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["services"] == {
        "postgres": {"state": "ready"},
        "redis": {"state": "down"},
        "kafka": {"state": "down"},
    }
    assert str(dead) not in response.content.decode()
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "streams.web.health")
    assert f"10.0.0.1:{dead}" in logged and f"127.0.0.1:{dead}" in logged

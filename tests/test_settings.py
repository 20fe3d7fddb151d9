"""Settings come from the environment and fail at start-up naming the variable."""

import os
import subprocess
import sys

import pytest

from docqa import env


def _start(**variables):
    """Load docqa's settings in a fresh interpreter with `variables` set."""
    deployment = ("DATABASE_URL", "REDIS_URL", "PORT", "TIME_ZONE")
    environ = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith(env.PREFIXES) and k not in deployment) or k == "DOCQA_VAR_DIR"
    }
    environ.update(variables)
    environ["DJANGO_SETTINGS_MODULE"] = "docqa.settings"
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.MOONSHOT_OFFLINE)",
        ],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def test_defaults_need_nothing():
    result = _start()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True"]


def _database_options(**variables) -> str:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "DATABASE_POOL_SIZE", "DATABASE_CONN_MAX_AGE")
    }
    environ.update(variables, DJANGO_SETTINGS_MODULE="docqa.settings")
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default'].get('OPTIONS', {}).get('pool'))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_postgresql_connections_are_pooled_unless_turned_off():
    url = "postgres://u@127.0.0.1:5432/db"
    assert _database_options(DATABASE_URL=url) == "{'min_size': 1, 'max_size': 20, 'timeout': 20}"
    assert "'max_size': 5" in _database_options(DATABASE_URL=url, DATABASE_POOL_SIZE="5")
    assert _database_options(DATABASE_URL=url, DATABASE_POOL_SIZE="0") == "None"
    # Persistent connections and Django's pool exclude each other: asking for one turns the pool off.
    assert _database_options(DATABASE_URL=url, DATABASE_CONN_MAX_AGE="60") == "None"
    assert _database_options() == "None"  # SQLite


def test_postgres_url_and_a_key_go_online():
    result = _start(DATABASE_URL="postgres://u@127.0.0.1:5432/db", MOONSHOT_API_KEY="k" * 40)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "False"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DJANGO_DEBUG", "maybe"),
        ("DATABASE_URL", "mysql://localhost/db"),
        ("REDIS_URL", "localhost:6379"),
        ("MOONSHOT_BASE_URL", "ftp://api.moonshot.cn"),
        ("MOONSHOT_MAX_CONCURRENCY", "lots"),
        ("PORT", "70000"),
        ("DOCQA_RETENTION", "forever"),
        ("DJANGO_SECRET_KEY", "short"),
        ("DOCQA_RETENTON", "keep"),  # a typo of a real name
    ],
)
def test_malformed_or_unknown_values_fail_naming_the_variable(name, value):
    result = _start(**{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr


def test_parsers_directly():
    environ = {"A": " yes ", "B": "3", "C": "a, b,,c"}
    assert env.env_bool("A", False, environ=environ) is True
    assert env.env_int("B", 0, minimum=1, environ=environ) == 3
    assert env.env_list("C", [], environ=environ) == ["a", "b", "c"]
    assert env.env_int("MISSING", 7, environ=environ) == 7


def test_secret_key_is_generated_once_and_kept(tmp_path):
    path = tmp_path / "var" / "secret_key"
    first = env.secret_key("DJANGO_SECRET_KEY", path, environ={})
    assert len(first) >= 32
    assert env.secret_key("DJANGO_SECRET_KEY", path, environ={}) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    given = "k" * 40
    assert env.secret_key("DJANGO_SECRET_KEY", path, environ={"DJANGO_SECRET_KEY": given}) == given


def test_variables_django_itself_reads_are_not_taken_for_typos():
    result = _start(
        DJANGO_SUPERUSER_USERNAME="admin",
        DJANGO_SUPERUSER_PASSWORD="a-long-first-password",
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
        DJANGO_COLORS="nocolor",
    )
    assert result.returncode == 0, result.stderr
    near_miss = _start(DJANGO_SUPERUSER_PASSWROD="a-long-first-password")
    assert near_miss.returncode != 0
    assert "DJANGO_SUPERUSER_PASSWROD" in near_miss.stderr


def test_the_first_admin_comes_from_the_environment(tmp_path):
    """The README's Operations step: `createsuperuser --noinput` reads DJANGO_SUPERUSER_*."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(env.PREFIXES) and k != "DATABASE_URL"}
    environ.update(
        DJANGO_SETTINGS_MODULE="docqa.settings",
        DOCQA_VAR_DIR=str(tmp_path),
        DJANGO_SUPERUSER_USERNAME="admin",
        DJANGO_SUPERUSER_PASSWORD="a-long-first-password",
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
    )

    def manage(*args):
        return subprocess.run(
            [sys.executable, "-m", "django", *args], capture_output=True, text=True, env=environ, timeout=120
        )

    assert manage("migrate", "--verbosity", "0").returncode == 0
    created = manage("createsuperuser", "--noinput")
    assert created.returncode == 0, created.stderr
    check = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.contrib.auth import authenticate; u = authenticate(username='admin', password='a-long-first-password'); print(u.is_superuser, u.email)",
    )
    assert check.stdout.split() == ["True", "admin@example.com"], check.stderr


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "a-production-secret-" + "Zq7!x9@Lm#" * 5,
    "DJANGO_ALLOWED_HOSTS": "docqa.example",
    "DJANGO_SECURE_COOKIES": "1",
    "DJANGO_HSTS_SECONDS": "31536000",
    "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_HSTS_PRELOAD": "1",
    "DJANGO_SSL_REDIRECT": "1",
    "DJANGO_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}


def _deploy_check(**variables):
    deployment = ("DATABASE_URL", "REDIS_URL", "PORT", "TIME_ZONE")
    environ = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith(env.PREFIXES) and k not in deployment) or k == "DOCQA_VAR_DIR"
    }
    environ.update(variables, DJANGO_SETTINGS_MODULE="docqa.settings")
    return subprocess.run(
        [sys.executable, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


def test_check_deploy_is_clean_in_a_production_like_environment():
    result = _deploy_check(**PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_check_deploy_warns_without_the_https_settings():
    result = _deploy_check(
        **{k: v for k, v in PRODUCTION.items() if k not in ("DJANGO_HSTS_SECONDS", "DJANGO_SSL_REDIRECT")}
    )
    assert result.returncode != 0 and "W004" in result.stderr and "W008" in result.stderr


def test_the_proxy_ssl_header_setting_names_the_header():
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
    environ = {
        **os.environ,
        "DJANGO_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        "DJANGO_SETTINGS_MODULE": "docqa.settings",
    }
    environ.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60
    )
    assert result.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')", result.stderr


def _settings_of(code: str, **variables) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(env.PREFIXES) or k == "DOCQA_VAR_DIR"}
    environ.update(variables, DJANGO_SETTINGS_MODULE="docqa.settings")
    program = f"import django; django.setup(); from django.conf import settings as s; print({code})"
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=environ, timeout=60
    )


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, "50 200"),  # tier 1 unless said otherwise
        ({"MOONSHOT_TIER": "0"}, "1 3"),
        ({"MOONSHOT_TIER": "5"}, "1000 10000"),
        ({"MOONSHOT_TIER": "0", "MOONSHOT_MAX_CONCURRENCY": "4"}, "4 3"),  # explicit values win
    ],
)
def test_the_tier_sets_the_limiter_defaults(variables, expected):
    result = _settings_of("s.MOONSHOT_MAX_CONCURRENCY, s.MOONSHOT_MAX_RPM", **variables)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_sizes_are_decimal_and_prices_parse_or_fail_naming_the_variable():
    result = _settings_of("s.DOCQA_MAX_UPLOAD_BYTES, s.DOCQA_ACCOUNT_MAX_BYTES")
    assert result.stdout.strip() == "100000000 10000000000"
    result = _settings_of(
        "s.DOCQA_MODEL_PRICES['kimi-k2.5'].cached, s.DOCQA_MODEL_PRICES['m'].cached",
        DOCQA_MODEL_PRICES="kimi-k2.5=4/21/0.7; m=2/8",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0.7", "2"]
    bad = _settings_of("1", DOCQA_MODEL_PRICES="kimi-k2.5=cheap")
    assert bad.returncode != 0 and "DOCQA_MODEL_PRICES" in bad.stderr
    assert _settings_of("1", MOONSHOT_TIER="6").returncode != 0

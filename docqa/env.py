"""Small parsers for settings read from the environment.

Each raises ImproperlyConfigured naming the variable, so a typo in a deployment fails at
start-up with a message that says which variable to fix instead of misbehaving later.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}

# Every name a parser was asked for, so settings can refuse variables it does not know.
READ: set[str] = set()
PREFIXES = ("DJANGO_", "DOCQA_", "MOONSHOT_")
# Variables Django itself reads (not settings of ours), among them the ones
# `manage.py createsuperuser --noinput` takes the first admin from.
DJANGO_OWN = frozenset(
    {
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
        "DJANGO_AUTO_COMPLETE",
        "DJANGO_COLORS",
        "DJANGO_RUNSERVER_HIDE_WARNING",
        "DJANGO_TEST_PROCESSES",
        "DJANGO_WATCHMAN_TIMEOUT",
        "DJANGO_SUPERUSER_USERNAME",
        "DJANGO_SUPERUSER_PASSWORD",
        "DJANGO_SUPERUSER_EMAIL",
    }
)


def unknown_variables(
    *, environ: Mapping[str, str] = os.environ, also_known: tuple[str, ...] = ()
) -> list[str]:
    """Our prefixes' variables that no setting reads: most likely typos."""
    known = READ | set(also_known) | DJANGO_OWN
    return sorted(name for name in environ if name.startswith(PREFIXES) and name not in known)


_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "", *, environ: Mapping[str, str] = os.environ) -> str:
    READ.add(name)
    return environ.get(name, default).strip()


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] = os.environ) -> bool:
    READ.add(name)
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false (got {raw!r}).")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] = os.environ,
) -> int:
    READ.add(name)
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number (got {raw!r}).") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum} (got {value}).")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum} (got {value}).")
    return value


def env_float(
    name: str, default: float, *, minimum: float = 0.0, environ: Mapping[str, str] = os.environ
) -> float:
    READ.add(name)
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number (got {raw!r}).") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum} (got {value}).")
    return value


def env_list(name: str, default: list[str], *, environ: Mapping[str, str] = os.environ) -> list[str]:
    READ.add(name)
    raw = environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(
    name: str, default: str, choices: tuple[str, ...], *, environ: Mapping[str, str] = os.environ
) -> str:
    READ.add(name)
    value = environ.get(name, default).strip()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)} (got {value!r}).")
    return value


def env_url(
    name: str, default: str, *, schemes: tuple[str, ...], environ: Mapping[str, str] = os.environ
) -> str:
    READ.add(name)
    value = environ.get(name, default).strip()
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in schemes or not rest:
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)} (got {value!r})."
        )
    return value


def secret_key(name: str, path, *, environ: Mapping[str, str] = os.environ) -> str:
    """The secret key from the environment, or one generated once and kept under var/.

    A fresh machine then needs no setup, and sessions survive restarts.
    """
    READ.add(name)
    value = environ.get(name, "").strip()
    if value:
        if len(value) < 32:
            raise ImproperlyConfigured(f"{name} must be at least 32 characters long.")
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written aside then linked into place, so processes starting together agree on one key.
        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        # At least as strong as Django's get_random_secret_key(), without importing the management
        # machinery (and django.db) while settings load.
        tmp.write_text(secrets.token_urlsafe(50))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()

"""
Where the client's settings come from, first found first: the command
line (``--url``, ``--token``, ``--timeout``), the environment
(``RPOOL_URL``, ``RPOOL_TOKEN``, ``RPOOL_TIMEOUT``), the configuration file
(``RPOOL_CONFIG``, else ``config.toml`` in the user's configuration
directory: ``~/.config/rpool/config.toml`` on Linux), then the defaults.

The configuration file is TOML::

    url = "https://rpool.example.org"
    token = "..."          # sent as "Authorization: Bearer ..."
    timeout = 60           # seconds one request may take
    spec_ttl = 300         # seconds the server's /openapi.json is cached
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from rpool.exits import UsageProblem

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 60.0
DEFAULT_SPEC_TTL = 300.0

#: Keys of the configuration file, and their types.
FILE_KEYS: dict[str, tuple[type, ...]] = {
    "url": (str,), "token": (str,), "timeout": (int, float), "spec_ttl": (int, float),
}


def config_path() -> Path:
    """The configuration file: ``RPOOL_CONFIG``, else the user's configuration directory's."""
    explicit = os.environ.get("RPOOL_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_config_dir("rpool")) / "config.toml"


def cache_dir() -> Path:
    """Where the servers' documents are cached (the user's cache directory)."""
    return Path(platformdirs.user_cache_dir("rpool"))


def read_config(path: Path) -> dict[str, Any]:
    """
    :returns: the configuration file's settings, ``{}`` when it does not exist.
    :raises UsageProblem: it cannot be read, is not TOML, or holds an
        unknown key or a value of the wrong type (named with the file).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise UsageProblem(f"configuration file '{path}': {e.strerror}") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageProblem(f"configuration file '{path}': {e}") from None
    problems = []
    for key, value in values.items():
        if key not in FILE_KEYS:
            problems.append(f"'{key}': unknown key (known: {', '.join(FILE_KEYS)})")
        elif not isinstance(value, FILE_KEYS[key]) or isinstance(value, bool):
            problems.append(f"'{key}': {value!r} is not a {FILE_KEYS[key][0].__name__}")
    if problems:
        raise UsageProblem(f"configuration file '{path}' at " + "; ".join(problems))
    return values


@dataclass
class Settings:
    """
    The settings of one run.

    :ivar sources: where each setting came from (``--url``, ``RPOOL_URL``,
        the file's path, ``default``), for ``rpool config``.
    """

    url: str = DEFAULT_URL
    token: str = ""
    timeout: float = DEFAULT_TIMEOUT
    spec_ttl: float = DEFAULT_SPEC_TTL
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def resolve(cls, url: str | None = None, token: str | None = None,
                timeout: float | None = None) -> Settings:
        """
        The settings from the command line's values (``None``: not given),
        the environment and the configuration file.

        :raises UsageProblem: a bad configuration file or environment value.
        """
        path = config_path()
        from_file = read_config(path)
        settings = cls()
        given = {"url": url, "token": token, "timeout": timeout, "spec_ttl": None}
        for name in ("url", "token", "timeout", "spec_ttl"):
            value: Any = given[name]
            source = f"--{name.replace('_', '-')}"
            if value is None:
                variable = f"RPOOL_{name.upper()}"
                value, source = os.environ.get(variable) or None, variable
            if value is None and name in from_file:
                value, source = from_file[name], str(path)
            if value is None:
                settings.sources[name] = "default"
                continue
            if name in ("timeout", "spec_ttl"):
                try:
                    value = float(value)
                except ValueError:
                    raise UsageProblem(f"{source}: {value!r} is not a number of seconds") from None
                if value <= 0 and name == "timeout":
                    raise UsageProblem(f"{source}: the timeout must be positive")
            setattr(settings, name, value)
            settings.sources[name] = source
        settings.url = normalise_url(settings.url, settings.sources.get("url", "default"))
        return settings


def normalise_url(url: str, source: str) -> str:
    """
    ``url`` without a trailing slash, ``http://`` added when no scheme is given.

    :raises UsageProblem: not an http(s) URL.
    """
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https") or not url.split("://", 1)[1].strip("/"):
        raise UsageProblem(f"{source}: {url!r} is not an http:// or https:// URL")
    return url.rstrip("/")

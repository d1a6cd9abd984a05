"""The configuration: one TOML file, environment variables over it, validated by pydantic-settings.

Where the file is: ``$CIVICAUP_CONFIG`` if set, else ``$CIVICAUP_HOME/civicaup.toml``, else
``/etc/civicaup/civicaup.toml``; none of them is required (every setting has a default). Environment
variables override the file: ``CIVICAUP_<KEY>`` for top-level keys, ``CIVICAUP_<SECTION>__<KEY>`` for a
key in a section (``CIVICAUP_MAIL__NEXT_HOP``). The names used before the file existed still work:
``CIVICAUP_HOME`` (data_dir), ``CIVICAUP_DB_URL`` (store_url), ``CIVICAUP_CLAMD`` (mail.clamd),
``CIVICAUP_MAIL_NEXT_HOP`` (mail.next_hop).

``load()`` is cached per (file, environment); a long-running part ``pin()``s what it started with and
changes it only by ``reload()`` (SIGHUP), which leaves the old settings in effect when the new ones fail. Problems come back as
``ConfigError`` whose lines each name the file or variable, the key and why (``config check``).
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from civicaup.errors import CivicaupError

ETC_FILE = Path("/etc/civicaup/civicaup.toml")
PREFIX = "CIVICAUP_"
# environment names that predate the file -> (section or None, key)
LEGACY_ENV = {"CIVICAUP_HOME": (None, "data_dir"), "CIVICAUP_DB_URL": (None, "store_url"),
              "CIVICAUP_CLAMD": ("mail", "clamd"), "CIVICAUP_MAIL_NEXT_HOP": ("mail", "next_hop")}


class ConfigError(CivicaupError):
    """The configuration does not validate; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0] + (f" (and {len(problems) - 1} more; run 'civicaup config check')"
                                        if len(problems) > 1 else ""))
        self.problems = problems


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return value


def _listen(value: str) -> str:
    if value.startswith("unix:"):
        if not value[5:].startswith("/"):
            raise ValueError(f"{value!r}: a unix socket needs an absolute path")
        return value
    return _host_port(value.removeprefix("inet:"))


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Listen(Section):
    """Where the long-running parts listen (loopback unless you say otherwise)."""
    api: str = Field("127.0.0.1:8080", description="REST API, console and /metrics (civicaup serve)")
    milter: str = Field("127.0.0.1:8890", description="milter for Postfix: HOST:PORT or unix:/PATH")
    relay: str = Field("127.0.0.1:10025", description="SMTP content-filter relay (civicaup relay)")

    @field_validator("api", "relay")
    @classmethod
    def _v_host_port(cls, v: str) -> str:
        return _host_port(v)

    @field_validator("milter")
    @classmethod
    def _v_listen(cls, v: str) -> str:
        return _listen(v)


class Mail(Section):
    next_hop: str = Field("127.0.0.1:10026", description="where the relay and quarantine release re-inject mail")
    clamd: str = Field("", description="ClamAV daemon: unix:/PATH or tcp:HOST:PORT; empty = no virus scan")
    max_message_mb: int = Field(100, ge=1, le=2048, description="largest message the relay accepts and Postfix's "
                                                                "message_size_limit at least (keep it above every "
                                                                "pack's attachment limit, so the clause is quoted)")
    milter_timeout_s: int = Field(60, ge=1, le=3600, description="Postfix milter_*_timeout the setup writes")
    processes: int = Field(1, ge=1, le=64, description="milter and relay processes sharing their socket, to use "
                                                        "more cores (--processes overrides)")
    postfix_config_dir: Path = Field(Path("/etc/postfix"), description="where main.cf and master.cf live")

    @field_validator("next_hop")
    @classmethod
    def _v_hop(cls, v: str) -> str:
        return _host_port(v)

    @field_validator("clamd")
    @classmethod
    def _clamd(cls, v: str) -> str:
        if v and not (v.startswith("unix:/") or (v.startswith("tcp:") and _host_port(v[4:]))):
            raise ValueError(f"{v!r} is not unix:/PATH or tcp:HOST:PORT")
        return v


class Web(Section):
    category_index: Path | None = Field(None, description="URL category index (default DATA_DIR/categories.idx)")
    errors_dir: Path | None = Field(None, description="Squid error_directory with the block page "
                                                      "(default DATA_DIR/squid-errors)")
    helper_children: int = Field(4, ge=1, le=64, description="Squid helper processes (children-max)")
    helper_concurrency: int = Field(100, ge=1, le=1000, description="requests in flight per helper process")
    squid_config: Path = Field(Path("/etc/squid/squid.conf"), description="the squid.conf setup writes to")


class Directory(Section):
    source: Literal["csv", "ldap"] = Field("csv", description="where people come from")
    csv: Path | None = Field(None, description="HR export (email,name,department,title[,roles]) when source = csv")
    ldap_url: str = Field("", description="ldap://HOST[:PORT] or ldaps://... when source = ldap")
    base_dn: str = ""
    bind_dn: str = ""
    bind_password_file: Path | None = Field(None, description="file holding the bind password (mode 0600; the "
                                                              "password never goes in civicaup.toml); unset: "
                                                              "the variable CIVICAUP_LDAP_PASSWORD")
    filter: str = "(objectClass=person)"

    @field_validator("ldap_url")
    @classmethod
    def _ldap(cls, v: str) -> str:
        if v and not v.startswith(("ldap://", "ldaps://", "ldapi://")):
            raise ValueError(f"{v!r} is not an ldap://, ldaps:// or ldapi:// URL")
        return v


class Tokens(Section):
    lifetime_days: int = Field(30, ge=1, le=366, description="default lifetime of an API token")


class Log(Section):
    format: Literal["json", "text"] = Field("json", description="json: one event a line, no message bodies")
    level: Literal["debug", "info", "warning", "error"] = "info"


class Settings(BaseSettings):
    """Every setting, with its default. Sections are TOML tables ([mail], [web], ...)."""
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_nested_delimiter="__", extra="forbid",
                                      validate_default=True, case_sensitive=False)

    data_dir: Path = Field(Path.home() / ".local" / "share" / "civicaup",
                           description="state: the SQLite store, archive, category index, quarantine")
    store_url: SecretStr = Field(SecretStr(""), description="SQLAlchemy URL (postgresql+psycopg://...); "
                                                            "empty = SQLite in data_dir")
    packs: list[str] = Field(default_factory=list, description="pack ids this install runs (one per city); "
                                                               "empty = every installed pack")
    time_zone_check: bool = Field(True, description="doctor warns when the host clock is not NTP-synchronised")
    listen: Listen = Field(default_factory=Listen)
    mail: Mail = Field(default_factory=Mail)
    web: Web = Field(default_factory=Web)
    directory: Directory = Field(default_factory=Directory)
    tokens: Tokens = Field(default_factory=Tokens)
    log: Log = Field(default_factory=Log)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment wins over the file, which is passed in as init values
        return env_settings, init_settings

    @field_validator("store_url")
    @classmethod
    def _url(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if raw and not raw.startswith(("sqlite:", "postgresql:", "postgresql+")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return v

    # resolved paths -------------------------------------------------------
    @property
    def home(self) -> Path:
        return self.data_dir.expanduser()

    @property
    def category_index(self) -> Path:
        return (self.web.category_index or self.home / "categories.idx").expanduser()

    @property
    def errors_dir(self) -> Path:
        return (self.web.errors_dir or self.home / "squid-errors").expanduser()

    def database_url(self) -> str:
        raw = self.store_url.get_secret_value()
        return raw or f"sqlite:///{self.home / 'civicaup.db'}"

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets masked (``config show``)."""
        data = self.model_dump(mode="json")
        url = self.store_url.get_secret_value()
        data["store_url"] = _mask_url(url) if url else ""
        return data


def _mask_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse is shown without anything after '@'
        return url.split("@")[-1]


def config_file(env: dict[str, str] | None = None) -> Path | None:
    """The file in use, or None when there is none (defaults and environment only)."""
    env = os.environ if env is None else env
    if env.get("CIVICAUP_CONFIG"):
        return Path(env["CIVICAUP_CONFIG"]).expanduser()
    home = env.get("CIVICAUP_HOME")
    local = (Path(home).expanduser() if home else Path.home() / ".local" / "share" / "civicaup") / "civicaup.toml"
    if local.is_file():
        return local
    return ETC_FILE if ETC_FILE.is_file() else None


def _legacy(env: dict[str, str]) -> dict[str, Any]:
    """Old variable names, as overrides, unless the new-style name is also set."""
    out: dict[str, Any] = {}
    for name, (section, key) in LEGACY_ENV.items():
        value = env.get(name)
        if value is None:
            continue
        new = PREFIX + (f"{section}__{key}" if section else key).upper()
        if new in env:
            continue
        if section:
            out.setdefault(section, {})[key] = value
        else:
            out[key] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        merged[k] = _merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def _env_name(loc: tuple[Any, ...]) -> str:
    return PREFIX + "__".join(str(p) for p in loc).upper()


def _problems(exc: ValidationError, path: Path | None, env: dict[str, str]) -> list[str]:
    legacy_by_loc = {(s, k) if s else (k,): n for n, (s, k) in LEGACY_ENV.items()}
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not isinstance(p, int)) or ("?",)
        key = ".".join(str(p) for p in err["loc"])
        why = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            why = "unknown key"
        envname = _env_name(loc)
        upper = {k.upper() for k in env}
        if envname in upper:
            where = f"environment {envname}"
        elif loc in legacy_by_loc and legacy_by_loc[loc] in env:
            where = f"environment {legacy_by_loc[loc]}"
        else:
            where = str(path) if path else "defaults"
        lines.append(f"{where}: {key}: {why}")
    return lines


def read() -> Settings:
    """Read and validate the file and the environment; raise ConfigError listing every problem."""
    env = dict(os.environ)
    path = config_file(env)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
        except UnicodeDecodeError:
            raise ConfigError([f"{path}: not UTF-8 text"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: not a TOML table"])
    data = _merge(data, _legacy(env))
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, path, env)) from None


_cache: tuple[tuple[Any, ...], Settings] | None = None
_pinned: Settings | None = None


def _fingerprint() -> tuple[Any, ...]:
    path = config_file()
    try:
        stamp = path.stat().st_mtime_ns if path else None
    except OSError:
        stamp = None
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(PREFIX)))
    return (str(path), stamp, env)


def load() -> Settings:
    """The settings in effect now: the pinned ones in a long-running part (see :func:`pin`), else the file and
    environment as they are (cached until the file or a CIVICAUP_ variable changes)."""
    global _cache
    if _pinned is not None:
        return _pinned
    key = _fingerprint()
    if _cache is None or _cache[0] != key:
        _cache = (key, read())
    return _cache[1]


def pin(chosen: Settings | None = None) -> Settings:
    """Keep `chosen` (default: the settings now in effect) until :func:`reload` or :func:`unpin`: a service
    changes its configuration on SIGHUP, never because the file changed under it."""
    global _pinned
    _pinned = chosen if chosen is not None else load()
    return _pinned


def unpin() -> None:
    global _pinned
    _pinned = None


def reload() -> Settings:
    """Read the file and the environment again. On success the new settings are in effect (and pinned, if
    they were); on a ConfigError nothing changes."""
    global _cache, _pinned
    fresh = read()
    _cache = (_fingerprint(), fresh)
    if _pinned is not None:
        _pinned = fresh
    return fresh

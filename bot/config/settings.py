"""Settings and account specs from the environment.

Pure functions over the ``env`` mapping they are given (``bot.config.env.load_env``
merges ``.env`` under the real environment). ``Settings`` is a pydantic-settings model:
each field names its variable and its rule, and pydantic reports every bad value at
once. Errors name the variable and what is wrong; secret values are never echoed.
Account discovery lives in ``bot.config.accounts`` and is re-exported here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, get_args
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.brokers import venues
from bot.config.accounts import AccountConfigError, AccountsResult, load_accounts
from bot.config.values import VariableError, get, parse_url, shown, to_bool
from bot.errors import ConfigError
from bot.model import timeframe_seconds

__all__ = [
    "AccountConfigError",
    "AccountsResult",
    "Mode",
    "Settings",
    "cycle_seconds_for",
    "is_loopback",
    "load_accounts",
    "load_settings",
    "secret_values",
    "settings_variables",
]

# Variables whose values are secrets, by how their names end (for the log redactor).
SECRET_NAME_ENDINGS = ("_API_KEY", "_API_SECRET", "_SECRET", "_PASSPHRASE", "_TOKEN", "_PASSWORD")
# Settings whose values are never echoed in an error: a token, or a URL (it may carry one).
_NOT_ECHOED = frozenset(
    {"NIJA_HEARTBEAT_URL", "NIJA_ALERT_WEBHOOK_URL", "NIJA_TELEGRAM_API_URL", "NIJA_DATABASE_URL"}
)
# URLs that may hold a password: the password is a secret (the rest, host and database,
# is what messages must name; as a secret, the URL's first 8 characters would mask every
# "postgresql" in the log, since the redactor masks any leading piece of a secret).
_SECRET_URLS = ("NIJA_DATABASE_URL",)
# The shortest NIJA_HTTP_TOKEN accepted: a guessable token guards nothing.
MIN_HTTP_TOKEN_LENGTH = 16
DEFAULT_HTTP_PORT = 8780


class Mode(StrEnum):
    """What an order does; the value is what status.json, the logs and file names show."""

    PAPER = "paper"  # simulated fills
    LIVE = "live"  # real orders with real money


@dataclass(frozen=True, slots=True)
class _Expect:
    """What a variable must be, for its error: ``NAME must be <what>, got '...'``."""

    what: str


def _lower(raw: Any) -> Any:
    return raw.lower() if isinstance(raw, str) else raw


def _upper(raw: Any) -> Any:
    return raw.upper() if isinstance(raw, str) else raw


def _flag(raw: Any) -> Any:
    return to_bool(raw) if isinstance(raw, str) else raw


def _whole(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return int(raw)  # pydantic alone would also take "4.0" as 4
    except ValueError:
        raise ValueError("a whole number >= 1") from None


def _port(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return int(raw)
    except ValueError:
        raise ValueError("a port, 0 to 65535 (0: any free port)") from None


def _timeframe(raw: str) -> str:
    try:
        ok = timeframe_seconds(raw) > 0
    except ValueError:
        ok = False
    if not ok:
        raise ValueError("a timeframe like 1m, 5m, 1h, 1d")
    return raw


def _listen_host(raw: str) -> str:
    if raw != "localhost":
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            raise ValueError("an IP address to listen on, like 127.0.0.1 or 0.0.0.0") from None
    return raw


def _token(raw: str | None) -> str | None:
    if raw is not None and (len(raw) < MIN_HTTP_TOKEN_LENGTH or any(c.isspace() for c in raw)):
        raise ValueError(f"at least {MIN_HTTP_TOKEN_LENGTH} characters with no spaces")
    return raw


def _heartbeat_url(raw: str | None) -> str | None:
    try:
        return None if raw is None else parse_url("NIJA_HEARTBEAT_URL", raw)
    except VariableError:
        raise ValueError("an https URL (http only on 127.0.0.1 / localhost / ::1)") from None


def _alert_url(name: str, *, query: bool) -> Any:
    def rule(raw: str | None) -> str | None:
        try:
            return None if raw is None else parse_url(name, raw, query=query)
        except VariableError:
            raise ValueError("an https URL (http only on 127.0.0.1 / localhost / ::1)") from None

    return rule


# A bot token as @BotFather gives it: the bot's id, a colon, 35 characters (a few spare).
_BOT_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")
# A chat's numeric id (negative for groups), or a public channel's @username.
_CHAT_ID = re.compile(r"^-?[0-9]{1,20}$|^@[A-Za-z][A-Za-z0-9_]{3,63}$")


def _bot_token(raw: str | None) -> str | None:
    if raw is not None and not _BOT_TOKEN.match(raw):
        raise ValueError("a bot token as @BotFather gives it (digits, a colon, 35 characters)")
    return raw


def _chat_id(raw: str | None) -> str | None:
    if raw is not None and not _CHAT_ID.match(raw):
        raise ValueError("a chat id like 123456789 or -1001234567890, or a @channelname")
    return raw


def _database_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    from bot.store.pg import parse_database_url  # psycopg is loaded only when it is used

    parse_database_url(raw)  # ValueError says what is wrong, without the value
    return raw


# A node's name in the leases: letters, digits and . _ - : @, as a host name or "host-pid".
_NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$")


def _node_id(raw: str | None) -> str | None:
    if raw is not None and not _NODE_ID.match(raw):
        raise ValueError("a name of letters, digits and . _ - : @ (at most 100), like node-1")
    return raw


def is_loopback(host: str) -> bool:
    """True when ``host`` (an address to listen on) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _venue_name(raw: str | None) -> str | None:
    if raw is not None and raw not in venues.VENUES:
        raise ValueError(f"one of {', '.join(venues.VENUES)}")
    return raw


# The kinds of value; a rule's own ValueError says what was expected, else its _Expect does.
_Positive = Annotated[float, Field(gt=0, allow_inf_nan=False), _Expect("a positive number")]
_NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False), _Expect("a non-negative number")]
_Whole = Annotated[int, BeforeValidator(_whole), Field(ge=1), _Expect("a whole number >= 1")]
_Cap = Annotated[_Whole | None, _Expect("a whole number >= 1")]  # None = no limit
_Flag = Annotated[bool, BeforeValidator(_flag)]
_Mode = Annotated[Mode, BeforeValidator(_lower), _Expect("paper or live")]
_Timeframe = Annotated[str, AfterValidator(_timeframe)]
_Strategy = Annotated[
    str,
    BeforeValidator(_lower),
    Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$"),
    _Expect("a strategy name like default"),
]
_VenueName = Annotated[str | None, BeforeValidator(_upper), AfterValidator(_venue_name)]
_Port = Annotated[int, BeforeValidator(_port), Field(ge=0, le=65535), _Expect("a port, 0 to 65535")]
_Host = Annotated[str, AfterValidator(_listen_host)]
_Token = Annotated[str | None, AfterValidator(_token)]
_Url = Annotated[str | None, AfterValidator(_heartbeat_url)]
_WebhookUrl = Annotated[
    str | None, AfterValidator(_alert_url("NIJA_ALERT_WEBHOOK_URL", query=True))
]
_TelegramUrl = Annotated[str, AfterValidator(_alert_url("NIJA_TELEGRAM_API_URL", query=False))]
_BotToken = Annotated[str | None, AfterValidator(_bot_token)]
_ChatId = Annotated[str | None, AfterValidator(_chat_id)]
_DatabaseUrl = Annotated[str | None, AfterValidator(_database_url)]
_NodeId = Annotated[str | None, AfterValidator(_node_id)]
_LeaseTtl = Annotated[
    float, Field(ge=1, allow_inf_nan=False), _Expect("a number of seconds, at least 1")
]
_POSITIVE = TypeAdapter(_Positive)


class Settings(BaseSettings):
    """Every process-wide setting; each field reads the variable named by its alias.

    ``Settings()`` is the documented defaults: it never reads ``os.environ`` itself
    (``load_settings`` reads a given mapping). Frozen and hashable.
    """

    model_config = SettingsConfigDict(
        frozen=True, case_sensitive=True, validate_by_name=True, validate_by_alias=True
    )

    mode: _Mode = Field(Mode.PAPER, validation_alias="NIJA_MODE")
    min_balance_usd: _NonNegative = Field(10.0, validation_alias="NIJA_MIN_BALANCE_USD")
    # Bound on every broker call.
    call_timeout_seconds: _Positive = Field(15.0, validation_alias="NIJA_CALL_TIMEOUT_SECONDS")
    cycle_seconds: _Positive = Field(150.0, validation_alias="NIJA_CYCLE_SECONDS")
    # <BROKER>_CYCLE_SECONDS overrides, as (broker, seconds) pairs; see cycle_seconds_for.
    broker_cycle_seconds: tuple[tuple[str, float], ...] = ()
    funded_recheck_seconds: _Positive = Field(300.0, validation_alias="NIJA_FUNDED_RECHECK_SECONDS")
    status_log_seconds: _Positive = Field(1500.0, validation_alias="NIJA_STATUS_LOG_SECONDS")
    cb_failure_threshold: _Whole = Field(5, validation_alias="NIJA_CB_FAILURE_THRESHOLD")
    cb_success_threshold: _Whole = Field(3, validation_alias="NIJA_CB_SUCCESS_THRESHOLD")
    cb_timeout_seconds: _Positive = Field(300.0, validation_alias="NIJA_CB_TIMEOUT_SECONDS")
    cb_half_open_max_calls: _Whole = Field(1, validation_alias="NIJA_CB_HALF_OPEN_MAX_CALLS")
    data_dir: str = Field("data", validation_alias="NIJA_DATA_DIR")
    log_file: str = Field("nija.log", validation_alias="NIJA_LOG_FILE")
    multi_broker_independent: _Flag = Field(True, validation_alias="MULTI_BROKER_INDEPENDENT")
    # The paper broker's starting cash per account.
    paper_balance_usd: _Positive = Field(10000.0, validation_alias="NIJA_PAPER_BALANCE_USD")
    timeframe: _Timeframe = Field("5m", validation_alias="NIJA_TIMEFRAME")  # candles read
    strategy: _Strategy = Field("default", validation_alias="NIJA_STRATEGY")
    # Process-wide cap on open positions; None = no limit.
    max_total_positions: _Cap = Field(None, validation_alias="NIJA_MAX_TOTAL_POSITIONS")
    primary_broker: _VenueName = Field(None, validation_alias="NIJA_PRIMARY_BROKER")
    # NIJA's client-side request budgets (docs/VENUES.md, "## Request budgets"); false only
    # against loopback emulators and in benchmarks, never against a real venue.
    request_budgets: _Flag = Field(True, validation_alias="NIJA_REQUEST_BUDGETS")
    # Venue health (bot.venue.health): the window in which outage failures of half a venue's
    # accounts declare it down, the interval between probes of a down venue, the window its
    # accounts' resumes are spread over, and the interval of its status check while up.
    venue_failure_window_seconds: _Positive = Field(
        60.0, validation_alias="NIJA_VENUE_FAILURE_WINDOW_SECONDS"
    )
    venue_probe_seconds: _Positive = Field(30.0, validation_alias="NIJA_VENUE_PROBE_SECONDS")
    venue_resume_seconds: _NonNegative = Field(30.0, validation_alias="NIJA_VENUE_RESUME_SECONDS")
    venue_status_seconds: _Positive = Field(60.0, validation_alias="NIJA_VENUE_STATUS_SECONDS")
    # The operator's HTTP API (bot.api): on by default, on loopback, behind a bearer token
    # (NIJA_HTTP_TOKEN, or one generated into the data directory). Port 0: any free port.
    http_enabled: _Flag = Field(True, validation_alias="NIJA_HTTP_ENABLED")
    http_host: _Host = Field("127.0.0.1", validation_alias="NIJA_HTTP_HOST")
    http_port: _Port = Field(DEFAULT_HTTP_PORT, validation_alias="NIJA_HTTP_PORT")
    http_token: _Token = Field(None, validation_alias="NIJA_HTTP_TOKEN", repr=False)
    # The dead-man's switch: this URL is fetched every heartbeat_seconds while the daemon lives.
    heartbeat_url: _Url = Field(None, validation_alias="NIJA_HEARTBEAT_URL", repr=False)
    heartbeat_seconds: _Positive = Field(60.0, validation_alias="NIJA_HEARTBEAT_SECONDS")
    # Alerts (bot.alerts): a JSON webhook and/or a Telegram chat; neither set = alerts off.
    # Repeats of one alert within dedupe_seconds are held back, and so is any alert over
    # alert_max_per_minute; a summary says what was.
    alert_webhook_url: _WebhookUrl = Field(
        None, validation_alias="NIJA_ALERT_WEBHOOK_URL", repr=False
    )
    telegram_bot_token: _BotToken = Field(
        None, validation_alias="NIJA_TELEGRAM_BOT_TOKEN", repr=False
    )
    telegram_chat_id: _ChatId = Field(None, validation_alias="NIJA_TELEGRAM_CHAT_ID")
    telegram_api_url: _TelegramUrl = Field(
        "https://api.telegram.org", validation_alias="NIJA_TELEGRAM_API_URL"
    )
    alert_dedupe_seconds: _Positive = Field(300.0, validation_alias="NIJA_ALERT_DEDUPE_SECONDS")
    alert_max_per_minute: _Whole = Field(12, validation_alias="NIJA_ALERT_MAX_PER_MINUTE")
    # The per-account overrides file (bot.daemon.overrides); None: overrides.toml in data_dir.
    overrides_file: str | None = Field(None, validation_alias="NIJA_OVERRIDES_FILE")
    # The state store on PostgreSQL (postgresql://user:password@host:5432/db); unset: the
    # SQLite file in NIJA_DATA_DIR. A secret: it may hold the password.
    database_url: _DatabaseUrl = Field(None, validation_alias="NIJA_DATABASE_URL", repr=False)
    # Several nodes on that PostgreSQL (bot.cluster): this node's name in the leases (None:
    # <hostname>-<pid>), the most accounts it holds (None: its fair share, no cap), the
    # leases' time to live by the database's clock, and how long a new owner waits before
    # trading an account another node held.
    node_id: _NodeId = Field(None, validation_alias="NIJA_NODE_ID")
    max_accounts_per_node: _Cap = Field(None, validation_alias="NIJA_MAX_ACCOUNTS_PER_NODE")
    lease_ttl_seconds: _LeaseTtl = Field(30.0, validation_alias="NIJA_LEASE_TTL_SECONDS")
    lease_lock_delay_seconds: _NonNegative = Field(
        5.0, validation_alias="NIJA_LEASE_LOCK_DELAY_SECONDS"
    )
    # The most connections this node opens to that PostgreSQL for its accounts, its lease
    # keeper and the operator: each holds one for one statement or write transaction only.
    database_pool_size: _Whole = Field(10, validation_alias="NIJA_DATABASE_POOL_SIZE")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what is passed in: load_settings reads the mapping it is given (.env merged).
        return (init_settings,)

    @property
    def live(self) -> bool:
        """True when orders are real."""
        return self.mode is Mode.LIVE


class _Variables(PydanticBaseSettingsSource):
    """The settings' variables as set in ``env``; a blank or unset one keeps the default."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = field.validation_alias
        value = get(self._env, name) if isinstance(name, str) else None
        return value, name if isinstance(name, str) else field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, name, _complex = self.get_field_value(field, field_name)
            if value is not None:
                found[name] = value
        return found


def _expected(error: ErrorDetails, metadata: Iterable[object]) -> str:
    """What the rejected value should have been: the rule's own words, else its _Expect."""
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ValueError):
        return str(cause)
    return next((m.what for m in metadata if isinstance(m, _Expect)), "valid")


def _problems(exc: ValidationError, raw: Mapping[str, str]) -> list[str]:
    """One message per variable pydantic rejected, naming it and what it must be."""
    by_name = {f.validation_alias: f for f in Settings.model_fields.values()}
    problems: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        if name not in problems:
            field = by_name.get(name)
            what = _expected(error, field.metadata if field else ())
            secret = name in _NOT_ECHOED or name.endswith(SECRET_NAME_ENDINGS)
            got = "(value not shown)" if secret else f"got {shown(raw.get(name, ''))}"
            problems[name] = f"{name} must be {what}, {got}"
    return list(problems.values())


def settings_variables() -> list[str]:
    """Every variable ``load_settings`` reads."""
    names = [f.validation_alias for f in Settings.model_fields.values() if f.validation_alias]
    return [str(n) for n in names] + [v.cycle_seconds_variable for v in venues.env_venues()]


def load_settings(env: Mapping[str, str]) -> Settings:
    """Settings from ``env``; raises ``ConfigError`` naming every bad variable at once."""
    problems: list[str] = []
    # <BROKER>_CYCLE_SECONDS by hand: one variable per registry venue, not a fixed field.
    overrides: list[tuple[str, float]] = []
    for venue in venues.env_venues():
        name = venue.cycle_seconds_variable
        raw = get(env, name)
        if raw is None:
            continue
        try:
            overrides.append((venue.name, _POSITIVE.validate_python(raw)))
        except ValidationError as exc:
            what = _expected(exc.errors()[0], get_args(_Positive))
            problems.append(f"{name} must be {what}, got {shown(raw)}")
    variables = _Variables(Settings, env)()
    try:
        settings = Settings(**variables, broker_cycle_seconds=tuple(overrides))
    except ValidationError as exc:
        problems[:0] = _problems(exc, variables)
    else:
        problems += _http_problems(settings) + _alert_problems(settings)
    if problems:
        raise ConfigError("invalid settings: " + "; ".join(problems))
    return settings


def _http_problems(settings: Settings) -> list[str]:
    """The HTTP API never listens beyond this machine without a token the operator chose."""
    if not settings.http_enabled or is_loopback(settings.http_host) or settings.http_token:
        return []
    return [
        f"NIJA_HTTP_HOST={settings.http_host} is not a loopback address: the HTTP API would be "
        f"reachable from other machines; set NIJA_HTTP_TOKEN (at least {MIN_HTTP_TOKEN_LENGTH} "
        "characters) or listen on 127.0.0.1"
    ]


def _alert_problems(settings: Settings) -> list[str]:
    """A Telegram bot needs its chat, and a chat its bot: half of the pair sends nothing."""
    if (settings.telegram_bot_token is None) == (settings.telegram_chat_id is None):
        return []
    missing, given = (
        ("NIJA_TELEGRAM_CHAT_ID", "NIJA_TELEGRAM_BOT_TOKEN")
        if settings.telegram_chat_id is None
        else ("NIJA_TELEGRAM_BOT_TOKEN", "NIJA_TELEGRAM_CHAT_ID")
    )
    return [f"{given} is set but {missing} is not: Telegram alerts need both (or neither)"]


def cycle_seconds_for(settings: Settings, broker: str) -> float:
    """``<BROKER>_CYCLE_SECONDS`` when set, else ``NIJA_CYCLE_SECONDS``."""
    return dict(settings.broker_cycle_seconds).get(broker.upper(), settings.cycle_seconds)


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Every configured secret value, longest first, for the log redactor.

    Secrets are the values of variables whose names end in one of
    ``SECRET_NAME_ENDINGS``. Each value is listed as set, trimmed, and with literal
    ``\\n`` turned into newlines (the form a Coinbase PEM takes once loaded),
    with and without its final newline. The password in ``NIJA_DATABASE_URL`` is one
    (as written and decoded), and so is libpq's ``PGPASSWORD``.
    """
    found: set[str] = set()
    for name in _SECRET_URLS:
        found.update(_url_passwords((env.get(name) or "").strip()))
    if pgpassword := (env.get("PGPASSWORD") or "").strip():
        found.add(pgpassword)
    for name, raw in env.items():
        if not raw or not name.upper().endswith(SECRET_NAME_ENDINGS):
            continue
        unescaped = raw.strip().replace("\\n", "\n")
        for variant in (raw, raw.strip(), unescaped, unescaped.strip()):
            if variant:
                found.add(variant)
    return sorted(found, key=lambda v: (-len(v), v))


def _url_passwords(raw: str) -> set[str]:
    """The passwords in a URL (``user:password@``, ``?password=``, ``?sslpassword=``), as
    written and decoded."""
    try:
        parts = urlsplit(raw)
        query = parse_qs(parts.query)
        written = [parts.password or "", *query.get("password", []), *query.get("sslpassword", [])]
    except ValueError:
        return set()
    return {v for pw in written for v in (pw, unquote(pw)) if v}

"""Settings and account specs from the environment.

Pure functions over the ``env`` mapping they are given (``bot.config.env.load_env``
merges ``.env`` under the real environment). ``Settings`` is a pydantic-settings model:
each field names its variable and its kind of value (``bot.config.kinds``), and pydantic
reports every bad value at once. Errors name the variable and what is wrong; secret
values are never echoed. Account discovery lives in ``bot.config.accounts`` and is
re-exported here; which values are secrets is ``bot.config.secrets``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.brokers import venues
from bot.config.accounts import AccountConfigError, AccountsResult, load_accounts
from bot.config.kinds import (
    MIN_HTTP_TOKEN_LENGTH,
    POSITIVE,
    BotToken,
    Cap,
    ChatId,
    DatabaseUrl,
    Flag,
    HeartbeatUrl,
    Host,
    LeaseTtl,
    Mode,
    NodeId,
    NonNegative,
    Port,
    Positive,
    StrategyName,
    TelegramUrl,
    Timeframe,
    Token,
    TradingMode,
    VenueName,
    WebhookUrl,
    Whole,
    expected,
)
from bot.config.secrets import SECRET_NAME_ENDINGS
from bot.config.values import get, shown
from bot.errors import ConfigError

__all__ = [
    "AccountConfigError",
    "AccountsResult",
    "Settings",
    "cycle_seconds_for",
    "is_loopback",
    "load_accounts",
    "load_settings",
    "settings_variables",
]

# Settings whose values are never echoed in an error: a token, or a URL (it may carry one).
_NOT_ECHOED = frozenset(
    {"NIJA_HEARTBEAT_URL", "NIJA_ALERT_WEBHOOK_URL", "NIJA_TELEGRAM_API_URL", "NIJA_DATABASE_URL"}
)
DEFAULT_HTTP_PORT = 8780


def is_loopback(host: str) -> bool:
    """True when ``host`` (an address to listen on) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every process-wide setting; each field reads the variable named by its alias.

    ``Settings()`` is the documented defaults: it never reads ``os.environ`` itself
    (``load_settings`` reads a given mapping). Frozen and hashable.
    """

    model_config = SettingsConfigDict(
        frozen=True, case_sensitive=True, validate_by_name=True, validate_by_alias=True
    )

    mode: TradingMode = Field(Mode.PAPER, validation_alias="NIJA_MODE")
    min_balance_usd: NonNegative = Field(10.0, validation_alias="NIJA_MIN_BALANCE_USD")
    # Bound on every broker call.
    call_timeout_seconds: Positive = Field(15.0, validation_alias="NIJA_CALL_TIMEOUT_SECONDS")
    cycle_seconds: Positive = Field(150.0, validation_alias="NIJA_CYCLE_SECONDS")
    # <BROKER>_CYCLE_SECONDS overrides, as (broker, seconds) pairs; see cycle_seconds_for.
    broker_cycle_seconds: tuple[tuple[str, float], ...] = ()
    funded_recheck_seconds: Positive = Field(300.0, validation_alias="NIJA_FUNDED_RECHECK_SECONDS")
    status_log_seconds: Positive = Field(1500.0, validation_alias="NIJA_STATUS_LOG_SECONDS")
    cb_failure_threshold: Whole = Field(5, validation_alias="NIJA_CB_FAILURE_THRESHOLD")
    cb_success_threshold: Whole = Field(3, validation_alias="NIJA_CB_SUCCESS_THRESHOLD")
    cb_timeout_seconds: Positive = Field(300.0, validation_alias="NIJA_CB_TIMEOUT_SECONDS")
    cb_half_open_max_calls: Whole = Field(1, validation_alias="NIJA_CB_HALF_OPEN_MAX_CALLS")
    data_dir: str = Field("data", validation_alias="NIJA_DATA_DIR")
    log_file: str = Field("nija.log", validation_alias="NIJA_LOG_FILE")
    multi_broker_independent: Flag = Field(True, validation_alias="MULTI_BROKER_INDEPENDENT")
    # The paper broker's starting cash per account.
    paper_balance_usd: Positive = Field(10000.0, validation_alias="NIJA_PAPER_BALANCE_USD")
    timeframe: Timeframe = Field("5m", validation_alias="NIJA_TIMEFRAME")  # candles read
    strategy: StrategyName = Field("default", validation_alias="NIJA_STRATEGY")
    # Process-wide cap on open positions; None = no limit.
    max_total_positions: Cap = Field(None, validation_alias="NIJA_MAX_TOTAL_POSITIONS")
    primary_broker: VenueName = Field(None, validation_alias="NIJA_PRIMARY_BROKER")
    # NIJA's client-side request budgets (docs/VENUES.md, "## Request budgets"); false only
    # against loopback emulators and in benchmarks, never against a real venue.
    request_budgets: Flag = Field(True, validation_alias="NIJA_REQUEST_BUDGETS")
    # Venue health (bot.venue.health): the window in which outage failures of half a venue's
    # accounts declare it down, the interval between probes of a down venue, the window its
    # accounts' resumes are spread over, and the interval of its status check while up.
    venue_failure_window_seconds: Positive = Field(
        60.0, validation_alias="NIJA_VENUE_FAILURE_WINDOW_SECONDS"
    )
    venue_probe_seconds: Positive = Field(30.0, validation_alias="NIJA_VENUE_PROBE_SECONDS")
    venue_resume_seconds: NonNegative = Field(30.0, validation_alias="NIJA_VENUE_RESUME_SECONDS")
    venue_status_seconds: Positive = Field(60.0, validation_alias="NIJA_VENUE_STATUS_SECONDS")
    # The operator's HTTP API (bot.api): on by default, on loopback, behind a bearer token
    # (NIJA_HTTP_TOKEN, or one generated into the data directory). Port 0: any free port.
    http_enabled: Flag = Field(True, validation_alias="NIJA_HTTP_ENABLED")
    http_host: Host = Field("127.0.0.1", validation_alias="NIJA_HTTP_HOST")
    http_port: Port = Field(DEFAULT_HTTP_PORT, validation_alias="NIJA_HTTP_PORT")
    http_token: Token = Field(None, validation_alias="NIJA_HTTP_TOKEN", repr=False)
    # The dead-man's switch: this URL is fetched every heartbeat_seconds while the daemon lives.
    heartbeat_url: HeartbeatUrl = Field(None, validation_alias="NIJA_HEARTBEAT_URL", repr=False)
    heartbeat_seconds: Positive = Field(60.0, validation_alias="NIJA_HEARTBEAT_SECONDS")
    # Alerts (bot.alerts): a JSON webhook and/or a Telegram chat; neither set = alerts off.
    # Repeats of one alert within dedupe_seconds are held back, and so is any alert over
    # alert_max_per_minute; a summary says what was.
    alert_webhook_url: WebhookUrl = Field(
        None, validation_alias="NIJA_ALERT_WEBHOOK_URL", repr=False
    )
    telegram_bot_token: BotToken = Field(
        None, validation_alias="NIJA_TELEGRAM_BOT_TOKEN", repr=False
    )
    telegram_chat_id: ChatId = Field(None, validation_alias="NIJA_TELEGRAM_CHAT_ID")
    telegram_api_url: TelegramUrl = Field(
        "https://api.telegram.org", validation_alias="NIJA_TELEGRAM_API_URL"
    )
    alert_dedupe_seconds: Positive = Field(300.0, validation_alias="NIJA_ALERT_DEDUPE_SECONDS")
    alert_max_per_minute: Whole = Field(12, validation_alias="NIJA_ALERT_MAX_PER_MINUTE")
    # The per-account overrides file (bot.daemon.overrides); None: overrides.toml in data_dir.
    overrides_file: str | None = Field(None, validation_alias="NIJA_OVERRIDES_FILE")
    # The state store on PostgreSQL (postgresql://user:password@host:5432/db); unset: the
    # SQLite file in NIJA_DATA_DIR. A secret: it may hold the password.
    database_url: DatabaseUrl = Field(None, validation_alias="NIJA_DATABASE_URL", repr=False)
    # Several nodes on that PostgreSQL (bot.cluster): this node's name in the leases (None:
    # <hostname>-<pid>), the most accounts it holds (None: its fair share, no cap), the
    # leases' time to live by the database's clock, and how long a new owner waits before
    # trading an account another node held.
    node_id: NodeId = Field(None, validation_alias="NIJA_NODE_ID")
    max_accounts_per_node: Cap = Field(None, validation_alias="NIJA_MAX_ACCOUNTS_PER_NODE")
    lease_ttl_seconds: LeaseTtl = Field(30.0, validation_alias="NIJA_LEASE_TTL_SECONDS")
    lease_lock_delay_seconds: NonNegative = Field(
        5.0, validation_alias="NIJA_LEASE_LOCK_DELAY_SECONDS"
    )
    # The most connections this node opens to that PostgreSQL for its accounts, its lease
    # keeper and the operator: each holds one for one statement or write transaction only.
    database_pool_size: Whole = Field(10, validation_alias="NIJA_DATABASE_POOL_SIZE")

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


def _problems(exc: ValidationError, raw: Mapping[str, str]) -> list[str]:
    """One message per variable pydantic rejected, naming it and what it must be."""
    by_name = {f.validation_alias: f for f in Settings.model_fields.values()}
    problems: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        if name not in problems:
            field = by_name.get(name)
            what = expected(error, field.metadata if field else ())
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
            overrides.append((venue.name, POSITIVE.validate_python(raw)))
        except ValidationError as exc:
            what = expected(exc.errors()[0], get_args(Positive))
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

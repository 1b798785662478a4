"""The seed's import path, kept for users' scripts: the code lives in ``bot.isolation``."""

from bot.isolation.circuit import AccountHealthStatus, CircuitBreakerConfig
from bot.isolation.failures import FailureType
from bot.isolation.manager import (
    AccountBlockedError,
    AccountIsolationManager,
    get_isolation_manager,
)

__all__ = [
    "AccountBlockedError",
    "AccountHealthStatus",
    "AccountIsolationManager",
    "CircuitBreakerConfig",
    "FailureType",
    "get_isolation_manager",
]

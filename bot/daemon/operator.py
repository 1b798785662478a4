"""The operator's per-account actions: pause, resume and reload (reset is the supervisor's).

Each is one ``ControlDesk`` handler ``(account_key, actor) -> ControlResult``, performed
one at a time by the desk, whether a request file or the HTTP API asked.

* **pause**: the account opens no new position (``GlobalPositionCap.hold_account``); its
  exits, stops and order checks go on. The pause is stored first, so it outlives a restart
  (``Operator.restore`` applies the stored pauses at start-up); nothing changes when it
  cannot be stored.
* **resume**: the pause is lifted, in the store and in the daemon.
* **reload**: the account's credentials are read again from the environment and ``.env``;
  when they are complete, its broker client is rebuilt by its own thread before its next
  cycle (an account without a thread gets its funds checked again now). Incomplete ones are
  refused, naming the variables, and the account keeps its working client. Every other
  account is untouched.

The desk's one action on every account, ``overrides-reload`` (the per-account overrides
file), is ``bot.daemon.tunings.AccountTunings.reload``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from bot.clock import iso_text
from bot.config.secrets import secret_values
from bot.config.settings import Settings, load_accounts
from bot.daemon.control import Action, ControlDesk, ControlResult, Outcome
from bot.daemon.log import learn_secrets
from bot.daemon.wiring import BrokerFactories
from bot.daemon.worker import AccountWorker
from bot.engine.risk import GlobalPositionCap
from bot.errors import ConfigError, StartupError, describe
from bot.model import BrokerSpec
from bot.redact import Redactor
from bot.store.operator import OperatorStore, Pause
from bot.store.writer import StoreError

if TYPE_CHECKING:
    from bot.daemon.supervisor import IndependentBrokerTrader

__all__ = ["Operator", "operator_desk"]

# The entry hold's text: the cycle line's no_signal and status.json show it.
PAUSED_REASON = "paused by the operator"
_KEEPS = "; the account keeps its current client"


class Operator:
    """Pause, resume and reload one account of the running daemon.

    ``specs`` and ``workers`` are the supervisor's own dictionaries (a reload replaces the
    account's spec in place). ``read_env`` reads the environment and ``.env`` afresh;
    ``learn`` makes every output of the daemon mask the new secrets (nija.log's redactor).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        specs: MutableMapping[str, BrokerSpec],
        workers: Mapping[str, AccountWorker],
        global_cap: GlobalPositionCap,
        store: OperatorStore,
        factories: BrokerFactories,
        redactor: Redactor,
        clock: Any,
        log: Any,
        read_env: Callable[[], Mapping[str, str]] | None = None,
        learn: Callable[[Iterable[str]], object] | None = None,
        recheck_now: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.specs = specs
        self.workers = workers
        self.global_cap = global_cap
        self.store = store
        self.factories = factories
        self.redactor = redactor
        self.clock = clock
        self.log = log
        self.read_env = read_env
        self.learn = learn
        self.recheck_now = recheck_now
        self.paused: dict[str, Pause] = {}  # read by status.json and the API, any thread

    def restore(self) -> None:
        """Apply the pauses stored by an earlier run (at start-up, before any thread trades).

        ``StartupError`` when they cannot be read: trading an account its operator paused
        would be worse than not starting.
        """
        try:
            stored = self.store.pauses()
        except StoreError as exc:
            raise StartupError(
                f"cannot read the paused accounts from {self.store.database.describe()}: {exc}"
            ) from exc
        for key, pause in stored.items():
            if key not in self.specs:
                continue  # an account no longer configured: kept in the store, unused
            self.paused[key] = pause
            self.global_cap.hold_account(key, PAUSED_REASON)
            self.log.warning(
                "account_paused", account=key, since=iso_text(pause.paused_at), by=pause.paused_by
            )

    def audit(self, at: float, actor: str, action: str, key: str, result: ControlResult) -> None:
        """Keep one performed action in the state store (the desk's ``audit``)."""
        self.store.record_action(at, actor, action, key, result.outcome.value, result.message)

    def pause_document(self, key: str) -> dict[str, Any] | None:
        """The account's pause as status.json and the API show it, or None."""
        pause = self.paused.get(key)
        if pause is None:
            return None
        return {"since": iso_text(pause.paused_at), "by": pause.paused_by}

    def _unknown(self, key: str) -> ControlResult | None:
        if key in self.specs:
            return None
        known = ", ".join(sorted(self.specs))
        return ControlResult(
            Outcome.UNKNOWN_ACCOUNT, key, f"this daemon has no account {key} (it has {known})"
        )

    # -- the handlers ---------------------------------------------------------------------
    def pause(self, key: str, actor: str) -> ControlResult:
        """No new entries for ``key``; exits and stops keep working."""
        if (unknown := self._unknown(key)) is not None:
            return unknown
        before = "paused" if key in self.paused else "trading"
        pause = self.store.pause(key, self.clock.wall(), actor)  # stored first: survives a restart
        self.paused[key] = pause
        self.global_cap.hold_account(key, PAUSED_REASON)
        since = f"since {iso_text(pause.paused_at)} by {pause.paused_by}"
        note = f"already paused ({since})" if before == "paused" else "paused"
        return ControlResult(
            Outcome.DONE,
            key,
            f"{note}: no new entries; exits and stops go on",
            before,
            "paused",
        )

    def resume(self, key: str, actor: str) -> ControlResult:
        """Lift ``key``'s pause."""
        if (unknown := self._unknown(key)) is not None:
            return unknown
        was_stored = self.store.resume(key)
        was = key in self.paused or was_stored
        self.paused.pop(key, None)
        self.global_cap.hold_account(key, None)
        message = "resumed: entries allowed again" if was else "was not paused"
        return ControlResult(Outcome.DONE, key, message, "paused" if was else "trading", "trading")

    def reload(self, key: str, actor: str) -> ControlResult:
        """Re-read ``key``'s credentials and rebuild its broker client; nothing else moves."""
        if (unknown := self._unknown(key)) is not None:
            return unknown
        if self.read_env is None:
            return self._refused(key, "this daemon was started without an environment to re-read")
        try:
            env = self.read_env()
        except ConfigError as exc:
            return self._refused(key, f"{exc}{_KEEPS}")
        accounts = load_accounts(env, self.settings)
        error = next((e for e in accounts.errors if e.account == key), None)
        if error is not None:
            return self._refused(key, f"the new credentials are refused: {error.message}{_KEEPS}")
        new = next((s for s in accounts.specs if s.account.key == key), None)
        if new is None:
            demo = not self.specs[key].credentials.api_key
            where = "a demo account has none" if demo else "none are set any more"
            return self._refused(key, f"no credentials to reload ({where}){_KEEPS}")
        # Masked everywhere before the new key is used anywhere.
        secrets = secret_values(env)
        self.redactor.learn(secrets)
        if self.learn is not None:
            self.learn(secrets)
        try:  # a client that cannot even be built is refused before the old one is dropped
            self.factories.venue(new)  # the account's client from now on (no network yet)
        except Exception as exc:
            error_text = describe(exc, redactor=self.redactor)
            return self._refused(
                key, f"the new credentials cannot build a client: {error_text}{_KEEPS}"
            )
        changed = new.credentials != self.specs[key].credentials
        self.specs[key] = new
        worker = self.workers.get(key)
        if worker is not None:
            worker.request_rebuild()
            then = "its thread builds the new client before its next cycle, which starts now"
        else:
            self.recheck_now()
            then = "its funds are checked again now with them"
        what = "new credentials loaded" if changed else "credentials unchanged, client rebuilt"
        return ControlResult(Outcome.DONE, key, f"{what}; {then}")

    def _refused(self, key: str, message: str) -> ControlResult:
        return ControlResult(Outcome.REFUSED, key, message)


def operator_desk(
    sup: IndependentBrokerTrader, read_env: Callable[[], Mapping[str, str]] | None
) -> tuple[Operator, ControlDesk]:
    """The supervisor's operator and the control desk that performs every action."""
    operator = Operator(
        settings=sup.settings,
        specs=sup.specs,
        workers=sup.workers,
        global_cap=sup.global_cap,
        store=OperatorStore(sup.db, redactor=sup.redactor),
        factories=sup.factories,
        redactor=sup.redactor,
        clock=sup.clock,
        log=sup.log,
        read_env=read_env,
        learn=learn_secrets,
        recheck_now=sup.admission.recheck_now,
    )
    handlers = {
        Action.RESET: lambda key, _actor: sup.reset_account(key),
        Action.PAUSE: operator.pause,
        Action.RESUME: operator.resume,
        Action.RELOAD: operator.reload,
        Action.OVERRIDES_RELOAD: sup.tunings.reload,
    }
    desk = ControlDesk(sup.data_dir, handlers, clock=sup.clock, log=sup.log, audit=operator.audit)
    return operator, desk

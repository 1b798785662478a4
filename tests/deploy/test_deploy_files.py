"""The deployment files: deploy/compose/docker-compose.yml, deploy/systemd/nija@.service,
deploy/nija.service and the Dockerfile.

Every NIJA_* variable they set is one NIJA reads, and the settings they give a node load;
the nodes wait for a healthy PostgreSQL; every stop path is SIGTERM with more time than the
daemon's own stop can take. Docker cannot run here (no engine), so the compose file is
checked as data; the units are also checked by ``systemd-analyze verify`` where it exists.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import yaml

from bot.alerts.notifier import DRAIN_SECONDS
from bot.api.heartbeat import Heartbeat
from bot.api.server import ApiServer
from bot.brokers import venues
from bot.config.settings import load_settings
from bot.config.unknown import known_variables
from bot.daemon.status import StatusWriter
from bot.daemon.supervisor import IndependentBrokerTrader
from bot.errors import ConfigError
from bot.store.pg import parse_database_url
from bot.venue.monitor import VenueMonitor
from tests.deploy.units import unit_entries

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose" / "docker-compose.yml"
TEMPLATE = REPO / "deploy" / "systemd" / "nija@.service"
SINGLE = REPO / "deploy" / "nija.service"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

# What SIGTERM's lease hand-back may take: one UPDATE (bot.cluster.leases.release) under
# the store's 2 s lock timeout, after a connection wait of at most 5 s, with room to spare.
LEASE_HANDBACK_SECONDS = 10.0
# PostgresDatabase.close: pool.close(timeout=5.0) for each of its two pools.
PG_POOLS_CLOSE_SECONDS = 2 * 5.0
# Values compose would interpolate from deploy/compose/.env.
COMPOSE_VALUES = {"POSTGRES_PASSWORD": "0123456789abcdef", "NIJA_HTTP_TOKEN": "t" * 32}
A_DATABASE_URL = "postgresql://nija:pw@db.internal:5432/nija_paper"


def _default(func: Callable[..., object], name: str) -> float:
    return float(inspect.signature(func).parameters[name].default)


def daemon_stop_bound() -> float:
    """The longest the daemon's stop can take after SIGTERM: each step's own bound, added
    up in the order ``bot.cli.daemon`` runs them (usually it takes a few seconds)."""
    return sum(
        (
            _default(IndependentBrokerTrader.stop_independent_trading, "timeout"),  # threads
            len(venues.env_venues()) * _default(VenueMonitor.stop, "timeout"),
            _default(StatusWriter.stop, "timeout"),
            _default(Heartbeat.stop, "timeout"),
            _default(ApiServer.stop, "timeout"),
            PG_POOLS_CLOSE_SECONDS,
            DRAIN_SECONDS,  # the alerts still queued
            LEASE_HANDBACK_SECONDS,
        )
    )


def _seconds(text: str) -> float:
    """A systemd or compose duration of seconds and minutes: ``60``, ``60s``, ``1m30s``."""
    found = re.fullmatch(r"(?:(\d+)m(?:in)?)?\s*(?:(\d+)s?)?", text.strip())
    assert found and text.strip(), f"not a duration of minutes and seconds: {text!r}"
    return 60.0 * int(found[1] or 0) + int(found[2] or 0)


def _expand(value: str, instance: str, host: str = "node-a") -> str:
    """systemd's specifiers as the template uses them: %i, %H and %%."""
    unknown = set(re.findall(r"%([^iH%])", value))
    assert not unknown, f"specifiers this test does not expand: {unknown}"
    return re.sub(r"%([iH%])", lambda m: {"i": instance, "H": host, "%": "%"}[m[1]], value)


def unit_environment(path: Path, instance: str = "1") -> dict[str, str]:
    """What the unit's ``Environment=`` lines set for ``instance`` (files aside)."""
    env: dict[str, str] = {}
    for value in unit_entries(path).get("Environment", []):
        for word in shlex.split(_expand(value, instance)):
            name, _, setting = word.partition("=")
            env[name] = setting
    return env


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` (raising on error)."""

    def one(found: re.Match[str]) -> str:
        name, op, arg = found[1], found[2], found[3]
        if values.get(name):
            return values[name]
        if op == ":?":
            raise LookupError(f"compose refuses to start: {arg}")
        return arg or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, text)


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The NIJA node's environment: the image's ENV, then the compose file's (which wins)."""
    env = dockerfile_environment()
    for name, value in _compose()["services"]["nija"]["environment"].items():
        env[name] = interpolate(str(value), values)
    return env


def dockerfile_environment() -> dict[str, str]:
    """What the Dockerfile's ``ENV`` instructions set."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().upper().startswith("ENV "):
            for word in shlex.split(line.strip()[4:]):
                name, _, value = word.partition("=")
                env[name] = value
    return env


# -- every NIJA_* name is one NIJA reads ----------------------------------------------------
def _unknown(names: set[str]) -> set[str]:
    own = {n for n in names if n.startswith(("NIJA_", "MULTI_BROKER_"))}
    return own - known_variables()


@pytest.mark.parametrize(
    "where, names",
    [
        ("docker-compose.yml", lambda: set(_compose()["services"]["nija"]["environment"])),
        ("Dockerfile", lambda: set(dockerfile_environment())),
        ("nija@.service", lambda: set(unit_environment(TEMPLATE))),
        ("nija.service", lambda: set(unit_environment(SINGLE))),
    ],
)
def test_every_nija_variable_set_is_one_nija_reads(where, names):
    assert _unknown(names()) == set(), where


def test_a_misspelt_variable_would_be_caught():
    assert _unknown({"NIJA_DATABSE_URL", "NIJA_MODE", "NIJA_NODE_ID"}) == {"NIJA_DATABSE_URL"}


# -- compose ------------------------------------------------------------------------------
def test_compose_nodes_wait_for_a_healthy_postgres_with_a_volume():
    services = _compose()["services"]
    assert services["nija"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:15"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "ports" not in postgres  # the database is reached over the compose network only


def test_compose_nodes_load_their_settings_and_reach_the_mode_s_database():
    for mode in ("paper", "live"):
        env = compose_environment({**COMPOSE_VALUES, "NIJA_MODE": mode})
        settings = load_settings(env)  # what the daemon does first; raises naming a problem
        assert settings.mode == mode
        assert settings.http_host == "0.0.0.0"  # with the operator's token, as required
        assert settings.http_token == COMPOSE_VALUES["NIJA_HTTP_TOKEN"]
        assert (settings.data_dir, settings.http_port) == ("/data", 8780)  # what is published
        url = parse_database_url(env["NIJA_DATABASE_URL"])
        assert (url.host, url.port, url.dbname) == ("postgres", "5432", f"nija_{mode}")
        assert url.password == COMPOSE_VALUES["POSTGRES_PASSWORD"]
    live_db = (COMPOSE.parent / "initdb" / "10-nija-live.sql").read_text()
    assert "CREATE DATABASE nija_live" in live_db  # paper's is POSTGRES_DB
    assert _compose()["services"]["postgres"]["environment"]["POSTGRES_DB"] == "nija_paper"


@pytest.mark.parametrize("missing", ["POSTGRES_PASSWORD", "NIJA_HTTP_TOKEN"])
def test_compose_refuses_to_start_without_a_password_or_a_token(missing):
    values = {k: v for k, v in COMPOSE_VALUES.items() if k != missing}
    with pytest.raises(LookupError, match=missing):
        compose_environment(values)


def test_compose_nodes_scale_and_publish_their_api_on_the_loopback_only():
    nija = _compose()["services"]["nija"]
    assert "container_name" not in nija  # one name cannot serve several replicas
    # Blank: <hostname>-<pid>, the container's own, whatever the copied .env says.
    assert nija["environment"]["NIJA_NODE_ID"] == ""
    for port in nija["ports"]:
        host, _, container = str(port).rpartition(":")
        assert container == "8780"
        assert host == "127.0.0.1:", f"{port}: loopback, and a port Docker picks per replica"


def test_compose_stops_nodes_with_sigterm_and_time_for_a_graceful_stop():
    nija = _compose()["services"]["nija"]
    assert nija["stop_signal"] == "SIGTERM"
    assert nija["restart"] == "unless-stopped"
    assert _seconds(nija["stop_grace_period"]) > daemon_stop_bound()


def test_no_env_file_reaches_the_image():
    ignored = DOCKERIGNORE.read_text().splitlines()
    assert "**/.env" in ignored and "**/.env.*" in ignored
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^USER nija$", dockerfile, re.M)  # never root
    assert '["python3", "bot.py"]' in dockerfile


# -- systemd ------------------------------------------------------------------------------
@pytest.mark.parametrize("unit", [TEMPLATE, SINGLE], ids=lambda p: p.name)
def test_units_stop_with_sigterm_and_time_for_a_graceful_stop(unit):
    entries = unit_entries(unit)
    assert entries["KillSignal"] == ["SIGTERM"]
    assert entries.get("KillMode", ["control-group"]) != ["none"]
    (timeout,) = entries["TimeoutStopSec"]
    assert _seconds(timeout) > daemon_stop_bound()
    assert entries["Restart"] == ["on-failure"]
    assert entries["RestartPreventExitStatus"] == ["2"]  # a start-up error is not a loop


def test_template_instances_are_separate_nodes_that_load():
    first, second = unit_environment(TEMPLATE, "1"), unit_environment(TEMPLATE, "2")
    for name in ("NIJA_NODE_ID", "NIJA_DATA_DIR", "NIJA_LOG_FILE", "NIJA_HTTP_PORT"):
        assert first[name] != second[name], name
    assert first["NIJA_NODE_ID"] == "node-a-1"
    settings = load_settings({**first, "NIJA_DATABASE_URL": A_DATABASE_URL})
    assert (settings.data_dir, settings.http_port) == ("/var/lib/nija/1", 8781)
    assert settings.log_file == "/var/log/nija/1/nija.log"
    # An instance not named 0-9 must set NIJA_HTTP_PORT in its own file: refused otherwise.
    with pytest.raises(ConfigError, match="NIJA_HTTP_PORT"):
        load_settings({**unit_environment(TEMPLATE, "10"), "NIJA_DATABASE_URL": A_DATABASE_URL})


def test_template_reads_the_shared_file_then_the_instance_s_own():
    entries = unit_entries(TEMPLATE)
    assert entries["EnvironmentFile"] == ["/etc/nija/nija.env", "-/etc/nija/nija-%i.env"]
    writable = {d: entries[d] for d in ("StateDirectory", "LogsDirectory")}
    assert writable == {"StateDirectory": ["nija/%i"], "LogsDirectory": ["nija/%i"]}
    assert entries["ProtectSystem"] == ["strict"]  # so those are the only writable places
    for key in ("NoNewPrivileges", "PrivateTmp"):
        assert entries[key] == ["true"], key


def _template_exec_start(instance: str) -> list[str]:
    (command,) = unit_entries(TEMPLATE)["ExecStart"]
    return shlex.split(_expand(command, instance).replace("$$", "$"))


def test_template_refuses_to_start_without_a_database_url():
    argv = _template_exec_start("2")
    env = {k: v for k, v in os.environ.items() if k != "NIJA_DATABASE_URL"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2  # RestartPreventExitStatus: not restarted in a loop
    assert "nija@2: NIJA_DATABASE_URL is not set" in proc.stderr


def test_template_starts_the_daemon_when_the_url_is_set_without_showing_it():
    argv = _template_exec_start("2")
    secret_url = "postgresql://nija:s3cret-pass@db:5432/nija_paper"
    proc = subprocess.run(
        argv,
        env={**os.environ, "NIJA_DATABASE_URL": secret_url},
        capture_output=True,
        text=True,
        timeout=10,
        cwd=REPO,
    )
    # Past the check, it execs /opt/nija/.venv/bin/python, which is not installed here.
    assert proc.returncode == 127, proc.stderr
    assert "/opt/nija/.venv/bin/python" in proc.stderr
    assert "s3cret-pass" not in proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("unit", [TEMPLATE, SINGLE], ids=lambda p: p.name)
def test_units_pass_systemd_analyze_verify(unit, tmp_path):
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text())
    name = copy.name.replace("@.", "@1.")  # a template is verified through an instance
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    # The programs under /opt/nija exist only on an installed machine.
    absent = re.compile(r"Command /opt/nija/\S+ is not executable")
    problems = [x for x in proc.stderr.splitlines() if x.strip() and not absent.search(x)]
    assert problems == [], proc.stderr  # it exits 1 for the absent programs alone

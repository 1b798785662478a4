"""A throwaway PostgreSQL server from the system's binaries, for tests and benchmarks.

``PostgresServer.start()`` runs ``initdb`` into a new temporary directory and starts
``postgres`` on 127.0.0.1 and a free port (its unix socket in that directory too), with
durability off (fsync, synchronous commit: a test's data is worth nothing after it). The
superuser ``nija`` has a random password, which TCP connections must give (SCRAM), so a
URL with a password is what the tests use. ``durable=True`` keeps PostgreSQL's own
defaults (fsync, synchronous commit) for measurements (``scripts/bench_store.py``). Run as root, the server runs as the user
``postgres`` (Debian's package creates it), else ``nobody``: initdb refuses root.
``new_schema()`` gives each test a schema of its own (a URL whose ``search_path`` is it);
``stop()`` ends the server (the process this started, by its id) and removes the directory.

``find_bin_dir()`` finds ``initdb`` and ``postgres`` on the PATH or under
``/usr/lib/postgresql/<version>/bin`` (Debian's package ``postgresql``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import psycopg

__all__ = ["PostgresServer", "find_bin_dir", "missing_reason"]

USER = "nija"
DATABASE = "nija"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


def missing_reason() -> str:
    """Why the PostgreSQL tests cannot run, when ``find_bin_dir()`` finds nothing."""
    return (
        "PostgreSQL's server binaries (initdb, postgres) are not installed:"
        " install the Debian package `postgresql` (apt-get install postgresql)"
    )


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, newest version first; None if none."""
    candidates: list[Path] = []
    if found := shutil.which("initdb"):
        candidates.append(Path(found).resolve().parent)
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=lambda p: _version(p.parent.name), reverse=True)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    return None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> pwd.struct_passwd | None:
    """Whom the server runs as: None (this user) unless this is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and neither the user postgres nor nobody exists")


class PostgresServer:
    """One throwaway server; ``start()`` it, ``stop()`` it."""

    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.durable = durable
        self.password = secrets.token_hex(16)
        self.port = 0
        self.root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._user = _server_user()
        self._schemas = 0

    # -- life ------------------------------------------------------------------------
    def _as_server_user(self) -> dict[str, object]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _own(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def start(self) -> PostgresServer:
        """initdb and start the server; RuntimeError with its log when it does not come up."""
        self.root = Path(tempfile.mkdtemp(prefix="nija-pg-"))
        self._own(self.root)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        self._own(pwfile)
        initdb = [
            str(self.bin_dir / "initdb"), "-D", str(self.root / "data"), "-U", USER,
            "--pwfile", str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C", "--no-sync",
        ]  # fmt: skip
        done = subprocess.run(
            initdb, capture_output=True, timeout=120, check=False, **self._as_server_user()
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.decode(errors='replace')[-2000:]}")
        self._launch()
        admin = psycopg.connect(self.url("postgres"), autocommit=True)
        with admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        return self

    def _launch(self, port: int | None = None) -> None:
        assert self.root is not None
        self.port = port or _free_port()
        fast = ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
        settings = [*([] if self.durable else fast), "max_connections=200"]
        log = (self.root / "server.log").open("ab")
        self._proc = subprocess.Popen(
            [
                str(self.bin_dir / "postgres"), "-D", str(self.root / "data"),
                "-k", str(self.root), "-h", "127.0.0.1", "-p", str(self.port),
                *(arg for setting in settings for arg in ("-c", setting)),
            ],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            **self._as_server_user(),  # type: ignore[arg-type]
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    tail = (self.root / "server.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"PostgreSQL did not start: {tail}") from None
                time.sleep(0.1)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the server and start it again on the same port, ``down_seconds`` later:
        every session is lost."""
        self._halt()
        time.sleep(down_seconds)
        self._launch(self.port)

    def _halt(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # fast shutdown: sessions are ended, data kept
        try:
            proc.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_SECONDS)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self._halt()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    # -- URLs and schemas ----------------------------------------------------------
    def url(self, dbname: str = DATABASE, *, schema: str | None = None, **params: str) -> str:
        """A URL to ``dbname`` with the password; ``schema`` first on its search path."""
        query = dict(params)
        if schema is not None:
            query["options"] = f"-csearch_path={schema}"
        tail = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
        base = f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{dbname}"
        return f"{base}?{tail}" if tail else base

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit superuser connection to the test database; close it."""
        return psycopg.connect(self.url(), autocommit=True)

    def new_schema(self) -> tuple[str, str]:
        """A new empty schema and a URL whose search path (and application name) is it."""
        self._schemas += 1
        name = f"t{os.getpid()}_{self._schemas}_{secrets.token_hex(3)}"
        with self.admin() as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return name, self.url(schema=name, application_name=name)

    def drop_schema(self, name: str) -> None:
        """Drop a schema ``new_schema`` made, with everything in it."""
        with self.admin() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")

    def terminate(self, application_name: str) -> int:
        """End every session of ``application_name`` (as a lost connection); how many."""
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND pid <> pg_backend_pid()",
                (application_name,),
            ).fetchall()
        return len(rows)

"""The operator plane: a local HTTP API inside the daemon (``bot.api.server``).

Health probes (``/healthz``, ``/readyz``), Prometheus metrics (``/metrics``), the accounts'
status and per-account control (``/api/v1``), and the dead-man's switch
(``bot.api.heartbeat``). Every action goes through the daemon's one control desk
(``bot.daemon.control.ControlDesk.perform``), as ``nija_ctl.py``'s requests do.
docs/OPERATIONS.md is the reference.
"""

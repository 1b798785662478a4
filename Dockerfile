# NIJA's container image: one node (bot.py) per container; see deploy/compose/.
#
#   docker build -t nija:local .          # or: docker compose build (deploy/compose/)
#
# Keys and settings come from the environment (compose's env_file), never from the image:
# .dockerignore keeps every .env out of the build context.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user; the code stays root-owned and read-only to it.
RUN useradd --system --create-home --home-dir /home/nija --shell /usr/sbin/nologin nija

WORKDIR /app
COPY . /app
RUN pip install --root-user-action=ignore .

# status.json, nija.log and the node's lock live in /data, the only directory it writes.
# (The state store is PostgreSQL's: NIJA_DATABASE_URL.)
RUN install -d -m 0700 -o nija -g nija /data
ENV NIJA_DATA_DIR=/data \
    NIJA_LOG_FILE=/data/nija.log

USER nija
# The HTTP API (NIJA_HTTP_PORT): /healthz, /readyz, /metrics, /api/v1.
EXPOSE 8780
# The daemon stops gracefully on SIGTERM (docker stop); give it the time: stop_grace_period.
STOPSIGNAL SIGTERM
CMD ["python3", "bot.py"]

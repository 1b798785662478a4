"""Building coinbase-advanced-py's ``RESTClient`` for one account: key checks, base URL, transport.

The SDK always sends to ``https://{base_url}{path}`` and signs ``"{METHOD} {base_url}{path}"``
into the JWT. For a plain-HTTP loopback base URL (the emulator) we keep the SDK's
URL and signature as they are and mount a transport adapter that sends those
requests over ``http://`` instead; nothing in the SDK is patched.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from coinbase import jwt_generator
from coinbase.rest import RESTClient

from bot.brokers.base import LOOPBACK_HOSTS
from bot.brokers.transport import LastLook, Transport, mount
from bot.errors import BrokerConfigError
from bot.model import BrokerSpec


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the SDK sends requests: ``host`` is what it puts after ``https://``."""

    host: str  # e.g. "api.coinbase.com" or "127.0.0.1:8123"
    plain_http: bool  # the venue speaks http:// (loopback emulators only)
    loopback: bool


class _PlainHTTPAdapter(Transport):
    """Sends the SDK's ``https://`` loopback requests as ``http://`` (same host, path, headers)."""

    def send(self, request, *args, **kwargs):
        if request.url and request.url.startswith("https://"):
            request.url = "http://" + request.url[len("https://") :]
        return super().send(request, *args, **kwargs)


def endpoint_for(base_url: str | None) -> Endpoint:
    """Parse ``spec.base_url``; plain http is accepted only for loopback hosts (JWTs stay off the wire)."""
    if not base_url:
        return Endpoint(host="api.coinbase.com", plain_http=False, loopback=False)
    parts = urlsplit(base_url if "://" in base_url else f"https://{base_url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BrokerConfigError("COINBASE_BASE_URL must be an http(s) URL with a host")
    loopback = parts.hostname.lower() in LOOPBACK_HOSTS
    if parts.scheme == "http" and not loopback:
        raise BrokerConfigError("COINBASE_BASE_URL may use plain http only for a loopback host")
    host = parts.netloc + parts.path.rstrip("/")
    return Endpoint(host=host, plain_http=parts.scheme == "http", loopback=loopback)


def normalise_secret(secret: str) -> str:
    """Accept a PEM whose newlines arrive as literal ``\\n`` (common in .env files)."""
    return secret.replace("\\n", "\n").strip()


def check_credentials(api_key: str, api_secret: str) -> None:
    """Sign one throw-away JWT locally, so a bad key fails as BrokerConfigError (never its value)."""
    if not api_key or not api_secret:
        raise BrokerConfigError("Coinbase API key name and private key are both required")
    try:
        jwt_generator.build_ws_jwt(api_key, api_secret)
    # The SDK wraps key-loading failures in a bare Exception; anything raised while signing
    # locally means the key is unusable. ``from None``: the cause may quote key material.
    except Exception:
        raise BrokerConfigError(
            "Coinbase API secret is not a usable EC (ES256) or Ed25519 private key"
        ) from None


def build_client(
    spec: BrokerSpec, endpoint: Endpoint, last_look: LastLook | None = None
) -> RESTClient:
    """A RESTClient bounded by ``spec.timeout_seconds``, with no retries and no surprise proxies,
    whose transport takes ``last_look`` before each request (``bot.brokers.transport``).

    A spec without credentials gives an unauthenticated client: the public endpoints only.
    """
    creds = spec.credentials
    keyed = bool(creds.api_key or creds.api_secret)
    client = RESTClient(
        api_key=creds.api_key if keyed else None,
        api_secret=normalise_secret(creds.api_secret) if keyed else None,
        base_url=endpoint.host,
        timeout=spec.timeout_seconds,
    )
    session = client.session
    mount(session, Transport(last_look=last_look))  # no retries: a timed-out POST is looked up
    if endpoint.loopback:
        session.trust_env = False  # HTTP(S)_PROXY must not capture calls to 127.0.0.1
    if endpoint.plain_http:
        session.mount(f"https://{endpoint.host}/", _PlainHTTPAdapter(last_look=last_look))
    return client

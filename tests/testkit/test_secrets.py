"""nija_testkit.secrets: the leak check every test uses must itself catch leaks."""

from __future__ import annotations

import pytest

from nija_testkit.secrets import assert_no_secret, env_secrets, find_leaks, new_pem

SECRET = "FAKE-TESTKIT-SECRET-0123456789abcdef"
PEM = new_pem()


class Holder:
    """An object whose repr shows what it holds (a careless adapter)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Holder(value={self.value!r})"


def leaks(*things: object, **kw) -> bool:
    try:
        assert_no_secret(*things, secrets=(SECRET, PEM), **kw)
    except AssertionError:
        return True
    return False


def test_a_clean_text_passes():
    assert not leaks("balance fetched for platform/platform/KRAKEN", Holder("public"))
    assert not leaks("-----BEGIN EC PRIVATE KEY-----")  # armour is not secret


@pytest.mark.parametrize(
    "shown",
    [
        SECRET,
        f"key={SECRET[:16]}***",  # half masked
        f"***{SECRET[-16:]}",
        PEM.splitlines()[1],  # one line of the key body
        PEM.replace("\n", "\\n"),  # as .env writes it
        repr(PEM),  # as repr() shows it
    ],
    ids=["whole", "prefix", "suffix", "pem-line", "pem-escaped", "pem-repr"],
)
def test_every_form_of_a_secret_is_caught(shown):
    assert leaks(f"error: {shown} (while signing)")


def test_objects_and_hidden_exception_contexts_are_read():
    assert leaks(Holder(SECRET))
    try:
        try:
            raise ValueError(f"bad secret {SECRET}")
        except ValueError:
            raise RuntimeError("signing failed") from None
    except RuntimeError as exc:
        hidden = exc
    assert str(hidden) == "signing failed"
    assert leaks(hidden)


def test_a_secret_pasted_with_a_line_break_is_caught_in_each_part():
    spoiled = SECRET[:20] + "\n" + SECRET[20:]
    for part in (SECRET[:20], SECRET[20:]):
        assert f"out: {part[:12]}..." in find_leaks({"out": f"[{part}]"}, [spoiled])


def test_markers_are_matched_whole():
    assert leaks("FAKE-other", markers=("FAKE-",))
    assert not leaks("FAKE-other")


def test_env_secrets_are_the_credential_variables():
    env = {"KRAKEN_API_KEY": "k", "KRAKEN_API_SECRET": "s", "OKX_PASSPHRASE": "p", "NIJA_MODE": "x"}
    assert sorted(env_secrets(env | {"ALPACA_API_KEY": ""})) == ["k", "p", "s"]

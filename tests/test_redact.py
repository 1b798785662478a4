"""bot.redact: a known secret is masked whole, cut, split, encoded or in another case."""

from __future__ import annotations

import html
import json
import time
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import describe
from bot.redact import MASK, Redactor
from bot.redact_patterns import MIN_PIECE_LENGTH

KEY = "K7qP2xZ9mW4vN8rT3yL6aB5cD1"
SECRET = "s3/Cr+eT=vAlUe&<with>-symbols"
REDACTOR = Redactor((KEY, SECRET))


def pieces(value: str) -> list[str]:
    """Every leading and trailing piece of ``value`` the redactor promises to mask."""
    return [value[:n] for n in range(MIN_PIECE_LENGTH, len(value) + 1)] + [
        value[-n:] for n in range(MIN_PIECE_LENGTH, len(value) + 1)
    ]


def shows_any_piece(text: str, value: str = KEY) -> bool:
    low = text.lower()
    return any(piece.lower() in low for piece in pieces(value))


def test_a_whole_key_is_masked_in_any_letter_case():
    for form in (KEY, KEY.lower(), KEY.upper(), KEY.swapcase()):
        assert REDACTOR.mask_values(f"Invalid key {form}!") == f"Invalid key {MASK}!"


def test_a_key_cut_at_the_end_of_a_text_is_masked():
    assert REDACTOR.mask_values(f"Invalid key {KEY[:12]}") == f"Invalid key {MASK}"
    assert REDACTOR.mask_values(f"Invalid key {KEY[:12]}...") == f"Invalid key {MASK}..."
    assert REDACTOR.mask_values(f"Invalid key {KEY[:MIN_PIECE_LENGTH]}") == f"Invalid key {MASK}"


def test_a_key_cut_at_the_start_of_a_text_is_masked():
    assert REDACTOR.mask_values(f"{KEY[-12:]} is not valid") == f"{MASK} is not valid"
    assert REDACTOR.mask_values(f"...{KEY[5:]}") == f"...{MASK}"


def test_pieces_shorter_than_the_minimum_are_left_as_documented():
    short = KEY[: MIN_PIECE_LENGTH - 1]
    assert REDACTOR.mask_values(f"Invalid key {short}") == f"Invalid key {short}"


def test_a_key_split_across_fields_is_masked_in_each():
    half = len(KEY) // 2
    document = {
        "accounts": {
            "user/alice/KRAKEN": {
                "last_error": f"Invalid key {KEY[:half]}",
                "detail": f"{KEY[half:]} (rest of the key)",
                "note": [f"key continues: {KEY[half:].upper()}"],
            }
        }
    }
    masked = REDACTOR.mask_data(document)
    assert not shows_any_piece(json.dumps(masked))
    assert masked["accounts"]["user/alice/KRAKEN"]["last_error"] == f"Invalid key {MASK}"


def test_encoded_forms_are_masked():
    for form in (
        quote(SECRET, safe=""),
        quote(SECRET, safe="").lower(),  # %2f as well as %2F
        quote(SECRET),
        html.escape(SECRET),
        json.dumps(SECRET)[1:-1],
    ):
        masked = REDACTOR.mask_values(f"GET /x?k={form}&n=1")
        assert masked == f"GET /x?k={MASK}&n=1", form
    cut = quote(SECRET, safe="")[:14]
    assert REDACTOR.mask_values(f"url ...?k={cut}") == f"url ...?k={MASK}"


def test_a_pem_is_masked_but_its_armour_words_are_not():
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        .decode()
    )
    redactor = Redactor((pem,))
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    assert redactor.mask_values(f"secret {body[:30]}") == f"secret {MASK}"
    message = "the secret is not a valid EC PRIVATE KEY (-----BEGIN EC PRIVATE KEY----- missing)"
    assert redactor.mask_values(message) == message


def test_mask_data_keeps_types_and_masks_no_field_by_its_name():
    data = {"credentials": "present", "api_key_set": True, "n": 3, "x": 1.5, "none": None}
    assert REDACTOR.mask_data(data) == data
    assert REDACTOR.mask_data({KEY: (1, KEY[:10])}) == {MASK: [1, MASK]}
    assert REDACTOR.mask_data(ValueError(f"bad {KEY}")) == f"bad {MASK}"


def test_masking_comes_before_cutting():
    text = "x" * 290 + KEY  # a cut at 300 would leave 10 characters of the key
    assert REDACTOR.shorten(text, 300) == "x" * 290 + MASK
    error = PermissionError("x" * 270 + KEY)
    shown = describe(error, limit=300, redactor=REDACTOR)
    assert shown == f"PermissionError: {'x' * 270}{MASK}"[:300]
    assert not shows_any_piece(shown)
    assert describe(error, limit=300) == f"PermissionError: {error}"[:300]  # no redactor: as before


def test_ordinary_text_is_left_alone():
    text = 'AuthenticationError: kraken {"error":["EAPI:Invalid key"]} for user/alice/KRAKEN'
    assert REDACTOR.mask_values(text) == text


def test_piece_search_takes_linear_time():
    text = (KEY[:MIN_PIECE_LENGTH] + "#") * 40_000 + "A" * 200_000
    started = time.perf_counter()
    masked = REDACTOR.mask_values(text)
    assert time.perf_counter() - started < 5.0
    assert KEY[:MIN_PIECE_LENGTH] not in masked


_KEY_CHARS = st.characters(
    whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="-_/+=", max_codepoint=127
)


@settings(max_examples=200, deadline=None)
@given(
    key=st.text(_KEY_CHARS, min_size=2 * MIN_PIECE_LENGTH, max_size=64),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    cut=st.integers(min_value=MIN_PIECE_LENGTH),
    upper=st.booleans(),
)
def test_no_cut_or_split_piece_survives(key, before, after, cut, upper):
    cut = min(cut, len(key) - MIN_PIECE_LENGTH)
    head, tail = key[:cut], key[cut:]
    if upper:
        head, tail = head.upper(), tail.upper()
    masked = Redactor((key,)).mask_data([before + head, tail + after, before + head + after])
    for text in masked:
        assert head not in text
        assert tail not in text


def test_a_learned_secret_is_masked_by_every_holder_of_the_redactor():
    from bot.redact import Redactor as R

    redactor = R(("OLD-SECRET-VALUE-1",))
    holder = {"r": redactor}  # e.g. the isolation manager and the status writer
    assert holder["r"].mask_values("NEW-SECRET-VALUE-2") == "NEW-SECRET-VALUE-2"
    assert redactor.learned == 0
    assert redactor.learn(["NEW-SECRET-VALUE-2", "OLD-SECRET-VALUE-1"]) is True
    assert redactor.learn(["NEW-SECRET-VALUE-2"]) is False
    assert redactor.learned == 1  # what was masked before may show the new one
    text = "old OLD-SECRET-VALUE-1 new NEW-SECRET-VALUE-2 cut NEW-SECRET"
    assert holder["r"].mask_values(text) == "old *** new *** cut ***"
    assert "NEW" not in repr(redactor) and "2 secrets" in repr(redactor)


def test_the_learned_count_goes_up_only_once_the_new_patterns_mask(monkeypatch):
    # A writer that reads ``learned`` N+1 and then masks must mask with the new patterns:
    # it keeps its copies stamped N+1 and never masks them again.
    redactor = Redactor(("OLD-SECRET-VALUE-1",))
    seen = []
    compile_ = Redactor._compile

    def watching(self, secrets):
        seen.append(self.learned)  # what a writer reading now would be told
        compile_(self, secrets)

    monkeypatch.setattr(Redactor, "_compile", watching)
    redactor.learn(["NEW-SECRET-VALUE-2"])
    assert seen == [0] and redactor.learned == 1
    assert redactor.mask_values("NEW-SECRET-VALUE-2") == "***"

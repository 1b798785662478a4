"""Every real venue answer in ../shared/venue-fixtures/ is parsed by some contract test.

A contract test names the entry it serves (``entries["create_ok_doc2023"]``); an entry no
test names is an answer no adapter has been shown to read. The few entries kept only as
evidence of a rule (not an answer an adapter asks for) are set aside here, by name, with
where the rule is tested instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nija_testkit.fixtures import load_fixture

HERE = Path(__file__).parent
CONTRACT_TESTS = sorted(HERE.glob("test_*_fixtures.py")) + sorted(HERE.glob("test_*_shapes.py"))
SET_ASIDE = {
    # An OKX fill from fetchMyTrades, whose fee is in the coin bought: NIJA reads fills
    # through the order, so the rule is tested on the emulator's orders instead
    # (test_okx_placed_order_is_read_back_with_its_fee_currency).
    ("okx.json", "spot_fill_evidence"),
}
VENUE_FILES = ("kraken.json", "okx.json", "binance.json", "coinbase.json")


def _named_in_contract_tests(name: str) -> bool:
    quoted = (f'"{name}"', f"'{name}'")
    return any(q in path.read_text(encoding="utf-8") for path in CONTRACT_TESTS for q in quoted)


@pytest.mark.parametrize("venue_file", VENUE_FILES)
def test_every_entry_is_parsed_by_a_contract_test_or_set_aside(venue_file):
    entries = load_fixture(venue_file)["entries"]
    assert entries, f"{venue_file} has no entries"
    unparsed = sorted(
        name
        for name in entries
        if (venue_file, name) not in SET_ASIDE and not _named_in_contract_tests(name)
    )
    assert unparsed == [], f"{venue_file}: no contract test reads {unparsed}"


def test_set_aside_entries_exist_and_say_they_are_not_served():
    for venue_file, name in SET_ASIDE:
        entry = load_fixture(venue_file)["entries"][name]
        assert "not served" in entry.get("edits", ""), (venue_file, name)

"""nija_testkit.fixtures: where the venue fixtures are found, and skipping without them."""

from __future__ import annotations

import json

import pytest

from nija_testkit import fixtures


def test_the_variable_names_the_folder_and_a_venue_file_loads(tmp_path, monkeypatch):
    (tmp_path / "kraken.json").write_text(json.dumps({"venue": "KRAKEN"}))
    monkeypatch.setenv(fixtures.ENV_VARIABLE, str(tmp_path))
    assert fixtures.fixtures_dir() == tmp_path.resolve()
    assert fixtures.load_fixture("kraken.json") == {"venue": "KRAKEN"}


def test_files_under_a_fixtures_subfolder_load_too(tmp_path, monkeypatch):
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "okx.json").write_text(json.dumps({"venue": "OKX"}))
    monkeypatch.setenv(fixtures.ENV_VARIABLE, str(tmp_path))
    assert fixtures.load_fixture("okx.json") == {"venue": "OKX"}


def test_without_the_folder_the_test_skips_saying_why(tmp_path, monkeypatch):
    monkeypatch.setenv(fixtures.ENV_VARIABLE, str(tmp_path / "absent"))
    assert fixtures.fixtures_dir() is None
    with pytest.raises(pytest.skip.Exception, match="venue fixtures not found"):
        fixtures.load_fixture("coinbase.json")


def test_a_missing_venue_file_skips(tmp_path, monkeypatch):
    monkeypatch.setenv(fixtures.ENV_VARIABLE, str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match=r"binance\.json"):
        fixtures.load_fixture("binance.json")


def test_the_default_is_the_repositorys_sibling_shared_folder(monkeypatch):
    monkeypatch.delenv(fixtures.ENV_VARIABLE, raising=False)
    repo = fixtures.DEFAULT_DIR.parents[2]
    assert (repo / "nija_testkit" / "fixtures.py").is_file()
    assert fixtures.DEFAULT_DIR.resolve() == (repo.parent / "shared" / "venue-fixtures").resolve()

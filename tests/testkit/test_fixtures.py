"""Where the venue fixtures are looked for, and the skip when they are absent."""

from __future__ import annotations

import json

import pytest

from nija_testkit import fixtures


def test_the_env_override_names_the_folder(tmp_path, monkeypatch):
    (tmp_path / "kraken.json").write_text(json.dumps({"venue": "KRAKEN", "entries": {}}))
    monkeypatch.setenv(fixtures.ENV_VAR, str(tmp_path))
    assert fixtures.fixtures_dir() == tmp_path.resolve()
    assert fixtures.load_fixture("kraken.json") == {"venue": "KRAKEN", "entries": {}}


def test_a_missing_folder_is_none_and_skips_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv(fixtures.ENV_VAR, str(tmp_path / "absent"))
    assert fixtures.fixtures_dir() is None
    with pytest.raises(pytest.skip.Exception, match="venue fixtures not found"):
        fixtures.load_fixture("kraken.json")


def test_a_missing_file_skips_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv(fixtures.ENV_VAR, str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match=r"okx\.json is not among"):
        fixtures.load_fixture("okx.json")


def test_without_the_override_it_looks_beside_the_repository(monkeypatch):
    monkeypatch.delenv(fixtures.ENV_VAR, raising=False)
    expected = fixtures._BESIDE_THE_REPO.resolve()
    assert fixtures.fixtures_dir() == (expected if expected.is_dir() else None)
    assert expected.parts[-2:] == ("shared", "venue-fixtures")

"""nija_testkit.fixtures finds the venue fixtures beside the repository, or skips."""

from __future__ import annotations

import json

import pytest

from nija_testkit import fixtures


def test_the_override_wins_and_both_layouts_are_read(tmp_path, monkeypatch):
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "top.json").write_text(json.dumps({"where": "top"}))
    (tmp_path / "fixtures" / "nested.json").write_text(json.dumps({"where": "nested"}))
    monkeypatch.setenv(fixtures.ENV_VARIABLE, str(tmp_path))
    assert fixtures.fixtures_dir() == tmp_path.resolve()
    assert fixtures.load_fixture("top.json") == {"where": "top"}
    assert fixtures.load_fixture("nested.json") == {"where": "nested"}


def test_a_missing_folder_skips_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv(fixtures.ENV_VARIABLE, str(tmp_path / "absent"))
    assert fixtures.fixtures_dir() is None
    with pytest.raises(pytest.skip.Exception) as info:
        fixtures.load_fixture("kraken.json")
    assert "venue fixtures not found" in str(info.value)


def test_a_missing_file_skips_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv(fixtures.ENV_VARIABLE, str(tmp_path))
    with pytest.raises(pytest.skip.Exception) as info:
        fixtures.load_fixture("okx.json")
    assert "okx.json" in str(info.value)


def test_the_default_is_the_repository_sibling(monkeypatch):
    monkeypatch.delenv(fixtures.ENV_VARIABLE, raising=False)
    expected = fixtures.DEFAULT_DIR.resolve()
    assert expected.parts[-2:] == ("shared", "venue-fixtures")
    assert fixtures.fixtures_dir() == (expected if expected.is_dir() else None)

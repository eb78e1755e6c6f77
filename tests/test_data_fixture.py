"""The real-data fixture: absent data skips locally and fails where CI requires it."""

from __future__ import annotations

from pathlib import Path

import conftest
import pytest


def test_default_location_is_next_to_the_repository(monkeypatch):
    monkeypatch.delenv("STUDYBENCH_DATA", raising=False)
    assert conftest._real_data_root() == Path(conftest.__file__).resolve().parents[2] / "shared" / "data"


def test_env_var_overrides_the_location(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDYBENCH_DATA", str(tmp_path))
    assert conftest.data_dir.__wrapped__() == tmp_path


def test_absent_data_is_a_skip(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDYBENCH_DATA", str(tmp_path / "nowhere"))
    monkeypatch.delenv("STUDYBENCH_REQUIRE_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="real data not found at .*nowhere; set STUDYBENCH_DATA"):
        conftest.data_dir.__wrapped__()


def test_absent_data_is_a_failure_when_required(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDYBENCH_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("STUDYBENCH_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="real data not found at .*nowhere"):
        conftest.data_dir.__wrapped__()


def test_absent_file_in_present_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDYBENCH_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="lyrics/tcc_ceds_music.csv"):
        conftest._real_file(tmp_path, "lyrics/tcc_ceds_music.csv")
    monkeypatch.delenv("STUDYBENCH_REQUIRE_DATA")
    with pytest.raises(pytest.skip.Exception):
        conftest._real_file(tmp_path, "lyrics/tcc_ceds_music.csv")

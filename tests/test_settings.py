from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import ConfigError, load_settings


def test_defaults_need_no_file(isolated_settings: Path) -> None:
    settings = load_settings()
    assert settings.data_dir == isolated_settings
    assert settings.sqlalchemy_url == f"sqlite:///{isolated_settings / 'veille.db'}"
    assert settings.config_file is None


def test_toml_sections_are_flattened_and_env_wins(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "veille.toml"
    config.write_text('[arxiv]\ndelay = 7.5\npage_size = 50\n[smtp]\nhost = "mail.example"\n')
    settings = load_settings()  # ./veille.toml is found (the fixture chdir'd to tmp_path)
    assert settings.arxiv_delay == 7.5
    assert settings.arxiv_page_size == 50
    assert settings.smtp_host == "mail.example"
    monkeypatch.setenv("VEILLE_ARXIV_DELAY", "1")
    assert load_settings().arxiv_delay == 1.0


def test_bad_value_names_the_setting_and_where_it_came_from(monkeypatch) -> None:
    monkeypatch.setenv("VEILLE_ARXIV_DELAY", "soon")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "arxiv_delay" in str(err.value)
    assert "VEILLE_ARXIV_DELAY" in str(err.value)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[arxiv\ndelay = 3\n")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_settings(bad)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text("[arxiv]\ndelai = 3\n")
    with pytest.raises(ConfigError, match="arxiv_delai"):
        load_settings(bad)


def test_secrets_are_refused_in_files(tmp_path: Path) -> None:
    bad = tmp_path / "secret.toml"
    bad.write_text('[smtp]\npassword = "hunter2"\n')
    with pytest.raises(ConfigError, match="VEILLE_SMTP_PASSWORD"):
        load_settings(bad)

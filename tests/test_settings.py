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
    with pytest.raises(ConfigError, match="has unknown setting: arxiv_delai$"):
        load_settings(bad)
    bad.write_text("[arxiv]\ndelai = 3\nbatchsize = 5\n")
    with pytest.raises(ConfigError, match="has unknown settings: arxiv_batchsize, arxiv_delai$"):
        load_settings(bad)


def test_secrets_are_refused_in_files(tmp_path: Path) -> None:
    bad = tmp_path / "secret.toml"
    bad.write_text('[smtp]\npassword = "hunter2"\n')
    with pytest.raises(ConfigError, match="VEILLE_SMTP_PASSWORD"):
        load_settings(bad)


def test_secrets_are_secretstr_and_never_shown(monkeypatch) -> None:
    password = "pg-pass-Zq81"
    monkeypatch.setenv("VEILLE_SMTP_PASSWORD", "smtp-pass-Xy42")
    monkeypatch.setenv("VEILLE_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("VEILLE_DATABASE_URL", f"postgresql+psycopg2://ana:{password}@db/veille")
    settings = load_settings()
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    for secret in ("smtp-pass-Xy42", "k" * 40, password):
        assert secret not in shown
    assert settings.smtp_password.get_secret_value() == "smtp-pass-Xy42"
    assert password in settings.sqlalchemy_url  # what the engine connects with

    # a bad value next to a secret: the error names the variable, never the value
    monkeypatch.setenv("VEILLE_DATABASE_URL", f"postgresql://ana:{password}@db/veille")
    monkeypatch.setenv("VEILLE_SECRET_KEY", "short-Secret")
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert "VEILLE_SECRET_KEY is 12 bytes long; it must be at least 32" in message
    assert "short-Secret" not in message and password not in message


def test_a_database_url_password_never_appears_in_errors(tmp_path: Path) -> None:
    from core.db import safe_url
    from core.store import Store

    url = "postgresql+psycopg2://ana:pg-pass-Zq81@db.example/veille"
    assert safe_url(url) == "postgresql+psycopg2://ana:***@db.example/veille"
    store = Store(f"sqlite:///{tmp_path / 'schema.db'}")
    with store.write() as conn:  # as a later Veille would leave it
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    store.close()
    with pytest.raises(RuntimeError, match="newer than this Veille") as err:
        Store(f"sqlite:///{tmp_path / 'schema.db'}")
    assert "schema.db" in str(err.value)
    # a store on a URL with a password shows it masked (repr, messages)
    with_password = Store.__new__(Store)  # no server to reach: only the URL matters here
    with_password.url = url
    assert "pg-pass" not in repr(with_password) and "ana:***@" in with_password.display_url
    assert safe_url("not a url") == "<unparseable database URL>"


def test_data_directory_and_database_files_are_private(isolated_settings: Path) -> None:
    import stat

    from core.store import Store

    isolated_settings.mkdir(mode=0o755)
    isolated_settings.chmod(0o755)
    store = Store.from_settings(load_settings())
    store.set_meta("probe", "x")  # the WAL exists now
    try:
        assert stat.S_IMODE(isolated_settings.stat().st_mode) == 0o700
        files = sorted(isolated_settings.glob("veille.db*"))
        assert any(f.name == "veille.db-wal" for f in files), files
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        store.close()


def test_in_memory_and_parameterised_sqlite_urls_create_no_stray_file(tmp_path: Path) -> None:
    from core.store import Store

    before = set(Path.cwd().iterdir())
    Store("sqlite://").close()
    Store("sqlite:///:memory:").close()
    assert set(Path.cwd().iterdir()) == before
    Store(f"sqlite:///{tmp_path / 'p.db'}?timeout=3").close()
    assert (tmp_path / "p.db").is_file() and not list(tmp_path.glob("p.db?*"))

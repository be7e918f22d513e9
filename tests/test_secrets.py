"""Secrets stay where they belong: not in children's environments, not on the wire in clear."""

from __future__ import annotations

import pytest

from core.settings import ConfigError, load_settings
from jobs.cli.dashboard import dashboard_env
from jobs.digest_delivery import check_delivery_settings
from jobs.mailer import SMTPMailer


def test_children_get_a_filtered_environment(monkeypatch) -> None:
    monkeypatch.setenv("VEILLE_SMTP_PASSWORD", "smtp-pass-Xy42")
    monkeypatch.setenv("VEILLE_SMTP_USER", "mailer")
    monkeypatch.setenv("VEILLE_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("VEILLE_DATABASE_URL", "sqlite:////tmp/elsewhere.db")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "gh-token")
    monkeypatch.setenv("HF_HOME", "/tmp/hf")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    settings = load_settings()
    env = dashboard_env(settings)
    assert "smtp-pass-Xy42" not in env.values() and "VEILLE_SMTP_USER" not in env
    assert "AWS_SECRET_ACCESS_KEY" not in env and "GITHUB_TOKEN" not in env
    # what the dashboard needs: the same data, database and link-signing key; a working Python
    assert env["VEILLE_DATA_DIR"] == str(settings.data_dir)
    assert env["VEILLE_DATABASE_URL"] == "sqlite:////tmp/elsewhere.db"
    assert env["VEILLE_SECRET_KEY"] == "s" * 40
    assert env["PATH"] and env["HF_HOME"] == "/tmp/hf" and env["LC_ALL"] == "C.UTF-8"


def test_smtp_login_in_clear_text_to_another_host_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("VEILLE_ALLOW_LOOPBACK_PUBLIC_URL", "true")
    monkeypatch.setenv("VEILLE_SMTP_USER", "mailer")
    monkeypatch.setenv("VEILLE_SMTP_PASSWORD", "smtp-pass-Xy42")
    remote = load_settings(smtp_host="mail.example.com", smtp_port=25, smtp_security="none")
    with pytest.raises(ConfigError, match="VEILLE_SMTP_SECURITY=starttls") as err:
        check_delivery_settings(remote)
    assert "mail.example.com" in str(err.value) and "smtp-pass" not in str(err.value)
    # the mailer itself refuses too, before opening any connection
    with pytest.raises(ConfigError, match="without encryption"):
        SMTPMailer(remote)._connect()
    # encrypted, or a relay on this machine, or no login at all: accepted
    check_delivery_settings(load_settings(smtp_host="mail.example.com", smtp_security="starttls"))
    check_delivery_settings(load_settings(smtp_host="127.0.0.1", smtp_security="none"))
    monkeypatch.delenv("VEILLE_SMTP_USER")
    check_delivery_settings(load_settings(smtp_host="mail.example.com", smtp_security="none"))

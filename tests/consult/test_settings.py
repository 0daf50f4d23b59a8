"""Typed settings: parsed once per app, refusing what they cannot read, naming the variable."""

from __future__ import annotations

import logging

import pytest

from channels.line.settings import LineSettings
from consult.config import CoreSettings
from consult.settings import ConfigError, override, section
from tests.conftest import make_app


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MADOGUCHI_FAQ_AUTO_ANSWER", "maybe", "MADOGUCHI_FAQ_AUTO_ANSWER: expected on/off"),
        ("MADOGUCHI_LINE_MAX_EVENT_ATTEMPTS", "eight", "MADOGUCHI_LINE_MAX_EVENT_ATTEMPTS"),
        ("MADOGUCHI_SMTP_SECURITY", "tls", "expected one of none, starttls, ssl"),
        ("MADOGUCHI_IDLE_TIMEOUT_MINUTES", "30分", "expected a whole number"),
    ],
)
def test_a_value_that_cannot_be_read_stops_the_start(
    monkeypatch, tmp_path, variable, value, expected
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=expected):
        make_app(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)


def test_values_from_the_environment_are_typed_and_booleans_read_both_ways(monkeypatch, tmp_path):
    monkeypatch.setenv("MADOGUCHI_LINE_PROCESS_AFTER_RESPONSE", "off")
    monkeypatch.setenv("MADOGUCHI_LINE_BURST_QUIET_MS", "0")
    monkeypatch.setenv("MADOGUCHI_MAIL_ISO2022JP_DOMAINS", "docomo.ne.jp, ezweb.ne.jp")
    app = make_app(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    line = section(LineSettings, app)
    assert line.process_after_response is False
    assert line.burst_quiet_ms == 0
    assert app.config["MADOGUCHI"]["MAIL_ISO2022JP_DOMAINS"] == ("docomo.ne.jp", "ezweb.ne.jp")


def test_each_app_keeps_its_own_settings_and_they_cannot_be_changed_in_place(tmp_path):
    first = make_app(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "a", CENTRE_NAME="第一センター")
    second = make_app(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "b")
    assert section(CoreSettings, first).centre_name == "第一センター"
    assert section(CoreSettings, second).centre_name == "市民相談センター"
    with pytest.raises(TypeError):
        first.config["MADOGUCHI"]["CENTRE_NAME"] = "変更"
    override(first, CENTRE_NAME="変更後")
    assert section(CoreSettings, first).centre_name == "変更後"
    assert first.config["MADOGUCHI"]["CENTRE_NAME"] == "変更後"


def test_an_unknown_variable_is_reported_at_start(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("MADOGUCHI_LINE_CHANEL_SECRET", "typo")
    with caplog.at_level(logging.WARNING, logger="madoguchi"):
        make_app(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    assert "MADOGUCHI_LINE_CHANEL_SECRET is not a setting" in caplog.text
    assert "typo" not in caplog.text  # the value may be a secret

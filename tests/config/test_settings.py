"""Settings: defaults < TOML file < environment; bad values name the setting."""
from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import MiB, SettingsError, load_settings


def test_defaults():
    settings = load_settings(environ={})
    assert settings.data_dir == Path("./var")
    assert (settings.object_store, settings.document_store) == ("local", "sqlite")
    assert settings.s3_part_size == 8 * MiB
    assert settings.upload_expiry == 86400
    assert settings.max_upload_size == 5 * 1024 * MiB


def test_file_then_environment(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\ns3_bucket = "from-file"\nupload_expiry = 60\nobject_store = "s3"\n')
    settings = load_settings(config, environ={"GATEWAY_UPLOAD_EXPIRY": "120"})
    assert (settings.s3_bucket, settings.upload_expiry, settings.object_store) == ("from-file", 120, "s3")


BAD = [
    ({"GATEWAY_S3_PART_SIZE": "1048576"}, "GATEWAY_S3_PART_SIZE"),
    ({"GATEWAY_MAX_UPLOAD_SIZE": "lots"}, "GATEWAY_MAX_UPLOAD_SIZE"),
    ({"GATEWAY_UPLOAD_EXPIRY": "-1"}, "GATEWAY_UPLOAD_EXPIRY"),
    ({"GATEWAY_OBJECT_STORE": "ftp"}, "GATEWAY_OBJECT_STORE"),
    ({"GATEWAY_DOCUMENT_STORE": "postgres"}, "GATEWAY_DOCUMENT_STORE"),
    ({"GATEWAY_PUBLIC_URL": "example.com"}, "GATEWAY_PUBLIC_URL"),
]


@pytest.mark.parametrize("environ,named", BAD, ids=[b[1] for b in BAD])
def test_bad_value_names_the_setting(environ, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=environ)


def test_bad_file(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("s3_buckt = 'typo'\n")
    with pytest.raises(SettingsError, match="s3_buckt"):
        load_settings(config, environ={})


@pytest.mark.parametrize("raw, expected", [("true", True), ("1", True), (" Yes ", True), ("on", True), (True, True),
                                           ("false", False), ("0", False), ("no", False), ("OFF", False),
                                           (False, False)])
def test_boolean_settings_read_what_operators_write(raw, expected):
    """_convert knew int, float, str and Path only, so a bool setting failed with a KeyError."""
    from config.settings import parse_setting

    assert parse_setting(bool, raw, "GATEWAY_X") is expected


@pytest.mark.parametrize("kind, raw", [(bool, "maybe"), (bool, 1), (int, True), (float, False), (int, "1.5")])
def test_unreadable_values_name_the_setting(kind, raw):
    from config.settings import parse_setting

    with pytest.raises(SettingsError, match="GATEWAY_X"):
        parse_setting(kind, raw, "GATEWAY_X")

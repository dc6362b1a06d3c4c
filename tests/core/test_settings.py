"""Configuration resolves option > environment > profile > default, and says where from."""

from __future__ import annotations

import json

import pytest
from flow_core.errors import ConfigError
from flow_core.plugin.settings import Settings


@pytest.fixture
def profile_dir(flow_env):
    folder = flow_env.root.parent / "metaflowconfig"
    folder.mkdir()
    return folder


def test_default_then_profile_then_environment_then_option(profile_dir, monkeypatch):
    assert Settings().resolve("METAFLOW_DEFAULT_DATASTORE").source == "default"
    (profile_dir / "config.json").write_text(json.dumps({"METAFLOW_DEFAULT_DATASTORE": "from-profile"}))
    resolved = Settings().resolve("METAFLOW_DEFAULT_DATASTORE")
    assert resolved.value == "from-profile" and resolved.source.startswith("profile")
    monkeypatch.setenv("METAFLOW_DEFAULT_DATASTORE", "from-env")
    assert Settings().resolve("METAFLOW_DEFAULT_DATASTORE").value == "from-env"
    option = Settings(overrides={"METAFLOW_DEFAULT_DATASTORE": "from-option"}).resolve("METAFLOW_DEFAULT_DATASTORE")
    assert (option.value, option.source) == ("from-option", "option")


def test_named_profile(profile_dir, monkeypatch):
    (profile_dir / "config_team.json").write_text(json.dumps({"METAFLOW_USER": "alice"}))
    assert Settings().user == "tester"  # METAFLOW_USER from the environment wins
    monkeypatch.delenv("METAFLOW_USER")
    monkeypatch.setenv("METAFLOW_PROFILE", "team")
    assert Settings().user == "alice"


def test_broken_profile_is_a_clear_error(profile_dir):
    (profile_dir / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json is not valid JSON"):
        Settings()


def test_profile_that_is_not_utf8_is_a_clear_error(profile_dir):
    (profile_dir / "config.json").write_bytes(b'{"METAFLOW_USER": "caf\xe9"}')
    with pytest.raises(ConfigError, match=r"config.json is not UTF-8 text \(byte 0xe9 at offset 22\); save it as"):
        Settings()


def test_profile_value_that_is_not_text_is_a_clear_error(profile_dir):
    (profile_dir / "config.json").write_text('{"METAFLOW_USER": "\\udcff"}')  # a JSON escape of a lone surrogate
    with pytest.raises(ConfigError, match="is not valid UTF-8 text; fix or remove it"):
        Settings()


def test_profile_saved_with_a_byte_order_mark_is_read(profile_dir, monkeypatch):
    (profile_dir / "config.json").write_bytes(b'\xef\xbb\xbf{"METAFLOW_USER": "alice"}')
    monkeypatch.delenv("METAFLOW_USER")
    assert Settings().user == "alice"


def test_a_user_name_that_is_not_text_is_a_clear_error(flow_env, monkeypatch):
    monkeypatch.setenv("METAFLOW_USER", "bj\udcf6rn")  # what Python makes of Latin-1 bytes in the environment
    with pytest.raises(ConfigError, match="your user name 'bj\\\\udcf6rn' is not valid UTF-8 text; set METAFLOW_USER"):
        _ = Settings().user


def test_local_root_is_found_upwards(tmp_path, monkeypatch, flow_env):
    monkeypatch.delenv("METAFLOW_DATASTORE_SYSROOT_LOCAL")
    (tmp_path / "project" / ".flow").mkdir(parents=True)
    (tmp_path / "project" / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "project" / "notebooks")
    assert Settings().local_root == tmp_path / "project" / ".flow"


def test_task_environment_carries_backend_choices(flow_env):
    env = Settings(overrides={"METAFLOW_DEFAULT_METADATA": "service"}).task_environment()
    assert env["METAFLOW_DEFAULT_METADATA"] == "service"
    assert env["METAFLOW_DEFAULT_DATASTORE"] == "local"
    assert env["METAFLOW_DATASTORE_SYSROOT_LOCAL"] == str(flow_env.root)


def test_configure_show_lists_core_and_plugin_settings_with_sources(flow_cli, profile_dir):
    (profile_dir / "config.json").write_text(json.dumps({"METAFLOW_DEFAULT_METADATA": "local"}))
    result = flow_cli("--datastore", "local", "configure", "show", env={"METAFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("METAFLOW_")}
    assert lines["METAFLOW_DEFAULT_DATASTORE"].split()[1:] == ["local", "option"]
    assert lines["METAFLOW_DEFAULT_METADATA"].split()[2] == "profile"
    assert lines["METAFLOW_S3_ENDPOINT_URL"].split()[1:] == ["http://127.0.0.1:9", "environment"]
    assert lines["METAFLOW_DEFAULT_COMPUTE"].split()[1:] == ["local", "default"]

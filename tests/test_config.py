import pytest
from typer.testing import CliRunner

from camgrid.config import Settings, describe, load_settings


def test_every_field_is_documented():
    rows = describe()
    assert len(rows) > 20
    undocumented = [name for name, _, desc in rows if not desc]
    assert undocumented == []


def test_yaml_then_environment_then_overrides(tmp_path):
    (tmp_path / "camgrid.yaml").write_text("sip:\n  port: 5070\n  id: '34020000002000000009'\nhttp:\n  port: 9000\n")
    s = load_settings(data_dir=tmp_path, environ={"CAMGRID__SIP__PORT": "5080", "CAMGRID__HEALTH__KEEPALIVE_COUNT": "4"},
                      overrides={"http": {"port": 9100}})
    assert s.sip.port == 5080 and s.sip.id == "34020000002000000009" and s.sip.realm == "3402000000"
    assert s.health.keepalive_count == 4 and s.http.port == 9100
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("camgrid.db")


def test_bad_values_are_refused_with_the_field_named(tmp_path):
    with pytest.raises(ValueError, match="20 digits"):
        load_settings(data_dir=tmp_path, overrides={"sip": {"id": "123"}}, environ={})
    with pytest.raises(ValueError, match="sip"):
        load_settings(data_dir=tmp_path, overrides={"sip": {"no_such_field": 1}}, environ={})


def test_config_show_prints_the_effective_settings(tmp_path):
    from camgrid.cli import app

    result = CliRunner().invoke(app, ["config", "show", "--data-dir", str(tmp_path), "--json"], env={"CAMGRID__SIP__PORT": "5099"})
    assert result.exit_code == 0, result.output
    assert '"port": 5099' in result.output
    assert Settings().sip.port == 5060

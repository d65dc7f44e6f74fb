from pathlib import Path

import pytest

from hotline.config import PROJECT_ROOT, load_settings
from hotline.errors import ConfigError


def test_file_defaults_and_environment_overrides(tmp_path: Path) -> None:
    settings = load_settings(
        PROJECT_ROOT / "config" / "hotline.toml",
        env={"HOTLINE_WEB_PORT": "9090", "HOTLINE_AGI_PORT": "4600",
             "HOTLINE_DATABASE_URL": "postgresql://x@db/hotline", "HOTLINE_DATA_DIR": str(tmp_path)},
    )
    assert settings.web.port == 9090
    assert settings.agi.port == 4600
    assert settings.database.url == "postgresql://x@db/hotline"
    assert settings.data_dir == tmp_path
    assert settings.timezone == "Asia/Shanghai"
    assert settings.agi.host == "127.0.0.1"  # loopback by default


def test_settings_are_frozen() -> None:
    settings = load_settings(env={})
    with pytest.raises(AttributeError):
        settings.web.port = 1  # type: ignore[misc]


def test_bad_values_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"HOTLINE_WEB_PORT": "eighty"})
    assert "HOTLINE_WEB_PORT" in err.value.message and "eighty" in err.value.message

    bad = tmp_path / "bad.toml"
    bad.write_text('[web]\nprot = 80\n')
    with pytest.raises(ConfigError) as err:
        load_settings(bad, env={})
    assert err.value.field == "web.prot"

    bad.write_text('timezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(bad, env={})
    assert "Mars/Olympus" in err.value.message


def test_unknown_sections_are_kept_for_features(tmp_path: Path) -> None:
    path = tmp_path / "h.toml"
    path.write_text('[kb]\nindex_dir = "idx"\n')
    assert load_settings(path, env={}).section("kb") == {"index_dir": "idx"}


def test_feature_sections_are_typed_and_checked(tmp_path: Path) -> None:
    from dataclasses import dataclass

    from hotline.config import section_settings

    @dataclass(frozen=True, slots=True)
    class Feature:
        limit: int = 5
        delay: float = 1.0
        codes: tuple[str, ...] = ("a",)
        url: str = ""

    path = tmp_path / "h.toml"
    path.write_text('[feature]\nlimit = 7\ndelay = 2\ncodes = [330900, "x"]\n')
    cfg = section_settings(load_settings(path, env={}), "feature", Feature)
    assert cfg == Feature(limit=7, delay=2.0, codes=("330900", "x"))
    assert section_settings(load_settings(path, env={}), "absent", Feature) == Feature()

    for body, field in (('limit = "many"', "feature.limit"), ("limit = 2.5", "feature.limit"),
                        ('codes = "a"', "feature.codes"), ("colour = 1", "feature.colour")):
        path.write_text(f"[feature]\n{body}\n")
        with pytest.raises(ConfigError) as err:
            section_settings(load_settings(path, env={}), "feature", Feature)
        assert err.value.field == field


def test_there_is_no_node_secret_key_to_set(tmp_path) -> None:
    """Sessions are random server-side tokens: no setting pretends to sign anything, and
    a leftover ``secret_key`` in the file is refused by name rather than silently unused."""
    from hotline.config import Settings

    assert not hasattr(Settings(), "secret_key")
    path = tmp_path / "hotline.toml"
    path.write_text('secret_key = "s3cret"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_settings(path, env={})
    assert refused.value.field == "secret_key"


def test_every_section_is_checked_at_start_naming_the_setting(tmp_path) -> None:
    import pytest

    from hotline.config import load_settings
    from hotline.errors import ConfigError
    from hotline.node import check_sections

    check_sections(load_settings(tmp_path / "none.toml", env={}))  # defaults are valid
    for text, named in (("[kb]\nmax_reslts = 3\n", "kb"), ("[feed]\nretention_days = 'week'\n", "feed.retention_days"),
                        ("[kbb]\nx = 1\n", "kbb"), ("[calls]\nami_port = 'x'\n", "calls.ami_port")):
        path = tmp_path / "hotline.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            check_sections(load_settings(path, env={}))
        assert named in (caught.value.field or "") + caught.value.message, (text, caught.value.message)


def test_every_section_loader_in_the_tree_is_checked_at_start() -> None:
    import re

    from hotline.config import PACKAGE_DIR
    from hotline.node import section_loaders

    read = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        read |= set(re.findall(r'section_settings\(\s*settings,\s*"(\w+)"', path.read_text(encoding="utf-8")))
    assert read and read <= set(section_loaders()), read - set(section_loaders())


def test_config_dir_moves_the_default_files(tmp_path) -> None:
    from hotline.config import SHIPPED_CONFIG_DIR, load_settings

    settings = load_settings(tmp_path / "none.toml", env={"HOTLINE_CONFIG_DIR": str(tmp_path / "conf")})
    assert settings.config_dir == tmp_path / "conf"
    assert settings.registry_path == SHIPPED_CONFIG_DIR / "hotlines.yaml"  # the site has none: the packaged one
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "hotlines.yaml").write_text("hotlines: []\n", encoding="utf-8")
    settings = load_settings(tmp_path / "none.toml", env={"HOTLINE_CONFIG_DIR": str(tmp_path / "conf")})
    assert settings.registry_path == tmp_path / "conf" / "hotlines.yaml"

import pytest
from berth_common.platforms import parse_platform, platform_matches


def test_parse() -> None:
    assert parse_platform("linux") == ("linux", "", "")
    assert parse_platform("linux/x86_64") == ("linux", "amd64", "")
    assert parse_platform("linux/arm64/v8") == ("linux", "arm64", "v8")
    with pytest.raises(ValueError, match="unknown operating system or architecture"):
        parse_platform("linux//")


def test_matches() -> None:
    assert platform_matches("linux", "linux", "amd64", "")
    assert platform_matches("linux/x86_64", "linux", "amd64", "")
    assert not platform_matches("linux/arm64", "linux", "amd64", "")
    assert not platform_matches("linux/arm/v7", "linux", "arm", "v6")
    assert not platform_matches("windows", "linux", "amd64", "")

import re

import pytest
from berth_contracts.errors import InvalidParameter
from berth_engine.containers.naming import (
    generate_unique_name,
    new_container_id,
    random_name,
    validate_name,
)


@pytest.mark.parametrize("name", ["web", "/web", "a1", "my_app.v2-x", "A-b"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name.lstrip("/")


@pytest.mark.parametrize("name", ["a", "_web", "-x", "we b", "web/1", "ü-name", ".x", ""])
def test_invalid_names_use_dockers_words(name: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        validate_name(name)
    assert err.value.message == (
        f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    )


def test_random_names_look_like_dockers() -> None:
    for _ in range(200):
        name = random_name()
        assert re.fullmatch(r"[a-z]+_[a-z]+", name)
        assert name != "boring_wozniak"
        validate_name(name)


def test_generated_name_avoids_taken_ones() -> None:
    taken = {random_name() for _ in range(50)}
    name = generate_unique_name(lambda n: n in taken)
    assert name not in taken


def test_generator_adds_digits_when_plain_names_are_exhausted() -> None:
    name = generate_unique_name(lambda n: not n[-1].isdigit())
    assert name[-1].isdigit()


def test_container_ids_are_64_hex() -> None:
    ids = {new_container_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids)

"""Container names: Docker's validation rule, the generator (berth_common.names) and ids."""

from __future__ import annotations

import re
import secrets

from berth_common.names import generate_unique_name, random_name
from berth_contracts.errors import InvalidParameter
from berth_contracts.identifiers import NAME_CHARS

__all__ = ["generate_unique_name", "new_container_id", "random_name", "validate_name"]

VALID_NAME_CHARS = NAME_CHARS  # Docker's rule, one definition (berth_contracts.identifiers)
_VALID_NAME = re.compile(rf"^/?{VALID_NAME_CHARS}+$")


def validate_name(name: str) -> str:
    """The name without a leading "/", or InvalidParameter with Docker's words."""
    if not _VALID_NAME.match(name):
        raise InvalidParameter(
            f"Invalid container name ({name}), only {VALID_NAME_CHARS} are allowed"
        )
    return name[1:] if name.startswith("/") else name


def new_container_id() -> str:
    return secrets.token_hex(32)

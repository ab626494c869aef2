"""Error kinds map to Docker's status codes and {"message"} bodies with the exact Content-Type."""

from __future__ import annotations

import msgspec
import pytest
from berth_contracts.errors import (
    BerthError,
    Conflict,
    Forbidden,
    InternalError,
    InvalidParameter,
    NotFound,
    NotImplementedByBerth,
    NotModified,
    Unavailable,
)
from berth_gateway.errors import response_for


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidParameter("bad"), 400),
        (NotFound("No such container: x"), 404),
        (Conflict("in use"), 409),
        (Forbidden("no"), 403),
        (Unavailable("later"), 503),
        (NotImplementedByBerth("not yet"), 501),
        (InternalError("boom"), 500),
    ],
)
def test_error_statuses_and_bodies(error: BerthError, status: int) -> None:
    response = response_for(error)
    assert response.status == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.body is not None
    assert msgspec.json.decode(response.body) == {"message": error.message}


def test_not_modified_is_an_empty_304() -> None:
    response = response_for(NotModified("container already started"))
    assert response.status == 304
    assert not response.body

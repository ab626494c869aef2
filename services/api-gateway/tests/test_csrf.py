"""No CSRF: JSON bodies only as application/json (moby's CheckForJSON), no browser Origin.

Against the real gateway process (conftest.py); no engine runs behind it, so a request that gets
past the checks ends in the handler (an "invalid JSON" 400, or 503 from the bus), which tells
the two apart."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from berth_gateway.csrf import JSON_BODY_ROUTES, MediaTypeError, media_type

if TYPE_CHECKING:
    from conftest import Gateway

UNSUPPORTED = "unsupported Content-Type header ({}): must be 'application/json'"


def _message(data: bytes) -> str:
    return str(json.loads(data)["message"])


def _path(template: str) -> str:
    return template.replace("{id}", "x")


def test_media_type_is_parsed_as_gos_mime_package_does() -> None:
    assert media_type("application/json") == "application/json"
    assert media_type("Application/JSON; charset=utf-8") == "application/json"
    assert media_type('application/json; charset="utf-8"') == "application/json"
    assert media_type("text/plain") == "text/plain"
    for bad, words in (
        ("", "mime: no media type"),
        ("application", "mime: expected slash after first token"),
        ("application/", "mime: expected token after slash"),
        ("application/json; charset", "mime: invalid media parameter"),
    ):
        with pytest.raises(MediaTypeError, match=words):
            media_type(bad)


@pytest.mark.parametrize(("method", "route"), sorted(JSON_BODY_ROUTES))
def test_every_json_route_refuses_text_plain(gateway: Gateway, method: str, route: str) -> None:
    for prefix in ("", "/v1.44"):
        resp, data = gateway.request(
            method, prefix + _path(route), b"{}", {"Content-Type": "text/plain"}
        )
        assert (resp.status, _message(data)) == (400, UNSUPPORTED.format("text/plain"))


def test_json_with_parameters_gets_past_the_check(gateway: Gateway) -> None:
    for content_type in ("application/json", "application/json; charset=utf-8"):
        resp, data = gateway.request(
            "POST", "/containers/create", b"{", {"Content-Type": content_type}
        )
        assert resp.status == 400
        assert _message(data).startswith("invalid JSON")


def test_form_and_multipart_bodies_are_refused(gateway: Gateway) -> None:
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        resp, data = gateway.request(
            "POST", "/containers/create", b"Image=busybox", {"Content-Type": content_type}
        )
        assert (resp.status, _message(data)) == (400, UNSUPPORTED.format(content_type))


def test_missing_content_type_only_with_an_empty_body(gateway: Gateway) -> None:
    # A body without a Content-Type: Go reports the empty media type as malformed.
    resp, data = gateway.request("POST", "/containers/create", b'{"Image": "busybox"}')
    assert (resp.status, _message(data)) == (
        400,
        "malformed Content-Type header (): mime: no media type",
    )
    # No body at all (Content-Length: 0): past the check, to the handler's own words.
    resp, data = gateway.request("POST", "/containers/create", b"")
    assert (resp.status, _message(data)) == (
        400,
        "invalid JSON: got EOF while reading request body",
    )


def test_a_chunked_body_without_content_type_is_not_empty(gateway: Gateway) -> None:
    conn = gateway.connection()
    try:
        conn.putrequest("POST", "/volumes/create")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        assert (resp.status, _message(resp.read())) == (
            400,
            "malformed Content-Type header (): mime: no media type",
        )
    finally:
        conn.close()


def test_routes_without_json_bodies_are_not_checked(gateway: Gateway) -> None:
    # moby's start only refuses a non-empty body; load/import take tars.
    resp, data = gateway.request("POST", "/containers/x/start", b"", {"Content-Type": "text/plain"})
    assert resp.status != 400, data
    resp, data = gateway.request("POST", "/containers/x/stop", None, {"Content-Type": "text/plain"})
    assert resp.status != 400, data


def _get(gateway: Gateway, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    resp, data = gateway.request("GET", path, None, headers)
    return resp.status, data


def test_browser_origin_is_refused(gateway: Gateway) -> None:
    status, data = _get(gateway, "/_ping", {"Origin": "https://evil.example"})
    assert status == 403
    assert _message(data) == (
        "request from a web page refused (Origin: https://evil.example): accessing the Docker"
        " API through a browser is insecure; to allow this origin, start berth with"
        " --api-allow-origin=https://evil.example"
    )
    resp, data = gateway.request(
        "POST", "/containers/create", b"{}", {"Origin": "null", "Content-Type": "application/json"}
    )
    assert resp.status == 403
    assert _get(gateway, "/_ping", {})[0] == 200


def test_allowed_origins_get_in(gateway_factory: Any) -> None:
    env = {"BERTH_API_ALLOW_ORIGINS": "https://ok.example, http://127.0.0.1:8080"}
    with gateway_factory(env) as gw:
        assert _get(gw, "/_ping", {"Origin": "https://ok.example"})[0] == 200
        assert _get(gw, "/_ping", {"Origin": "http://127.0.0.1:8080"})[0] == 200
        assert _get(gw, "/_ping", {"Origin": "https://other.example"})[0] == 403
    with gateway_factory({"BERTH_API_ALLOW_ORIGINS": "*"}) as gw:
        assert _get(gw, "/_ping", {"Origin": "https://any.example"})[0] == 200

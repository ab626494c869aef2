"""Image timestamps as dockerd writes them: Go's RFC3339Nano, the fraction's trailing zeros
trimmed (dockerd: `"Created": "2023-11-14T22:13:20.5Z"`, never `.500000000Z`)."""

from __future__ import annotations

import json
import time

import pytest
from berth_contracts.engine import ImageUpload
from berth_lifecycle.importer import import_config


def test_imported_image_created_is_go_rfc3339nano(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_500_000_000)
    doc = json.loads(import_config(ImageUpload(kind="import"), "sha256:" + "0" * 64))
    assert doc["created"] == "2023-11-14T22:13:20.5Z"
    assert doc["history"][0]["created"] == "2023-11-14T22:13:20.5Z"
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000 * 10**9)
    doc = json.loads(import_config(ImageUpload(kind="import"), "sha256:" + "0" * 64))
    assert doc["created"] == "2023-11-14T22:13:20Z"

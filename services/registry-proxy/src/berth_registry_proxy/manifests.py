"""What a manifest refers to: the digests a repository holds once its upstream served it."""

from __future__ import annotations

import json
from typing import Any

from berth_common import refgrammar


def referenced_digests(body: bytes) -> set[str]:
    """sha256 digests of a manifest's config, layers, blobs, subject and (index) manifests."""
    try:
        doc = json.loads(body)
    except ValueError:
        return set()
    if not isinstance(doc, dict):
        return set()
    found: list[Any] = []
    for key in ("config", "subject"):
        if isinstance(doc.get(key), dict):
            found.append(doc[key].get("digest"))
    for key in ("layers", "manifests", "blobs"):
        for entry in doc.get(key) or ():
            if isinstance(entry, dict):
                found.append(entry.get("digest"))
    for entry in doc.get("fsLayers") or ():  # schema 1
        if isinstance(entry, dict):
            found.append(entry.get("blobSum"))
    return {d for d in found if isinstance(d, str) and refgrammar.is_sha256_digest(d)}


def media_from_body(body: bytes) -> str:
    try:
        media = json.loads(body).get("mediaType", "")
    except (ValueError, AttributeError):
        media = ""
    return str(media) or "application/vnd.oci.image.manifest.v1+json"

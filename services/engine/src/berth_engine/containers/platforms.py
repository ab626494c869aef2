"""The `platform` of POST /containers/create: the image must match it, in moby's words."""

from __future__ import annotations

from berth_common.platforms import platform_matches
from berth_contracts.errors import InvalidParameter, NotFound
from berth_contracts.lifecycle import ImageRecord


def check_platform(ref: str, platform: str, image: ImageRecord) -> None:
    if not platform:
        return
    try:
        matches = platform_matches(platform, image.os, image.architecture, image.variant)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None
    if not matches:
        actual = f"{image.os}/{image.architecture}" + (f"/{image.variant}" if image.variant else "")
        # A 404 on purpose: clients then pull the right variant (docker-py matches these words).
        raise NotFound(
            f"image with reference {ref} was found but does not match the specified platform: "
            f"wanted {platform}, actual: {actual}"
        )

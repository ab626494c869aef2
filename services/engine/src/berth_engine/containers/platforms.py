"""The `platform` of POST /containers/create: the image must match it, in moby's words."""

from __future__ import annotations

from berth_contracts.errors import InvalidParameter, NotFound
from berth_contracts.lifecycle import ImageRecord

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
                 "armel": "arm", "i386": "386"}  # fmt: skip


def parse_platform(text: str) -> tuple[str, str, str]:
    """containerd's platforms.Parse, enough for os[/arch[/variant]]."""
    parts = text.lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidParameter(
            f'"{text}": unknown operating system or architecture: invalid argument'
        )
    os_name = parts[0]
    arch = _ARCH_ALIASES.get(parts[1], parts[1]) if len(parts) > 1 else ""
    variant = parts[2] if len(parts) > 2 else ""
    return os_name, arch, variant


def check_platform(ref: str, platform: str, image: ImageRecord) -> None:
    if not platform:
        return
    os_name, arch, variant = parse_platform(platform)
    actual = f"{image.os}/{image.architecture}" + (f"/{image.variant}" if image.variant else "")
    if (
        os_name != image.os
        or (arch and arch != image.architecture)
        or (variant and variant != image.variant)
    ):
        # A 404 on purpose: clients then pull the right variant (docker-py matches these words).
        raise NotFound(
            f"image with reference {ref} was found but does not match the specified platform: "
            f"wanted {platform}, actual: {actual}"
        )

"""OCI platforms as `docker --platform` writes them (containerd's platforms.Parse, enough for
os[/arch[/variant]]) and whether an image's matches. Stdlib only."""

from __future__ import annotations

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
                 "armel": "arm", "i386": "386"}  # fmt: skip


def parse_platform(text: str) -> tuple[str, str, str]:
    """(os, architecture, variant), "" where not given; ValueError in moby's words."""
    parts = text.lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise ValueError(f'"{text}": unknown operating system or architecture: invalid argument')
    os_name = parts[0]
    arch = _ARCH_ALIASES.get(parts[1], parts[1]) if len(parts) > 1 else ""
    variant = parts[2] if len(parts) > 2 else ""
    return os_name, arch, variant


def platform_matches(wanted: str, os_name: str, arch: str, variant: str) -> bool:
    """Whether an image of os/arch/variant is what `wanted` asks for (what it leaves out matches)."""
    want_os, want_arch, want_variant = parse_platform(wanted)
    return (
        want_os == os_name
        and (not want_arch or want_arch == arch)
        and (not want_variant or want_variant == variant)
    )

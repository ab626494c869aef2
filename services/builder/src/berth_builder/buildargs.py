"""Build arguments as moby's classic builder keeps them (builder/dockerfile/buildargs.go)."""

from __future__ import annotations

# Usable without an ARG line; left out of a RUN's cache key unless the Dockerfile declares them.
BUILTIN_ALLOWED = (
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
    "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy",
)  # fmt: skip


class BuildArgs:
    def __init__(self, from_options: dict[str, str | None]) -> None:
        self.from_options = dict(from_options)  # --build-arg K=V (V None: `--build-arg K` unset)
        self.allowed: dict[str, str | None] = {}  # ARGs declared in the current stage
        self.meta: dict[str, str | None] = {}  # ARGs before the first FROM
        self.referenced: set[str] = set()

    def clone(self) -> BuildArgs:
        other = BuildArgs(self.from_options)
        other.allowed, other.meta, other.referenced = dict(self.allowed), dict(self.meta), set(self.referenced)
        return other

    def reset_allowed(self) -> None:
        self.allowed = {}

    def add_meta_arg(self, key: str, value: str | None) -> None:
        self.meta[key] = value

    def add_arg(self, key: str, value: str | None) -> None:
        self.allowed[key] = value
        self.referenced.add(key)

    def is_referenced_or_not_builtin(self, key: str) -> bool:
        return key in self.allowed or key not in BUILTIN_ALLOWED

    def _get(self, key: str, mapping: dict[str, str | None]) -> tuple[str, bool]:
        option = self.from_options.get(key)
        if key in self.from_options and option is not None:
            return option, True
        default = mapping.get(key)
        if default is None:
            meta = self.meta.get(key)
            return (meta, True) if meta is not None else ("", False)
        return default, key in mapping

    def _all_from(self, mapping: dict[str, str | None]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key in [*mapping, *(k for k in BUILTIN_ALLOWED if k not in mapping)]:
            value, found = self._get(key, mapping)
            if found:
                out[key] = value
        return out

    def all_allowed(self) -> dict[str, str]:
        return self._all_from(self.allowed)

    def all_meta(self) -> dict[str, str]:
        return self._all_from(self.meta)

    def filter_allowed(self, env: list[str]) -> list[str]:
        """`K=V` for each allowed arg that the config's Env does not set."""
        env_keys = {e.partition("=")[0] for e in env}
        return [f"{k}={v}" for k, v in self.all_allowed().items() if k not in env_keys]

    def unused(self) -> list[str]:
        """--build-arg names no ARG declared (moby warns: [Warning] One or more build-args ...)."""
        return sorted(k for k in self.from_options if k not in self.referenced and k not in BUILTIN_ALLOWED)

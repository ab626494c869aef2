"""Push webhooks: after a manifest is stored under a tag, Docker Hub's payload is POSTed to each
URL of BERTH_REGISTRY_WEBHOOKS, retried with back-off (1 s, 2 s, 4 s, ... by default) until a 2xx
or the last attempt; every attempt is recorded in hosted/webhooks/<id>.json.

Deliveries run in the service's task group (they outlive the push request, never the service).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from anyio import to_thread
from anyio.abc import TaskGroup

from berth_registry_proxy.access import HostedConfig
from berth_registry_proxy.storage import _write_atomic

log = logging.getLogger(__name__)


def payload(repo: str, tag: str, pusher: str, is_private: bool, callback_url: str) -> dict[str, Any]:
    """Docker Hub's webhook body (docs.docker.com/docker-hub/webhooks/)."""
    namespace, _, name = repo.rpartition("/")
    now = int(time.time())
    return {
        "callback_url": callback_url,
        "push_data": {"pushed_at": now, "pusher": pusher, "tag": tag},
        "repository": {
            "comment_count": 0,
            "date_created": now,
            "description": "",
            "dockerfile": "",
            "full_description": "",
            "is_official": False,
            "is_private": is_private,
            "is_trusted": False,
            "name": name,
            "namespace": namespace,
            "owner": namespace,
            "repo_name": repo,
            "repo_url": "",
            "star_count": 0,
            "status": "Active",
        },
    }


class Webhooks:
    def __init__(self, config: HostedConfig, root: Path, tg: TaskGroup) -> None:
        self.config = config
        self.dir = root / "webhooks"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tg = tg

    def pushed(self, repo: str, tag: str, digest: str, pusher: str, is_private: bool, base_url: str) -> None:
        for url in self.config.webhooks:
            delivery = secrets.token_hex(12)
            body = payload(repo, tag, pusher, is_private, f"{base_url}/webhooks/callback/{delivery}")
            record = {"id": delivery, "url": url, "repository": repo, "tag": tag, "digest": digest,
                      "payload": body, "attempts": [], "delivered": False, "callback": None}
            self.tg.start_soon(self._deliver, record)

    def _save(self, record: dict[str, Any]) -> None:
        _write_atomic(self.dir / f"{record['id']}.json", json.dumps(record, indent=1).encode(), 0o600)

    async def _deliver(self, record: dict[str, Any]) -> None:
        delay = self.config.webhook_backoff
        timeout = aiohttp.ClientTimeout(total=self.config.webhook_timeout)
        await to_thread.run_sync(self._save, record)  # recorded before the receiver can call back
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(1, self.config.webhook_attempts + 1):
                entry: dict[str, Any] = {"attempt": attempt, "at": time.time()}
                try:
                    async with session.post(record["url"], json=record["payload"], allow_redirects=False) as resp:
                        entry["status"] = resp.status
                        ok = 200 <= resp.status < 300
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    entry["error"] = type(exc).__name__
                    ok = False
                record["attempts"].append(entry)
                record["delivered"] = ok
                await to_thread.run_sync(self._save, record)
                if ok:
                    return
                if attempt < self.config.webhook_attempts:
                    await anyio.sleep(delay)
                    delay *= 2
        log.warning("webhook %s for %s:%s not delivered after %d attempts",
                    record["id"], record["repository"], record["tag"], self.config.webhook_attempts)

    async def callback(self, delivery: str, state: dict[str, Any]) -> bool:
        """Docker Hub's callback_url: the receiver reports a state; recorded with the delivery."""
        if not (len(delivery) == 24 and all(c in "0123456789abcdef" for c in delivery)):
            return False
        # Beside the record, which its delivery task may be rewriting.
        path = self.dir / f"{delivery}.callback"

        def update() -> bool:
            if not (self.dir / f"{delivery}.json").exists():
                return False
            kept = {k: str(state.get(k, ""))[:500] for k in ("state", "description", "context", "target_url")}
            _write_atomic(path, json.dumps(kept).encode(), 0o600)
            return True

        return await to_thread.run_sync(update)

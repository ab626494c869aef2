"""Whether a log replay's reader is still there (berth_agent.logs, berth_orchestrator.logrelay)."""

from __future__ import annotations

from berth_contracts.codec import encode
from berth_contracts.streams import LogBatch
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError


async def reader_present(nc: NATS, subject: str) -> bool:
    """An empty batch sent as a request meets "no responders" once the reader's subscription
    is gone, and times out while it is there (readers never answer an empty batch). A closed
    connection has no reader either."""
    try:
        await nc.request(subject, encode(LogBatch(lines=[])), timeout=0.5)
    except NoRespondersError:
        return False
    except (NatsTimeoutError, TimeoutError):
        return True
    except Exception:  # noqa: BLE001 - the connection closed: nobody to send to
        return False
    return True

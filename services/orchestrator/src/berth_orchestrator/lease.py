"""Leadership: one orchestrator reconciles at a time, the holder of a lease in the KV bucket,
taken and renewed by compare-and-set on the key's revision; the others stand by and take the
lease over once it has expired. The leader reconciles every CYCLE seconds, and at once when an
API call changed the services (poke).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable

import anyio
import msgspec
from berth_contracts.errors import BerthError, Conflict

from berth_orchestrator import reconcile
from berth_orchestrator.records import LEASE_KEY, LeaseRecord, node_ready
from berth_orchestrator.store import Snapshot, SwarmStore

log = logging.getLogger(__name__)

LEASE_SECONDS = 6.0
CYCLE = 1.0
OWN_BEAT_LAG = 3.0  # this node's own last beat, as stored, when heartbeats are being written
OWN_SILENCE_MAX = 20.0  # beyond, this node's own engine is taken for stopped: nothing excused


class Leadership:
    def __init__(self, store: SwarmStore, node: str, announce: Callable[[], Awaitable[None]]) -> None:
        self.store = store
        self.announce = announce  # tells the engines that tasks changed
        self.node = node
        self.holder = f"{node}/{secrets.token_hex(4)}"  # this instance
        self.leader_node = ""  # BERTH_NODE of the lease's holder, as last read
        self.is_leader = False
        # The last time the state could not be read or written (the managers electing a
        # JetStream leader, the state moving into a cluster): no heartbeat could be recorded
        # then, so that time does not count towards a node's silence.
        self.outage: tuple[float, float] = (0.0, 0.0)
        self._failing_since = 0.0
        # A new leader cannot know what the old one heard last: every node counts as heard when
        # it took over (swarmkit's dispatcher also gives every node a grace after an election).
        self.led_since = 0.0
        self._down: set[str] = set()  # the nodes this leader last saw Down (logged once each)
        # When a manager was last lost, and the nodes Down then: the others' heartbeats may have
        # been on their way through it, so each counts as heard at that time.
        self.manager_lost: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._poked = anyio.Event()

    def _failed(self) -> None:
        self._step_down("the swarm's state unreachable")
        self._failing_since = self._failing_since or time.time()

    def poke(self) -> None:
        self._poked.set()

    async def _hold_lease(self) -> bool:
        raw = await self.store.get_raw(LEASE_KEY)
        now = time.time()
        lease = msgspec.json.decode(raw[0], type=LeaseRecord) if raw else None
        if lease is not None and lease.holder != self.holder and lease.until > now:
            self.leader_node = lease.holder.split("/", 1)[0]
            return False
        if lease is not None and lease.holder == self.holder and lease.until - now > LEASE_SECONDS / 2:
            return True  # ours for a while yet: no write (each one is fsynced)
        try:
            await self.store.write_over(LEASE_KEY, LeaseRecord(holder=self.holder, until=now + LEASE_SECONDS), raw)
        except Conflict:
            return False  # another instance renewed or took it first
        if not self.is_leader:
            log.info("orchestrator %s leads the swarm", self.holder)
        self.leader_node = self.node
        return True

    def _step_down(self, why: str) -> None:
        if self.is_leader:
            log.info("orchestrator %s no longer leads the swarm: %s", self.holder, why)
        self.is_leader = False
        self._down.clear()

    async def cycle(self) -> None:
        """One round: hold the lease, then (leading) apply one plan. Outside a swarm there is
        nothing to lead: no lease is written."""
        if not await self.store.in_swarm():
            self._step_down("not in a swarm")
            return
        if not await self._hold_lease():
            self._step_down("another manager holds the lease")
            return
        if not self.is_leader:
            self.led_since = time.time()
        self.is_leader = True
        snap = await self.store.load()
        if snap.cluster is None:
            return
        now = snap.read_at  # silence counted up to when the read began (Snapshot.read_at)
        for node in snap.nodes.values():
            node.last_seen = max(heard_until(node.last_seen, self.outage), self.led_since)
        self.excuse_own_silence(snap, now)
        self.excuse_manager_loss(snap, now)
        self._log_down(snap, now)
        plan = reconcile.plan(snap, now)
        if not plan.puts and not plan.deletes:
            return
        for line in plan.told:
            log.info("%s", line)
        for task_id in plan.deletes:
            try:
                await self.store.delete(snap, f"task.{task_id}")
            except Conflict:
                pass  # changed since the snapshot: planned again next cycle
        for record in plan.puts:
            try:
                await self.store.put(snap, record)
            except Conflict:
                pass
        await self.announce()

    def excuse_own_silence(self, snap: Snapshot, now: float) -> None:
        """This node leads, so it is alive, and its own engine's beats are written as every
        node's are: their silence is the state's (heartbeats not writable while the managers
        re-elect at a manager's return, though this leader's reads went through). Every node's
        silence is counted less that much; not when this node's own engine seems stopped."""
        me = snap.node_by_berth_name(self.node)
        if me is None:
            return
        lag = now - me.last_seen - OWN_BEAT_LAG
        if lag <= 0 or now - me.last_seen > OWN_SILENCE_MAX:
            return
        for node in snap.nodes.values():
            node.last_seen += lag

    def excuse_manager_loss(self, snap: Snapshot, now: float) -> None:
        """A worker's heartbeat goes through one manager (its link's), a manager's through its
        own server's routes: a beat on its way when a manager was lost is lost with it, and the
        next comes only after its timeout. So when a manager is first seen Down, every node not
        Down before counts as heard then (it is Down DOWN_AFTER later if truly silent), lest a
        node that merely lost its beat be taken for lost alongside the manager."""
        for node in snap.nodes.values():
            if node.id not in self.manager_lost[1]:
                node.last_seen = max(node.last_seen, self.manager_lost[0])
        lost = {
            n.id for n in snap.nodes.values()
            if n.role == "manager" and n.id not in self._down and not node_ready(n, now)
        }  # fmt: skip
        if not lost:
            return
        self.manager_lost = (now, frozenset(lost | self._down))
        for node in snap.nodes.values():
            if node.id not in self.manager_lost[1]:
                node.last_seen = max(node.last_seen, now)

    def _log_down(self, snap: Snapshot, now: float) -> None:
        """A line when a node is first seen Down and when it is heard again: a reschedule's
        timing, and why a task moved, read from the log."""
        down = {n.id for n in snap.nodes.values() if not node_ready(n, now)}
        for node_id in sorted(down - self._down):
            node = snap.nodes[node_id]
            log.info("node %s (%s) is down: not heard for %.1fs", node.id, node.berth_node, now - node.last_seen)
        for node_id in sorted(self._down - down):
            if node_id in snap.nodes:
                log.info("node %s (%s) is heard again", node_id, snap.nodes[node_id].berth_node)
        self._down = down

    async def run(self) -> None:
        said = ""
        while True:
            try:
                await self.cycle()
                said = ""
                if self._failing_since:
                    self.outage, self._failing_since = (self._failing_since, time.time()), 0.0
            except BerthError as exc:  # JetStream away (NATS restarting, a manager locked): try again
                # Once per cause, not every second (a locked manager waits for its user).
                log.log(logging.DEBUG if exc.message == said else logging.WARNING, "orchestrator cycle: %s", exc.message)
                said = exc.message
                self._failed()
            except Exception:  # noqa: BLE001 - a bad cycle must not end leadership for good
                log.exception("orchestrator cycle failed")
                self._failed()
            with anyio.move_on_after(CYCLE):
                await self._poked.wait()
            self._poked = anyio.Event()


def heard_until(last_seen: float, outage: tuple[float, float]) -> float:
    """A node's last heartbeat, with the time no heartbeat could be recorded taken out of its
    silence: heard during the outage, it counts as heard at its end; before it, as heard the
    outage's length later."""
    start, end = outage
    if last_seen >= end:
        return last_seen
    if last_seen >= start:
        return end
    return last_seen + (end - start)

"""Every NATS subject name berth uses, in one place.

Request/reply subjects carry one tagged union per service (see engine.py, lifecycle.py, agent.py).
Services that own node-local state (lifecycle, runtime-agent) also listen on a node-addressed
subject so the engine can reach the node a container lives on.
"""

from __future__ import annotations

PREFIX = "berth"

# --- request/reply -------------------------------------------------------------------------------
ENGINE_RPC = f"{PREFIX}.engine.v1.rpc"
ENGINE_QUEUE = "berth-engine"

BUILDER_RPC = f"{PREFIX}.builder.v1.rpc"
BUILDER_QUEUE = "berth-builder"

# Swarm mode: the orchestrator (manager role) answers the Engine API's swarm objects and the
# node engines' heartbeats; its cluster state lives in JetStream KV (SWARM_BUCKET).
ORCHESTRATOR_RPC = f"{PREFIX}.orchestrator.v1.rpc"
ORCHESTRATOR_QUEUE = "berth-orchestrator"
SWARM_BUCKET = "berth_swarm"
# Published (empty) by the orchestrator when tasks changed: engines heartbeat at once instead
# of at their next period, so a service converges in well under a second.
SWARM_CHANGED = f"{PREFIX}.swarm.v1.changed"
# Between nodes (over the manager's NATS leafnode port): a joining node's NodeJoin, answered on
# a SWARM_JOINED subject; then each node's session (heartbeats, leave) on its own subject, which
# only that node's leaf credentials may publish, answered on its own SWARM_ASSIGNED subjects.
SWARM_JOIN = f"{PREFIX}.swarm.v1.join"
SWARM_JOINED = f"{PREFIX}.swarm.v1.joined"
SWARM_NODE_QUEUE = "berth-orchestrator-managers"


def swarm_node(node_id: str) -> str:
    return f"{PREFIX}.swarm.v1.node.{node_id}"


def swarm_assigned(node_id: str) -> str:
    return f"{PREFIX}.swarm.v1.assigned.{node_id}"


# `docker service logs`: a manager asks each task's node for its container's log (NodeLogs on
# the node's swarm_logs subject); the node streams it back under its own swarm_node subject,
# and takes the reader's checkpoint answers under its own swarm_assigned subject, the only
# subjects its leaf credentials open.
def swarm_logs(node_id: str) -> str:
    return f"{swarm_assigned(node_id)}.logs"


def swarm_log_stream(node_id: str) -> str:
    """The prefix of the node's log streams (and of its answers to NodeLogs)."""
    return f"{swarm_node(node_id)}.logs"


def swarm_log_acks(node_id: str) -> str:
    return f"{swarm_assigned(node_id)}.logack"

LIFECYCLE_QUEUE = "berth-lifecycle"
AGENT_QUEUE = "berth-runtime-agent"


def lifecycle_rpc(node: str) -> str:
    return f"{PREFIX}.lifecycle.v1.node.{node}.rpc"


def agent_rpc(node: str) -> str:
    return f"{PREFIX}.agent.v1.node.{node}.rpc"


# --- health: every service answers a Ping on its own subject --------------------------------------
def health(service: str) -> str:
    return f"{PREFIX}.health.v1.{service}"


# --- events --------------------------------------------------------------------------------------
# Docker events, as the engine publishes them: berth.events.v1.docker.<type>.<actor id>
DOCKER_EVENTS_ALL = f"{PREFIX}.events.v1.docker.>"


def docker_events(object_type: str, actor_id: str) -> str:
    return f"{PREFIX}.events.v1.docker.{object_type}.{actor_id}"


# Task events from runtime agents (exit, oom); the engine listens with its queue group.
TASK_EVENTS_ALL = f"{PREFIX}.events.v1.task.>"


def task_events(node: str) -> str:
    return f"{PREFIX}.events.v1.task.{node}"


# --- stdio streams -------------------------------------------------------------------------------
# Output of a container's main process: StdioChunk messages, ending with one whose eof is true.
def stdio_out(container_id: str) -> str:
    return f"{PREFIX}.stdio.v1.{container_id}.out"


# Flow control of stdio_out: StdioAck messages from the readers, to the agent.
def stdio_ack(container_id: str) -> str:
    return f"{PREFIX}.stdio.v1.{container_id}.ack"


# Input for a container's main process: StdinChunk messages.
def stdio_in(container_id: str) -> str:
    return f"{PREFIX}.stdio.v1.{container_id}.in"


# --- reply inboxes ------------------------------------------------------------------------------
# Each bus identity (a service, `berth status`) takes its replies on its own inbox prefix, which
# only it may subscribe to (buspermissions.py): one service cannot read another's replies.
INBOX_PREFIX = f"{PREFIX}.inbox.v1"


def inbox_prefix(identity: str) -> str:
    return f"{INBOX_PREFIX}.{identity}"


# Traces emitted on behalf of shims are sent by the agent; nothing to name here.

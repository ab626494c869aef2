"""Who may publish and subscribe to what on the bus: the one permission table.

`berth up` (and the compose init service) turn it into the nats-server authorization block
(berth_kit.busauth); each identity connects with its own generated credentials. A service
subscribes only to what it serves and to its own reply inbox (subjects.inbox_prefix); it
publishes only what it sends. Replies to requests need no publish permission: the server lets
a subscriber answer the reply subject of a message it received (allow_responses), once.

Node-addressed subjects use `*` for the node: every node's services may serve their own node's
subjects and the engine reaches any node. (Swarm narrows these per node later.)
"""

from __future__ import annotations

from dataclasses import dataclass

from berth_contracts import subjects

ANY = "*"  # one subject token: any node, any container id

API_GATEWAY = "berth-api-gateway"
ENGINE = "berth-engine"
LIFECYCLE = "berth-lifecycle"
RUNTIME_AGENT = "berth-runtime-agent"
REGISTRY_PROXY = "berth-registry-proxy"
BUILDER = "berth-builder"
ORCHESTRATOR = "berth-orchestrator"
# `berth status` and `berth up -d`'s readiness check: they ping every service's health subject.
STATUS = "berth-status"


@dataclass(frozen=True)
class BusPermissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    # May answer the reply subject of a request it received (one message, within the expiry).
    allow_responses: bool = True


def _inbox(identity: str) -> str:
    return f"{subjects.inbox_prefix(identity)}.>"


def _service(
    identity: str, publish: tuple[str, ...], subscribe: tuple[str, ...], answers: tuple[str, ...] = ()
) -> BusPermissions:
    """Every service also serves Ping on its own health subject and may ping itself there (the
    container healthcheck runs with the service's own credentials), and reads its own inbox.

    answers: the identities whose requests it serves. It may publish to their inboxes (and to
    its own and `berth status`'s: health pings) besides answering through allow_responses,
    because nats-server forgets which replies a client may send whenever it reloads its
    configuration, and swarm mode reloads it (a node joining or leaving) while requests wait.
    """
    own_health = subjects.health(identity)
    replies = tuple(_inbox(i) for i in (*answers, identity, STATUS))
    return BusPermissions(
        publish=(*publish, own_health, *replies),
        subscribe=(*subscribe, own_health, _inbox(identity)),
    )


# Log replays (ContainerLogs → TaskLogs) stream LogBatch messages to an inbox the gateway names;
# the engine (container never started: one empty end batch) and the agent publish there.
_GATEWAY_STREAMS = _inbox(API_GATEWAY)
# A service's log (`docker service logs`) goes through the orchestrator: it reads each task's
# container log from its node's engine and passes the lines on to the gateway.
_ORCHESTRATOR_STREAMS = _inbox(ORCHESTRATOR)

PERMISSIONS: dict[str, BusPermissions] = {
    API_GATEWAY: _service(
        API_GATEWAY,
        publish=(
            subjects.ENGINE_RPC,
            subjects.BUILDER_RPC,
            subjects.ORCHESTRATOR_RPC,
            subjects.stdio_in(ANY),
            subjects.stdio_ack(ANY),
        ),
        subscribe=(subjects.DOCKER_EVENTS_ALL, subjects.stdio_out(ANY)),
        answers=(RUNTIME_AGENT, ORCHESTRATOR),  # a log replay's checkpoints
    ),
    ENGINE: _service(
        ENGINE,
        publish=(
            subjects.agent_rpc(ANY),
            subjects.lifecycle_rpc(ANY),
            subjects.docker_events("container", ANY),
            _GATEWAY_STREAMS,
            _ORCHESTRATOR_STREAMS,
            subjects.ORCHESTRATOR_RPC,  # the node's heartbeat: task states, assignments
        ),
        subscribe=(
            subjects.ENGINE_RPC,
            subjects.DOCKER_EVENTS_ALL,  # the event log for `docker events --since`
            subjects.TASK_EVENTS_ALL,
            subjects.stdio_out(ANY),  # healthcheck and exec output
            subjects.SWARM_CHANGED,
        ),
        answers=(API_GATEWAY, BUILDER, ORCHESTRATOR),
    ),
    LIFECYCLE: _service(
        LIFECYCLE,
        publish=(subjects.docker_events("image", ANY),),
        subscribe=(subjects.lifecycle_rpc(ANY),),
        answers=(ENGINE,),
    ),
    RUNTIME_AGENT: _service(
        RUNTIME_AGENT,
        publish=(subjects.task_events(ANY), subjects.stdio_out(ANY), _GATEWAY_STREAMS, _ORCHESTRATOR_STREAMS),
        subscribe=(subjects.agent_rpc(ANY), subjects.stdio_in(ANY), subjects.stdio_ack(ANY)),
        answers=(ENGINE,),
    ),
    REGISTRY_PROXY: _service(REGISTRY_PROXY, publish=(), subscribe=()),
    # The builder runs each step through the engine (containers, commit, images), as dockerd's
    # builder goes through the daemon, and follows a RUN step's output.
    BUILDER: _service(
        BUILDER,
        publish=(subjects.ENGINE_RPC,),
        # A step container's output and its `die` event (exit code).
        subscribe=(subjects.BUILDER_RPC, subjects.stdio_out(ANY), subjects.docker_events("container", ANY)),
        answers=(API_GATEWAY,),
    ),
    # Only the orchestrator reaches JetStream: its API and the swarm's KV bucket, where the
    # cluster state (join tokens included) lives. Engines learn their tasks from its replies.
    ORCHESTRATOR: _service(
        ORCHESTRATOR,
        publish=(
            "$JS.API.>",
            f"$KV.{subjects.SWARM_BUCKET}.>",
            subjects.SWARM_CHANGED,
            subjects.ENGINE_RPC,  # a task container's log, for `docker service logs`
            _GATEWAY_STREAMS,
            # A worker's orchestrator speaks for its node to the managers (over the leaf link).
            subjects.SWARM_JOIN,
            subjects.swarm_node(ANY),
            f"{subjects.swarm_node(ANY)}.>",  # its tasks' logs, streamed to a manager
            # A manager's answers to the other nodes (the answers' subjects cross the link).
            f"{subjects.SWARM_JOINED}.>",
            f"{subjects.swarm_assigned(ANY)}.>",
        ),
        subscribe=(
            subjects.ORCHESTRATOR_RPC,
            subjects.SWARM_JOIN,  # a manager's: nodes joining
            subjects.swarm_node(ANY),  # a manager's: the nodes' sessions
            f"{subjects.SWARM_JOINED}.>",  # a joining node's: the answer
            f"{subjects.swarm_assigned(ANY)}.>",  # a worker's: its heartbeats' answers, log requests
            f"{subjects.swarm_node(ANY)}.>",  # a manager's: the nodes' log streams
        ),
        answers=(API_GATEWAY, ENGINE, RUNTIME_AGENT),
    ),
    STATUS: BusPermissions(
        publish=(subjects.health(ANY),),
        subscribe=(_inbox(STATUS),),
        allow_responses=False,
    ),
}

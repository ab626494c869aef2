"""Stand-in services for the supervisor tests: real kit services (Ping/Pong over real NATS) that
do nothing else; the gateway stand-in also answers HTTP on its -H unix sockets."""

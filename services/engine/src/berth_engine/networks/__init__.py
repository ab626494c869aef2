"""Networks: records, the bridge controller (IPAM, ports), `docker network` commands, joins and
legacy links."""

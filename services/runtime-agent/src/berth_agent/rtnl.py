"""The few rtnetlink requests netfast makes, on a plain NETLINK_ROUTE socket.

Not pyroute2: importing its IPRoute alone loads ~100 modules and costs the agent ~14 MiB for
the handful of messages below (linux/rtnetlink.h, linux/if_link.h, linux/veth.h). A socket
belongs to the network namespace of the thread that opened it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from types import TracebackType

NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 18, 20, 24
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_NET_NS_FD = 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_OIF, RTA_GATEWAY, RTA_PRIORITY = 4, 5, 6
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 4, 0, 1

_HEADER = struct.Struct("=IHHII")  # nlmsghdr
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


def attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            return
        yield kind & 0x3FFF, data[offset + 4 : offset + length]
        offset += (length + 3) & ~3


class Route:
    """A NETLINK_ROUTE socket: one request at a time, each acknowledged."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def __enter__(self) -> Route:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.sock.close()

    def request(self, kind: int, body: bytes, flags: int = 0) -> bytes:
        """Send one message; the payload of the answer (the kernel's ack or its reply)."""
        self.seq += 1
        self.sock.send(
            _HEADER.pack(
                _HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0
            )
            + body
        )
        reply = b""
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, mtype, _, seq, _ = _HEADER.unpack_from(data, offset)
                payload = data[offset + _HEADER.size : offset + length]
                offset += (length + 3) & ~3
                if seq != self.seq:
                    continue
                if mtype != NLMSG_ERROR:
                    reply = payload  # a GETLINK's answer; its ack follows
                    continue
                (error,) = struct.unpack_from("=i", payload)
                if error:
                    raise OSError(-error, os.strerror(-error))
                return reply

    # --- the requests ---------------------------------------------------------------------
    def add_veth(
        self, master: int, peer_name: str, peer_netns_fd: int, peer_mac: str, mtu: int
    ) -> None:
        """A veth pair: this end (named by the kernel) enslaved to `master`, the peer named and
        moved into the namespace at `peer_netns_fd`."""
        sized = attr(IFLA_MTU, u32(mtu)) if mtu else b""
        peer = ifinfo() + attr(IFLA_IFNAME, peer_name.encode() + b"\0") + sized
        if peer_mac:
            peer += attr(IFLA_ADDRESS, bytes.fromhex(peer_mac.replace(":", "")))
        peer += attr(IFLA_NET_NS_FD, u32(peer_netns_fd))
        info = attr(IFLA_INFO_KIND, b"veth\0") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer))
        body = ifinfo() + sized + attr(IFLA_MASTER, u32(master)) + attr(IFLA_LINKINFO, info)
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def peer_index(self, index: int) -> int:
        """IFLA_LINK of a link: a veth's peer's index (in the peer's namespace)."""
        reply = self.request(RTM_GETLINK, ifinfo(index))
        for kind, value in attrs(reply[_IFINFO.size :]):
            if kind == IFLA_LINK:
                return int(struct.unpack("=I", value[:4])[0])
        raise OSError(f"link {index} has no peer")

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, ifinfo(index, IFF_UP, IFF_UP))

    def delete(self, index: int) -> None:
        self.request(RTM_DELLINK, ifinfo(index))

    def add_ipv4(self, index: int, address: str, subnet: ipaddress.IPv4Network) -> None:
        """The address, with its broadcast, as `ip addr add A/P brd + dev` makes it."""
        packed = ipaddress.IPv4Address(address).packed
        body = struct.pack("=BBBBI", socket.AF_INET, subnet.prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        body += attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
        body += attr(IFA_BROADCAST, subnet.broadcast_address.packed)
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, index: int, gateway: str, metric: int) -> None:
        body = struct.pack(
            "=BBBBBBBBI", socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC,
            RT_SCOPE_UNIVERSE, RTN_UNICAST, 0,
        )  # fmt: skip
        body += attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed)
        body += attr(RTA_OIF, u32(index)) + attr(RTA_PRIORITY, u32(metric))
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)

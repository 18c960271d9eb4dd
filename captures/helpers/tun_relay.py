#!/usr/bin/env python3
"""Point-to-point raw-IP link between two lab netns made of two TUN devices.

Usage: tun_relay.py NETNS_A DEV_A NETNS_B DEV_B SECONDS
Creates DEV_A (IFF_TUN|IFF_NO_PI) inside /var/run/netns/NETNS_A and DEV_B inside
NETNS_B and copies IP packets between them for at most SECONDS.  A capture on
either device has link type RAW (plain IPv4/IPv6 packets, no link header).
"""
import ctypes
import fcntl
import os
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def enter(ns):
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")
    os.close(fd)


def mktun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    ns_a, dev_a, ns_b, dev_b, secs = sys.argv[1:6]
    enter(ns_a)
    fa = mktun(dev_a)
    enter(ns_b)
    fb = mktun(dev_b)
    print("ready", flush=True)
    peer = {fa: fb, fb: fa}
    end = time.time() + float(secs)
    while time.time() < end:
        r, _, _ = select.select([fa, fb], [], [], 0.5)
        for fd in r:
            pkt = os.read(fd, 65535)
            os.write(peer[fd], pkt)


if __name__ == "__main__":
    main()

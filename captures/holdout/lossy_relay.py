#!/usr/bin/env python3
"""Userspace stand-in for `tc netem` (the lab kernel has no sch_netem): a point-to-point
raw-IP link made of two TUN devices (like ../helpers/tun_relay.py) that drops and reorders.

usage: lossy_relay.py NETNS_A DEV_A NETNS_B DEV_B SECONDS LOSS REORDER DELAY_MS SEED
Each packet, in each direction: dropped with probability LOSS; otherwise with probability
REORDER it is held back DELAY_MS (so later packets overtake it), else forwarded at once.
"""
import heapq
import os
import random
import select
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers"))
from tun_relay import enter, mktun  # noqa: E402


def main():
    ns_a, dev_a, ns_b, dev_b, secs, loss, reorder, delay, seed = sys.argv[1:10]
    loss, reorder, delay = float(loss), float(reorder), float(delay) / 1000
    rnd = random.Random(int(seed))
    enter(ns_a)
    fa = mktun(dev_a)
    enter(ns_b)
    fb = mktun(dev_b)
    print("ready", flush=True)
    peer = {fa: fb, fb: fa}
    q = []  # (release_time, seq, fd, pkt)
    seq = 0
    stats = {"fwd": 0, "drop": 0, "held": 0}
    end = time.time() + float(secs)
    while time.time() < end:
        now = time.time()
        while q and q[0][0] <= now:
            _, _, fd, pkt = heapq.heappop(q)
            os.write(fd, pkt)
        tmo = max(0.0, min(0.5, q[0][0] - now)) if q else 0.5
        r, _, _ = select.select([fa, fb], [], [], tmo)
        for fd in r:
            pkt = os.read(fd, 65535)
            x = rnd.random()
            if x < loss:
                stats["drop"] += 1
                continue
            if x < loss + reorder:
                stats["held"] += 1
                seq += 1
                heapq.heappush(q, (time.time() + delay, seq, peer[fd], pkt))
            else:
                stats["fwd"] += 1
                os.write(peer[fd], pkt)
        if stats["fwd"] % 50 == 0:
            print(stats, flush=True)


if __name__ == "__main__":
    main()

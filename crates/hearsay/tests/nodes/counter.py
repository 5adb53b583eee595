#!/usr/bin/env python3
"""A third-party-style Maelstrom counter node (g-counter and pn-counter;
standard library only). Modes (first argument):
  correct       per-node increment and decrement totals, merged by max and
                gossiped to everyone every 200 ms (a state-based PN-counter)
  max-merge     keeps one total and merges by max (loses concurrent adds)
  double-count  forwards each add to n0 and resends it every 20 ms until
                n0 acknowledges; n0 counts every copy (no deduplication)
"""
import json
import os
import select
import sys
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "correct"
node_id, others = None, []
inc, dec = {}, {}  # node -> total (correct mode)
total = 0          # max-merge and double-count modes
pending = {}       # double-count: id -> (delta, last sent)
next_id = 0


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def value():
    if mode == "correct":
        return sum(inc.values()) - sum(dec.values())
    return total


def handle(msg):
    global node_id, others, total, next_id
    body, src = msg["body"], msg["src"]
    t = body["type"]
    if t == "init":
        node_id = body["node_id"]
        others = [n for n in body["node_ids"] if n != node_id]
        send(src, {"type": "init_ok", "in_reply_to": body["msg_id"]})
    elif t == "add":
        d = body["delta"]
        if mode == "correct":
            side = inc if d >= 0 else dec
            side[node_id] = side.get(node_id, 0) + abs(d)
        elif mode == "max-merge":
            total += d
        else:
            if node_id == "n0":
                total += d
            else:
                next_id += 1
                pending[next_id] = (d, 0.0)
        send(src, {"type": "add_ok", "in_reply_to": body["msg_id"]})
    elif t == "read":
        send(src, {"type": "read_ok", "value": value(), "in_reply_to": body["msg_id"]})
    elif t == "state":
        if mode == "correct":
            for side, theirs in ((inc, body["inc"]), (dec, body["dec"])):
                for n, v in theirs.items():
                    side[n] = max(side.get(n, 0), v)
        else:
            total = max(total, body["total"])
    elif t == "fwd":
        total += body["delta"]
        send(src, {"type": "fwd_ok", "id": body["id"]})
    elif t == "fwd_ok":
        pending.pop(body["id"], None)


last, buf = time.monotonic(), b""
while True:
    ready, _, _ = select.select([0], [], [], 0.01)
    if ready:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                handle(json.loads(line))
    now = time.monotonic()
    if mode == "double-count":
        for i, (d, sent) in list(pending.items()):
            if now - sent >= 0.02:
                send("n0", {"type": "fwd", "id": i, "delta": d})
                pending[i] = (d, now)
        # n0's total reaches the others the max-merge way.
    if now - last >= 0.2:
        last = now
        for n in others:
            if mode == "correct":
                send(n, {"type": "state", "inc": inc, "dec": dec})
            elif mode == "max-merge" or node_id == "n0":
                send(n, {"type": "state", "total": total})

#!/usr/bin/env python3
"""A third-party-style Maelstrom g-set node (standard library only).

Keeps a set; every 200 ms sends the whole set to every other node, so it
survives partitions. Modes (first argument):
  correct     as above
  no-gossip   never tells anyone (a checker must reject it)
"""
import json
import os
import select
import sys
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "correct"
node_id, others, values = None, [], set()


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def handle(msg):
    global node_id, others
    body, src = msg["body"], msg["src"]
    t = body["type"]
    if t == "init":
        node_id = body["node_id"]
        others = [n for n in body["node_ids"] if n != node_id]
        send(src, {"type": "init_ok", "in_reply_to": body["msg_id"]})
    elif t == "add":
        values.add(body["element"])
        send(src, {"type": "add_ok", "in_reply_to": body["msg_id"]})
    elif t == "read":
        send(src, {"type": "read_ok", "value": sorted(values), "in_reply_to": body["msg_id"]})
    elif t == "merge":
        values.update(body["value"])


last, buf = time.monotonic(), b""
while True:
    ready, _, _ = select.select([0], [], [], 0.05)
    if ready:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                handle(json.loads(line))
    if mode != "no-gossip" and time.monotonic() - last >= 0.2:
        last = time.monotonic()
        for n in others:
            send(n, {"type": "merge", "value": sorted(values)})

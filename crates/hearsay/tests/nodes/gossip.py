#!/usr/bin/env python3
"""A third-party-style Maelstrom broadcast node (standard library only).

Keeps a set of values; forwards new values to its topology neighbours and,
every 300 ms, resends each neighbour what it has not confirmed yet (it
learns what a neighbour has from that neighbour's own gossip). Survives
partitions; never sends when there is nothing new.

Flags (for harness tests of deliberately broken nodes):
  --extra-field   broadcast_ok carries an extra key (violates the schema)
"""
import json
import os
import select
import sys
import time

EXTRA_FIELD = "--extra-field" in sys.argv

node_id = None
neighbours = []
values = set()
known = {}  # neighbour -> values it is known to have


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def reply(msg, body):
    body["in_reply_to"] = msg["body"]["msg_id"]
    send(msg["src"], body)


def gossip():
    for n in neighbours:
        missing = values - known.setdefault(n, set())
        if missing:
            send(n, {"type": "gossip", "values": sorted(missing)})


def handle(msg):
    global node_id, neighbours
    body = msg["body"]
    t = body["type"]
    if t == "init":
        node_id = body["node_id"]
        reply(msg, {"type": "init_ok"})
    elif t == "topology":
        neighbours = body["topology"].get(node_id, [])
        reply(msg, {"type": "topology_ok"})
    elif t == "broadcast":
        values.add(body["message"])
        ok = {"type": "broadcast_ok"}
        if EXTRA_FIELD:
            ok["note"] = "stored"
        reply(msg, ok)
    elif t == "read":
        reply(msg, {"type": "read_ok", "messages": sorted(values)})
    elif t == "gossip":
        got = set(body["values"])
        values.update(got)
        known.setdefault(msg["src"], set()).update(got)
        # Tell the sender what arrived, so it stops resending it.
        send(msg["src"], {"type": "have", "values": sorted(got)})
    elif t == "have":
        known.setdefault(msg["src"], set()).update(body["values"])


def main():
    last = time.monotonic()
    buf = b""
    while True:
        ready, _, _ = select.select([0], [], [], 0.05)
        if ready:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.strip():
                    handle(json.loads(line))
        if time.monotonic() - last >= 0.3:
            last = time.monotonic()
            gossip()


if __name__ == "__main__":
    main()

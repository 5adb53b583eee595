#!/usr/bin/env python3
"""A third-party-style star broadcast node (standard library only): every
node hands new values to the hub (the first node in init's node_ids), and
the hub hands them to everyone else. No retries: for runs without faults.
"""
import json
import sys

node_id, hub, others = None, None, []
values = set()


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def spread(v, came_from):
    if v in values:
        return
    values.add(v)
    if node_id == hub:
        for n in others:
            if n != came_from:
                send(n, {"type": "gossip", "message": v})
    elif came_from != hub:
        send(hub, {"type": "gossip", "message": v})


for line in sys.stdin:
    msg = json.loads(line)
    body, src = msg["body"], msg["src"]
    t = body["type"]
    reply = {"in_reply_to": body.get("msg_id")}
    if t == "init":
        node_id = body["node_id"]
        hub = body["node_ids"][0]
        others = [n for n in body["node_ids"] if n != node_id]
        send(src, dict(reply, type="init_ok"))
    elif t == "topology":
        send(src, dict(reply, type="topology_ok"))
    elif t == "broadcast":
        spread(body["message"], None)
        send(src, dict(reply, type="broadcast_ok"))
    elif t == "gossip":
        spread(body["message"], src)
    elif t == "read":
        send(src, dict(reply, type="read_ok", messages=sorted(values)))

#!/usr/bin/env python3
"""A node whose traffic is known exactly: each broadcast from a client is sent
once to every other node (fire and forget); nodes never forward what they
receive. So with N nodes and B broadcasts, servers send exactly (N-1)*B
messages."""
import json
import sys

node_id = None
node_ids = []
values = set()


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    t = body["type"]
    if t == "init":
        node_id, node_ids = body["node_id"], body["node_ids"]
        send(msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
    elif t == "topology":
        send(msg["src"], {"type": "topology_ok", "in_reply_to": body["msg_id"]})
    elif t == "broadcast":
        values.add(body["message"])
        send(msg["src"], {"type": "broadcast_ok", "in_reply_to": body["msg_id"]})
        for n in node_ids:
            if n != node_id:
                send(n, {"type": "copy", "message": body["message"]})
    elif t == "read":
        send(msg["src"], {"type": "read_ok", "messages": sorted(values), "in_reply_to": body["msg_id"]})
    elif t == "copy":
        values.add(body["message"])

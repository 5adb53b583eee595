#!/usr/bin/env python3
"""A broken broadcast node: forwards each new value to its neighbours once
and never retries. Correct on a healthy network; loses values whenever a
partition eats a forward.

  --never-forward   keep values local (loses values even without faults)
"""
import json
import sys

NEVER_FORWARD = "--never-forward" in sys.argv
node_id = None
neighbours = []
values = set()


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def reply(msg, body):
    body["in_reply_to"] = msg["body"]["msg_id"]
    send(msg["src"], body)


def learn(v, sender):
    if v in values:
        return
    values.add(v)
    if NEVER_FORWARD:
        return
    for n in neighbours:
        if n != sender:
            send(n, {"type": "forward", "message": v})


for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    t = body["type"]
    if t == "init":
        node_id = body["node_id"]
        reply(msg, {"type": "init_ok"})
    elif t == "topology":
        neighbours = body["topology"].get(node_id, [])
        reply(msg, {"type": "topology_ok"})
    elif t == "broadcast":
        reply(msg, {"type": "broadcast_ok"})
        learn(body["message"], None)
    elif t == "read":
        reply(msg, {"type": "read_ok", "messages": sorted(values)})
    elif t == "forward":
        learn(body["message"], msg["src"])

#!/usr/bin/env python3
"""The Gossip Glomers challenge 4 approach, third-party style (standard
library only): a g-counter kept in Maelstrom's seq-kv service. An add reads
the counter and compare-and-sets it, retrying on a conflict; a read first
writes a key of its own, which moves this node to seq-kv's newest state,
then reads the counter there.

With the argument `stale` it reads without that write: seq-kv may then
answer from an old state, and final reads fall short (a checker must
reject it).
"""
import json
import sys

node_id = None
next_id = 0
waiting = {}  # msg_id -> callback(body)


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def rpc(body, then):
    global next_id
    next_id += 1
    body["msg_id"] = next_id
    waiting[next_id] = then
    send("seq-kv", body)


def value_of(reply):
    return reply["value"] if reply["type"] == "read_ok" else 0


def add(delta, done):
    def got(reply):
        cur = value_of(reply)
        rpc({"type": "cas", "key": "counter", "from": cur, "to": cur + delta,
             "create_if_not_exists": True},
            lambda r: done() if r["type"] == "cas_ok" else add(delta, done))
    rpc({"type": "read", "key": "counter"}, got)


stale = len(sys.argv) > 1 and sys.argv[1] == "stale"
sync = 0
for line in sys.stdin:
    msg = json.loads(line)
    body, src = msg["body"], msg["src"]
    t = body["type"]
    if "in_reply_to" in body and body["in_reply_to"] in waiting:
        waiting.pop(body["in_reply_to"])(body)
        continue
    if t == "init":
        node_id = body["node_id"]
        send(src, {"type": "init_ok", "in_reply_to": body["msg_id"]})
    elif t == "add":
        mid = body["msg_id"]
        add(body["delta"], lambda src=src, mid=mid: send(src, {"type": "add_ok", "in_reply_to": mid}))
    elif t == "read":
        mid = body["msg_id"]
        sync += 1

        def synced(_r, src=src, mid=mid):
            rpc({"type": "read", "key": "counter"},
                lambda r: send(src, {"type": "read_ok", "value": value_of(r), "in_reply_to": mid}))
        if stale:
            synced(None)
        else:
            rpc({"type": "write", "key": "sync-" + node_id, "value": sync}, synced)

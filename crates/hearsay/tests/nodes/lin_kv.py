#!/usr/bin/env python3
"""A lin-kv node, third-party style (standard library only), in three modes
(the first argument):

- `proxy` (default): forwards every read, write and cas to Maelstrom's
  lin-kv service, as Maelstrom's demo/ruby/lin_kv_proxy.rb does.
  Linearizable, under partitions too (services are never partitioned).
- `primary`: node n0 (the first of node_ids) holds every register; other
  nodes forward requests to it and relay its answer. Linearizable; under
  partitions forwarded requests are lost and time out.
- `stale`: like `primary` for writes and cas, but every node answers reads
  from its own copy, which learns a value only when this node's own write
  or cas goes through. Reads miss other nodes' writes: not linearizable (a
  checker must reject it).
"""
import json
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "proxy"
node_id = None
primary = None
next_id = 0
waiting = {}  # msg_id -> callback(body)
registers = {}  # key -> value (the primary's, or a stale node's copy)


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def rpc(dest, body, then):
    global next_id
    next_id += 1
    body["msg_id"] = next_id
    waiting[next_id] = then
    send(dest, body)


def apply(body):
    """The primary's register step: the reply body, without in_reply_to."""
    k = str(body["key"])
    t = body["type"]
    if t == "read":
        if k not in registers:
            return {"type": "error", "code": 20, "text": "not found"}
        return {"type": "read_ok", "value": registers[k]}
    if t == "write":
        registers[k] = body["value"]
        return {"type": "write_ok"}
    if k not in registers:
        return {"type": "error", "code": 20, "text": "not found"}
    if registers[k] != body["from"]:
        return {"type": "error", "code": 22, "text": "expected %s" % registers[k]}
    registers[k] = body["to"]
    return {"type": "cas_ok"}


def answer(src, mid, reply):
    reply = dict(reply)
    reply["in_reply_to"] = mid
    send(src, reply)


def forward(src, body):
    """Runs a client request at the primary (or the service) and answers."""
    mid = body["msg_id"]
    req = {k: v for k, v in body.items() if k != "msg_id"}
    if mode == "proxy":
        rpc("lin-kv", req, lambda r: answer(src, mid, {k: v for k, v in r.items()
                                                           if k not in ("in_reply_to", "msg_id")}))
        return
    if node_id == primary:
        answer(src, mid, apply(req))
        return

    def done(r):
        r = {k: v for k, v in r.items() if k not in ("in_reply_to", "msg_id")}
        if mode == "stale" and r["type"] in ("write_ok", "cas_ok"):
            registers[str(req["key"])] = req["value"] if req["type"] == "write" else req["to"]
        answer(src, mid, r)
    rpc(primary, {"type": "fwd", "req": req}, done)


for line in sys.stdin:
    msg = json.loads(line)
    body, src = msg["body"], msg["src"]
    t = body["type"]
    if "in_reply_to" in body:
        cb = waiting.pop(body["in_reply_to"], None)
        if cb:
            cb(body)
        continue
    if t == "init":
        node_id = body["node_id"]
        primary = body["node_ids"][0]
        send(src, {"type": "init_ok", "in_reply_to": body["msg_id"]})
    elif t == "fwd":
        answer(src, body["msg_id"], apply(body["req"]))
    elif t == "read" and mode == "stale" and node_id != primary:
        k = str(body["key"])
        if k in registers:
            answer(src, body["msg_id"], {"type": "read_ok", "value": registers[k]})
        else:
            answer(src, body["msg_id"], {"type": "error", "code": 20, "text": "not found"})
    elif t in ("read", "write", "cas"):
        forward(src, body)

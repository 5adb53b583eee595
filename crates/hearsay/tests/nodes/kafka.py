#!/usr/bin/env python3
"""A kafka node (Gossip Glomers 5, maelstrom-spec-more.md 3), third-party
style (standard library only), in one of these modes (the first argument):

- `single` (default): one node, in-memory logs with dense offsets from 0;
  a poll returns everything from the requested offset. Correct for 5a.
- `forward`: any number of nodes; each key is owned by one node (by the
  key's value over node_ids), and every request is forwarded to the owners
  of its keys, whose answers are merged. Correct for 5b and 5c.

Broken modes, each of which the checker must reject (one node, as
`single`, except for the fault):

- `lose`: every 10th acknowledged send is left out of the log: its offset
  stays a hole, so later messages are polled and it never is (lost-write,
  unseen).
- `reorder`: every 3rd poll of a key that asks from offset o > 0 answers
  from o - 1, re-delivering a message the poller already had
  (nonmonotonic-poll).
- `skip`: every 5th poll of a key answers from o + 1, skipping the message
  at o (poll-skip).
- `dup-offset`: every 10th send to a key gets the offset of the send
  before it, and overwrites it (inconsistent-offsets).
"""
import json
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "single"
node_id = None
node_ids = []
next_id = 0
waiting = {}  # msg_id -> callback(body)

logs = {}  # key -> {offset: msg} (keys this node owns)
next_offset = {}  # key -> next offset to assign
committed = {}  # key -> committed offset
sends = 0
polls = {}  # key -> polls answered for it


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def rpc(dest, body, then):
    global next_id
    next_id += 1
    body["msg_id"] = next_id
    waiting[next_id] = then
    send(dest, body)


def owner(key):
    if mode != "forward":
        return node_id
    try:
        n = int(key)
    except ValueError:
        n = sum(key.encode())
    return node_ids[n % len(node_ids)]


def append(key, msg):
    """Appends msg to key's log here; returns its offset."""
    global sends
    sends += 1
    log = logs.setdefault(key, {})
    offset = next_offset.get(key, 0)
    if mode == "dup-offset" and offset > 0 and sends % 10 == 0:
        offset -= 1  # reuse the previous offset, overwriting its message
    else:
        next_offset[key] = offset + 1
    if not (mode == "lose" and sends % 10 == 0):
        log[offset] = msg
    return offset


def read(key, start):
    """[offset, msg] pairs of key from start on (this node's log)."""
    n = polls[key] = polls.get(key, 0) + 1
    if mode == "reorder" and start > 0 and n % 3 == 0:
        start -= 1
    if mode == "skip" and n % 5 == 0:
        start += 1
    log = logs.get(key, {})
    return [[o, log[o]] for o in sorted(log) if o >= start]


def local(body):
    """Runs a request on this node's own keys; the reply body."""
    t = body["type"]
    if t == "send":
        return {"type": "send_ok", "offset": append(body["key"], body["msg"])}
    if t == "poll":
        msgs = {}
        for key, start in body["offsets"].items():
            pairs = read(key, start)
            if pairs:
                msgs[key] = pairs
        return {"type": "poll_ok", "msgs": msgs}
    if t == "commit_offsets":
        for key, o in body["offsets"].items():
            committed[key] = max(committed.get(key, 0), o)
        return {"type": "commit_offsets_ok"}
    if t == "list_committed_offsets":
        return {"type": "list_committed_offsets_ok",
                "offsets": {k: committed[k] for k in body["keys"] if k in committed}}
    return {"type": "error", "code": 10, "text": "unsupported: " + t}


def split(body):
    """The request split per owner: {node: sub-request}."""
    t = body["type"]
    if t == "send":
        return {owner(body["key"]): body}
    parts = {}
    if t in ("poll", "commit_offsets"):
        for key, o in body["offsets"].items():
            parts.setdefault(owner(key), {"type": t, "offsets": {}})["offsets"][key] = o
    elif t == "list_committed_offsets":
        for key in body["keys"]:
            parts.setdefault(owner(key), {"type": t, "keys": []})["keys"].append(key)
    return parts


def merge(t, replies):
    if t == "send":
        return replies[0]
    field = {"poll": "msgs", "list_committed_offsets": "offsets"}.get(t)
    out = {"type": t + "_ok"}
    if field:
        out[field] = {}
        for r in replies:
            out[field].update(r.get(field, {}))
    return out


def handle(src, body):
    mid = body["msg_id"]
    req = {k: v for k, v in body.items() if k != "msg_id"}
    parts = split(req)
    if not parts:
        parts = {node_id: req}
    replies = []

    def got(r):
        r = {k: v for k, v in r.items() if k not in ("in_reply_to", "msg_id")}
        if r.get("type") == "error":
            replies.clear()
            parts.clear()
            r["in_reply_to"] = mid
            send(src, r)
            return
        replies.append(r)
        if len(replies) == len(parts):
            out = merge(req["type"], replies)
            out["in_reply_to"] = mid
            send(src, out)

    for node, sub in list(parts.items()):
        if node == node_id:
            got(local(sub))
        else:
            rpc(node, dict(sub, type="peer_" + sub["type"]), got)


def main():
    global node_id, node_ids
    for line in sys.stdin:
        msg = json.loads(line)
        body = msg["body"]
        t = body.get("type")
        if "in_reply_to" in body:
            then = waiting.pop(body["in_reply_to"], None)
            if then:
                then(body)
        elif t == "init":
            node_id = body["node_id"]
            node_ids = body["node_ids"]
            send(msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
        elif t.startswith("peer_"):
            r = local(dict(body, type=t[len("peer_"):]))
            r["in_reply_to"] = body["msg_id"]
            send(msg["src"], r)
        else:
            handle(msg["src"], body)


main()

#!/usr/bin/env python3
"""A txn-list-append node, third-party style (standard library only), in
five modes (the first argument):

- `single` (default): one node; each txn runs whole, in arrival order, on
  one dict of lists. Strict serializable.
- `datomic`: any number of nodes, no state of their own: the whole
  database is one JSON string under the key "root" of Maelstrom's lin-kv
  service. A txn reads it, runs on the copy, and compare-and-sets it back
  (read-only txns skip the write); a lost race is retried twice, then the
  txn aborts with code 30 (txn-conflict). The idea of Maelstrom's
  doc/05-datomic chapter, strict serializable.

Broken on purpose, for the checker to reject:

- `lost-append`: like `single`, but every fourth txn that appends runs on
  the state as it was before the previous such txn and writes its lists
  back whole: the previous txn's acknowledged appends to those keys vanish
  (reads disagree on the order: incompatible-order; lost updates).
- `read-committed`: the first node is the primary for appends; a txn's
  micro-ops on the keys it appends run there atomically, its other reads
  run on the local replica, which applies the primary's committed txns
  whole and in order, 100 ms late. Read committed, not serializable.
- `g1b`: txns run one micro-op per 5 ms tick, interleaved, each append
  visible at once: others read lists ending in an append that its txn
  follows with another (G1b), among much else.
"""
import heapq
import json
import os
import select
import sys
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else "single"
TICK = 0.005
LAG = 0.1

node_id = None
node_ids = []
state = {}  # key (as a string) -> list
stale = {}  # lost-append: the state before the last appending txn
appending = 0
next_msg = 0
callbacks = {}  # msg_id -> function of the reply body
timers = []  # heap of (due, seq, function)
timer_seq = 0
running = []  # g1b: [src, msg_id, txn, next index]
# read-committed
commit_seq = 0
applied_seq = 0
ready = {}  # seq -> appends, once their lag has passed


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def reply(src, msg_id, body):
    body["in_reply_to"] = msg_id
    send(src, body)


def rpc(dest, body, callback):
    global next_msg
    next_msg += 1
    body["msg_id"] = next_msg
    callbacks[next_msg] = callback
    send(dest, body)


def later(delay, fn):
    global timer_seq
    timer_seq += 1
    heapq.heappush(timers, (time.monotonic() + delay, timer_seq, fn))


def step(st, mop):
    """Runs one micro-op on the dict `st`; returns it with a read filled in."""
    f, k, v = mop
    if f == "r":
        cur = st.get(str(k))
        return [f, k, list(cur) if cur is not None else None]
    st.setdefault(str(k), []).append(v)
    return [f, k, v]


def copy(st):
    return {k: list(v) for k, v in st.items()}


def conflict(src, msg_id):
    reply(src, msg_id, {"type": "error", "code": 30, "text": "txn-conflict"})


# --- single and lost-append ------------------------------------------------


def run_local(src, msg_id, txn):
    global stale, state, appending
    writes = any(f == "append" for f, _, _ in txn)
    if MODE == "lost-append" and writes:
        appending += 1
        before = copy(state)
        if appending % 4 == 0:
            work = copy(stale)
            done = [step(work, m) for m in txn]
            for f, k, _ in txn:
                if f == "append":
                    state[str(k)] = work[str(k)]
            stale = before
            reply(src, msg_id, {"type": "txn_ok", "txn": done})
            return
        stale = before
    done = [step(state, m) for m in txn]
    reply(src, msg_id, {"type": "txn_ok", "txn": done})


# --- datomic ---------------------------------------------------------------


def datomic(src, msg_id, txn, tries=0):
    def on_read(body):
        if body["type"] == "read_ok":
            root = body["value"]
            db = json.loads(root)
        elif body.get("code") == 20:
            root, db = None, {}
        else:
            return conflict(src, msg_id)
        done = [step(db, m) for m in txn]
        if not any(f == "append" for f, _, _ in txn):
            return reply(src, msg_id, {"type": "txn_ok", "txn": done})

        def on_cas(body):
            if body["type"] == "cas_ok":
                reply(src, msg_id, {"type": "txn_ok", "txn": done})
            elif body.get("code") in (20, 22) and tries < 2:
                datomic(src, msg_id, txn, tries + 1)
            else:
                conflict(src, msg_id)

        to = json.dumps(db, sort_keys=True)
        rpc("lin-kv", {"type": "cas", "key": "root", "from": root, "to": to,
                       "create_if_not_exists": root is None}, on_cas)

    rpc("lin-kv", {"type": "read", "key": "root"}, on_read)


# --- read-committed ----------------------------------------------------------


def commit(txn, keys):
    """On the primary: the micro-ops on `keys`, atomically; replicated."""
    global commit_seq
    commit_seq += 1
    results = [step(state, m) if str(m[1]) in keys else None for m in txn]
    appends = [[k, v] for f, k, v in txn if f == "append"]
    for p in node_ids[1:]:
        send(p, {"type": "replicate", "seq": commit_seq, "appends": appends})
    return results


def replicated(seq, appends):
    global applied_seq
    ready[seq] = appends
    while applied_seq + 1 in ready:
        applied_seq += 1
        for k, v in ready.pop(applied_seq):
            state.setdefault(str(k), []).append(v)


def read_committed(src, msg_id, txn):
    keys = sorted({str(k) for f, k, _ in txn if f == "append"})
    local = [step(state, m) if m[0] == "r" and str(m[1]) not in keys else None for m in txn]
    if not keys:
        return reply(src, msg_id, {"type": "txn_ok", "txn": local})

    def done(results):
        merged = [r if r is not None else l for r, l in zip(results, local)]
        reply(src, msg_id, {"type": "txn_ok", "txn": merged})

    if node_id == node_ids[0]:
        done(commit(txn, keys))
    else:
        rpc(node_ids[0], {"type": "commit", "txn": txn, "keys": keys},
            lambda body: done(body["results"]))


# --- g1b ---------------------------------------------------------------------


def tick():
    """One micro-op of every running txn; finished ones are answered."""
    for r in list(running):
        src, msg_id, txn, i = r
        if i < len(txn):
            txn[i] = step(state, txn[i])
            r[3] = i + 1
        else:
            running.remove(r)
            reply(src, msg_id, {"type": "txn_ok", "txn": txn})
    if running:
        later(TICK, tick)


# --- dispatch ------------------------------------------------------------------


def handle(msg):
    global node_id, node_ids
    body, src = msg["body"], msg["src"]
    t = body["type"]
    if "in_reply_to" in body and body["in_reply_to"] in callbacks:
        callbacks.pop(body["in_reply_to"])(body)
    elif t == "init":
        node_id = body["node_id"]
        node_ids = body["node_ids"]
        reply(src, body["msg_id"], {"type": "init_ok"})
    elif t == "commit":
        reply(src, body["msg_id"], {"type": "commit_ok",
                                    "results": commit(body["txn"], body["keys"])})
    elif t == "replicate":
        seq, appends = body["seq"], body["appends"]
        later(LAG, lambda: replicated(seq, appends))
    elif t == "txn" and MODE == "datomic":
        datomic(src, body["msg_id"], body["txn"])
    elif t == "txn" and MODE == "read-committed":
        read_committed(src, body["msg_id"], body["txn"])
    elif t == "txn" and MODE == "g1b":
        running.append([src, body["msg_id"], body["txn"], 0])
        if len(running) == 1:
            later(TICK, tick)
    elif t == "txn":
        run_local(src, body["msg_id"], body["txn"])


def main():
    buf = b""
    while True:
        wait = None
        if timers:
            wait = max(0.0, timers[0][0] - time.monotonic())
        ready_in, _, _ = select.select([0], [], [], wait)
        if ready_in:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.strip():
                    handle(json.loads(line))
        while timers and timers[0][0] <= time.monotonic():
            heapq.heappop(timers)[2]()


if __name__ == "__main__":
    main()

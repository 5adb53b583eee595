#!/usr/bin/env python3
"""A txn-rw-register node, third-party style (standard library only), in
five modes (the first argument):

- `single` (default): one node; each txn runs whole, in arrival order, on
  one dict. Serializable (strict serializable: replies follow the apply).
- `totally-available`: every node runs txns whole on its own copy and
  answers at once; the final writes of each committed txn go to every
  other node, which applies them whole on arrival (no acks, no retries).
  Read committed, under partitions too (Gossip Glomers 6b, 6c).

Broken on purpose, for the checker to reject:

- `aborted-read`: like `single`, but every third txn that writes fails
  with code 30 (txn-conflict) after its writes took effect: G1a.
- `intermediate-read`: txns run one micro-op per 5 ms tick, interleaved,
  each write visible at once: others read values a txn later overwrites
  (G1b), and much else.
- `no-isolation`: `intermediate-read` on several nodes, each write also
  sent to the other nodes as it happens: cycles (G1c, G-single, G2).
"""
import json
import os
import select
import sys
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else "single"
STEPWISE = MODE in ("intermediate-read", "no-isolation")
TICK = 0.005

node_id = None
peers = []
store = {}  # key (as a string) -> value
running = []  # stepwise txns: [src, msg_id, txn, next index]
counter = 0


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def reply(src, msg_id, body):
    body["in_reply_to"] = msg_id
    send(src, body)


def replicate(writes):
    for p in peers:
        send(p, {"type": "replicate", "writes": writes})


def step(mop):
    """Runs one micro-op on the store; returns it with a read filled in."""
    f, k, v = mop
    if f == "r":
        return [f, k, store.get(str(k))]
    store[str(k)] = v
    if MODE == "no-isolation":
        replicate([[k, v]])
    return [f, k, v]


def run_whole(src, msg_id, txn):
    global counter
    done = [step(m) for m in txn]
    writes = {}
    for f, k, v in done:
        if f == "w":
            writes[str(k)] = [k, v]
    if MODE == "aborted-read" and writes:
        counter += 1
        if counter % 3 == 0:
            reply(src, msg_id, {"type": "error", "code": 30, "text": "aborted (but not rolled back)"})
            return
    if MODE == "totally-available" and writes:
        replicate(list(writes.values()))
    reply(src, msg_id, {"type": "txn_ok", "txn": done})


def handle(msg):
    global node_id, peers
    body, src = msg["body"], msg["src"]
    t = body["type"]
    if t == "init":
        node_id = body["node_id"]
        peers = [n for n in body["node_ids"] if n != node_id]
        reply(src, body["msg_id"], {"type": "init_ok"})
    elif t == "replicate":
        for k, v in body["writes"]:
            store[str(k)] = v
    elif t == "txn" and STEPWISE:
        running.append([src, body["msg_id"], body["txn"], 0])
    elif t == "txn":
        run_whole(src, body["msg_id"], body["txn"])


def tick():
    """One micro-op of every running txn; finished ones are answered."""
    for r in list(running):
        src, msg_id, txn, i = r
        if i < len(txn):
            txn[i] = step(txn[i])
            r[3] = i + 1
        else:
            running.remove(r)
            reply(src, msg_id, {"type": "txn_ok", "txn": txn})


def main():
    buf = b""
    last = time.monotonic()
    while True:
        wait = None
        if running:
            wait = max(0.0, last + TICK - time.monotonic())
        ready, _, _ = select.select([0], [], [], wait)
        if ready:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.strip():
                    handle(json.loads(line))
        if running and time.monotonic() - last >= TICK:
            last = time.monotonic()
            tick()


if __name__ == "__main__":
    main()

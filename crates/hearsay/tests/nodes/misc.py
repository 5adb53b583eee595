#!/usr/bin/env python3
"""Small nodes for harness edge cases, picked by the first argument:

  echo            a correct echo node
  echo-wrong      echoes something else (the echo checker must fail it)
  exit-early      answers init, then exits with status 3 (a crash)
  silent          never answers init
  garbage         answers init, then prints a non-JSON line to stdout
  service         a correct echo node that also asks seq-kv for a key on
                  every echo (hearsay has no seq-kv yet: it must say so)
  null-read       a broadcast node that answers reads with "messages": null
"""
import json
import sys
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "echo"


def send(src, dest, body):
    sys.stdout.write(json.dumps({"src": src, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    me, t = msg["dest"], body["type"]
    if t == "init":
        if mode == "silent":
            continue
        send(me, msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
        if mode == "exit-early":
            time.sleep(0.5)
            sys.stderr.write("giving up\n")
            sys.exit(3)
        if mode == "garbage":
            print("debug: this line should have gone to stderr")
            sys.stdout.flush()
    elif t == "echo":
        if mode == "service":
            send(me, "seq-kv", {"type": "read", "key": "k", "msg_id": body["msg_id"]})
        echo = body["echo"] if mode != "echo-wrong" else "something else"
        send(me, msg["src"], {"type": "echo_ok", "echo": echo, "in_reply_to": body["msg_id"]})
    elif t == "topology":
        send(me, msg["src"], {"type": "topology_ok", "in_reply_to": body["msg_id"]})
    elif t == "read":
        messages = None if mode == "null-read" else []
        send(me, msg["src"], {"type": "read_ok", "messages": messages, "in_reply_to": body["msg_id"]})
    elif t == "broadcast":
        send(me, msg["src"], {"type": "broadcast_ok", "in_reply_to": body["msg_id"]})

#!/usr/bin/env python3
"""A third-party-style Maelstrom unique-ids node (standard library only).
Modes (first argument):
  correct   ids are "<node>-<counter>": unique without coordination
  dup       ids are a per-node counter: nodes hand out the same ids
"""
import json
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "correct"
node_id, n = None, 0
for line in sys.stdin:
    msg = json.loads(line)
    body, src = msg["body"], msg["src"]
    if body["type"] == "init":
        node_id = body["node_id"]
        reply = {"type": "init_ok"}
    elif body["type"] == "generate":
        n += 1
        reply = {"type": "generate_ok", "id": f"{node_id}-{n}" if mode == "correct" else n}
    else:
        continue
    reply["in_reply_to"] = body["msg_id"]
    sys.stdout.write(json.dumps({"src": node_id, "dest": src, "body": reply}) + "\n")
    sys.stdout.flush()

"""Drives the PyPI `pusher` (Pusher's own server SDK for Python) for
Herald's integration tests (tests/src/pusher_sdk.rs): one JSON command per
line on stdin, one JSON answer per line on stdout.

The client is made from PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET,
PUSHER_HOST and PUSHER_PORT.

Commands:
  {"call": "<method>", "args": [...]}  a method of the client; answers
      {"ok": <result>} or {"error": {"message", "class"}} (the SDK's
      exception, whose message is the server's answer).
  {"skew_clock": <seconds>}  the SDK's clock runs that far off from now on.
  {"webhook": {"headers": {...}, "body": "<text>"}}  checks a webhook as a
      receiver would: {"ok": {"valid", "time_ms", "events"}}.
"""

import json
import os
import sys
import time

import pusher
import pusher.http


class SkewedClock:
    """`time` as the SDK's requests see it, off by `skew` seconds."""

    skew = 0.0

    def __getattr__(self, name):
        return getattr(time, name)

    def time(self):
        return time.time() + self.skew


clock = SkewedClock()
pusher.http.time = clock

client = pusher.Pusher(
    app_id=os.environ["PUSHER_APP_ID"],
    key=os.environ["PUSHER_KEY"],
    secret=os.environ["PUSHER_SECRET"],
    host=os.environ["PUSHER_HOST"],
    port=int(os.environ["PUSHER_PORT"]),
    ssl=False,
    timeout=10,
)


def run(command):
    if "skew_clock" in command:
        clock.skew = float(command["skew_clock"])
        return None
    if "webhook" in command:
        headers = {k.lower(): v for k, v in command["webhook"]["headers"].items()}
        body = client.validate_webhook(
            headers.get("x-pusher-key", ""), headers.get("x-pusher-signature", ""), command["webhook"]["body"]
        )
        if body is None:
            return {"valid": False}
        return {"valid": True, "time_ms": body["time_ms"], "events": body["events"]}
    return getattr(client, command["call"])(*command.get("args", []))


for line in sys.stdin:
    try:
        answer = {"ok": run(json.loads(line))}
    except Exception as e:  # every failure is an answer the test reads
        answer = {"error": {"message": str(e), "class": type(e).__name__}}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()

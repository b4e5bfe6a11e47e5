#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

Seeds are real documents: the `examples` of the JSON Schemas in
proto/schema/, the routes files and tokens the tests use, and the bad
inputs the unit tests refuse. Each file is named by the SHA-1 of its
content, as libFuzzer names the inputs it adds, so running this again
adds nothing twice. Run it after changing a schema or adding a target:

    python3 fuzz/seed.py
"""

import base64
import hashlib
import hmac
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
# The secret of fuzz_targets/jwt.rs.
JWT_SECRET = b"herald-fuzz-only-secret"
FAR_FUTURE = 4102444800  # 2100-01-01


def examples(schema):
    text = (ROOT / "proto" / "schema" / f"{schema}.schema.json").read_text()
    return [json.dumps(example, ensure_ascii=False) for example in json.loads(text)["examples"]]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims, secret=JWT_SECRET, header=None):
    header = header or {"alg": "HS256", "typ": "JWT"}
    message = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return f"{message}.{b64(signature)}"


def client_frame():
    bad = [
        "nope",
        "[1]",
        '{"details":1}',
        '{"action":5}',
        '{"action":""}',
        '{"action":"' + "é" * 129 + '"}',
        '{"action":"a","id":[]}',
        '{"id":"x1"}',
        '{"action":"echo","details":null,"id":1.5e300}',
    ]
    bench = ['{"action":"echo","details":{"t":1700000000000000000},"id":7}', '{"action":"$ping","id":0}']
    # Crashes fuzzing found, kept as seeds (each also has a unit test).
    found = ['{"action":"a","id":' + "7" * 121 + "}"]
    return examples("client-frame") + examples("server-frame") + bad + bench + found


def handler_response():
    bad = [
        '{"detail":1}',
        '{"effects":[{"explode":1}]}',
        '{"error":{"code":"x"}}',
        '{"error":{"code":0,"message":"x"}}',
        '{"error":{"code":5000,"message":"x"}}',
        "[]",
        "<html>",
        '{"effects":[{"publish":{"to":{"conns":["e1.>"]},"action":"x"}}]}',
        '{"claims":{"join":["room:*","lobby",7]},"user":"bob"}',
    ]
    return examples("handler-response") + bad


def control_op():
    bad = ['{"op":"explode"}', '{"op":"join"}', '{"op":"join","group":"g","x":1}', '["leave","g"]']
    return examples("control-op") + bad


def subject_token():
    names = ["alice", "user:42", "a@b", "A_Z-09", "a.b", "", "*", ">", "~x", "é", "a b", "room:42"]
    tokens = ["~YS5i", "~", "~Kg", "~Pg", "~fng", "~w6k", "~YSBi", "~YWxpY2U", "~!!", "~YT"]
    return names + tokens


def conn_id():
    texts = ["a1b2.42", "3f9c2a7e1b0d4c85.17", "e1.5", "a.01", "a.-1", "a.99999999999999999999", "e1.>", "a.1.2", "0"]
    # The target's second reading: 8 bytes of number, then an edge id.
    binary = [(17).to_bytes(8, "little") + b"3f9c2a7e1b0d4c85", (2**64 - 1).to_bytes(8, "little") + b"e-1_"]
    return texts + binary


def routes():
    files = [p.read_text() for p in sorted((ROOT / "services" / "herald" / "tests" / "fixtures").glob("routes*.toml"))]
    tables = [
        '[[routes]]\naction = "chat/*"\nnats = "app.chat"\ntimeout_ms = 2000\n\n'
        '[[routes]]\naction = "account/*"\nhttp = "http://php-app.local/ws-handler.php"\n\n'
        '[[routes]]\naction = "$connect"\nhttp = "https://php-app.local/connect.php"\n\n'
        '[[routes]]\naction = "$default"\nnats = "app.fallback"\n',
        '[[routes]]\naction = "$join"\nnats = "auth.join"\n[[routes]]\naction = "$disconnect"\nnats = "examples.chat"\n',
        '[[routes]]\naction = "a*b"\nnats = "x"\n',
        '[[routes]]\naction = "a"\nnats = "x.>"\n',
        '[[routes]]\naction = "a"\nnats = "x"\nhttp = "http://x"\n',
        '[[routes]]\naction = "a"\nnats = "x"\ntimeout = 5\n',
        "",
    ]
    return files + tables


def jwt():
    claims = {"sub": "alice", "groups": ["a", "b"], "join": ["room:*"], "exp": FAR_FUTURE, "plan": "pro"}
    expired = {"sub": "a", "exp": 1}
    header = json.dumps({"alg": "HS256", "typ": "JWT"})
    # Mode 0: tokens as sent, none of them signed with the target's secret.
    sent = [
        hs256(claims, secret=b"another secret"),
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhIiwiZXhwIjo0MTAyNDQ0ODAwfQ.",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.c2lnbmF0dXJl",
        "a.b.c",
    ]
    # Mode 1: header, a newline, claims; signed by the target.
    signed = [
        f"{header}\n{json.dumps(claims)}",
        f'{{"alg":"none"}}\n{json.dumps(claims)}',
        f'{{"alg":"RS256","typ":"JWT"}}\n{json.dumps(claims)}',
        f"{header}\nnot json",
    ]
    # Mode 2: claims, signed with the standard header by the target.
    claim_sets = [
        claims,
        expired,
        {"sub": "a", "exp": FAR_FUTURE, "groups": "a"},
        {"sub": 7, "exp": FAR_FUTURE},
        {"sub": "a", "exp": FAR_FUTURE, "nbf": FAR_FUTURE, "aud": "x"},
        # Found by fuzzing: a fractional expiry (it had no expiry at all).
        {"sub": "a", "exp": 410242222222.22244, "aud": "x"},
    ]
    return (
        [b"\x00" + t.encode() for t in sent]
        + [b"\x01" + s.encode() for s in signed]
        + [b"\x02" + json.dumps(c).encode() for c in claim_sets]
    )


def pusher_frame():
    # What pusher-js and Laravel Echo send (protocol 7), as the unit tests
    # in proto/src/pusher/frame.rs have them, and the refusals they test.
    member = json.dumps({"user_id": 10, "user_info": {"name": "Mr. Pusher"}})
    sent = [
        '{"event":"pusher:ping","data":{}}',
        '{"event":"pusher:pong","data":{}}',
        '{"event":"pusher:subscribe","data":{"auth":"","channel":"chat"}}',
        '{"event":"pusher:subscribe","data":{"auth":"278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4","channel":"private-App.Models.User.1"}}',
        json.dumps({"event": "pusher:subscribe", "data": {"auth": "k:s", "channel": "presence-room.1", "channel_data": member}}),
        '{"event":"pusher:subscribe","data":{"auth":"k:s","channel":"presence-a","channel_data":"{\\"user_id\\":\\"u\\",\\"user_info\\":1e5}"}}',
        '{"event":"pusher:unsubscribe","data":{"channel":"chat"}}',
        '{"event":"pusher:unsubscribe","data":"{\\"channel\\":\\"chat\\"}"}',
        '{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\\"id\\":\\"1\\",\\"name\\":\\"Ann\\"}"}}',
        '{"event":"client-typing","channel":"private-a","data":{"who": "me"}}',
        '{"event":"client-message","channel":"presence-a","data":"hello"}',
        '{"event":"client-x","channel":"private-a"}',
        '{"event":"pusher:subscribe","data":{"channel":"#server-to-user-42"}}',
    ]
    bad = [
        "[1]",
        "{",
        '{"data":{}}',
        '{"event":"pusher:subscribe"}',
        '{"event":"pusher:subscribe","data":{"auth":"x"}}',
        '{"event":"client-x","data":{}}',
        '{"event":"hello","data":{}}',
        '{"event":"pusher:signin","data":"nope"}',
    ]
    return sent + bad


def pusher_rest():
    # METHOD, path, query and body, one per line: Pusher's published REST
    # vector (pusher-http-php), the calls its SDKs make, and refusals.
    body = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
    signed = (
        "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0"
        "&body_md5=ec365a775a4cd0599faeb73354201b6f"
        "&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
    )
    return [
        f"POST\n/apps/3/events\n{signed}\n{body}",
        "GET\n/apps/3/channels\ninfo=user_count&FILTER_by_prefix=presence-&auth_key=k&auth_version=1.0&auth_timestamp=1000&auth_signature=00\n",
        "GET\n/apps/3/channels/presence-a/users\nauth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0&auth_signature=zz\n",
        'POST\n/apps/3/batch_events\nauth_key=278d425bdf160c739803&auth_version=2.0\n{"batch":[{"name":"e","channel":"c","data":"{}"}]}',
        "POST\n/apps/3/users/42/terminate_connections\nauth_timestamp=soon\n",
        "GET\n/apps/3/channels/chat\ninfo=subscription_count&a%20b=c+d&%41=%FF\n",
    ]


def push_line():
    # Lines as Workerman's push example and the PHP SDK write them, and the
    # refusals the push port's unit tests check.
    return [
        '{"uid":"ann","content":"hi","n":1}',
        '{"uid":42}',
        '{"uid":"a b.c","action":"news","details":[1,2],"extra":true}',
        '{"action":"ping","uid":-7}',
        '{"type":"publish","uid":"123","content":"{\\"a\\":1}"}',
        "",
        "  \t",
        "hello",
        '[{"uid":1}]',
        '"uid"',
        '{"content":"hi"}',
        '{"uid":1.5}',
        '{"uid":""}',
        '{"uid":1,"action":""}',
        '{"uid":1,"action":1}',
        '{"uid":1,"action":"' + "a" * 129 + '"}',
    ]


def settings_file():
    # The first byte picks the command (0 edge, 1 router, 2 dev); then a
    # config file as the settings tests and the docs write them.
    edge = (
        'log = "info,herald=debug"\nlog_format = "json"\njwt_secret = "s3cret"\n'
        "allowed_origins = [\"https://app.example.com\", \"https://admin.example.com\"]\n"
        "max_message_bytes = 65536\nping_interval_ms = 25000\n\n"
        '[nats]\nurl = "nats://10.0.0.5:4222,nats://10.0.0.6:4222"\nname = "edge-1"\n'
    )
    router = (
        'listen = "0.0.0.0:8081"\napi_key = "k"\nroutes_file = "/etc/herald/routes.toml"\n'
        "presence_timeout_ms = 500\n[push_port]\nlisten = \"127.0.0.1:5678\"\nmax_connections = 1024\n"
        '[subject]\nprefix = "herald"\n'
    )
    dev = 'listen = "127.0.0.1:8080"\nallow_anonymous = true\n[rate_limit]\nper_sec = 100\nburst = 200\n'
    # Pusher apps, as the settings tests and docs/migrating write them.
    apps = (
        '[pusher]\napp_id = "1"\nkey = "k1"\nsecret = "s1"\nwebhook_url = "http://127.0.0.1:9/hooks"\n'
        '[[pusher.apps]]\nid = "2"\nkey = "k2"\nsecret = "s2"\ngroup_prefix = "two:"\n'
        'webhook_url = "https://h/"\nwebhook_events = ["member_added", "member_removed"]\n'
        "max_presence_members = 7\nmax_user_info_bytes = 64\nmax_event_data_bytes = 2048\nclient_events = false\n"
        '[[pusher.apps]]\nid = "3"\nkey = "k3"\nsecret = "s3"\n'
    )
    bad_apps = [
        '[[pusher.apps]]\nid = "1"\nkey = "k"\nsecret = "s"\n[[pusher.apps]]\nid = "1"\nkey = "k2"\nsecret = "s"\n',
        '[[pusher.apps]]\nid = "1"\nkey = "k"\nsecret = "s"\nmax_members = 3\n',
        '[[pusher.apps]]\nid = "1"\nkey = "a/b"\nsecret = "s"\nwebhook_events = ["cache_miss"]\n',
        '[[pusher.apps]]\nid = "1"\nkey = "k"\nsecret = ""\nwebhook_url = "hooks.example.com"\n',
        '[pusher]\napps = [{ id = "1", key = "k" }]\n',
    ]
    bad = [
        "nats_ulr = 1\n",
        "max_message_bytes = 10\n",
        "listen = \"nowhere\"\n",
        "nats_url = \"a\"\n[nats]\nurl = \"b\"\n",
        "this is not toml\n",
        'log_format = """\nyaml"""\n',
        "ping_interval_ms = [1, 2]\n",
        "allowed_origins = \"*.example.com\"\n",
        "[[routes]]\naction = \"a\"\n",
        "jwt_secret = { a = 1 }\n",
    ]
    return (
        [b"\x00" + edge.encode(), b"\x01" + router.encode(), b"\x02" + dev.encode()]
        + [bytes([i % 3]) + text.encode() for i, text in enumerate(bad)]
        + [bytes([i]) + apps.encode() for i in range(3)]
        + [bytes([i % 3]) + text.encode() for i, text in enumerate(bad_apps)]
    )


def socketio_frame():
    # What socket.io-client 4 sends over WebSocket (Engine.IO 4, Socket.IO
    # 5), as proto/src/socketio's tests have them, the handshake queries it
    # opens with, and the refusals those tests check.
    sent = [
        "40",
        '40{"token":"eyJhbGciOiJIUzI1NiJ9.e30.x"}',
        "40/admin,",
        '40/admin,{"token":"t"}',
        '40{"token":5}',
        '40{"token":null,"other":[1]}',
        '51-7["x",{"_placeholder":true,"num":0}]',
        '42/admin,3["x"]',
        # Herald frames as backends publish them, made events for
        # Socket.IO receivers.
        '{"action":"msg","details":{"a": 1}}',
        '{"details":2,"action":"m\\"x"}',
        '{"action":"bare"}',
        '{"action":"bare","details":null}',
        '{"action":"connect"}',
        '["msg"]',
        '42["chat",{"t":1}]',
        '421["echo","hi"]',
        '4212["send",1,"two",{"three":3}]',
        '42/,7["a"]',
        '42[ "spaced" , [1, 2] , {"k" : "v"} ]',
        "43[]",
        '435["ok"]',
        "41",
        "2",
        "2probe",
        "3",
        "1",
        "EIO=4&transport=websocket",
        "EIO=4&transport=websocket&t=PaBc12&token=abc",
        "EIO=3&transport=websocket",
        "EIO=4&transport=polling",
    ]
    bad = [
        "",
        "0",
        '0{"sid":"x"}',
        "5",
        "6",
        "x",
        "\u00e9",
        "4",
        "4x",
        '45-["bin",{"_placeholder":true,"num":0}]',
        '44{"message":"no"}',
        '42["connect"]',
        '42["disconnect",1]',
        "42[]",
        "42[1]",
        '42{"a":1}',
        '42["unterminated',
        "4299999999999999999999[\"a\"]",
        "43",
        '40"token"',
        '42/admin,["a"]',
    ]
    return sent + bad


def pusher_cluster():
    # The first byte picks the message (0 query, 1 channels answers, 2
    # members answers, 3 member event, 4 webhook event); the messages as
    # proto/src/pusher/cluster.rs's tests and the edges write them.
    messages = [
        (0, {"channels": {"prefix": "presence-"}}),
        (0, {"channel": {"group": "app2:chat"}}),
        (0, {"members": {"group": "presence-a"}}),
        (0, {"members": {"group": "a", "extra": 1}}),
        (1, [
            {"edge": "e1", "channels": [{"group": "presence-room", "subscriptions": 2, "users": ["1", "2"]},
                                        {"group": "chat", "subscriptions": 1, "since_ms": 1700000000000}]},
            {"edge": "e2", "channels": [{"group": "presence-room", "subscriptions": 3, "users": ["1", "3"]},
                                        {"group": "idle", "subscriptions": 0, "vacated_ms": 1700000000001}]},
        ]),
        (1, []),
        (2, [
            {"edge": "e2", "epoch": 1, "seq": 4, "members": [{"user_id": "1", "user_info": "from e2"}, {"user_id": "3", "user_info": 3}]},
            {"edge": "e1", "epoch": 1, "seq": 9, "members": [{"user_id": "2", "user_info": 2}, {"user_id": "1", "user_info": "from e1"}]},
        ]),
        (2, [{"edge": "e1", "seq": 0, "members": [{"user_id": "7"}]}]),
        (3, {"edge": "e1", "epoch": 2, "seq": 3, "change": {"add": {"user_id": "7", "user_info": {"n": 1}}}}),
        (3, {"edge": "e1", "epoch": 2, "seq": 4, "change": {"remove": {"user_id": "7"}}}),
        (4, {"app_id": "1", "time_ms": 1700000000000, "event": {"name": "channel_occupied", "channel": "chat"}}),
        (4, {"app_id": "1", "time_ms": 1, "event": {"name": "member_added", "channel": "presence-a", "user_id": "7"}}),
        (4, {"app_id": "1", "time_ms": 1, "event": {"name": "client_event", "channel": "private-a",
                                                     "event": "client-x", "data": "{}", "socket_id": "1.2"}}),
    ]
    bad = [(1, '[{"edge":"e1","channels":[{"group":"g","subscriptions":-1}]}]'), (3, '{"edge":"e1"}'), (4, "[]")]
    return [bytes([kind]) + json.dumps(message).encode() for kind, message in messages] + [
        bytes([kind]) + text.encode() for kind, text in bad
    ]


def ws_frame(opcode, payload, fin=True, masked=True, rsv=0, mask=b"\x37\xfa\x21\x3d"):
    """A client's WebSocket frame (RFC 6455 section 5.2), masked unless not."""
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    length = len(payload)
    if length < 126:
        head += bytes([(0x80 if masked else 0) | length])
    elif length < 1 << 16:
        head += bytes([(0x80 if masked else 0) | 126]) + length.to_bytes(2, "big")
    else:
        head += bytes([(0x80 if masked else 0) | 127]) + length.to_bytes(8, "big")
    if not masked:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def websocket_frames():
    # The first byte is the message limit (in 4-byte steps; 255: none).
    text, binary, close, ping, pong, more = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
    ping_action = b'{"action":"$ping","id":"1"}'
    unlimited = bytes([255])
    good = [
        ws_frame(text, ping_action),
        ws_frame(text, ping_action) * 3,
        ws_frame(binary, bytes(range(200))),
        ws_frame(text, "é".encode() * 100),
        ws_frame(text, b"x" * 70_000),
        ws_frame(ping, b"are you there") + ws_frame(pong, b"") + ws_frame(text, ping_action),
        ws_frame(text, b'{"action":', fin=False) + ws_frame(ping, b"p")
        + ws_frame(more, b'"$ping","id":"\xc3', fin=False) + ws_frame(more, b'\xa9"}'),
        ws_frame(close, (1000).to_bytes(2, "big") + b"bye"),
        ws_frame(close, b""),
        ws_frame(close, (4001).to_bytes(2, "big")),
        ws_frame(text, ping_action)[:9],
    ]
    bad = [
        ws_frame(text, ping_action, masked=False),
        ws_frame(text, ping_action, rsv=0x40),
        ws_frame(0x3, b""),
        ws_frame(0xB, b""),
        ws_frame(ping, b"p", fin=False),
        ws_frame(ping, b"p" * 126),
        ws_frame(more, b"a"),
        ws_frame(text, b"a", fin=False) + ws_frame(text, b"b"),
        ws_frame(text, b"\xff\xfe"),
        ws_frame(text, b"\xe2\x82", fin=False) + ws_frame(more, b"\x28"),
        ws_frame(close, b"\x03"),
        ws_frame(close, (1005).to_bytes(2, "big")),
        ws_frame(close, (1000).to_bytes(2, "big") + b"\xff"),
        bytes([0x81, 0xFF]) + (1 << 63).to_bytes(8, "big") + b"\x00" * 4,
    ]
    # Over a limit of 1,020 bytes: in one frame, and in fragments that pass
    # it together; then a frame after the refused one.
    over = [
        bytes([255 - 1]) + ws_frame(text, b"x" * 1100) + ws_frame(text, ping_action),
        bytes([255 - 1]) + ws_frame(binary, b"1" * 600, fin=False) + ws_frame(more, b"2" * 600),
        bytes([0]) + ws_frame(text, b""),
    ]
    return [unlimited + frames for frames in good + bad] + over


TARGETS = {
    "client_frame": client_frame,
    "handler_response": handler_response,
    "control_op": control_op,
    "subject_token": subject_token,
    "conn_id": conn_id,
    "routes": routes,
    "jwt": jwt,
    "pusher_frame": pusher_frame,
    "pusher_rest": pusher_rest,
    "push_line": push_line,
    "settings_file": settings_file,
    "socketio_frame": socketio_frame,
    "pusher_cluster": pusher_cluster,
    "websocket_frames": websocket_frames,
}


def main():
    for target, seeds in TARGETS.items():
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        added = 0
        for seed in seeds():
            data = seed if isinstance(seed, bytes) else seed.encode()
            path = directory / hashlib.sha1(data).hexdigest()
            if not path.exists():
                path.write_bytes(data)
                added += 1
        print(f"{target}: {added} seeds added, {len(list(directory.iterdir()))} in corpus/{target}/")


if __name__ == "__main__":
    main()

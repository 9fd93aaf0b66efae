#!/usr/bin/env python3
"""kebun's replies to the RTMP commands, as a client sees them on the wire.

Each command a publisher or player sends gets the standard reply, on the
right message stream, with the transaction id it came with:
- connect: _result NetConnection.Connect.Success; an unknown application:
  _error NetConnection.Connect.Rejected, then the connection closes;
- releaseStream, FCPublish: _result, the connection stays; createStream:
  _result with a stream id;
- publish: NetStream.Publish.Start; a wrong key: NetStream.Publish.BadName,
  then the connection closes;
- play: NetStream.Play.Reset then NetStream.Play.Start; an unknown name:
  NetStream.Play.StreamNotFound;
- pause: NetStream.Pause.Notify (no media while paused), unpause:
  NetStream.Unpause.Notify (media again, from a keyframe);
- getStreamLength: _result with a number;
- FCUnpublish, deleteStream, closeStream from the publisher:
  NetStream.Unpublish.Success to it, NetStream.Play.UnpublishNotify to the
  player (and NetStream.Play.PublishNotify when the next one starts).
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from rtmpclient import Client  # noqa: E402


def avc_header():
    return bytes([0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0,
                  0x1E, 1, 0, 4, 0x68, 0xCE, 0x3C, 0x80])


def frame(key, n=200):
    return bytes([0x17 if key else 0x27, 1, 0, 0, 0]) + os.urandom(n)


def replies(c, until, timeout=3.0):
    """Read until a command or onStatus code in `until`; return every
    command/status seen as (name or code, level, message stream id, values)."""
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            m = c.read_message(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        if m.type not in (17, 20):
            continue
        v = m.amf()
        name = v[0] if v else None
        level = None
        if name == "onStatus" and len(v) > 3 and isinstance(v[3], dict):
            name, level = v[3].get("code"), v[3].get("level")
        out.append((name, level, m.msid, v))
        if name in until:
            break
    return out


def media_within(c, seconds):
    """Media messages that arrive within `seconds` (commands are kept)."""
    got, kept = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            m = c.read_message(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        if m.type in (8, 9):
            got.append(m)
        elif m.type in (17, 20):
            kept.append(m)
    c.pending = kept + c.pending
    return got


def closed_by_server(c, timeout=3.0):
    c.sock.settimeout(timeout)
    try:
        while True:
            if not c.sock.recv(65536):
                return True
    except socket.timeout:
        return False
    except OSError:
        return True


def codes(rs):
    return [r[0] for r in rs]


def connect_replies(kb):
    c = Client("127.0.0.1", kb.port)
    m, v = c.connect()
    info = v[3] if len(v) > 3 and isinstance(v[3], dict) else {}
    t.check(v[0] == "_result" and v[1] == 1.0 and info.get("code") ==
            "NetConnection.Connect.Success" and info.get("level") == "status",
            "connect: _result NetConnection.Connect.Success with its transaction id",
            (v[0], v[1], info.get("code"), info.get("level")),
            ("_result", 1.0, "NetConnection.Connect.Success", "status"))

    # releaseStream and FCPublish are answered and the connection stays.
    t1 = c.command("releaseStream", None, t.KEY)
    t2 = c.command("FCPublish", None, t.KEY)
    t3 = c.command("createStream", None)
    rs = replies(c, ("never",), timeout=1.0)
    by_txn = {r[3][1]: r for r in rs if r[0] in ("_result", "_error")}
    for txn, what in ((t1, "releaseStream"), (t2, "FCPublish")):
        r = by_txn.get(float(txn))
        t.check(r is not None and r[0] == "_result", "%s: answered with _result" % what,
                r[3] if r else codes(rs), "_result with txn %d" % txn)
    r = by_txn.get(float(t3))
    sid = r[3][3] if r and len(r[3]) > 3 else None
    t.check(r is not None and r[0] == "_result" and isinstance(sid, float) and sid >= 1,
            "createStream: _result with a stream id", r[3] if r else codes(rs), "a number >= 1")
    t.check(not closed_by_server(c, timeout=0.3), "the connection stays open after "
            "releaseStream and FCPublish")
    c.close()

    c = Client("127.0.0.1", kb.port)
    m, v = c.connect(app="nosuchapp")
    info = v[3] if len(v) > 3 and isinstance(v[3], dict) else {}
    t.check(v[0] == "_error" and info.get("code") == "NetConnection.Connect.Rejected" and
            info.get("level") == "error",
            "connect to an unknown application: _error NetConnection.Connect.Rejected",
            (v[0], info.get("code"), info.get("level")),
            ("_error", "NetConnection.Connect.Rejected", "error"))
    t.check(closed_by_server(c), "then kebun closes the connection")
    c.close()


def publisher(kb, key=t.KEY):
    c = Client("127.0.0.1", kb.port)
    c.connect()
    msid = c.create_stream()
    c.command("publish", None, key, "live", msid=msid, txn=0)
    rs = replies(c, ("NetStream.Publish.Start", "NetStream.Publish.BadName"))
    return c, msid, rs


def publish_replies(kb):
    c, msid, rs = publisher(kb, key="wrong-key-000000")
    last = rs[-1] if rs else (None, None, None, None)
    t.check(last[:3] == ("NetStream.Publish.BadName", "error", msid),
            "publish with a wrong key: NetStream.Publish.BadName (level error) on its stream",
            last[:3], ("NetStream.Publish.BadName", "error", msid))
    t.check(closed_by_server(c), "then kebun closes the connection")
    c.close()
    c, msid, rs = publisher(kb)
    last = rs[-1] if rs else (None, None, None, None)
    t.check(last[:3] == ("NetStream.Publish.Start", "status", msid),
            "publish with the key: NetStream.Publish.Start (level status) on its stream",
            last[:3], ("NetStream.Publish.Start", "status", msid))
    return c, msid


def play_replies(kb, pub, pub_msid):
    ts = [0]

    def send(key):
        pub.send(6, 9, ts[0], pub_msid, frame(key))
        ts[0] += 33

    pub.send(6, 9, 0, pub_msid, avc_header())
    for i in range(5):
        send(i == 0)

    c = Client("127.0.0.1", kb.port)
    c.connect()
    msid = c.create_stream()
    c.command("play", None, "demo", -1000.0, msid=msid, txn=0)
    rs = replies(c, ("NetStream.Play.Start", "NetStream.Play.StreamNotFound"))
    status = [(r[0], r[1], r[2]) for r in rs if r[3][0] == "onStatus"]
    t.check(status == [("NetStream.Play.Reset", "status", msid),
                       ("NetStream.Play.Start", "status", msid)],
            "play of a live stream: NetStream.Play.Reset, then NetStream.Play.Start",
            status, [("NetStream.Play.Reset", "status", msid),
                     ("NetStream.Play.Start", "status", msid)])
    got = media_within(c, 1.0)
    t.check(len([m for m in got if m.type == 9]) == 6, "the player gets the header and the "
            "cached GOP", len(got), 6)

    # pause / unpause
    c.command("pause", None, True, 0.0, msid=msid, txn=0)
    rs = replies(c, ("NetStream.Pause.Notify",))
    t.check(rs and rs[-1][:3] == ("NetStream.Pause.Notify", "status", msid),
            "pause: NetStream.Pause.Notify", codes(rs), ["NetStream.Pause.Notify"])
    for i in range(5):
        send(False)
    got = media_within(c, 0.7)
    t.check(not got, "no media while paused", len(got), 0)
    c.command("pause", None, False, 0.0, msid=msid, txn=0)
    rs = replies(c, ("NetStream.Unpause.Notify",))
    t.check(rs and rs[-1][:3] == ("NetStream.Unpause.Notify", "status", msid),
            "unpause: NetStream.Unpause.Notify", codes(rs), ["NetStream.Unpause.Notify"])
    send(True)
    got = [m for m in media_within(c, 1.0) if m.type == 9 and m.payload[1] == 1]
    t.check(got and got[0].payload[0] >> 4 == 1, "media again after unpause, from a keyframe",
            [m.payload[0] for m in got[:3]], "0x17 first")

    # getStreamLength
    txn = c.command("getStreamLength", None, "demo", msid=msid)
    rs = replies(c, ("_result", "_error"))
    last = rs[-1][3] if rs else []
    t.check(last[:2] == ["_result", float(txn)] and len(last) > 3 and
            isinstance(last[3], float), "getStreamLength: _result with a number", last,
            ["_result", float(txn), None, "number"])

    # An unknown name.
    u = Client("127.0.0.1", kb.port)
    u.connect()
    umsid = u.create_stream()
    u.command("play", None, "nosuchstream", -1000.0, msid=umsid, txn=0)
    rs = replies(u, ("NetStream.Play.StreamNotFound", "NetStream.Play.Start"))
    t.check(rs and rs[-1][:3] == ("NetStream.Play.StreamNotFound", "error", umsid),
            "play of an unknown name: NetStream.Play.StreamNotFound (level error)",
            [r[:3] for r in rs], ("NetStream.Play.StreamNotFound", "error", umsid))
    u.close()
    return c, msid


def unpublish_replies(kb, pub, pub_msid, player, play_msid):
    """Each way a publisher ends its publish, with the player watching."""
    for how in ("FCUnpublish", "deleteStream", "closeStream"):
        if pub is None:
            pub, pub_msid, rs = publisher(kb)
            t.require(rs and rs[-1][0] == "NetStream.Publish.Start", "publisher back for " + how,
                      codes(rs), "NetStream.Publish.Start")
            rs = replies(player, ("NetStream.Play.PublishNotify",))
            t.check(rs and rs[-1][:3] == ("NetStream.Play.PublishNotify", "status", play_msid),
                    "the player is told NetStream.Play.PublishNotify", codes(rs),
                    ["NetStream.Play.PublishNotify"])
        mark = kb.mark()
        if how == "FCUnpublish":
            txn = pub.command("FCUnpublish", None, t.KEY)
        elif how == "deleteStream":
            txn = pub.command("deleteStream", None, float(pub_msid))
        else:
            txn = pub.command("closeStream", None, msid=pub_msid, txn=0)
        rs = replies(pub, ("NetStream.Unpublish.Success",))
        status = [r[:3] for r in rs if r[3][0] == "onStatus"]
        t.check(status == [("NetStream.Unpublish.Success", "status", pub_msid)],
                "%s: NetStream.Unpublish.Success to the publisher" % how, status,
                [("NetStream.Unpublish.Success", "status", pub_msid)])
        if how == "FCUnpublish":
            res = [r[3] for r in rs if r[0] == "_result"]
            t.check(res and res[0][1] == float(txn), "FCUnpublish: _result too", codes(rs),
                    "_result, NetStream.Unpublish.Success")
        rs = replies(player, ("NetStream.Play.UnpublishNotify",))
        t.check(rs and rs[-1][:3] == ("NetStream.Play.UnpublishNotify", "status", play_msid),
                "%s: the player is told NetStream.Play.UnpublishNotify" % how, codes(rs),
                ["NetStream.Play.UnpublishNotify"])
        n = kb.wait_count("publish stopped", 1, after=mark, timeout=3)
        t.check(n == 1, "%s: kebun logs the publish stopped" % how, n, 1)
        pub.close()
        pub = None


def main():
    started = time.monotonic()
    # The raw publisher here sends video alone: no silent audio in what the
    # players are checked against.
    kb = t.Kebun(server_extra="grace = 0", stream_extra={"demo": "silent_audio = off"})
    connect_replies(kb)
    pub, pub_msid = publish_replies(kb)
    player, play_msid = play_replies(kb, pub, pub_msid)
    unpublish_replies(kb, pub, pub_msid, player, play_msid)
    player.close()
    kb.stop()
    t.log("took %.0f s" % (time.monotonic() - started))
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())

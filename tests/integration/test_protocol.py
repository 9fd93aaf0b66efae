#!/usr/bin/env python3
"""The RTMP protocol seen from the wire, with a client that shows everything.

Control messages on connect, acknowledgements of the publisher's bytes when
its window is reached, ping, a large peer chunk size, byte-exact fan-out of
the publisher's payloads, extended timestamps, Abort, AMF3 commands, and bad
input of several kinds: each ends only its own connection, with a log line
that says why, while another stream keeps flowing.
"""
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from rtmpclient import Client, amf_encode  # noqa: E402

MAX_MSG = 256 * 1024


def connect_controls(kb):
    c = Client("127.0.0.1", kb.port)
    c.handshake()
    c.command("connect", {"app": "live", "tcUrl": "rtmp://127.0.0.1/live"})
    m, v = c.wait_command(("_result",))
    t.check(c.in_chunk >= 4096, "server announces a chunk size of at least 4096", c.in_chunk,
            ">= 4096")
    t.check(c.window == 2500000, "server announces its window ack size", c.window, 2500000)
    t.check(v[3].get("code") == "NetConnection.Connect.Success", "connect _result carries "
            "NetConnection.Connect.Success", v[3], "Connect.Success")
    # Ping: the server answers with the same timestamp.
    c.send(2, 4, 0, 0, b"\x00\x06" + struct.pack(">I", 123456))
    deadline = time.monotonic() + 3
    pong = None
    while time.monotonic() < deadline and pong is None:
        m = c.read_message(timeout=3)
        if m.type == 4 and m.payload[:2] == b"\x00\x07":
            pong = struct.unpack(">I", m.payload[2:6])[0]
    t.check(pong == 123456, "PingRequest answered with PingResponse", pong, 123456)
    c.close()


def avc_header():
    # A minimal AVCDecoderConfigurationRecord (contents are relayed, not decoded).
    return bytes([0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0,
                  0x1E, 1, 0, 4, 0x68, 0xCE, 0x3C, 0x80])


def publisher(kb, key=t.KEY):
    c = Client("127.0.0.1", kb.port)
    c.connect()
    msid = c.create_stream()
    m, v = c.publish(key, msid)
    t.require(v[3].get("code") == "NetStream.Publish.Start", "raw publisher accepted", v[3],
              "Publish.Start")
    return c, msid


def player(kb, name="demo"):
    c = Client("127.0.0.1", kb.port)
    c.connect()
    msid = c.create_stream()
    m, v = c.play(name, msid)
    t.require(v[3].get("code") == "NetStream.Play.Start", "raw player started", v[3], "Play.Start")
    return c


def media_from(c, n, timeout=5):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        m = c.read_message(timeout=max(0.05, deadline - time.monotonic()))
        if m.type in (8, 9):
            out.append(m)
    return out


def exact_fanout(kb):
    pub, msid = publisher(kb)
    pub.set_chunk_size(60000)
    # The publisher asks for acknowledgements every 50000 bytes.
    pub.send(2, 5, 0, 0, struct.pack(">I", 50000))
    play = player(kb)

    payloads = [avc_header()]
    for i in range(40):
        kind = 0x17 if i % 10 == 0 else 0x27
        body = bytes([kind, 1, 0, 0, 0]) + os.urandom(1000 + (i * 7919) % 120000)
        payloads.append(body)
    # Start just below the extended-timestamp threshold and cross it.
    ts0 = 0xFFFFFF - 200
    sent = 0
    for i, p in enumerate(payloads):
        pub.send(6, 9, ts0 + i * 33, msid, p)
        sent += len(p)
    got = media_from(play, len(payloads))
    same = [a.payload == b for a, b in zip(got, payloads)]
    t.check(len(got) == len(payloads) and all(same),
            "player receives the publisher's %d video payloads byte for byte" % len(payloads),
            (len(got), same.count(False)), (len(payloads), 0))
    ts = [m.ts for m in got]
    t.check(ts == sorted(ts) and ts and ts[-1] - ts[0] == 33 * (len(payloads) - 1),
            "timestamps across the extended-timestamp threshold keep their spacing",
            ts[:3] + ts[-2:], "33 ms apart")
    # Acknowledgements of the publisher's bytes: on time means the last one
    # covers everything but the current window.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and (not pub.acks or pub.acks[-1] < pub.sent - 50000):
        try:
            pub.read_message(timeout=0.2)
        except TimeoutError:
            pass
    last = pub.acks[-1] if pub.acks else 0
    t.check(pub.sent - 50000 <= last <= pub.sent + 4000,
            "kebun acknowledges the publisher's bytes within its 50000-byte window",
            (last, pub.sent), "last ack within 50000 of bytes sent")
    t.check(len(pub.acks) > 10 and all(b > a for a, b in zip(pub.acks, pub.acks[1:])),
            "acknowledged sequence numbers grow", pub.acks[-3:], "increasing")

    # Abort: a message cut off by an Abort is dropped, the next one flows.
    big = bytes([0x27, 1, 0, 0, 0]) + b"\xAA" * 100000
    hdr = bytes([6]) + (1000).to_bytes(3, "big") + len(big).to_bytes(3, "big") + b"\x09" + \
        struct.pack("<I", msid)
    pub.send_raw(hdr + big[:60000])
    pub.send(2, 2, 0, 0, struct.pack(">I", 6))      # Abort csid 6
    marker = bytes([0x27, 1, 0, 0, 0]) + b"after-abort"
    pub.send(6, 9, ts0 + 5000, msid, marker)
    got = media_from(play, 1)
    t.check(got and got[0].payload == marker, "a message after an Abort arrives, the aborted "
            "one does not", got[0].payload[:16] if got else None, marker[:16])

    # An AMF3 command message (type 17) is understood too.
    pub.send(3, 17, 0, 0, b"\x00" + amf_encode("getStreamLength") + amf_encode(9.0) +
             amf_encode(None) + amf_encode("demo"))
    m, v = pub.wait_command(("_result",))
    t.check(v[1] == 9.0, "AMF3 command answered with its transaction id", v[1], 9.0)
    return pub, play


def bad_input(kb, keeper):
    """Each bad peer loses only its own connection; `keeper` keeps playing."""
    mark = kb.mark()
    cases = []

    # 1. A message larger than max_message_size.
    c = Client("127.0.0.1", kb.port)
    c.connect()
    c.send_raw(bytes([6]) + b"\x00\x00\x00" + (MAX_MSG + 1).to_bytes(3, "big") + b"\x09" +
               b"\x01\x00\x00\x00" + b"x" * 100)
    cases.append((c, "message larger than max_message_size"))

    # 2. A format-3 chunk on a chunk stream never seen.
    c = Client("127.0.0.1", kb.port)
    c.handshake()
    c.send_raw(bytes([0xC0 | 9]) + b"garbage" * 10)
    cases.append((c, "malformed RTMP chunk"))

    # 3. Not RTMP at all.
    s = socket.create_connection(("127.0.0.1", kb.port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    cases.append((s, "unsupported RTMP version"))

    # 4. A malformed AMF command.
    c = Client("127.0.0.1", kb.port)
    c.handshake()
    c.send(3, 20, 0, 0, b"\x02\x00\x07connect\x00\x3f\xf0\x00\x00\x00\x00\x00\x00\x03\x00")
    cases.append((c, "malformed AMF0 data"))

    # 5. A Set Chunk Size of 0.
    c = Client("127.0.0.1", kb.port)
    c.handshake()
    c.send(2, 1, 0, 0, struct.pack(">I", 0))
    cases.append((c, "chunk size out of range"))

    for conn, why in cases:
        sock = conn.sock if isinstance(conn, Client) else conn
        sock.settimeout(5)
        closed = False
        try:
            while True:
                if not sock.recv(65536):
                    closed = True
                    break
        except (ConnectionError, socket.timeout, OSError) as e:
            closed = not isinstance(e, socket.timeout)
        t.check(closed, "kebun closes the connection: %s" % why)
        t.check(kb.wait_log(why, after=mark, timeout=3), "log says why: '%s'" % why)
        sock.close()

    # The publisher and player of demo never noticed.
    pub, play = keeper
    pub_msid = 1
    for i in range(5):
        pub.send(6, 9, 0x1000000 + 10000 + i * 33, pub_msid, bytes([0x27, 1, 0, 0, 0]) + b"ok")
    got = media_from(play, 5)
    t.check(len(got) == 5, "the healthy stream kept flowing through the bad peers", len(got), 5)


def timeouts(kb):
    mark = kb.mark()
    # A connection that never handshakes is closed after handshake_timeout.
    s = socket.create_connection(("127.0.0.1", kb.port))
    s.settimeout(6)
    start = time.monotonic()
    try:
        closed = s.recv(10) == b""
    except OSError:
        closed = True
    t.check(closed and time.monotonic() - start < 5,
            "an idle connection is closed after handshake_timeout", time.monotonic() - start,
            "< 5 s")
    s.close()
    t.check(kb.wait_log("handshake_timeout", after=mark), "log names handshake_timeout")

    # A publisher that goes silent is dropped after publish_timeout.
    mark = kb.mark()
    c, _ = publisher(kb, key="silent-key-000001")
    start = time.monotonic()
    c.sock.settimeout(8)
    try:
        while c.sock.recv(65536):
            pass
        closed = True
    except OSError:
        closed = False
    t.check(closed and time.monotonic() - start < 6, "a silent publisher is dropped after "
            "publish_timeout", time.monotonic() - start, "< 6 s")
    t.check(kb.wait_log("publish_timeout", after=mark), "log names publish_timeout")


def chunk_size_reload(kb):
    """chunk_size changed by SIGHUP while a stalled player still holds queued
    messages and a new player joins: it needs a restart, and both players
    keep getting intact messages (their queues share each message's chunked
    bytes, which must never be rebuilt under them)."""
    pub, msid = publisher(kb)
    stalled = player(kb)
    sent = {}

    def burst(n, ts):
        for i in range(n):
            kind = 0x17 if i % 5 == 0 else 0x27
            body = bytes([kind, 1, 0, 0, 0]) + os.urandom(150000)
            sent[body] = ts + i * 33
            pub.send(6, 9, ts + i * 33, msid, body)

    pub.send(6, 9, 0, msid, avc_header())
    burst(40, 33)  # ~6 MB: the stalled player's socket fills, the rest queues
    with open(kb.conf) as f:
        conf = f.read()
    with open(kb.conf, "w") as f:
        f.write(conf.replace("[server]", "[server]\nchunk_size = 8192", 1))
    mark = kb.mark()
    os.kill(kb.proc.pid, signal.SIGHUP)
    t.check(kb.wait_log("chunk_size changed: restart kebun to apply", after=mark, timeout=5),
            "a chunk_size change by SIGHUP says it needs a restart")
    late = player(kb)
    burst(10, 33 * 41)
    for name, c in (("the new player", late), ("the stalled player", stalled)):
        got, bad = 0, 0
        try:
            while True:
                m = c.read_message(timeout=1.5)
                if m.type == 9 and len(m.payload) > 100:
                    got += 1
                    bad += m.payload not in sent
        except (TimeoutError, OSError, ValueError, struct.error) as e:
            if not isinstance(e, TimeoutError):
                bad += 1
                t.log("%s: %r" % (name, e))
        t.check(got > 0 and bad == 0, "%s gets only intact messages after the reload" % name,
                (got, bad), "> 0 intact, 0 damaged")
        c.close()
    pub.close()


def main():
    # The raw publishers here send video alone: silent_audio would add audio
    # (and hold the stream 2 s) where the tests count exactly what was sent.
    kb = t.Kebun(streams={"demo": t.KEY, "silent": "silent-key-000001"},
                 # exact_fanout sends 2.3 MB at once to a player that reads
                 # after: a queue that holds it all (nothing here is slow).
                 server_extra="max_message_size = %d\nhandshake_timeout = 2s\n"
                              "publish_timeout = 3s\nplayer_queue = 8M" % MAX_MSG,
                 stream_extra={"demo": "silent_audio = off", "silent": "silent_audio = off"})
    connect_controls(kb)
    keeper = exact_fanout(kb)
    bad_input(kb, keeper)
    timeouts(kb)
    chunk_size_reload(kb)
    kb.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())

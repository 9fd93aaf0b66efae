"""A small RTMP client for tests that need to see the protocol itself.

Real peers (ffmpeg, rtmpdump, GStreamer) cover interoperability; this client
exists to observe what they hide: the exact onStatus codes, acknowledgements,
chunk sizes, and a player that stays connected through an unpublish. It
speaks the simple handshake, reads every chunk header format, and encodes
AMF0 for the few value types commands use.
"""
import os
import socket
import struct
import time


# --- AMF0 ---------------------------------------------------------------------

class Undefined:
    def __repr__(self):
        return "undefined"


def amf_encode(v):
    if v is None:
        return b"\x05"
    if isinstance(v, Undefined):
        return b"\x06"
    if isinstance(v, bool):
        return b"\x01" + (b"\x01" if v else b"\x00")
    if isinstance(v, (int, float)):
        return b"\x00" + struct.pack(">d", float(v))
    if isinstance(v, str):
        b = v.encode()
        if len(b) > 0xFFFF:
            return b"\x0c" + struct.pack(">I", len(b)) + b
        return b"\x02" + struct.pack(">H", len(b)) + b
    if isinstance(v, dict):
        out = b"\x03"
        for k, x in v.items():
            kb = k.encode()
            out += struct.pack(">H", len(kb)) + kb + amf_encode(x)
        return out + b"\x00\x00\x09"
    if isinstance(v, list):
        return b"\x0a" + struct.pack(">I", len(v)) + b"".join(amf_encode(x) for x in v)
    raise TypeError(type(v))


def _amf_props(b, o):
    d = {}
    while True:
        n = struct.unpack(">H", b[o:o + 2])[0]
        if n == 0 and b[o + 2] == 0x09:
            return d, o + 3
        k = bytes(b[o + 2:o + 2 + n]).decode("utf-8", "replace")
        d[k], o = amf_decode_one(b, o + 2 + n)


def amf_decode_one(b, o):
    t = b[o]
    o += 1
    if t == 0x00:
        return struct.unpack(">d", b[o:o + 8])[0], o + 8
    if t == 0x01:
        return b[o] != 0, o + 1
    if t == 0x02:
        n = struct.unpack(">H", b[o:o + 2])[0]
        return bytes(b[o + 2:o + 2 + n]).decode("utf-8", "replace"), o + 2 + n
    if t == 0x0c:
        n = struct.unpack(">I", b[o:o + 4])[0]
        return bytes(b[o + 4:o + 4 + n]).decode("utf-8", "replace"), o + 4 + n
    if t == 0x03:
        return _amf_props(b, o)
    if t == 0x08:   # ECMA array: a count (not to be trusted), then properties
        return _amf_props(b, o + 4)
    if t == 0x05:
        return None, o
    if t == 0x06:
        return Undefined(), o
    if t == 0x0a:
        n = struct.unpack(">I", b[o:o + 4])[0]
        o += 4
        out = []
        for _ in range(n):
            x, o = amf_decode_one(b, o)
            out.append(x)
        return out, o
    if t == 0x0b:   # date: milliseconds, then a time zone nobody uses
        return struct.unpack(">d", b[o:o + 8])[0], o + 10
    raise ValueError("AMF0 marker %d at %d" % (t, o - 1))


def amf_decode_all(b):
    out, o = [], 0
    while o < len(b):
        v, o = amf_decode_one(b, o)
        out.append(v)
    return out


# --- chunk stream -------------------------------------------------------------

class Message:
    def __init__(self, type_, ts, msid, payload):
        self.type, self.ts, self.msid, self.payload = type_, ts, msid, payload

    def amf(self):
        p = self.payload
        if self.type == 17 and p[:1] == b"\x00":
            p = p[1:]
        return amf_decode_all(p)

    def __repr__(self):
        return "Message(type=%d ts=%d msid=%d len=%d)" % (
            self.type, self.ts, self.msid, len(self.payload))


class Client:
    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()  # received, not yet parsed from self.off on
        self.off = 0
        self.in_chunk = 128
        self.out_chunk = 128
        self.prev = {}      # csid -> [ts, len, type, msid, delta]
        self.partial = {}   # csid -> bytearray of a message still arriving
        self.received = 0
        self.sent = 0       # bytes sent after the handshake
        self.window = 0     # server's Window Ack Size
        self.acks = []      # sequence numbers the server acknowledged
        self.txn = 0
        self.pending = []   # messages read but not yet returned

    # raw IO
    # Reading keeps a cursor into one buffer and appends each message's
    # chunks to one bytearray: slicing bytes on every take copied the rest of
    # the buffer, which at 16 Mbit/s cost the reader more CPU than kebun
    # used, and made a reader that checks real-time delivery lag.
    def _fill(self, n, deadline):
        while len(self.buf) - self.off < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no data from server")
            if self.off >= 65536:
                del self.buf[:self.off]
                self.off = 0
            self.sock.settimeout(left)
            d = self.sock.recv(262144)
            if not d:
                raise ConnectionError("server closed the connection")
            self.received += len(d)
            self.buf += d

    def _take(self, n, deadline):
        self._fill(n, deadline)
        d = bytes(self.buf[self.off:self.off + n])
        self.off += n
        return d

    def handshake(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        c1 = struct.pack(">II", 0, 0) + os.urandom(1528)
        self.sock.sendall(b"\x03" + c1)
        s0 = self._take(1, deadline)
        if s0 != b"\x03":
            raise ValueError("S0 is %r" % s0)
        s1 = self._take(1536, deadline)
        s2 = self._take(1536, deadline)
        self.sock.sendall(s1)
        return s1, s2

    def send_raw(self, data):
        self.sock.sendall(data)
        self.sent += len(data)

    def send(self, csid, type_, ts, msid, payload):
        ext = ts >= 0xFFFFFF
        h = bytes([csid]) + (0xFFFFFF if ext else ts).to_bytes(3, "big")
        h += len(payload).to_bytes(3, "big") + bytes([type_]) + struct.pack("<I", msid)
        if ext:
            h += struct.pack(">I", ts)
        out = bytearray(h)
        for i in range(0, max(len(payload), 1), self.out_chunk):
            if i:
                out += bytes([0xC0 | csid]) + (struct.pack(">I", ts) if ext else b"")
            out += payload[i:i + self.out_chunk]
        self.send_raw(bytes(out))

    def set_chunk_size(self, n):
        self.send(2, 1, 0, 0, struct.pack(">I", n))
        self.out_chunk = n

    def command(self, name, *args, msid=0, txn=None):
        if txn is None:
            self.txn += 1
            txn = self.txn
        self.send(3, 20, 0, msid, b"".join(amf_encode(x) for x in (name, txn) + args))
        return txn

    def read_message(self, timeout=5.0):
        if self.pending:
            return self.pending.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            b0 = self._take(1, deadline)[0]
            fmt, csid = b0 >> 6, b0 & 0x3F
            if csid == 0:
                csid = 64 + self._take(1, deadline)[0]
            elif csid == 1:
                x = self._take(2, deadline)
                csid = 64 + x[0] + x[1] * 256
            st = self.prev.setdefault(csid, [0, 0, 0, 0, 0, False])
            hlen = (11, 7, 3, 0)[fmt]
            h = self._take(hlen, deadline)
            new_msg = csid not in self.partial
            if fmt <= 2:
                field = int.from_bytes(h[0:3], "big")
                if fmt <= 1:
                    st[1] = int.from_bytes(h[3:6], "big")
                    st[2] = h[6]
                if fmt == 0:
                    st[3] = struct.unpack("<I", h[7:11])[0]
                st[5] = field == 0xFFFFFF
                if st[5]:
                    field = struct.unpack(">I", self._take(4, deadline))[0]
                st[4] = field
                st[0] = field if fmt == 0 else (st[0] + field) & 0xFFFFFFFF
            else:
                if st[5]:
                    self._take(4, deadline)  # kebun and ffmpeg repeat it
                if new_msg:
                    st[0] = (st[0] + st[4]) & 0xFFFFFFFF
            data = self.partial.get(csid) or bytearray()
            n = min(self.in_chunk, st[1] - len(data))
            self._fill(n, deadline)
            data += self.buf[self.off:self.off + n]
            self.off += n
            if len(data) < st[1]:
                self.partial[csid] = data
                continue
            self.partial.pop(csid, None)
            m = Message(st[2], st[0], st[3], bytes(data))
            if self._control(m):
                continue
            return m

    def _control(self, m):
        if m.type == 1:
            self.in_chunk = struct.unpack(">I", m.payload[:4])[0]
            return True
        if m.type == 3:
            self.acks.append(struct.unpack(">I", m.payload[:4])[0])
            return True
        if m.type == 5:
            self.window = struct.unpack(">I", m.payload[:4])[0]
            return True
        if m.type == 6:
            return True
        if m.type == 4 and struct.unpack(">H", m.payload[:2])[0] == 6:
            self.send(2, 4, 0, 0, b"\x00\x07" + m.payload[2:6])
            return True
        return False

    def wait_command(self, names, timeout=5.0, keep_other=False):
        """Read until a command or status whose name (or onStatus code) is in
        names; return (message, decoded values)."""
        deadline = time.monotonic() + timeout
        skipped = []
        try:
            while True:
                m = self.read_message(max(0.01, deadline - time.monotonic()))
                if m.type in (17, 18, 20):
                    v = m.amf()
                    key = v[0] if v else None
                    if key == "onStatus" and len(v) > 3 and isinstance(v[3], dict):
                        key = v[3].get("code")
                    if key in names or (v and v[0] in names):
                        return m, v
                if keep_other:
                    skipped.append(m)
        finally:
            self.pending = skipped + self.pending

    def connect(self, app="live", **extra):
        self.handshake()
        obj = {"app": app, "flashVer": "LNX 9,0,124,2", "tcUrl": "rtmp://127.0.0.1/" + app,
               "fpad": False, "capabilities": 15.0, "audioCodecs": 4071.0,
               "videoCodecs": 252.0, "videoFunction": 1.0, "objectEncoding": 0.0}
        obj.update(extra)
        self.command("connect", obj)
        return self.wait_command(("_result", "_error"))

    def create_stream(self):
        t = self.command("createStream", None)
        while True:
            m, v = self.wait_command(("_result", "_error"))
            if v[1] == t:
                return int(v[3])

    def publish(self, key, msid):
        self.command("publish", None, key, "live", msid=msid, txn=0)
        return self.wait_command(("NetStream.Publish.Start", "NetStream.Publish.BadName",
                                  "NetStream.Publish.BadConnection"))

    def play(self, name, msid):
        self.command("play", None, name, -1000.0, msid=msid, txn=0)
        return self.wait_command(("NetStream.Play.Start", "NetStream.Play.StreamNotFound",
                                  "NetStream.Play.Failed"))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

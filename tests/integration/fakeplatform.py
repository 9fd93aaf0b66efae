"""A scripted RTMP server standing in for a streaming platform.

nginx-rtmp is the real peer the push tests use for interoperability; this
one exists to show what nginx-rtmp hides or cannot be made to do: every
command kebun sends and in which order, the connect object, the data and
media messages with their timestamps and arrival times, the SNI name of an
RTMPS connection, a publish answered with NetStream.Publish.BadName, and a
platform that stops reading its socket.

Each FakePlatform listens on its own loopback port and serves each
connection on its own thread; everything it sees is recorded on a Conn.
Only loopback is used (127.0.0.1, or ::1 when asked).
"""
import os
import socket
import ssl
import struct
import threading
import time

# AMF0 is rtmpclient's: one codec for the tests' client and platform.
from rtmpclient import Undefined, amf_decode_all, amf_encode

# --- what a connection saw --------------------------------------------------------

class Media:
    __slots__ = ("type", "ts", "size", "head", "at", "data")

    def __init__(self, type_, ts, size, head, at, data=None):
        self.type, self.ts, self.size, self.head, self.at = type_, ts, size, head, at
        self.data = data            # the whole payload, when the platform keeps them

    @property
    def is_seqhdr(self):
        """AVC or AAC sequence header."""
        return len(self.head) > 1 and self.head[1] == 0 and (
            (self.type == 9 and self.head[0] & 0x0F == 7) or
            (self.type == 8 and self.head[0] >> 4 == 10))

    @property
    def is_key(self):
        return self.type == 9 and len(self.head) > 1 and self.head[0] >> 4 == 1 and \
            self.head[1] == 1

    def __repr__(self):
        kind = "video" if self.type == 9 else "audio"
        flag = " hdr" if self.is_seqhdr else " key" if self.is_key else ""
        return "%s%s@%d" % (kind, flag, self.ts)


class Conn:
    """One connection from kebun, as the platform saw it."""

    def __init__(self, platform, sock, peer):
        self.platform = platform
        self.sock = sock
        self.peer = peer            # (host, port) of kebun's end
        self.opened = time.monotonic()
        self.closed = None          # monotonic time the connection ended
        self.close_reason = ""
        self.sni = None             # server name kebun asked for (RTMPS)
        self.tls_error = None       # the TLS handshake failed with this
        self.connect_obj = None     # the connect command's object
        self.commands = []          # [(name, args, msid)] commands in arrival order
        self.events = []            # [("command"|"data"|"media", name or Media)] in order
        self.media = []             # [Media]
        self.data = []              # [[values]] data messages (onMetaData, @setDataFrame)
        self.publish_name = None
        self.publishing = False     # Publish.Start sent
        self.stalled = False        # stopped reading on purpose
        self.bytes_in = 0
        self.out_chunk = 128
        self.lock = threading.Lock()

    def names(self):
        with self.lock:
            return [c[0] for c in self.commands]

    def media_count(self):
        with self.lock:
            return len(self.media)

    def snapshot(self):
        with self.lock:
            return list(self.events), list(self.media)

    # -- writing --
    def send(self, csid, type_, ts, msid, payload):
        h = bytes([csid]) + min(ts, 0xFFFFFF).to_bytes(3, "big")
        h += len(payload).to_bytes(3, "big") + bytes([type_]) + struct.pack("<I", msid)
        ext = struct.pack(">I", ts) if ts >= 0xFFFFFF else b""
        out = bytearray(h + ext)
        for i in range(0, max(len(payload), 1), self.out_chunk):
            if i:
                out += bytes([0xC0 | csid]) + ext
            out += payload[i:i + self.out_chunk]
        self.sock.sendall(bytes(out))

    def command(self, msid, *values):
        self.send(3 if msid == 0 else 5, 20, 0, msid, b"".join(amf_encode(v) for v in values))

    def status(self, msid, level, code, desc):
        self.command(msid, "onStatus", 0, None,
                     {"level": level, "code": code, "description": desc})


class FakePlatform:
    """An RTMP platform on 127.0.0.1:port.

    badname:     answer every publish with onStatus level "error",
                 NetStream.Publish.BadName (and leave the hang-up to kebun).
    tls:         {"cert": PEM, "key": PEM}: RTMPS; the SNI name is recorded.
    stall_after: stop reading a connection once it has delivered this many
                 media messages, until resume() (a platform that stopped
                 taking data). rcvbuf keeps the kernel from hiding it.
    read_rate:   read at most this many bytes a second once publishing (a
                 platform behind a link slower than the stream).
    caps:        properties added to the connect _result's first object (an
                 Enhanced RTMP platform's fourCcList, FourCcInfoMaps, capsEx).
    keep_payloads: keep every media message's whole payload (Media.data).
    """

    def __init__(self, name, badname=False, tls=None, stall_after=None, rcvbuf=None,
                 bind="127.0.0.1", read_rate=None, caps=None, keep_payloads=False):
        self.name = name
        self.caps = caps or {}
        self.keep_payloads = keep_payloads
        self.read_rate = read_rate
        self.badname = badname
        self.stall_after = stall_after
        self.conns = []
        self.errors = []            # protocol errors the platform hit (a test bug or kebun's)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.resumed = threading.Event()
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(tls["cert"], tls["key"])
            self.ctx.sni_callback = self._on_sni
        self._sni = {}
        self.lsock = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            # Set before listen so accepted sockets get it (and a window
            # scale to match).
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.lsock.bind((bind, 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept_loop, name="fake-" + name,
                                       daemon=True)
        self.thread.start()

    def url(self, app, key, host="127.0.0.1"):
        return "%s://%s:%d/%s/%s" % ("rtmps" if self.ctx else "rtmp", host, self.port, app, key)

    def connections(self):
        with self.lock:
            return list(self.conns)

    def live(self):
        """Connections that were told Publish.Start."""
        return [c for c in self.connections() if c.publishing]

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.05)
        return bool(pred())

    def resume(self):
        self.resumed.set()

    def stop(self):
        self.stopping.set()
        self.resumed.set()
        self.thread.join(5)
        for c in self.connections():
            try:
                c.sock.close()
            except OSError:
                pass
        self.lsock.close()

    # -- serving --
    def _on_sni(self, sslobj, server_name, ctx):
        self._sni[id(sslobj)] = server_name

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                s, peer = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn = Conn(self, s, peer)
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="fake-%s-%d" % (self.name, peer[1])).start()

    def _serve(self, conn):
        try:
            self._session(conn)
            conn.close_reason = "peer closed"
        except (ConnectionError, OSError) as e:
            conn.close_reason = "%s: %s" % (type(e).__name__, e)
        except Exception as e:  # a parse error: the test reports it
            conn.close_reason = "%s: %s" % (type(e).__name__, e)
            with self.lock:
                self.errors.append(conn.close_reason)
        finally:
            conn.closed = time.monotonic()
            try:
                conn.sock.close()
            except OSError:
                pass

    def _session(self, conn):
        sock = conn.sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ctx:
            sock.settimeout(10)
            try:
                sock = self.ctx.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as e:
                conn.tls_error = str(e)
                raise ConnectionError("TLS handshake failed: %s" % e)
            conn.sni = self._sni.pop(id(sock), None)
            conn.sock = sock
        sock.settimeout(0.2)
        rd = Reader(conn, self)
        # Simple handshake: S1 with a zero version, S2 echoing C1.
        c0c1 = rd.take(1537, 10)
        if c0c1[0] != 3:
            raise ValueError("C0 is %d" % c0c1[0])
        sock.sendall(b"\x03" + struct.pack(">II", 0, 0) + os.urandom(1528) + bytes(c0c1[1:]))
        rd.take(1536, 10)                       # C2
        rd.handshaken = True
        while not self.stopping.is_set():
            m = rd.message()
            if m is None:
                return
            self._on_message(conn, rd, *m)

    def _on_message(self, conn, rd, type_, ts, msid, payload):
        now = time.monotonic()
        if type_ in (8, 9):
            md = Media(type_, ts, len(payload), bytes(payload[:2]), now,
                       bytes(payload) if self.keep_payloads else None)
            with conn.lock:
                conn.media.append(md)
                conn.events.append(("media", md))
            return
        if type_ in (15, 18):
            vals = amf_decode_all(payload[1:] if type_ == 15 else payload)
            with conn.lock:
                conn.data.append(vals)
                conn.events.append(("data", vals[0] if vals else None))
            return
        if type_ not in (17, 20):
            return
        vals = amf_decode_all(payload[1:] if type_ == 17 else payload)
        name = vals[0] if vals else None
        txn = vals[1] if len(vals) > 1 else 0
        with conn.lock:
            conn.commands.append((name, vals[1:], msid))
            conn.events.append(("command", name))
        if name == "connect":
            conn.connect_obj = vals[2] if len(vals) > 2 and isinstance(vals[2], dict) else {}
            conn.send(2, 5, 0, 0, struct.pack(">I", 2500000))        # Window Ack Size
            conn.send(2, 6, 0, 0, struct.pack(">IB", 2500000, 2))    # Set Peer Bandwidth
            conn.send(2, 1, 0, 0, struct.pack(">I", 4096))           # Set Chunk Size
            conn.out_chunk = 4096
            props = {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0}
            props.update(self.caps)
            conn.command(0, "_result", txn, props,
                         {"level": "status", "code": "NetConnection.Connect.Success",
                          "description": "Connection succeeded.", "objectEncoding": 0.0})
        elif name in ("releaseStream", "FCPublish"):
            if txn:
                conn.command(0, "_result", txn, None, Undefined())
        elif name == "createStream":
            conn.command(0, "_result", txn, None, 1.0)
        elif name == "publish":
            conn.publish_name = vals[3] if len(vals) > 3 else None
            if self.badname:
                conn.status(msid, "error", "NetStream.Publish.BadName",
                            "Stream key is not valid.")
            else:
                conn.send(2, 4, 0, 0, struct.pack(">HI", 0, msid))   # Stream Begin
                conn.status(msid, "status", "NetStream.Publish.Start",
                            "Publishing %s." % conn.publish_name)
                conn.publishing = True
        elif name == "FCUnpublish":
            if txn:
                conn.command(0, "_result", txn, None, Undefined())


class Reader:
    """Chunk stream parser over a socket, with acknowledgements and the
    platform's stall."""

    def __init__(self, conn, platform):
        self.conn, self.platform = conn, platform
        self.buf = bytearray()
        self.off = 0
        self.in_chunk = 128
        self.prev = {}      # csid -> [ts, len, type, msid, delta, ext]
        self.partial = {}   # csid -> bytearray
        self.window = 0
        self.acked = 0
        self.handshaken = False
        self.started = self.base = None  # read_rate's clock

    def _maybe_stall(self):
        p = self.platform
        if p.stall_after is None or p.resumed.is_set() or not self.conn.publishing:
            return
        if self.conn.media_count() < p.stall_after:
            return
        self.conn.stalled = True
        while not p.resumed.wait(0.2):
            pass
        self.conn.stalled = False

    def _throttle(self):
        rate = self.platform.read_rate
        if not rate or not self.conn.publishing:
            return
        if self.started is None:
            self.started, self.base = time.monotonic(), self.conn.bytes_in
        ahead = (self.conn.bytes_in - self.base) / rate - (time.monotonic() - self.started)
        if ahead > 0:
            time.sleep(ahead)

    def _fill(self, n, timeout):
        deadline = time.monotonic() + timeout
        while len(self.buf) - self.off < n:
            if self.platform.stopping.is_set():
                raise ConnectionError("platform stopping")
            if self.handshaken:
                self._maybe_stall()
                self._throttle()
            if self.off > 65536:
                del self.buf[:self.off]
                self.off = 0
            try:
                d = self.conn.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                if time.monotonic() > deadline:
                    raise TimeoutError("peer sent nothing for %.0f s" % timeout)
                continue
            if not d:
                raise ConnectionError("closed by kebun")
            self.buf += d
            self.conn.bytes_in += len(d)
            deadline = time.monotonic() + timeout
            if self.window and self.conn.bytes_in - self.acked >= self.window:
                self.acked = self.conn.bytes_in
                self.conn.send(2, 3, 0, 0, struct.pack(">I", self.acked & 0xFFFFFFFF))

    def take(self, n, timeout=120):
        self._fill(n, timeout)
        d = self.buf[self.off:self.off + n]
        self.off += n
        return d

    def message(self):
        """(type, timestamp, stream id, payload) of the next non-control
        message; control messages are handled here."""
        while True:
            b0 = self.take(1)[0]
            fmt, csid = b0 >> 6, b0 & 0x3F
            if csid == 0:
                csid = 64 + self.take(1)[0]
            elif csid == 1:
                x = self.take(2)
                csid = 64 + x[0] + x[1] * 256
            st = self.prev.get(csid)
            if st is None:
                if fmt != 0:
                    raise ValueError("chunk fmt %d opens chunk stream %d" % (fmt, csid))
                st = self.prev[csid] = [0, 0, 0, 0, 0, False]
            h = self.take((11, 7, 3, 0)[fmt])
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
                    field = struct.unpack(">I", self.take(4))[0]
                st[4] = field
                st[0] = field if fmt == 0 else (st[0] + field) & 0xFFFFFFFF
            else:
                if st[5]:
                    self.take(4)        # the extended timestamp, repeated
                if new_msg:
                    st[0] = (st[0] + st[4]) & 0xFFFFFFFF
            data = self.partial.get(csid, bytearray())
            data += self.take(min(self.in_chunk, st[1] - len(data)))
            if len(data) < st[1]:
                self.partial[csid] = data
                continue
            self.partial.pop(csid, None)
            type_, payload = st[2], bytes(data)
            if type_ == 1:
                self.in_chunk = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
                continue
            if type_ == 2:
                self.partial.pop(struct.unpack(">I", payload[:4])[0], None)
                continue
            if type_ == 5:
                self.window = struct.unpack(">I", payload[:4])[0]
                continue
            if type_ in (3, 4, 6):
                continue
            return type_, st[0], st[3], payload

#!/usr/bin/env python3
"""Write the hand-made seeds of tests/fuzz/corpus/rtmp/ (the hand-* files).

Each seed is what fuzz_rtmp.c expects: one byte that chooses how the input
is cut into reads, then a client's bytes: a handshake (C0, C1, C2) and
chunks. The seeds aim at the corners of the chunk stream and of the message
decoders that real ffmpeg and rtmpdump traffic (the cap-* files, recorded
with capture.py) does not reach: digest C1 in either block, extended
timestamps in both format-3 styles, every header format, Set Chunk Size and
Abort, messages past 4 KiB, aggregate messages, E-RTMP tags, odd AMF.

    python3 tests/fuzz/gen_seeds.py tests/fuzz/corpus/rtmp
"""
import hashlib
import hmac
import os
import struct
import sys

HS = 1536
CLIENT_KEY = b'Genuine Adobe Flash Player 001'


def handshake(scheme=None):
    """C0 + C1 + C2. Without a scheme C1 has a zero version (simple
    handshake); with scheme 'A' or 'B' it carries a client digest in the
    first or the second 764-byte block, as ffmpeg and Flash do."""
    c1 = bytearray(struct.pack('>II', 0, 0) + bytes((i * 7 + 3) & 0xff for i in range(HS - 8)))
    if scheme:
        c1[4:8] = bytes([9, 0, 124, 2])
        base = 8 if scheme == 'A' else 772
        pos = sum(c1[base:base + 4]) % 728 + base + 4
        msg = bytes(c1[:pos]) + bytes(c1[pos + 32:])
        c1[pos:pos + 32] = hmac.new(CLIENT_KEY, msg, hashlib.sha256).digest()
    c2 = bytes((i * 13 + 5) & 0xff for i in range(HS))
    return b'\x03' + bytes(c1) + c2


def basic(fmt, csid):
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1, (csid - 64) & 0xff, (csid - 64) >> 8])


def chunks(csid, mtype, ts, payload, msid=1, chunk=128, fmt=0, ext_repeat=True, delta=None):
    """One message as a format-0/1/2/3 chunk and format-3 continuations.
    `delta` is the timestamp field of format 1/2 headers; for a format-3
    start it is the extended field the chunk stream carries, if any."""
    field = ts if fmt == 0 else (delta or 0)
    ext = field >= 0xFFFFFF
    h = basic(fmt, csid)
    t = struct.pack('>I', 0xFFFFFF if ext else field)[1:]
    if fmt == 0:
        h += t + struct.pack('>I', len(payload))[1:] + bytes([mtype]) + struct.pack('<I', msid)
    elif fmt == 1:
        h += t + struct.pack('>I', len(payload))[1:] + bytes([mtype])
    elif fmt == 2:
        h += t
    if ext and (fmt < 3 or ext_repeat):
        h += struct.pack('>I', field)
    out = h + payload[:chunk]
    for off in range(chunk, len(payload), chunk):
        out += basic(3, csid)
        if ext and ext_repeat:
            out += struct.pack('>I', field)
        out += payload[off:off + chunk]
    return out


def control(mtype, body):
    return chunks(2, mtype, 0, body, msid=0)


def set_chunk_size(n):
    return control(1, struct.pack('>I', n))


def user_control(event, *values):
    return control(4, struct.pack('>H', event) + b''.join(struct.pack('>I', v) for v in values))


# AMF0 writers.
def num(v):
    return b'\x00' + struct.pack('>d', v)


def string(s):
    s = s.encode() if isinstance(s, str) else s
    return b'\x02' + struct.pack('>H', len(s)) + s


def boolean(v):
    return b'\x01' + bytes([1 if v else 0])


NULL = b'\x05'


def prop(name, value):
    return struct.pack('>H', len(name)) + name.encode() + value


def obj(*props):
    return b'\x03' + b''.join(props) + b'\x00\x00\x09'


def ecma(*props, end=True):
    tail = b'\x00\x00\x09' if end else b''
    return b'\x08' + struct.pack('>I', len(props)) + b''.join(props) + tail


def command(name, txn, *args):
    return string(name) + num(txn) + b''.join(args)


CONNECT = command('connect', 1, obj(prop('app', string('live')),
                                    prop('flashVer', string('FMLE/3.0 (compatible; fuzz)')),
                                    prop('tcUrl', string('rtmp://127.0.0.1/live')),
                                    prop('objectEncoding', num(0))))
PUBLISH = command('publish', 5, NULL, string('demo-key-change-me'), string('live'))
PLAY = command('play', 4, NULL, string('demo'), num(-2000))
METADATA = string('@setDataFrame') + string('onMetaData') + ecma(
    prop('duration', num(0)), prop('width', num(160)), prop('height', num(120)),
    prop('videocodecid', num(7)), prop('audiocodecid', num(10)),
    prop('encoder', string('Lavf59.27.100')))

AVC_SEQ = bytes([0x17, 0, 0, 0, 0, 1, 0xf4, 0, 0x0a, 0xff, 0xe1, 0, 4, 0x67, 0xf4, 0, 0x0a,
                 1, 0, 4, 0x68, 0xce, 0x38, 0x80])
AVC_KEY = bytes([0x17, 1, 0, 0, 0x42, 0, 0, 0, 4, 0x65, 0x88, 0x84, 0x00]) + bytes(300)
AVC_INTER_NEG_CTS = bytes([0x27, 1, 0xff, 0xff, 0xf6, 0, 0, 0, 2, 0x41, 0x9a])
AAC_SEQ = bytes([0xaf, 0, 0x12, 0x10])
AAC_RAW = bytes([0xaf, 1]) + bytes(range(40))


def publish_prologue(chunk=None):
    out = chunks(3, 20, 0, CONNECT, msid=0)
    if chunk:
        out += set_chunk_size(chunk)
    out += chunks(3, 20, 0, command('createStream', 4, NULL), msid=0)
    out += chunks(8, 20, 0, PUBLISH, msid=1, chunk=chunk or 128)
    return out


def seeds():
    hs = handshake()
    s = {}

    s['hs-only'] = hs
    s['hs-digest-a'] = handshake('A') + chunks(3, 20, 0, CONNECT, msid=0)
    s['hs-digest-b'] = handshake('B') + chunks(3, 20, 0, CONNECT, msid=0)
    s['hs-truncated-c1'] = hs[:700]
    s['hs-version6'] = b'\x06' + hs[1:1 + HS]
    s['hs-then-garbage'] = hs + bytes(range(256))

    # A publisher as ffmpeg behaves, in one handmade go.
    s['publish-basic'] = (hs + publish_prologue(4096)
                          + chunks(4, 18, 0, METADATA, chunk=4096)
                          + chunks(6, 9, 0, AVC_SEQ, chunk=4096)
                          + chunks(4, 8, 0, AAC_SEQ, chunk=4096)
                          + chunks(6, 9, 40, AVC_KEY, chunk=4096)
                          + chunks(4, 8, 0, AAC_RAW, fmt=2, delta=23, chunk=4096)
                          + chunks(6, 9, 0, AVC_INTER_NEG_CTS, fmt=1, delta=33, chunk=4096))
    s['play-basic'] = (hs + chunks(3, 20, 0, CONNECT, msid=0)
                       + control(5, struct.pack('>I', 2500000))
                       + chunks(3, 20, 0, command('createStream', 2, NULL), msid=0)
                       + chunks(8, 20, 0, PLAY, msid=1)
                       + user_control(3, 1, 3000)
                       + chunks(3, 20, 0, command('pause', 6, NULL, boolean(True), num(0)), msid=1)
                       + chunks(3, 20, 0, command('deleteStream', 7, NULL, num(1)), msid=0))

    # Extended timestamps: format-3 chunks repeat them (ffmpeg, nginx)...
    big = bytes((i * 31) & 0xff for i in range(400))
    s['ext-ts-repeated'] = (hs + publish_prologue()
                            + chunks(6, 9, 0x01000000, AVC_KEY)
                            + chunks(6, 9, 0, AVC_KEY, fmt=3, delta=0x01000000)  # same delta
                            + chunks(4, 8, 0xFFFFFF, big))
    # ... or leave them out (the other style seen in the wild).
    s['ext-ts-absent'] = (hs + publish_prologue()
                          + chunks(6, 9, 0x01000000, AVC_KEY, ext_repeat=False)
                          + chunks(4, 8, 0x7FFFFFFF, big, ext_repeat=False))
    # Extended delta in format 1 and 2 headers.
    s['ext-ts-delta'] = (hs + publish_prologue()
                         + chunks(6, 9, 100, AVC_SEQ)
                         + chunks(6, 9, 0, AVC_KEY, fmt=1, delta=0x02000000)
                         + chunks(6, 9, 0, AVC_INTER_NEG_CTS, fmt=2, delta=0x01000000)
                         + chunks(6, 9, 0, AVC_INTER_NEG_CTS, fmt=3))

    # Header formats: 1 on a fresh chunk stream, 2 and 3 starting messages,
    # chunk streams interleaved mid-message, 2- and 3-byte basic headers.
    a = chunks(4, 8, 10, big)
    v = chunks(6, 9, 10, big)
    inter = b''
    for i in range(4):
        inter += a[i * 129:(i + 1) * 129] + v[i * 129:(i + 1) * 129]
    inter += a[4 * 129:] + v[4 * 129:]
    s['interleaved'] = hs + publish_prologue() + inter
    s['fmt1-fresh'] = hs + chunks(5, 18, 0, METADATA, fmt=1)
    s['fmt2-fresh'] = hs + basic(2, 5) + b'\x00\x00\x10' + b'x' * 16
    s['fmt3-fresh'] = hs + basic(3, 9) + b'x' * 16
    s['fmt0-mid-message'] = hs + chunks(6, 9, 0, big)[:12 + 128] + chunks(6, 9, 0, AVC_SEQ)
    s['csid-2byte'] = hs + chunks(64, 20, 0, CONNECT, msid=0) + chunks(319, 8, 5, AAC_RAW)
    s['csid-3byte'] = hs + chunks(320, 20, 0, CONNECT, msid=0) + chunks(65599, 9, 5, AVC_SEQ)
    s['too-many-csids'] = hs + b''.join(chunks(2 + i, 8, i, AAC_SEQ) for i in range(66))
    s['zero-length'] = (hs + chunks(5, 18, 0, b'') + chunks(5, 18, 0, b'', fmt=3)
                        + chunks(3, 20, 0, b''))
    # Messages past the first 4 KiB buffer: one whole (two 4 KiB chunks on
    # the wire), one announced at the 1 MiB bound and cut short.
    s['large-message'] = (hs + set_chunk_size(4096)
                          + chunks(6, 9, 0x01000000, AVC_KEY[:13] + bytes(4500 - 13), chunk=4096))
    s['large-message-cut'] = (hs + set_chunk_size(4096) + basic(0, 6) + b'\x00\x00\x07'
                              + b'\x10\x00\x00' + b'\x09' + b'\x01\x00\x00\x00' + bytes(4096)
                              + basic(3, 6) + bytes(900))
    s['too-big'] = (hs + basic(0, 6) + b'\x00\x00\x00' + b'\x20\x00\x00' + b'\x09'
                    + b'\x01\x00\x00\x00')

    # Set Chunk Size: tiny, large, out of range; Abort mid-message.
    s['chunk-size-1'] = hs + set_chunk_size(1) + chunks(3, 20, 0, CONNECT, msid=0, chunk=1)
    s['chunk-size-max'] = (hs + set_chunk_size(0x7FFFFFFF)
                           + chunks(6, 9, 0, big, chunk=0x7FFFFFFF))
    s['chunk-size-zero'] = hs + set_chunk_size(0)
    s['chunk-size-topbit'] = hs + set_chunk_size(0x80000000)
    s['chunk-size-short'] = hs + control(1, b'\x00\x10')
    s['abort'] = (hs + chunks(6, 9, 0, big)[:12 + 128] + control(2, struct.pack('>I', 6))
                  + chunks(6, 9, 0, AVC_SEQ, fmt=3) + control(2, struct.pack('>I', 77)))

    # Housekeeping: window, peer bandwidth, ack, pings, stream events.
    s['control'] = (hs + control(5, struct.pack('>I', 1))
                    + control(6, struct.pack('>IB', 5000000, 2))
                    + control(3, struct.pack('>I', 3073)) + user_control(6, 12345)
                    + user_control(7, 999) + user_control(0, 1) + user_control(3, 1, 100)
                    + user_control(31) + chunks(3, 20, 0, CONNECT, msid=0)
                    + control(6, b'\x00'))  # too short: ends the connection

    # Aggregate: FLV tags with back-pointers, the last one cut short.
    def tag(t, ts, body):
        return (bytes([t]) + struct.pack('>I', len(body))[1:] + struct.pack('>I', ts)[1:]
                + bytes([ts >> 24]) + b'\x00\x00\x00' + body + struct.pack('>I', 11 + len(body)))
    agg = tag(9, 1000, AVC_KEY[:40]) + tag(8, 1010, AAC_RAW) + tag(18, 1000, METADATA)
    s['aggregate'] = (hs + publish_prologue() + chunks(4, 22, 1000, agg)
                      + chunks(4, 22, 2000, tag(9, 0x01000000, AVC_SEQ)[:-6]))

    # Enhanced RTMP tags and legacy codecs.
    def ex_video(frame, pkt, fourcc, body=b''):
        return bytes([0x80 | frame << 4 | pkt]) + fourcc + body
    erotmp = [
        ex_video(1, 0, b'hvc1', bytes(20)), ex_video(1, 1, b'hvc1', b'\xff\xff\x00' + bytes(10)),
        ex_video(2, 3, b'av01', bytes(10)), ex_video(1, 0, b'av01', bytes(4)),
        ex_video(1, 1, b'vp09', bytes(4)), ex_video(1, 6, b'avc1', bytes(12)),
        ex_video(5, 4, b'hvc1', METADATA), ex_video(1, 2, b'vvc1'), ex_video(1, 5, b'xxxx', b'!'),
        ex_video(1, 1, b'avc1', b'\x7f\xff\xff'),
        bytes([0x1c, 0, 0, 0, 0]) + bytes(8), bytes([0x1c, 1, 0x80, 0, 0]), bytes([0x1c, 2]),
        bytes([0x12]) + bytes(8), bytes([0x22]), b'\x17',
    ]
    audio = [
        bytes([0x90]) + b'Opus' + bytes(19), bytes([0x91]) + b'fLaC' + bytes(4),
        bytes([0x94]) + b'mp4a', bytes([0x92]) + b'ac-3', bytes([0x91]) + b'ec-3' + b'\x01',
        bytes([0x91]) + b'.mp3', b'\x2f' + bytes(30), b'\xaf', b'\xaf\x00', b'\x90Op',
    ]
    body = b''
    for i, t in enumerate(erotmp):
        body += chunks(6, 9, 40 * i, t)
    for i, t in enumerate(audio):
        body += chunks(4, 8, 20 * i, t)
    s['eRTMP'] = hs + publish_prologue() + body

    # AMF: every marker, nesting limits, AMF3 command wrapper, broken data.
    every = (num(1.5) + boolean(False) + string('s') + obj(prop('o', NULL)) + b'\x06'
             + b'\x07\x00\x01' + ecma(prop('k', num(2))) + b'\x0a\x00\x00\x00\x02' + num(1) + NULL
             + b'\x0b' + struct.pack('>d', 1e12) + b'\x00\x00' + b'\x0c\x00\x00\x00\x03abc'
             + b'\x0d' + b'\x0f\x00\x00\x00\x04<a/>' + b'\x10\x00\x03Cls' + prop('x', num(3))
             + b'\x00\x00\x09')
    deep = b''.join(b'\x03' + struct.pack('>H', 1) + b'a' for _ in range(16)) + NULL
    deep += b'\x00\x00\x09' * 16
    deeper = b'\x03' + struct.pack('>H', 1) + b'a' + deep + b'\x00\x00\x09'
    s['amf'] = (hs + chunks(3, 20, 0, CONNECT, msid=0)
                + chunks(3, 17, 0, b'\x00' + command('createStream', 2, NULL), msid=0)
                + chunks(3, 20, 0, command('onEvery', 3, *[every]), msid=0)
                + chunks(5, 18, 0, string('onMetaData') + ecma(prop('a', num(1)), end=False))
                + chunks(5, 18, 0, string('@setDataFrame') + string('onMetaData') + deep)
                + chunks(5, 18, 0, string('@setDataFrame') + string('onMetaData') + deeper)
                + chunks(3, 20, 0, command('x', 1, b'\x0a\xff\xff\xff\xff'), msid=0)
                + chunks(3, 20, 0, command('x', 1, b'\x11'), msid=0)
                + chunks(3, 20, 0, num(5) + string('notfirst'), msid=0)
                + chunks(3, 20, 0, string('a') + b'\x02\x00\x09abc', msid=0)
                + chunks(3, 20, 0, b''.join(NULL for _ in range(300)), msid=0))
    s['amf-publish-name'] = (hs + publish_prologue()
                             + chunks(8, 20, 0, command('publish', 5, NULL,
                                                        string('demo?key=' + 'k' * 600)))
                             + chunks(8, 20, 0, command('play', 5, NULL, string('x' * 1000)))
                             + chunks(3, 20, 0, command('FCUnpublish', 6, NULL, string('demo')),
                                      msid=0))
    return s


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, 'corpus', 'rtmp')
    # Byte 0 (see fuzz_rtmp.c): 0 feeds everything in one read; one seed
    # also comes in odd pieces (0x13: up to 5 bytes per read).
    for name, data in sorted(seeds().items()):
        variants = [('', 0)]
        if name == 'ext-ts-absent':
            variants += [('.pieces', 0x13)]
        for suffix, first in variants:
            blob = bytes([first]) + data
            assert len(blob) < 8192, (name, len(blob))
            with open(os.path.join(out, 'hand-' + name + suffix), 'wb') as f:
                f.write(blob)


if __name__ == '__main__':
    main()

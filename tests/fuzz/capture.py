#!/usr/bin/env python3
"""Record what RTMP clients send, for the cap-* seeds of corpus/rtmp/.

A TCP proxy in front of a running kebun: every connection to LISTEN_PORT
is forwarded to 127.0.0.1:TARGET_PORT, and the client's bytes are written
to OUTDIR/connN-c2s.bin (the server's to connN-s2c.bin).

    build/relay/kebun -c config/kebun.conf --listen 127.0.0.1:19351 &
    python3 tests/fuzz/capture.py 19352 19351 /tmp/cap &
    rtmpdump -r rtmp://127.0.0.1:19352/live/demo -v -o /dev/null -B 1 &
    ffprobe rtmp://127.0.0.1:19352/live/demo &
    ffmpeg -re -f lavfi -i testsrc=size=160x120:rate=10 -f lavfi -i sine \\
      -c:v libx264 -preset ultrafast -c:a aac -t 1 -f flv \\
      rtmp://127.0.0.1:19352/live/demo-key-change-me

A seed is one byte (0: the whole input in one read, see fuzz_rtmp.c) and
the client's bytes, under 8 KiB: the players' captures fit as they are; the
publisher's was cut at message boundaries (handshake, commands, metadata and
sequence headers, then either the frames after the keyframe or the last
frames and FCUnpublish/deleteStream) so every chunk header still refers to
a chunk stream the reader has seen.
"""
import itertools
import socket
import sys
import threading


def pump(src, dst, log):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            log.write(b)
            log.flush()
            dst.sendall(b)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def handle(client, n, target_port, outdir):
    server = socket.create_connection(('127.0.0.1', target_port))
    with open(f'{outdir}/conn{n}-c2s.bin', 'wb') as c2s, \
            open(f'{outdir}/conn{n}-s2c.bin', 'wb') as s2c:
        up = threading.Thread(target=pump, args=(client, server, c2s))
        down = threading.Thread(target=pump, args=(server, client, s2c))
        up.start()
        down.start()
        up.join()
        down.join()
    client.close()
    server.close()


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    listen_port, target_port, outdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(('127.0.0.1', listen_port))
    lsock.listen(16)
    for n in itertools.count(1):
        client, _ = lsock.accept()
        threading.Thread(target=handle, args=(client, n, target_port, outdir), daemon=True).start()


if __name__ == '__main__':
    main()

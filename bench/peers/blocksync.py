#!/usr/bin/env python3
"""
A stand-in for blocksync.py, the tool seed 001's procedure uses, written for
ferry's bench:warm from blocksync.py's published description (no code of it
is copied here; it cannot be installed on the benchmark machine). It
re-implements the same algorithm:

- The client reads the source device or file directly; the server half runs
  on the target, started over ssh (any command that runs a program on the
  target will do: `--remote "ssh HOST"` or `--remote "nsenter -t PID -m --"`).
- Lock-step, one round trip per block (1 MiB by default): the server reads a
  block of the destination and sends its sha512; the client reads the same
  block of the source, hashes it, and answers "same", or "diff" followed by
  the block, which the server writes in place.
- Only differing blocks cross; every block of both sides is read and hashed.
- No resume (an interrupted run starts over) and no verification afterwards.

It also counts what it did, which blocksync.py does not: the last line on
stdout is a JSON object with the bytes read from the source, the blocks
that differed, the bytes sent and the time taken.

    blocksync.py [--blocksize BYTES] --remote "ssh -F CONFIG HOST" SOURCE DEST
    blocksync.py server DEST BLOCKSIZE        (the half run on the target)
"""
import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time

SAME = b"same"
DIFF = b"diff"
DIGEST_SIZE = hashlib.sha512().digest_size


def read_exact(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError("the other side closed the connection after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def serve(dest, blocksize):
    """The target's half: hashes each block of DEST, writes those the client says differ."""
    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    with open(dest, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        out.write(b"%d\n" % size)
        out.flush()
        f.seek(0)
        offset = 0
        while offset < size:
            block = f.read(min(blocksize, size - offset))
            out.write(hashlib.sha512(block).digest())
            out.flush()
            answer = read_exact(inp, 4)
            if answer == DIFF:
                data = read_exact(inp, len(block))
                f.seek(offset)
                f.write(data)
            elif answer != SAME:
                raise ValueError("unexpected answer %r at offset %d" % (answer, offset))
            offset += len(block)
        f.flush()
        os.fsync(f.fileno())
    out.write(b"done\n")
    out.flush()


def sync(source, dest, remote, blocksize):
    """The source's half: reads SOURCE block by block, in step with the server."""
    t0 = time.monotonic()
    argv = shlex.split(remote) + ["python3", os.path.abspath(__file__), "server", dest, str(blocksize)]
    server = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    stats = {"source": source, "dest": dest, "blocksize": blocksize, "blocks": 0, "diff_blocks": 0, "source_bytes_read": 0, "bytes_sent": 0}
    try:
        with open(source, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            remote_size = int(server.stdout.readline().strip() or b"-1")
            if remote_size != size:
                raise SystemExit("blocksync: %s is %d bytes but %s on the target is %d: they must be the same size" % (source, size, dest, remote_size))
            f.seek(0)
            offset = 0
            while offset < size:
                theirs = read_exact(server.stdout, DIGEST_SIZE)
                block = f.read(min(blocksize, size - offset))
                stats["source_bytes_read"] += len(block)
                stats["blocks"] += 1
                if hashlib.sha512(block).digest() == theirs:
                    server.stdin.write(SAME)
                else:
                    server.stdin.write(DIFF + block)
                    stats["diff_blocks"] += 1
                    stats["bytes_sent"] += len(block)
                server.stdin.flush()
                offset += len(block)
            if server.stdout.readline().strip() != b"done":
                raise SystemExit("blocksync: the target did not confirm the end of the sync")
        stats["size"] = size
    finally:
        server.stdin.close()
        code = server.wait()
    if code != 0:
        raise SystemExit("blocksync: the server half exited with status %d" % code)
    stats["seconds"] = round(time.monotonic() - t0, 3)
    print(json.dumps(stats), flush=True)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "server":
        serve(sys.argv[2], int(sys.argv[3]))
        return
    p = argparse.ArgumentParser(description="Synchronise a block device or file with one on another host, sending only the blocks that differ.")
    p.add_argument("--blocksize", type=int, default=1024 * 1024)
    p.add_argument("--remote", required=True, help='how to run a command on the target, e.g. "ssh root@host"')
    p.add_argument("source")
    p.add_argument("dest")
    a = p.parse_args()
    sync(a.source, a.dest, a.remote, a.blocksize)


if __name__ == "__main__":
    main()

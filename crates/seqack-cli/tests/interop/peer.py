#!/usr/bin/env python3
"""The Linux kernel's side of the interop tests: one TCP connection over kernel
sockets, driven step by step, reporting what happened as one JSON object.

    peer.py client HOST PORT [options]     connect, then run the steps
    peer.py server HOST PORT [options]     listen, accept one, then run the steps

Data sent is the pattern byte i = i mod 251 (as `seqack connect` sends). The kernel's
TCP state (TCP_INFO tcpi_state) is recorded after each step, so the test sees the
states the kernel itself went through, not guesses. Every wait is bounded.
"""

import argparse
import hashlib
import json
import socket
import struct
import subprocess
import sys
import threading
import time

STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECEIVED", 4: "FIN_WAIT_1",
    5: "FIN_WAIT_2", 6: "TIME_WAIT", 7: "CLOSED", 8: "CLOSE_WAIT", 9: "LAST_ACK",
    10: "LISTEN", 11: "CLOSING",
}
PERIOD = 251
BLOCK = bytes(i % PERIOD for i in range(PERIOD * 1024))


def state(s):
    try:
        return STATES.get(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0], "?")
    except OSError:
        return "CLOSED"


def unacked(s):
    # struct tcp_info: tcpi_unacked is the first __u32 after 8 bytes and 7 __u32.
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, 8 + 4 * 4)[0]


def total_retrans(s):
    # tcpi_total_retrans: the last __u32 of the first 104 bytes of struct tcp_info.
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, 100)[0]


def send_pattern(s, n):
    off = 0
    while off < n:
        start = off % PERIOD
        k = min(n - off, len(BLOCK) - start)
        s.sendall(BLOCK[start:start + k])
        off += k


def errname(e):
    import errno
    return errno.errorcode.get(e.errno, str(e)) if getattr(e, "errno", None) else type(e).__name__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["client", "server"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--send", type=int, default=0, help="bytes to send at once")
    ap.add_argument("--shut-wr", action="store_true", help="shutdown(SHUT_WR) after --send")
    ap.add_argument("--read", default="eof", help="'eof', 'none' or a byte count")
    ap.add_argument("--then-send", type=int, default=0, help="bytes to send after reading")
    ap.add_argument("--sleep-before-close", type=float, default=0.0)
    ap.add_argument("--wait-acked", action="store_true", help="before closing, wait until all sent data is ACKed")
    ap.add_argument("--cmd-before-close", default=None, help="shell command run just before closing")
    ap.add_argument("--close", choices=["close", "rst", "none"], default="close")
    ap.add_argument("--linger-after", type=float, default=0.3, help="seconds to watch the state after closing")
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()
    rep = {"role": a.role, "error": None, "states": {}, "sent": 0, "received": 0}
    deadline = time.time() + a.timeout
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    try:
        if a.role == "client":
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(a.timeout)
            s.connect((a.host, a.port))
        else:
            ls = socket.socket(fam, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((a.host, a.port))
            ls.listen(8)
            print(json.dumps({"listening": True}), flush=True)
            ls.settimeout(a.timeout)
            s, _ = ls.accept()
            ls.close()
            s.settimeout(a.timeout)
        rep["local"] = "%s:%d" % s.getsockname()[:2]
        rep["peer"] = "%s:%d" % s.getpeername()[:2]
        rep["states"]["connected"] = state(s)

        send_err = []

        def sender():
            try:
                send_pattern(s, a.send)
                rep["sent"] = a.send
                if a.shut_wr:
                    s.shutdown(socket.SHUT_WR)
                    rep["states"]["after_shut_wr"] = state(s)
                    rep["shut_wr_at"] = rep_received[0]
            except OSError as e:
                send_err.append(errname(e))

        rep_received = [0]
        t = threading.Thread(target=sender)
        t.start()
        h = hashlib.sha256()
        limit = None if a.read == "eof" else (0 if a.read == "none" else int(a.read))
        try:
            while limit is None or rep_received[0] < limit:
                want = 65536 if limit is None else min(65536, limit - rep_received[0])
                b = s.recv(want)
                if not b:
                    rep["eof"] = True
                    rep["states"]["after_eof"] = state(s)
                    break
                h.update(b)
                rep_received[0] += len(b)
        except OSError as e:
            rep["error"] = errname(e)
        t.join(max(0.0, deadline - time.time()))
        if send_err and not rep["error"]:
            rep["error"] = send_err[0]
        rep["received"] = rep_received[0]
        rep["sha256"] = h.hexdigest()
        if "shut_wr_at" in rep:
            rep["received_after_shut_wr"] = rep["received"] - rep.pop("shut_wr_at")
        if a.then_send and not rep["error"]:
            try:
                send_pattern(s, a.then_send)
                rep["then_sent"] = a.then_send
            except OSError as e:
                rep["error"] = errname(e)
        if a.wait_acked:
            while unacked(s) and time.time() < deadline:
                time.sleep(0.01)
        if a.sleep_before_close:
            time.sleep(a.sleep_before_close)
        if a.cmd_before_close:
            subprocess.run(a.cmd_before_close, shell=True, check=True)
        rep["states"]["before_close"] = state(s)
        rep["total_retrans"] = total_retrans(s)
        if a.close == "rst":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if a.close != "none":
            # After close() the socket has no descriptor: the test reads its later
            # states (TIME_WAIT, LAST_ACK) with `ss -tan`.
            s.close()
            time.sleep(a.linger_after)
    except OSError as e:
        rep["error"] = errname(e)
    print(json.dumps(rep), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Bad input for `seqack serve --app echo`, sent from inside the test's network
namespace over its TUN device (tests/bad_input.rs runs it; never run it elsewhere).

    crafted.py IFACE SERVER KERNEL PORT SPOOF_PREFIX [--flood N]

While a live connection from the kernel (an ordinary socket, KERNEL -> SERVER:PORT)
echoes the pattern (byte i = i mod 251) and every byte is checked, it writes crafted
packets straight onto IFACE with an AF_PACKET socket (the kernel's IP layer never
touches them, so malformed headers arrive as built): every class once, by name. Spoofed
sources are SPOOF_PREFIX + a host number, addresses on IFACE's own link: seqack's
answers to them come back into the namespace, where the kernel (not forwarding) drops
them. With --flood N, N SYNs from distinct spoofed (address, port) pairs while a second
kernel client connects and echoes.

The blind attacks on the live connection need its sequence numbers: a sniffer on IFACE
reads the two ISNs from the handshake; the echo is driven in rounds (send a chunk, read
its echo back), so between rounds seqack's RCV.NXT and SND.NXT are known exactly. The
attacker aims inside the window but never at RCV.NXT itself, as a blind one would.

Prints one JSON object: the classes sent with their counts, and the two clients' results.
"""

import argparse
import hashlib
import json
import socket
import sys
import threading
import time

from scapy.all import (IP, TCP, UDP, IPOption_EOL, IPOption_NOP, IPv6, IPv6ExtHdrFragment,
                       IPv6ExtHdrHopByHop, Raw)
from scapy.utils import checksum

PERIOD = 251
BLOCK = bytes(i % PERIOD for i in range(PERIOD * 256))
ETH_P_ALL, ETH_P_IP, ETH_P_IPV6 = 0x0003, 0x0800, 0x86DD
CHUNK = 8192
# An offset from RCV.NXT inside any window seqack advertises, and one far outside.
IN_WINDOW = 1000
FAR = 1 << 30


def pattern(off, n):
    out = bytearray()
    while n > 0:
        start = off % PERIOD
        k = min(n, len(BLOCK) - start)
        out += BLOCK[start:start + k]
        off += k
        n -= k
    return bytes(out)


class Echo:
    """One kernel connection to the echo server, driven in rounds and checked."""

    def __init__(self, server, port, bind=None):
        fam = socket.AF_INET6 if ":" in server else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(10)
        if bind:
            self.s.bind(bind)
        self.s.connect((server, port))
        self.sent = 0
        self.echoed = 0
        self.bad = None
        self.h = hashlib.sha256()
        self.lock = threading.Lock()

    def port(self):
        return self.s.getsockname()[1]

    def round(self, n=CHUNK):
        with self.lock:
            data = pattern(self.sent, n)
            self.s.sendall(data)
            self.sent += n
            got = bytearray()
            while len(got) < n:
                b = self.s.recv(n - len(got))
                if not b:
                    raise RuntimeError(f"EOF after {self.echoed + len(got)} echoed bytes")
                got += b
            if bytes(got) != data and self.bad is None:
                self.bad = self.echoed + next(i for i in range(n) if got[i] != data[i])
            self.h.update(got)
            self.echoed += n

    def close(self):
        """Our FIN; the echo server closes after it: EOF must come, with nothing more."""
        with self.lock:
            self.s.shutdown(socket.SHUT_WR)
            extra = b""
            while True:
                b = self.s.recv(65536)
                if not b:
                    break
                extra += b
            self.s.close()
        return {
            "sent": self.sent,
            "echoed": self.echoed,
            "extra_after_close": len(extra),
            "first_bad_byte": self.bad,
            "sha256": self.h.hexdigest(),
            "expected_sha256": hashlib.sha256(pattern(0, self.sent)).hexdigest(),
        }


class Crafter:
    def __init__(self, iface, server, kernel, port, spoof):
        self.iface, self.server, self.kernel, self.port = iface, server, kernel, port
        self.v6 = ":" in server
        self.spoof = spoof
        self.tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.tx.bind((iface, 0))
        self.sent = {}
        self.sport = 20000

    def ip(self, src=None, dst=None, **kw):
        src, dst = src or self.kernel, dst or self.server
        if self.v6:
            return IPv6(src=src, dst=dst, **kw)
        return IP(src=src, dst=dst, **kw)

    def next_sport(self):
        self.sport += 1
        return self.sport

    def write(self, raw):
        proto = ETH_P_IPV6 if (raw and raw[0] >> 4 == 6) else ETH_P_IP
        self.tx.sendto(bytes(raw), (self.iface, proto))

    def send(self, name, raw):
        self.write(raw)
        self.sent[name] = self.sent.get(name, 0) + 1

    def syn(self, **kw):
        return TCP(sport=self.next_sport(), dport=self.port, flags="S", seq=12345,
                   window=64240, options=[("MSS", 1460)], **kw)

    # ----- malformed IP headers ---------------------------------------------------

    def ip_classes(self):
        good = bytearray(bytes(self.ip() / self.syn()))
        if self.v6:
            self.send("ip_short_header", good[:30])
            p = bytearray(good)
            p[4:6] = (len(good) - 40 + 8).to_bytes(2, "big")
            self.send("ip_length_past_end", p)
            p = bytearray(good)
            p[0] = 0x70
            self.send("ip_bad_version", p)
            # Hop-by-hop options whose length runs past the payload.
            hbh = bytearray(bytes(self.ip() / IPv6ExtHdrHopByHop() / self.syn()))
            hbh[41] = 20
            self.send("ip6_ext_past_end", hbh)
            self.send("ip_fragment", bytes(self.ip() / IPv6ExtHdrFragment(m=1) / self.syn()))
            self.send("ip_not_ours", bytes(self.ip(dst=self.spoof + "3") / self.syn()))
            self.send("ip_not_tcp", bytes(self.ip() / UDP(sport=5, dport=self.port) / b"x"))
            return

        def fix(p):
            ihl = (p[0] & 15) * 4
            p[10:12] = b"\0\0"
            p[10:12] = checksum(bytes(p[:ihl])).to_bytes(2, "big")
            return p

        self.send("ip_short_header", good[:12])
        p = bytearray(good)
        p[0] = 0x44
        self.send("ip_ihl_below_5", fix(p))
        p = bytearray(good)
        p[0] = 0x4F  # 60 bytes of header in a shorter packet
        self.send("ip_ihl_past_end", fix(bytearray(p[:44])))
        p = bytearray(good)
        p[2:4] = (len(good) + 8).to_bytes(2, "big")
        self.send("ip_length_past_end", fix(p))
        p = bytearray(good)
        p[2:4] = (16).to_bytes(2, "big")
        self.send("ip_length_below_header", fix(p))
        p = bytearray(good)
        p[10] ^= 0x55
        self.send("ip_bad_checksum", p)
        p = bytearray(good)
        p[0] = 0x75
        self.send("ip_bad_version", fix(p))
        self.send("ip_fragment", bytes(self.ip(flags="MF") / self.syn()))
        self.send("ip_not_ours", bytes(self.ip(dst=self.spoof + "3") / self.syn()))
        self.send("ip_not_tcp", bytes(self.ip() / UDP(sport=5, dport=self.port) / b"x"))

    # ----- malformed TCP headers (all SYNs to the listener: taken, they would open) -

    def tcp_classes(self):
        t = lambda **kw: self.ip() / TCP(sport=self.next_sport(), dport=self.port,
                                         flags="S", seq=777, **kw)
        whole = bytes(self.ip() / self.syn())
        hl = 40 if self.v6 else 20
        short = self.ip() / Raw(whole[hl:hl + 12])
        if self.v6:
            short[IPv6].nh = 6
        else:
            short[IP].proto = 6
        self.send("tcp_short_header", bytes(short))
        self.send("tcp_doff_below_5", bytes(t(dataofs=3)))
        self.send("tcp_doff_past_end", bytes(t(dataofs=15)))
        p = bytearray(bytes(t()))
        p[hl + 16] ^= 0x5A
        self.send("tcp_bad_checksum", p)
        self.send("tcp_option_len_0", bytes(t(dataofs=6) / Raw(b"\x08\x00\x00\x00")))
        self.send("tcp_option_len_1", bytes(t(dataofs=6) / Raw(b"\x03\x01\x00\x00")))
        self.send("tcp_option_past_end", bytes(t(dataofs=7) / Raw(b"\x01\x01\x08\x0a\x00\x00\x00\x01")))
        self.send("tcp_option_mss_len_3", bytes(t(dataofs=6) / Raw(b"\x02\x03\x05\x00")))

    # ----- senseless flags at the listener ------------------------------------------

    def listener_flags(self):
        for name, flags in [("listen_syn_fin", "SF"), ("listen_syn_rst", "SR"),
                            ("listen_no_flags", ""), ("listen_all_flags", "FSRPAUEC"),
                            ("listen_rst", "R"), ("listen_fin", "F")]:
            self.send(name, bytes(self.ip() / TCP(sport=self.next_sport(), dport=self.port,
                                                  flags=flags, seq=4242, ack=99)))

    def max_headers(self):
        """A valid SYN with the most header there is: 40 bytes of TCP options (and 40
        of IP options): a passive open like any other."""
        opts = ([("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("WScale", 7)]
                + [("NOP", None)] * 20 + [("EOL", None)])
        ip = (IPv6(src=self.spoof + "9", dst=self.server) if self.v6 else
              IP(src=self.spoof + "9", dst=self.server,
                 options=[IPOption_NOP()] * 39 + [IPOption_EOL()]))
        raw = bytes(ip / TCP(sport=self.next_sport(), dport=self.port, flags="S", seq=5,
                             window=1000, options=opts))
        hl = 40 if self.v6 else 60
        assert raw[hl + 12] >> 4 == 15 and (self.v6 or raw[0] & 15 == 15), "headers too short"
        self.send("max_headers_syn", raw)

    # ----- blind attacks on the live connection ---------------------------------

    def blind(self, live, isn_c, isn_s):
        """Each between two echo rounds: RCV.NXT (seqack's) = isn_c + 1 + sent, its
        SND.NXT = isn_s + 1 + echoed."""
        attacks = [
            ("conn_rst_in_window", "R", IN_WINDOW, 0, b""),
            ("conn_syn_in_window", "S", IN_WINDOW, 0, b""),
            ("conn_syn_rst_in_window", "SR", IN_WINDOW, 0, b""),
            ("conn_syn_fin_in_window", "SF", IN_WINDOW, 0, b""),
            ("conn_all_flags_in_window", "FSRPAUEC", IN_WINDOW, 0, b""),
            ("conn_syn_out_of_window", "S", FAR, 0, b""),
            ("conn_data_old_ack", "PA", 0, -FAR, b"EVIL"),
            ("conn_data_no_ack", "P", 0, 0, b"EVIL"),
            ("conn_fin_no_ack", "F", 0, 0, b""),
        ]
        for name, flags, dseq, dack, data in attacks:
            live.round()
            with live.lock:
                rcv_nxt = (isn_c + 1 + live.sent) % 2**32
                snd_nxt = (isn_s + 1 + live.echoed) % 2**32
                self.send(name, bytes(self.ip() / TCP(
                    sport=live.port(), dport=self.port, flags=flags,
                    seq=(rcv_nxt + dseq) % 2**32, ack=(snd_nxt + dack) % 2**32,
                    window=8192) / data))
                # Let seqack take it (and answer) before the real peer speaks again.
                time.sleep(0.02)
        live.round()

    # ----- SYN flood -------------------------------------------------------------

    def flood(self, n, live, result):
        """n (at least 4) SYNs from distinct spoofed (address, port) pairs, paced so that the TUN
        device's queue (its txqueuelen) never overflows, while `live` keeps echoing
        and a second kernel client connects and echoes 64 KiB."""
        stop = threading.Event()

        def keep_echoing():
            while not stop.is_set():
                live.round(2048)

        def client():
            t0 = time.time()
            try:
                c = Echo(self.server, self.port)
                for _ in range(8):
                    c.round()
                r = c.close()
                r["seconds"] = round(time.time() - t0, 3)
                result["client"] = r
            except Exception as e:  # reported, the test fails on it
                result["client"] = {"error": repr(e)}

        threads = [threading.Thread(target=keep_echoing), threading.Thread(target=client)]
        threads[0].start()
        for i in range(n):
            host, sport = 10 + i % 240, 1024 + i // 240
            p = self.ip(src=self.spoof + str(host)) / TCP(
                sport=sport, dport=self.port, flags="S", seq=(i * 2654435761) % 2**32,
                window=64240, options=[("MSS", 1460)])
            self.send("flood_syn", bytes(p))
            if i == n // 4:
                # The SYN queue is full by now: the client connects mid-flood.
                threads[1].start()
            if i % 50 == 49:
                time.sleep(0.005)
        threads[1].join(30)
        stop.set()
        threads[0].join(30)


def sniff_isns(iface, kernel_port, server_port, ready, out, deadline):
    """The ISNs of the live connection's handshake, read off the device."""
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    rx.bind((iface, 0))
    rx.settimeout(0.2)
    ready.set()
    while time.time() < deadline and not ("c" in out and "s" in out):
        try:
            data = rx.recv(65535)
        except socket.timeout:
            continue
        # Anything else on the device (the kernel's own traffic, the crafted packets
        # of a test running alongside) may not parse: skip it, do not die on it.
        try:
            pkt = IPv6(data) if data and data[0] >> 4 == 6 else IP(data)
        except Exception:
            continue
        if TCP not in pkt:
            continue
        t = pkt[TCP]
        if t.flags == "S" and t.sport == kernel_port and t.dport == server_port:
            out["c"] = t.seq
        elif t.flags == "SA" and t.sport == server_port and t.dport == kernel_port:
            out["s"] = t.seq
    rx.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("iface")
    ap.add_argument("server")
    ap.add_argument("kernel")
    ap.add_argument("port", type=int)
    ap.add_argument("spoof")
    ap.add_argument("--flood", type=int, default=0)
    a = ap.parse_args()
    t0 = time.time()
    cr = Crafter(a.iface, a.server, a.kernel, a.port, a.spoof)
    report = {}

    # The live connection, from a port we pick so the sniffer knows it beforehand.
    fam = socket.AF_INET6 if ":" in a.server else socket.AF_INET
    probe = socket.socket(fam, socket.SOCK_STREAM)
    probe.bind((a.kernel, 0))
    kport = probe.getsockname()[1]
    probe.close()
    isns, ready = {}, threading.Event()
    sn = threading.Thread(target=sniff_isns,
                          args=(a.iface, kport, a.port, ready, isns, time.time() + 10))
    sn.start()
    ready.wait(5)
    live = Echo(a.server, a.port, bind=(a.kernel, kport))
    sn.join(12)
    if "c" not in isns or "s" not in isns:
        print(json.dumps({"error": f"handshake not seen on {a.iface}: {isns}"}))
        return 1
    live.round()

    for phase in (cr.ip_classes, cr.tcp_classes, cr.listener_flags, cr.max_headers):
        phase()
        live.round()
    cr.blind(live, isns["c"], isns["s"])
    if a.flood:
        fl = {}
        cr.flood(a.flood, live, fl)
        report["flood_client"] = fl.get("client", {"error": "did not finish"})
    live.round()
    report["live"] = live.close()
    report["sent"] = cr.sent
    report["seconds"] = round(time.time() - t0, 3)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

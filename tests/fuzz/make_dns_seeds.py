#!/usr/bin/env python3
"""Writes the seed answers of the dns_message fuzz target into corpus/dns_message/.

Seeds are what a real server sends (Consul DNS, dnsmasq): an SRV answer whose additional
section has its targets' addresses, name compression, a CNAME chain, an AAAA answer, a
negative answer with its SOA (one whose mailbox has a dot in a label), a truncated answer. The fuzzer mutates from there.
"""
import os
import struct
import sys

def name(n):
    out = b""
    for label in n.split(".") if n else []:
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"

def header(qd, an, ns, ar, flags=0x8180, ident=0x4242):
    return struct.pack(">HHHHHH", ident, flags, qd, an, ns, ar)

def rr(owner, rtype, ttl, rdata):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata

A, CNAME, SOA, AAAA, SRV = 1, 5, 6, 28, 33
Q = "redis.service.consul"

def srv_with_additional():
    qname = name(Q)
    body = qname + struct.pack(">HH", SRV, 1)
    ptr = b"\xc0\x0c"  # the question's name
    answers = b""
    additional = b""
    for i in range(3):
        target = name("node%d.node.dc1.consul" % i)
        answers += rr(ptr, SRV, 30, struct.pack(">HHH", 1, 10, 6379 + i) + target)
        additional += rr(target, A, 30, bytes([198, 18, 0, 10 + i]))
    return header(1, 3, 0, 3) + body + answers + additional

def compressed_targets():
    qname = name(Q)
    body = qname + struct.pack(">HH", SRV, 1)
    # Targets under the question's suffix: "a" + pointer to "service.consul".
    target = b"\x01a\xc0\x12"
    answers = rr(b"\xc0\x0c", SRV, 0, struct.pack(">HHH", 0, 0, 80) + target)
    return header(1, 1, 0, 0) + body + answers

def cname_chain():
    qname = name("web.example")
    body = qname + struct.pack(">HH", A, 1)
    answers = rr(b"\xc0\x0c", CNAME, 60, name("web2.example"))
    answers += rr(name("web2.example"), CNAME, 60, name("web3.example"))
    answers += rr(name("web3.example"), A, 20, bytes([198, 18, 0, 1]))
    return header(1, 3, 0, 0) + body + answers

def aaaa():
    qname = name("db.example")
    body = qname + struct.pack(">HH", AAAA, 1)
    answers = rr(b"\xc0\x0c", AAAA, 300, bytes(15) + b"\x01")
    return header(1, 1, 0, 0) + body + answers

def nxdomain_with_soa():
    qname = name("gone.service.consul")
    body = qname + struct.pack(">HH", SRV, 1)
    soa = name("ns.consul") + name("hostmaster.consul") + struct.pack(">IIIII", 1, 3600, 600, 86400, 0)
    authority = rr(name("consul"), SOA, 0, soa)
    return header(1, 0, 1, 0, flags=0x8183) + body + authority

def nodata_with_dotted_mailbox():
    # The mailbox john.doe@example.org: its first label, "john.doe", holds a dot.
    qname = name("db.example.org")
    body = qname + struct.pack(">HH", AAAA, 1)
    rname = b"\x08john.doe" + name("example.org")
    soa = name("ns.example.org") + rname + struct.pack(">IIIII", 1, 3600, 600, 86400, 60)
    authority = rr(b"\xc0\x0f", SOA, 300, soa)  # example.org, within the question's name
    return header(1, 0, 1, 0, flags=0x8580) + body + authority

def truncated():
    qname = name(Q)
    return header(1, 0, 0, 0, flags=0x8380) + qname + struct.pack(">HH", SRV, 1)

def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "dns_message")
    os.makedirs(out, exist_ok=True)
    seeds = {
        "srv-with-additional": srv_with_additional(),
        "srv-compressed-target": compressed_targets(),
        "a-after-cname-chain": cname_chain(),
        "aaaa": aaaa(),
        "nxdomain-with-soa": nxdomain_with_soa(),
        "nodata-with-dotted-mailbox": nodata_with_dotted_mailbox(),
        "truncated": truncated(),
    }
    for seed_name, data in seeds.items():
        with open(os.path.join(out, "seed-" + seed_name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), out), file=sys.stderr)

if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into corpus/<target>/seed-*,
from the byte vectors and examples of docs/ (run once; the seeds are
committed). Usage: fuzz/seeds/make-seeds.py (from anywhere)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def le32(*v):
    return b"".join(struct.pack("<I", x & 0xFFFFFFFF) for x in v)


def request(cmd, version=2, length=None):
    n = len(cmd) if length is None else length
    return (le32(0xCAFEBABE, version, n) + cmd).ljust(524, b"\0")


def reply(err, more, text):
    return le32(err, more, len(text) + 1) + text + b"\0"


def dgrams(*ds):
    return b"".join(struct.pack("<H", len(d)) + d for d in ds)


# mconsole
put("mconsole_request", "version", request(b"version"))
put("mconsole_request", "help-short", le32(0xCAFEBABE, 2, 4) + b"help")
put("mconsole_request", "unversioned", b"version\0")
put("mconsole_request", "too-large", request(b"x", length=512))
put("mconsole_request", "wrong-version", request(b"version", version=1))
put("mconsole_request", "half-header", le32(0xCAFEBABE, 2))
ok = reply(0, 0, b"Linux (none) 6.1.176 #1")
multi = [reply(0, 1, b"a" * 511), reply(0, 1, b"b" * 100), reply(0, 0, b"")]
bad = reply((-19) & 0xFFFFFFFF, 0, b"Device not found")
v0 = b"ERR Version 0 mconsole clients are not supported by this driver"
put("mconsole_reply", "ok", dgrams(ok))
put("mconsole_reply", "multi", dgrams(*multi))
put("mconsole_reply", "err", dgrams(bad))
put("mconsole_reply", "v0-text", dgrams(v0))
put("mconsole_reply_diff", "text", le32(1) + b"\0" + b"Unknown command")
put("mconsole_reply_diff", "long-text", le32(0) + b"\2" + b"x" * 1100)
put("mconsole_reply_diff", "empty", le32(0xFFFFFFED) + b"\0")
put("mconsole_reply_diff", "datagrams", le32(0) + b"\1" + dgrams(*multi))
put("mconsole_reply_diff", "datagrams-err", le32(0) + b"\1" + dgrams(v0, bad, ok))
path = b"/root/.uml/vm1/mconsole"
put("mconsole_notify", "socket", le32(0xCAFEBABE, 2, 0, len(path) + 1) + path + b"\0")
put("mconsole_notify", "user", le32(0xCAFEBABE, 2, 3, 17) + b"hello-user-notify")
put("mconsole_notify", "panic", le32(0xCAFEBABE, 2, 1, 22) + b"sysrq triggered crash\0")
put("mconsole_notify", "hang64", struct.pack("<QIIII", 0xCAFEBABE, 2, 2, 0, 0))

# switch control requests
def sockaddr(path, abstract=False):
    if abstract:
        sun = b"\0" + path
    else:
        sun = path
    return struct.pack("<H", 1) + sun.ljust(108, b"\0")


abs_addr = sockaddr(b"\0\0\0\x0112345", abstract=True)[:110]
vde_addr = sockaddr(b"/tmp/vde.ctl/.01234-00000")
v3 = le32(0xFEEDFACE, 3, 0) + abs_addr + b"\0\0"
v3vde = le32(0xFEEDFACE, 3, 5 << 8) + vde_addr + b"DESCR user=alice pid=42\0"
v1 = le32(0xFEEDFACE, 0) + b"\x02\0\0\0\0\x01" + abs_addr
v0 = le32(0) + b"\x02\0\0\0\0\x01" + abs_addr
put("switch_request", "v3", v3)
put("switch_request", "v3-vde", v3vde)
put("switch_request", "v1", v1)
put("switch_request", "v0", v0)
put("switch_request", "v2", le32(0xFEEDFACE, 2, 0))
put("switch_request", "bad-type", le32(7))


def records(*pieces):
    out = b""
    for tick, p in pieces:
        out += bytes([(0x80 if tick else 0) | len(p)]) + p
    return out


put("switch_control", "v3", records((0, v3[:100]), (0, v3[100:])))
put("switch_control", "v3-vde", records((0, v3vde[:120]), (1, v3vde[120:]), (0, b"")))
put("switch_control", "v1-extra", records((0, v1[:60]), (0, v1[60:] + b"x")))
put("switch_control", "v0-timeout", records((0, v0[:50]), (1, b""), (1, b"")))

# tunnels
eth = bytes.fromhex("ffffffffffff020000000001 0806".replace(" ", "")) + bytes(46)
ip_hdr = bytes.fromhex("45000000000040004073" + "0000" + "7f000001" + "7f000002")
put("l2tpv3", "udp-cookie8-counter", bytes([1 | 4 | 8]) + le32(0x30000)[::-1] + struct.pack(">IQI", 0x5678, 0x1122334455667788, 1) + eth)
put("l2tpv3", "ip-cookie4", bytes([2 | 16]) + ip_hdr + struct.pack(">II", 0x5678, 0x55667788) + eth)
put("l2tpv3", "ip-plain", bytes([0]) + struct.pack(">I", 0x5678) + eth)
put("gre", "key-seq", bytes([2 | 4]) + struct.pack(">HHII", 0x3000, 0x6558, 0x12345678, 1) + eth)
put("gre", "ip-csum", bytes([1]) + ip_hdr + struct.pack(">HHHH", 0x8000, 0x6558, 0, 0) + eth)
put("gre", "plain", bytes([0]) + struct.pack(">HH", 0, 0x6558) + eth)
put("tunnel_opts", "l2tpv3-udp", b"\0vec0:transport=l2tpv3,src=127.0.0.1,dst=127.0.0.2,udp=1,srcport=1706,dstport=1707,rx_session=0xffffffff,tx_session=0xffffffff,cookie64=1,rx_cookie=0x1122334455667788,tx_cookie=0x8877665544332211,counter=1")
put("tunnel_opts", "l2tpv3-ip", b"\0src=10.0.0.2,dst=10.0.0.1,rx_session=5,tx_session=6,cookie=1,rx_cookie=7,tx_cookie=8,pin_counter=1,mtu=1400")
put("tunnel_opts", "gre", b"\1transport=gre,src=127.0.0.2,dst=127.0.0.1,rx_key=1,tx_key=2,sequence=1,pin_sequence=1")
put("tunnel_opts", "gre-v6", b"\3v6=1,src=fd00::2,dst=fd00::1,mtu=9000")

# frames (bess, vde, daemon ports)
def frame(dst, src, payload=bytes(46), vlan=None):
    tag = struct.pack(">HH", 0x8100, vlan) if vlan is not None else b""
    return bytes.fromhex(dst) + bytes.fromhex(src) + tag + b"\x08\x00" + payload


def frecs(*fs):
    return b"\0" + b"".join(bytes([p]) + struct.pack("<H", len(f)) + f for p, f in fs)


a, b, bc = "020000000001", "020000000002", "ffffffffffff"
put("frames", "learn", frecs((1, frame(bc, a)), (2, frame(a, b)), (1, frame(b, a)), (2, frame(b, b))))
put("frames", "vlan", frecs((3, frame(bc, a, vlan=10)), (4, frame(a, b, vlan=4094)), (5, b"\x02")))
vx = b"\x08\0\0\0\0\0\x2a\0" + frame(a, b)
put("frames", "vxlan", frecs((1, vx)))

# offload: virtio-net header + TCP frame
def tcp_frame(v6, payload):
    f = bytes.fromhex(a + b)
    if v6:
        f += b"\x86\xdd" + b"\x60\0\0\0" + struct.pack(">H", 20 + len(payload)) + b"\x06\x40" + bytes(15) + b"\1" + bytes(15) + b"\2"
    else:
        f += b"\x08\x00" + b"\x45\0" + struct.pack(">H", 40 + len(payload)) + b"\x12\x34\x40\0\x40\x06\0\0" + bytes([10, 0, 0, 1, 10, 0, 0, 2])
    f += struct.pack(">HHIIBBHHH", 1000, 2000, 1, 0, 0x50, 0x18, 65535, 0, 0) + payload
    return f


def vnet(flags, gso, hdr_len, gso_size, cs, co):
    return struct.pack("<BBHHHH", flags, gso, hdr_len, gso_size, cs, co)


put("offload", "tso4", vnet(1, 1, 54, 536, 34, 16) + tcp_frame(False, bytes(3000)))
put("offload", "tso6", vnet(1, 4, 74, 1000, 54, 16) + tcp_frame(True, bytes(2500)))
put("offload", "csum", vnet(1, 0, 0, 0, 34, 16) + tcp_frame(False, b"hello"))
put("offload", "plain", vnet(0, 0, 0, 0, 0, 0) + frame(a, b))

# COW headers
name = b"/var/lib/uml/root_fs"
v3h = struct.pack(">IIIQIII", 0x4F4F4F4D, 3, 1577934245, 8388608, 512, 4096, 0) + name.ljust(4096, b"\0")
v3b = struct.pack(">II", 0x4F4F4F4D, 3) + struct.pack("<Q", 0xA55D0D5E) + struct.pack(">QIII", 8388608, 512, 4096, 0) + name.ljust(4096, b"\0")
v2h = struct.pack(">II", 0x4F4F4F4D, 2) + name.ljust(4096, b"\0") + struct.pack(">IQi", 1577934245, 8388608, 512)
v1h = struct.pack("<II", 0x4F4F4F4D, 1) + name.ljust(256, b"\0") + struct.pack("<IQi", 1577934245, 8388608, 512)
for t in ("cow_header", "cow_header_diff"):
    put(t, "v3", v3h)
    put(t, "v3-broken", v3b)
    put(t, "v2", v2h)
    put(t, "v1", v1h)
    put(t, "short-v3", v3h[:100])
    put(t, "bad-version", struct.pack(">II", 0x4F4F4F4D, 9))
put("cow_bitmap", "v3", b"\2" + struct.pack("<QII", 8388608, 512, 4096) + struct.pack("<II", 3, 900) + bytes([0xFF, 0x0F, 0, 0, 0xF0] + [0xFF] * 20))
put("cow_bitmap", "v1", b"\0" + struct.pack("<QII", 1000000, 512, 512) + struct.pack("<II", 0, 40) + bytes([0xAA] * 9))

# uml_net
for i, args in enumerate([
    "4 tuntap up 192.168.0.254", "4 add tap0 192.168.0.1 255.255.255.0",
    "4 del tap0 10.0.0.1 255.255.255.0", "4 slip up 10.0.0.254",
    "3 tuntap up 5 10.0.0.254", "2 tuntap up x 7 10.0.0.254", "0x4 tuntap up 10.0.0.254",
    "slip up 10.0.0.254", "5 tuntap up",
]):
    put("umlnet_argv", str(i), args.replace(" ", "\0").encode())
put("umlnet_policy", "example", b"# allow|deny WHO ADDRESS/PREFIX\nallow group:uml-net 10.0.0.0/8\nallow user:alice    192.168.7.0/24\nallow uid:1000 10.1.2.3\ndeny  all           0.0.0.0/0\n")
put("umlnet_policy", "bad", b"allow gid:x 1.2.3.4/33\n")

# command lines
for i, args in enumerate(["-u\0alice\0-t\0tap0", "-d\0tap0", "-b\0-n\0-g\0uml-net", "--list\0-p", "-tfoo\0-f\0/dev/net/tun\0--\0x", "-x"]):
    put("cli_tunctl", str(i), bytes([i & 1]) + args.encode())
for i, args in enumerate([
    "-unix\0/tmp/x.ctl\0-hub\0-compat-v0", "-tap\0tap0\0-daemon", "--bess\0/tmp/b.sock\0--mtu\09000",
    "--l2tpv3\0src=127.0.0.1,dst=127.0.0.2,udp=1,srcport=1,dstport=2,rx_session=1,tx_session=2",
    "-unix\0ctl\0data\0--help", "--gre=src=127.0.0.2,dst=127.0.0.1",
]):
    put("cli_switch", str(i), args.encode())
for i, (w, args) in enumerate([
    (0, "--timeout\x001.5\0vm1\0version"), (0, "--notify\0/tmp/n\0vm1"), (1, "-d\0-b\0back\0cow"),
    (1, "cow\0new\0--ignore-locks"), (2, "-f\0cow\0back"), (3, "-pid\0 0x10"), (3, "-mconsole\0/tmp/s"),
    (4, "-uml-socket\0/tmp/p"), (5, "/jail\01000\0linux\0mem=64M"), (6, "  -0x7fffffff"),
]):
    put("cli_tools", str(i), bytes([w]) + args.encode())
put("umid", "name", b"vm1\xff\xfe\xfd\xfc/root")
put("umid", "path", b"/tmp/uml/vm1/mconsole")
put("umid", "pid", b"  1234\n")

# uml_mconsole lines
for i, line in enumerate([b"config ubd2=disk1.img", b"config  ubd1=/tmp/x/cow,../back", b"sysrq m", b"log hello", b"switch vm2", b"  0x1f", b"help"]):
    put("mconsole_line", str(i), line)
# uml_switch environment and VLAN lists
put("switch_settings", "activation", b"42\x002\0ctl:bess\0@notify")
put("switch_settings", "vlans", b"42\x001\0\x0010,20-29,4094")
put("switch_settings", "path", b"1\0x\0\0/run/systemd/notify")
# QEMU stream framing (vector.md §12): limit byte, read size, stream
arp = frame("ffffffffffff", "020000000001", bytes(28))
stream = struct.pack(">I", len(arp)) + arp
put("qemu_stream", "one", bytes([200, 255]) + stream)
put("qemu_stream", "split", bytes([200, 3]) + stream * 3)
put("qemu_stream", "oversized", bytes([4, 7]) + stream + struct.pack(">I", 2) + b"ab")
put("qemu_stream", "badlen", bytes([200, 5]) + b"\x7f\xff\xff\xff" + stream)
# NAT port options (nat.md): --nat=OPTIONS and hostfwd rules
put("nat_options", "empty", b"")
put("nat_options", "net", b"net=10.0.2.0/24")
put("nat_options", "all", b"net=192.168.76.0/24,host=192.168.76.2,dns=192.168.76.3,dhcpstart=192.168.76.9")
put("nat_options", "hostfwd", b"hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-10.0.2.15:53")
put("nat_options", "switches", b"restrict=on,host-loopback=off,ipv6=on,dns=off")
put("nat_options", "rule", b"tcp::2222-:22")
put("nat_options", "tiny", b"net=10.0.2.0/31")
# pcap port specs and helper status messages (pcap-port.md)
put("pcap_port", "ifname", b"vb0")
put("pcap_port", "filter", b"vb0,filter=udp port 5001")
put("pcap_port", "mgmt", b"eth0 filter=icmp or arp")
put("pcap_port", "ok", b"ok")
put("pcap_port", "error", b"error: cannot capture on 'x'")
put("pcap_port", "option", b"vb0,snaplen=9")
put("pcap_port", "slash", b"/x")

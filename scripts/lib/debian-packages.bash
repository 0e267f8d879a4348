# The Debian packages scripts/demo, scripts/test and .ci/run need, and how
# they get them (sourced, not run).
#
#   BUILD_PACKAGES  building the workspace: a C linker and glibc's static
#                   libraries (the programs are static-pie), and libpcap-dev
#                   for uml_switch_pcap (linked dynamically: libpcap has no
#                   usable static archive);
#                   libslirp-dev (its header and libslirp.so) for
#                   uml_switch_nat, the NAT port's helper, the one program
#                   linked against libslirp
#   DEMO_PACKAGES   scripts/demo
#   TEST_PACKAGES   scripts/test: every prerequisite of every test, so that
#                   none skips
#
#   missing_packages PKG...    prints those of PKG... that are not
#                              installed, on one line (nothing if all are)
#   ensure_packages WHO PKG... as root: installs the missing ones (one line
#                              on stderr says which; apt's own output only
#                              if it fails), keeping the services they
#                              bring from starting now; as another user:
#                              prints the exact command to run and fails.
#                              Status 0 when everything is installed.
#
# Why each test package: user-mode-linux, the real kernel (linux.uml);
# uml-utilities, Debian's C tools for the differential tests; iproute2,
# network namespaces; iputils-ping, the guests run the host's ping through
# hostfs; busybox and e2fsprogs, guest init scripts and images; procps,
# pgrep and kill; kmod; net-tools, the C uml_net runs ifconfig, route and
# arp; util-linux, setpriv, runuser, prlimit, nsenter, unshare, findmnt; inetutils-telnetd,
# telnetd for the port-helper tests (con1=port:); lintian, debootstrap and
# dpkg-dev, the package tests (build, lint, install in fresh chroots);
# patchelf, scripts/fetch-kernel7 points unstable's 7.x linux.uml at
# unstable's glibc; vdeplug, vdeplug4's vde_plug, which 7.x runs for the
# vector vde transport; libnss-extrausers, a non-files NSS module for the
# name-lookup tests (configured in a private mount namespace only);
# xfsprogs and btrfs-progs, the uml_moo tests make loop-mounted XFS
# (reflink) and btrfs file systems.

BUILD_PACKAGES="gcc libc6-dev libpcap-dev libslirp-dev"
DEMO_PACKAGES="$BUILD_PACKAGES user-mode-linux iproute2 iputils-ping"
TEST_PACKAGES="$BUILD_PACKAGES user-mode-linux uml-utilities iproute2 iputils-ping busybox \
e2fsprogs procps kmod net-tools util-linux inetutils-telnetd lintian debootstrap dpkg-dev \
patchelf vdeplug libnss-extrausers xfsprogs btrfs-progs"
# vde2: vde_switch and dpipe, the far end of the switch-to-vde_switch
# interop test (tests/tests/by-util/test_uml_switch_trunk_kernel.rs);
# systemd: systemd-socket-activate drives the socket-activation tests (switch, package).
TEST_PACKAGES="$TEST_PACKAGES vde2 systemd"
# strace: the uml_moo tests inject system-call failures into the real
# binary (`strace -e inject=`), e.g. a hole punch failing part-way.
TEST_PACKAGES="$TEST_PACKAGES strace"
# passt and slirp4netns: the user-mode network stacks the switch connects
# out to (tests/tests/by-util/test_uml_switch_connect_kernel.rs).
TEST_PACKAGES="$TEST_PACKAGES passt slirp4netns"
# tcpdump: reads the switch's pcapng captures back (test_uml_switch_capture).
TEST_PACKAGES="$TEST_PACKAGES tcpdump"
# python3: the NAT port's kernel test runs a resolver and HTTP servers in
# its namespace (tests/tests/by-util/test_uml_switch_nat_kernel.rs).
TEST_PACKAGES="$TEST_PACKAGES python3"

missing_packages() {
    local pkg status missing=()
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
        [[ $status == ii* ]] || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        printf '%s\n' "${missing[*]}"
    fi
}

ensure_packages() {
    local who=$1
    shift
    local missing log status=0 created_policy=false
    if ! command -v dpkg-query >/dev/null; then
        echo "$who: not a Debian system (no dpkg-query); install the equivalents of: $*" >&2
        return 1
    fi
    missing=$(missing_packages "$@")
    [[ -n $missing ]] || return 0
    if [[ $(id -u) -ne 0 ]]; then
        echo "$who: needs Debian packages that are not installed; run as root:" \
            "apt-get install --no-install-recommends $missing" >&2
        return 1
    fi
    echo "$who: installing Debian packages: $missing" >&2
    log=$(mktemp)
    # Services these packages would start (Debian's uml_switch, inetd) stay
    # stopped: the tests and the demo start their own.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=true
    fi
    # shellcheck disable=SC2086 # one word per package
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    } >"$log" 2>&1 || status=$?
    if $created_policy; then
        rm -f /usr/sbin/policy-rc.d
    fi
    if ((status != 0)); then
        tail -n 25 "$log" >&2
        echo "$who: apt-get failed (status $status); full output in $log" >&2
        return 1
    fi
    rm -f "$log"
    missing=$(missing_packages "$@")
    if [[ -n $missing ]]; then
        echo "$who: still not installed after apt-get: $missing" >&2
        return 1
    fi
}

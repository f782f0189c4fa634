#!/bin/sh
# 90-bench.sh - lab numbers for `make bench` (tools/bench/bench_lab.sh): the
# same work done by linkprobe directly over libusb and by Debian's usbmuxd +
# libimobiledevice, on one lab run, printed as "# bench: ..." lines.
#   1. lockdown QueryType round trip, the same bulk exchange on the bus (one
#      usbmux packet out, one in): linkprobe --cable-test's lockdown_rtt
#      (in-process, kept connection) against a client looping QueryType over
#      one TCP connection through `iproxy` -> usbmuxd -> libusb. Both p50.
#   2. pairing, Trust dialog included (the healthy profile taps Trust 2 s
#      after it appears, for both): the Pair stage of `linkprobe trust --pair`
#      (from the Pair request to the record being written; its key generation
#      starts earlier, in two threads, while the walk goes on) against
#      `idevicepair pair`, retried every 0.2 s until it succeeds (it returns
#      at once while the dialog is up; a user re-runs it), and their ratio
#      (issue 14: linkprobe's Pair stage <= idevicepair pair). The whole trust
#      walk (session, TLS, a service) is printed too. Both generate RSA keys,
#      which is slow under TCG: these are the lab's emulated-time numbers, for
#      ratios, not for absolute speed.
# linkprobe has no bulk-throughput command, so no MB/s figure is given.
# only when named: a benchmark, not a check - `make bench` with
# LINKPROBE_BENCH_LAB=1 runs it (tools/bench/bench_lab.sh), or
# `make lab LAB_SCENARIOS=90-bench`; a whole `make lab` leaves it out.
. "$LAB_REPO/tests/lab/lib.sh"
plan 9
trap 'stop_pid "$LAB_STATE/iproxy.pid"; lab_cleanup' EXIT
LP=$LAB_REPO/linkprobe
N=${LAB_BENCH_ROUNDS:-200}
PORT=27015

bench() { _tap "# bench: $*"; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
jq_lp() { jq -r "$2" "$LAB_OUT/linkprobe-$1.json" 2>/dev/null; }

check "gadget up (healthy)" gadget up --profile healthy || exit 0
check "host enumerated the device" wait_dev 10 || exit 0
U=$(udid)

# --- 1a. linkprobe, direct ---------------------------------------------------------
timeout 60 "$LP" --cable-test --duration 3 --json >"$LAB_OUT/linkprobe-bench-cable.json" \
	2>"$LAB_OUT/linkprobe-bench-cable.err"
lp_rtt=$(jq_lp bench-cable .metrics.lockdown_rtt.p50_us)
lp_n=$(jq_lp bench-cable .metrics.lockdown_rtt.count)
check "linkprobe --cable-test lockdown round trips ($lp_n, p50 $lp_rtt us)" \
	sh -c "[ '$lp_n' -gt 0 ] 2>/dev/null"

# --- 2a. linkprobe pairing ---------------------------------------------------------
wait_dev 10
t0=$(date +%s%N)
timeout 200 "$LP" trust --pair --timeout 120 --pair-dir "$LAB_STATE/lp-pair" --json \
	>"$LAB_OUT/linkprobe-bench-pair.json" 2>"$LAB_OUT/linkprobe-bench-pair.err"
lp_pair_ms=$(ms_since "$t0")
lp_pair_stage_ms=$(jq_lp bench-pair '.stages[] | select(.name == "Pair") | .duration_ns / 1000000 | floor')
check "linkprobe trust --pair: TRUSTED in $lp_pair_ms ms" test "$(jq_lp bench-pair .verdict)" = TRUSTED

# --- usbmuxd side ------------------------------------------------------------------
wait_dev 15
start_udevd
check "usbmuxd started" start_usbmuxd || exit 0
check "usbmuxd lists the device" retry 120 1 listed || exit 0

# --- 2b. idevicepair pairing -------------------------------------------------------
tries=0
pair() {
	tries=$((tries + 1))
	idevicepair -u "$U" pair >/dev/null 2>&1 || { muxd_unstick; return 1; }
}
t0=$(date +%s%N)
retry 120 0.2 pair
rc=$?
idp_pair_ms=$(ms_since "$t0")
check "idevicepair pair succeeded in $idp_pair_ms ms ($tries tries)" test $rc = 0
check "usbmuxd lists the device again" retry 60 1 listed

# --- 1b. QueryType through iproxy + usbmuxd -------------------------------------------
# the guest has no network, not even lo up: iproxy listens on 127.0.0.1
ip link set lo up 2>/dev/null || busybox ifconfig lo 127.0.0.1 up
iproxy -u "$U" "$PORT:62078" >"$LAB_OUT/iproxy.log" 2>&1 &
echo $! >"$LAB_STATE/iproxy.pid"
# iproxy listens on 127.0.0.1:PORT (a LISTEN line in /proc/net/tcp)
listening() { grep -qi " 0100007F:$(printf %04X "$PORT") 00000000:0000 0A " /proc/net/tcp; }
retry 20 0.1 listening || diag "iproxy is not listening on $PORT"
/usr/bin/python3 - "$PORT" "$N" >"$LAB_STATE/iproxy-rtt.txt" 2>"$LAB_OUT/bench-iproxy.err" <<'EOF'
# lockdown QueryType round trips over one TCP connection through iproxy
import plistlib, socket, struct, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
req = plistlib.dumps({"Label": "bench", "Request": "QueryType"})
msg = struct.pack(">I", len(req)) + req
def recvn(k):
    b = b""
    while len(b) < k:
        c = s.recv(k - len(b))
        if not c:
            raise SystemExit("connection closed")
        b += c
    return b
rtts = []
for i in range(n + 5):
    t0 = time.monotonic_ns()
    s.sendall(msg)
    ln = struct.unpack(">I", recvn(4))[0]
    ans = plistlib.loads(recvn(ln))
    if i >= 5:  # the first few warm up the connection
        rtts.append((time.monotonic_ns() - t0) / 1000)
    if ans.get("Type") != "com.apple.mobile.lockdown":
        raise SystemExit("unexpected answer %r" % ans)
rtts.sort()
print("%d %.1f %.1f" % (len(rtts), rtts[len(rtts) // 2], rtts[int(len(rtts) * 0.99) - 1]))
EOF
stop_pid "$LAB_STATE/iproxy.pid"
read -r ip_n ip_rtt ip_p99 <"$LAB_STATE/iproxy-rtt.txt"
check "QueryType through iproxy + usbmuxd (${ip_n:-0}, p50 ${ip_rtt:-?} us)" \
	sh -c "[ '${ip_n:-0}' -gt 0 ] 2>/dev/null" || diag "client: $(tail -1 "$LAB_OUT/bench-iproxy.err")"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
bench "lockdown QueryType round trip p50: linkprobe direct ${lp_rtt} us ($lp_n rounds, --cable-test)," \
	"iproxy+usbmuxd ${ip_rtt:-n/a} us (${ip_n:-0} rounds, one TCP connection);" \
	"usbmuxd/linkprobe = $(ratio "${ip_rtt:-0}" "$lp_rtt")"
bench "pairing, same gadget, Trust tapped 2 s after the dialog: linkprobe trust --pair Pair stage ${lp_pair_stage_ms:-?} ms," \
	"idevicepair pair ${idp_pair_ms} ms ($tries tries, every 0.2 s until Trust);" \
	"linkprobe/idevicepair = $(ratio "${lp_pair_stage_ms:-0}" "$idp_pair_ms") (goal <= 1)"
bench "linkprobe trust --pair whole walk (find, descriptors, usbmux, lockdown, Pair, session+TLS, a service): ${lp_pair_ms} ms"
bench "emulated guest (QEMU TCG): compare ratios, not absolute times; no bulk-throughput figure (linkprobe has no bulk command)"
:

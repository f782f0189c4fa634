#!/bin/sh
# 50-capture.t - captures made through the CLI, read back by tshark, capinfos
# and libpcap: usbmon fields and stage comments (--capture), classic pcap for
# a .pcap name, redaction of the EscrowBag (and --no-redact), the TCP view
# with lockdown's TLS session decrypted from the Decryption Secrets Block
# (--capture-streams --tls-keys) or from an NSS key log (--keylog), and a
# capture killed with SIGKILL mid-run.
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.." || exit 1
LUA=tools/wireshark/linkprobe.lua

if ! command -v tshark >/dev/null 2>&1 || ! command -v capinfos >/dev/null 2>&1; then
	echo "1..0 # SKIP tshark/capinfos not installed"
	exit 0
fi
ts() { f=$1; shift; tshark -r "$f" "$@" 2>/dev/null; }
tsl() { f=$1; shift; tshark -X lua_script:$LUA -r "$f" "$@" 2>/dev/null; }
# libpcap itself (through ctypes): "<packets> <linktype>" or "error ..."
pcap_count() {
	python3 - "$1" <<'EOF'
import ctypes, ctypes.util, sys
lib = ctypes.CDLL(ctypes.util.find_library("pcap") or "libpcap.so.0.8")
lib.pcap_open_offline.restype = ctypes.c_void_p
lib.pcap_open_offline.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
lib.pcap_next_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
lib.pcap_datalink.argtypes = [ctypes.c_void_p]
err = ctypes.create_string_buffer(512)
p = lib.pcap_open_offline(sys.argv[1].encode(), err)
if not p:
    print("error", err.value.decode()); sys.exit(0)
h, d = ctypes.c_void_p(), ctypes.c_void_p()
n = 0
while True:
    rc = lib.pcap_next_ex(p, ctypes.byref(h), ctypes.byref(d))
    if rc != 1:
        break
    n += 1
print(n, lib.pcap_datalink(p), "eof" if rc == -2 else "rc=%d" % rc)
EOF
}
# first base64 characters of a <data> key of a pair record
record_b64() {
	python3 -c 'import plistlib,base64,sys; d=plistlib.load(open(sys.argv[1],"rb")); print(base64.b64encode(d[sys.argv[2]]).decode()[:24])' "$1" "$2"
}

# ---- trust with every capture option ----------------------------------------
run_lp $T/trust.out trust --pair --device sim:healthy --pair-dir $T/pd \
	--capture $T/usb.pcapng --capture-streams $T/streams.pcapng --tls-keys --keylog $T/keys.log
is "$?" 0 "trust with --capture --capture-streams --tls-keys --keylog succeeds"
rec=$(ls $T/pd/*.plist | grep -v SystemConfiguration)

# USB capture
n=$(ts $T/usb.pcapng | wc -l)
ok "$([ "$n" -gt 50 ]; echo $?)" "tshark reads the trust capture ($n records)"
like "$(ts $T/usb.pcapng -T fields -e usb.urb_type | sort -u | tr '\n' ' ')" "'C' 'S'" \
	"urb_type: submits and completions"
like "$(ts $T/usb.pcapng -Y 'usb.transfer_type == 3' -T fields -e usb.endpoint_address | sort -u | tr '\n' ' ')" \
	"^0x04 0x85 $" "bulk endpoints 0x04 OUT and 0x85 IN"
is "$(ts $T/usb.pcapng -T fields -e usb.bus_id -e usb.device_address | sort -u)" "$(printf '1\t2')" \
	"bus 1, device 2 on every record"
like "$(ts $T/usb.pcapng -Y "usb.urb_type == 'S'" -T fields -e usb.urb_status | sort -u | tr '\n' ' ')" \
	"^-115 $" "submits carry -EINPROGRESS"
comments=$(ts $T/usb.pcapng -Y frame.comment -T fields -e frame.comment | tr '\n' '|')
like "$comments" "stage StartSession" "pcapng comment: stage StartSession"
like "$comments" "stage Pair.*stage StartSession.*stage TLS.*stage StopSession" "stage comments in order"
like "$(pcap_count $T/usb.pcapng)" "^$n 220 eof$" "libpcap reads back every record, LINKTYPE 220"

# redaction (default): the Pair reply's EscrowBag is blanked, same length
escrow=$(record_b64 "$rec" EscrowBag)
like "$escrow" "^[A-Za-z0-9+/]{24}$" "pair record has an EscrowBag"
ok "$(grep -qF "$escrow" $T/usb.pcapng; [ $? = 1 ]; echo $?)" "EscrowBag not in the USB capture"
ok "$(grep -qF "$escrow" $T/streams.pcapng; [ $? = 1 ]; echo $?)" "EscrowBag not in the TCP view"
pairrep=$(tsl $T/usb.pcapng -Y 'lockdown.plist contains "EscrowBag"' -T fields -e usbmux.length -e lockdown.plist)
like "$pairrep" "REDACTED" "the Pair reply still decodes (usbmux length intact), EscrowBag REDACTED"
for key in HostPrivateKey RootPrivateKey; do
	k=$(record_b64 "$rec" $key)
	ok "$(cat $T/usb.pcapng $T/streams.pcapng | grep -qF "$k"; [ $? = 1 ]; echo $?)" "no $key in the captures"
done
ok "$(cat $T/usb.pcapng $T/streams.pcapng | grep -qa 'PRIVATE KEY'; [ $? = 1 ]; echo $?)" \
	"no PEM private key in the captures"

# the TCP view: TLS decrypted from the DSB alone (no keylog option)
is "$(tsl $T/streams.pcapng -Y 'tls && lockdown.request == "StopSession" && ip.src == 10.0.0.1' \
	-T fields -e lockdown.request)" "StopSession" "DSB alone: tshark prints the decrypted StopSession request"
is "$(ts $T/streams.pcapng -Y 'tls.handshake.type == 1' -T fields -e tcp.srcport -e tcp.dstport)" \
	"$(printf '49152\t62078')" "the ClientHello opens its own flow (fresh host port, device port 62078)"
like "$(tsl $T/streams.pcapng -Y 'lockdown.request && !tls' -T fields -e lockdown.request | tr '\n' ' ')" \
	"^QueryType .*Pair .*StartSession StartSession $" "plaintext lockdown before the TLS flow"
is "$(ts $T/streams.pcapng -Y 'tls.record.content_type == 23' -T fields -e data.data | grep -c .)" \
	"$(ts $T/streams.pcapng -Y 'tls.record.content_type == 23' | grep -c .)" \
	"every application data record decrypted (no lua)"
is "$(stat -c %a $T/keys.log)" "600" "key log is mode 0600"
like "$(head -1 $T/keys.log)" "^CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}$" "key log in NSS format"

# --keylog without --tls-keys: the TCP view has no secrets; the key log decrypts it
run_lp $T/trust2.out trust --pair --device sim:healthy --pair-dir $T/pd2 \
	--capture-streams $T/s2.pcapng --keylog $T/k2.log
is "$?" 0 "trust with --capture-streams --keylog succeeds"
is "$(tsl $T/s2.pcapng -Y 'lockdown.request == "StopSession"' -T fields -e lockdown.request)" "" \
	"without keys the session stays encrypted"
is "$(tsl $T/s2.pcapng -o tls.keylog_file:$T/k2.log -Y 'lockdown.request == "StopSession" && ip.src == 10.0.0.1' \
	-T fields -e lockdown.request)" "StopSession" "-o tls.keylog_file: decrypts the StopSession request"

# --no-redact keeps the EscrowBag
run_lp $T/trust3.out trust --pair --device sim:healthy --pair-dir $T/pd3 --capture $T/nr.pcapng \
	--capture-streams $T/nrs.pcapng --no-redact
is "$?" 0 "trust --no-redact succeeds"
escrow3=$(record_b64 "$(ls $T/pd3/*.plist | grep -v SystemConfiguration)" EscrowBag)
ok "$(grep -qF "$escrow3" $T/nr.pcapng; echo $?)" "--no-redact: EscrowBag in the USB capture"
ok "$(grep -qF "$escrow3" $T/nrs.pcapng; echo $?)" "--no-redact: EscrowBag in the TCP view"
unlike "$(tsl $T/nr.pcapng -Y 'lockdown.plist contains "EscrowBag"' -T fields -e lockdown.plist)" \
	"REDACTED" "--no-redact: no REDACTED marker"

# ---- list and cable-test ----------------------------------------------------
run_lp $T/list.out list --device sim:healthy --capture $T/list.pcap
is "$?" 0 "list --capture FILE.pcap succeeds"
is "$(od -An -tx1 -N4 $T/list.pcap | tr -d ' ')" "4d3cb2a1" ".pcap name: classic pcap (nanosecond magic)"
like "$(capinfos -t $T/list.pcap 2>&1)" "nanosecond pcap" "capinfos: classic pcap"
n=$(ts $T/list.pcap -Y 'usb.transfer_type == 2' | wc -l)
ok "$([ "$n" -gt 0 ]; echo $?)" "list capture has control transfers ($n)"
like "$(ts $T/list.pcap -Y 'usb.setup.bRequest == 6' -T fields -e usb.bDescriptorType | sort -u | tr '\n' ' ')" \
	"0x01 0x02" "GET_DESCRIPTOR device and configuration in the list capture"
like "$(pcap_count $T/list.pcap)" "^$(ts $T/list.pcap | wc -l) 220 eof$" "libpcap reads the classic pcap back whole"

run_lp $T/flaky.out --cable-test --device sim:flaky --capture $T/flaky.pcapng
is "$?" 1 "cable test on the flaky profile finds a problem"
st=$(ts $T/flaky.pcapng -Y "usb.urb_type == 'C'" -T fields -e usb.urb_status | sort -u | tr '\n' ' ')
like "$st" "(^| )0 " "completions with status 0"
like "$st" "(-71|-32|-110|-108|-19|-104)" "an error status from the flaky link ($st)"
like "$(pcap_count $T/flaky.pcapng)" "^$(ts $T/flaky.pcapng | wc -l) 220 eof$" "libpcap reads the cable-test capture back whole"

# ---- SIGKILL mid-run ----------------------------------------------------------
"$LP" --cable-test --duration 30 --device sim:healthy,clock=real --capture $T/kill.pcapng \
	>/dev/null 2>&1 &
pid=$!
# killed once it has written a good part of its capture, not after a guess
ok "$(wait_for 60 file_over $T/kill.pcapng 20000; echo $?)" "the cable test is capturing (over 20 kB written)"
kill -9 $pid
wait $pid 2>/dev/null
is "$?" 137 "cable test killed with SIGKILL"
ci=$(capinfos $T/kill.pcapng 2>&1)
is "$?" 0 "capinfos reads the killed capture without error"
n=$(echo "$ci" | sed -n 's/^Number of packets: *//p')
ok "$([ "${n:-0}" -gt 100 ]; echo $?)" "it holds the records written before the kill (${n:-0})"
unlike "$(tshark -r $T/kill.pcapng 2>&1 >/dev/null)" "cut short|appears to be damaged" "tshark: no cut-short record"
like "$(pcap_count $T/kill.pcapng)" "^${n:-x} 220 eof$" "libpcap reads every record up to the kill"

done_testing

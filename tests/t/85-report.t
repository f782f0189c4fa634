#!/bin/sh
# 85-report.t - `--report FILE.html` rendered in a real browser (Debian's
# headless Chromium): a healthy pairing, a denied one and a flaky cable from
# the simulated iPhone. Checks the DOM Chromium builds (verdict, one bar per
# stage, histograms, the Trust wait, the disconnect), that the page loads
# without a console message (its CSP forbids everything external, so any
# external load would be reported; a planted one proves the check sees it),
# and takes a screenshot of each. LP_UPDATE_SCREENSHOTS=1 copies them to doc/.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
	echo "1..0 # SKIP chromium is not installed (tools/bootstrap.sh installs it)"
	exit 0
fi

# one fresh profile per run; nothing reaches the network
browse() { # browse OUT ERR ARGS...
	o=$1 e=$2; shift 2
	rm -rf "$T/profile"
	timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
		--disable-component-update --disable-sync --no-first-run --user-data-dir="$T/profile" \
		--enable-logging=stderr --v=0 --hide-scrollbars "$@" >"$o" 2>"$e"
}
console_msgs() { grep -c ':CONSOLE' "$1"; }

report() { # report NAME WANT_EXIT SCREENSHOT_HEIGHT ARGS...
	name=$1 want=$2 height=$3; shift 3
	run_lp "$T/$name.json" "$@" --pair-dir "$T/pd-$name" --json --report "$T/$name.html"
	is $? "$want" "$name: exit $want"
	ok $([ -s "$T/$name.html" ]; echo $?) "$name: report written"
	is "$(ls "$T" | grep -c "^$name.html.")" 0 "$name: no temporary file left"
	browse "$T/$name.dom" "$T/$name.dom.err" --dump-dom "file://$T/$name.html"
	is $? 0 "$name: chromium loads the page"
	is "$(console_msgs "$T/$name.dom.err")" 0 "$name: no console message (no error, no blocked load)"
	D=$T/$name.dom
	like "$(cat "$D")" "<h1 id=\"verdict\">$(jget .verdict "$T/$name.json")</h1>" "$name: verdict at the top"
	is "$(grep -o 'class="stage-bar ' "$D" | wc -l)" "$(jget '.stages | length' "$T/$name.json")" \
		"$name: one bar per stage"
	is "$(grep -o '<g class="stage" data-stage="[^"]*" data-status="[a-z]*"><title>' "$D" | wc -l)" \
		"$(jget '.stages | length' "$T/$name.json")" "$name: every stage has a hover title"
	like "$(grep -c '<svg class="histogram"' "$D")" "^[1-9]" "$name: a latency histogram"
	like "$(cat "$D")" '<section id="device">.*UDID' "$name: device card"
	like "$(cat "$D")" '<svg class="lanes"' "$name: per-endpoint transfer timeline"
	browse "$T/$name.png.out" "$T/$name.png.err" --window-size=1100,$height --screenshot="$T/$name.png" \
		"file://$T/$name.html"
	is "$(head -c 8 "$T/$name.png" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a "$name: screenshot is a PNG"
	is "$(console_msgs "$T/$name.png.err")" 0 "$name: no console message while rendering the screenshot"
}

report healthy 0 1900 trust --pair --device sim:healthy
D=$T/healthy.dom
like "$(cat "$D")" 'data-stage="Pair" data-status="ok"' "healthy: Pair ok"
like "$(cat "$D")" '<rect class="trust-wait"' "healthy: the Trust wait is marked"
is "$(grep -c 'class="stage-bar st-fail"' "$D")" 0 "healthy: no failed stage"
like "$(cat "$D")" 'data-probe="ep_0x00"' "healthy: control-transfer histogram"

report deny 1 1700 trust --pair --device sim:deny
D=$T/deny.dom
like "$(cat "$D")" 'data-stage="Pair" data-status="fail"' "deny: Pair failed"
is "$(grep -o 'class="stage-bar st-fail"' "$D" | wc -l | tr -d ' ')" 1 "deny: exactly one failed bar"
like "$(cat "$D")" '<p id="remedy" class="remedy"><b>Remedy:</b> The user tapped' "deny: the remedy"
like "$(cat "$D")" 'Don&#39;t Trust|Don.t Trust' "deny: the remedy names Don't Trust"

report flaky 1 2450 --cable-test --device sim:flaky
D=$T/flaky.dom
for p in control_rtt mux_rtt lockdown_rtt; do
	like "$(cat "$D")" "<svg class=\"histogram\" data-probe=\"$p\"" "flaky: $p histogram"
done
like "$(cat "$D")" '<line class="gone"' "flaky: the disconnect is marked"
like "$(cat "$D")" '<rect class="x-error"' "flaky: transfer errors are marked"
like "$(cat "$D")" '<rect class="gap"' "flaky: the gap while the device was away is marked"
like "$(cat "$D")" 'data-stage="round trips" data-status="fail"' "flaky: round trips failed"

# the console check can fail: plant an external image and an inline script
sed 's#<main>#<main><img src="http://127.0.0.1:9/x.png"><script>console.log(1)</script>#' "$T/healthy.html" >"$T/planted.html"
browse "$T/planted.dom" "$T/planted.err" --dump-dom "file://$T/planted.html"
like "$(console_msgs "$T/planted.err")" "^[1-9]" "a planted external load is reported (the check can fail)"
like "$(grep ':CONSOLE' "$T/planted.err")" "Content Security Policy" "... as a CSP violation"

# analyze shares the renderer: anomalies with packet numbers
run_lp "$T/an.txt" analyze "$ROOT/captures/sim-flaky-cable.pcapng" --report "$T/an.html"
is $? 1 "analyze --report: exit 1 (FLAKY)"
# the packet numbers the report shows are the analyzer's own (from its JSON), so
# regenerating the golden capture moves both together
"$LP" analyze "$ROOT/captures/sim-flaky-cable.pcapng" --json >"$T/an.json" 2>/dev/null
GONE=$(jq -r '[.anomalies[] | select(test("gone")) | capture("^packet (?<n>[0-9]+)").n][0]' "$T/an.json")
FIRSTERR=$(jq -r '[.anomalies[] | select(test("ended EPROTO")) | capture("^packet (?<n>[0-9]+)").n][0]' "$T/an.json")
like "$GONE $FIRSTERR" '^[0-9]+ [0-9]+$' "analyze --json names the disconnect and the first transfer error by packet"
like "$(cat "$T/an.html")" "<span class=\"pkt\">packet $GONE</span>device 1.2 gone" "analyze: anomaly with its packet number"
like "$(cat "$T/an.html")" '<h1 id="verdict">FLAKY</h1>' "analyze: verdict"
# a capture that starts mid-session: the device's ids are unknown, said so
run_lp "$T/mid.txt" analyze "$ROOT/captures/mid-usbmuxd-usbmon.pcap" --report "$T/mid.html"
is $? 0 "analyze --report of a mid-session capture: exit 0 (TRUSTED)"
like "$(cat "$T/mid.html")" "USB ID</dt><dd>unknown \(descriptors not in the capture\)" "mid-session: USB ID unknown, and why"
unlike "$(cat "$T/mid.html")" "0000:0000" "mid-session: no made-up 0000:0000"
is "$(grep -o '<g class="lane" data-ep="0x[0-9a-f]*"' "$T/an.html" | tr '\n' ' ')" \
	'<g class="lane" data-ep="0x00" <g class="lane" data-ep="0x04" <g class="lane" data-ep="0x85" ' \
	"analyze: the capture's transfers, one lane per endpoint"
like "$(cat "$T/an.html")" '<line class="gone"[^>]*><title>[^<]*packet '"$GONE" "analyze: the disconnect at its packet"
like "$(cat "$T/an.html")" '<rect class="x-error"[^>]*><title>[^<]*[(]packet '"$FIRSTERR"'[)]' "analyze: the first transfer error at its packet"
cat "$ROOT/captures/sim-flaky-cable.pcapng" | "$LP" analyze - --report "$T/pipe.html" >/dev/null 2>&1
like "$(cat "$T/pipe.html")" 'read from a pipe' "analyze from a pipe: the report says why there is no timeline"

# a report that cannot be written is an error, not a silent success
run_lp "$T/nowrite.txt" trust --device sim:healthy --pair-dir "$T/pd-healthy" --report "$T/no/such/dir/r.html"
is $? 3 "unwritable --report path: exit 3"
like "$(cat "$T/nowrite.txt.err")" "report not written: cannot create" "... and says why"
run_lp "$T/u.txt" list --report "$T/x.html"
is $? 2 "--report on list is a usage error"

if [ "${LP_UPDATE_SCREENSHOTS:-}" = 1 ]; then
	for n in healthy deny flaky; do cp "$T/$n.png" "$ROOT/doc/report-$n.png"; done
	echo "# screenshots copied to doc/"
fi
done_testing

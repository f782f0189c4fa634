-- linkprobe.lua - Wireshark dissector for Apple usbmux on the bulk endpoints
-- of a usbmon capture (linkprobe --capture, tcpdump -i usbmonN), and the
-- lockdown framing inside its TCP-like connections.
--
-- Reference: doc/protocol.md sections 2 (usbmux) and 4.1
-- (lockdown: 4-byte big-endian length + XML plist).
--
--   mux header v1 (8 bytes):  protocol u32 | length u32       (all BE)
--   mux header v2 (16 bytes): ... | magic 0xFEEDFACE | tx_seq u16 | rx_seq u16
--   protocol 0 VERSION (always the 8-byte header): major, minor, padding u32
--   protocol 1 CONTROL: type u8 + text;  2 SETUP (v2): one byte (0x07)
--   protocol 6 TCP: 20-byte TCP header (window in units of 256 bytes) + data
--
-- Found heuristically on "usb.bulk" (a transfer whose first word is a known
-- protocol and whose length word equals the transfer length), so it works
-- without the configuration descriptors in the capture. Install: copy to
-- ~/.local/lib/wireshark/plugins/ or run with -X lua_script:linkprobe.lua.
-- Lockdown traffic after StartSession is TLS: shown as such, not decrypted.
--
-- The TCP view (linkprobe --capture-streams, synthetic IPv4/TCP): lockdown is
-- also registered on tcp.port 62078 (plaintext flows, messages reassembled
-- across segments) and on tls.port 62078, so with the session keys (the
-- file's Decryption Secrets Block, or -o tls.keylog_file:FILE) the decrypted
-- requests show as lockdown.request too. TLS flows are left to Wireshark's
-- TLS heuristic (the dissector declines a segment that starts a TLS record).

local LOCKDOWN_PORT = 62078
local LOCKDOWN_MAX = 4 * 1024 * 1024 -- LKD_MAX_MESSAGE
local MUX_MAGIC = 0xFEEDFACE

local mux = Proto("usbmux", "Apple usbmux")
local protos = { [0] = "VERSION", [1] = "CONTROL", [2] = "SETUP", [6] = "TCP" }
local mf = mux.fields
mf.protocol = ProtoField.uint32("usbmux.protocol", "Protocol", base.DEC, protos)
mf.length = ProtoField.uint32("usbmux.length", "Length", base.DEC)
mf.magic = ProtoField.uint32("usbmux.magic", "Magic", base.HEX)
mf.tx_seq = ProtoField.uint16("usbmux.tx_seq", "TX sequence", base.DEC)
mf.rx_seq = ProtoField.uint16("usbmux.rx_seq", "RX sequence", base.DEC)
mf.ver_major = ProtoField.uint32("usbmux.version.major", "Major", base.DEC)
mf.ver_minor = ProtoField.uint32("usbmux.version.minor", "Minor", base.DEC)
mf.ver_pad = ProtoField.uint32("usbmux.version.padding", "Padding", base.HEX)
mf.setup = ProtoField.uint8("usbmux.setup", "Setup value", base.HEX)
mf.ctl_type = ProtoField.uint8("usbmux.control.type", "Control type", base.DEC,
	{ [3] = "error", [4] = "warning", [5] = "warning", [7] = "info" })
mf.ctl_text = ProtoField.string("usbmux.control.text", "Control text")
mf.sport = ProtoField.uint16("usbmux.tcp.srcport", "Source port", base.DEC)
mf.dport = ProtoField.uint16("usbmux.tcp.dstport", "Destination port", base.DEC)
mf.seq = ProtoField.uint32("usbmux.tcp.seq", "Sequence number", base.DEC)
mf.ack = ProtoField.uint32("usbmux.tcp.ack", "Acknowledgment number", base.DEC)
mf.offset = ProtoField.uint8("usbmux.tcp.offset", "Data offset", base.HEX)
mf.flags = ProtoField.uint8("usbmux.tcp.flags", "Flags", base.HEX)
mf.f_fin = ProtoField.bool("usbmux.tcp.flags.fin", "FIN", 8, nil, 0x01)
mf.f_syn = ProtoField.bool("usbmux.tcp.flags.syn", "SYN", 8, nil, 0x02)
mf.f_rst = ProtoField.bool("usbmux.tcp.flags.rst", "RST", 8, nil, 0x04)
mf.f_psh = ProtoField.bool("usbmux.tcp.flags.psh", "PSH", 8, nil, 0x08)
mf.f_ack = ProtoField.bool("usbmux.tcp.flags.ack", "ACK", 8, nil, 0x10)
mf.window = ProtoField.uint16("usbmux.tcp.window", "Window (x256)", base.DEC)
mf.window_bytes = ProtoField.uint32("usbmux.tcp.window_bytes", "Window size [bytes]", base.DEC)
mf.checksum = ProtoField.uint16("usbmux.tcp.checksum", "Checksum", base.HEX)
mf.urgent = ProtoField.uint16("usbmux.tcp.urgent", "Urgent", base.DEC)
mf.payload_len = ProtoField.uint32("usbmux.tcp.len", "Payload length", base.DEC)
mf.payload = ProtoField.bytes("usbmux.tcp.payload", "Payload")

local lkd = Proto("lockdown", "Apple lockdown")
local lf = lkd.fields
lf.length = ProtoField.uint32("lockdown.length", "Message length", base.DEC)
lf.request = ProtoField.string("lockdown.request", "Request")
lf.error = ProtoField.string("lockdown.error", "Error")
lf.plist = ProtoField.string("lockdown.plist", "Plist (XML)")
lf.tls = ProtoField.bytes("lockdown.tls", "TLS record data")

local function flag_names(fl)
	local t = {}
	if bit.band(fl, 0x02) ~= 0 then t[#t + 1] = "SYN" end
	if bit.band(fl, 0x10) ~= 0 then t[#t + 1] = "ACK" end
	if bit.band(fl, 0x08) ~= 0 then t[#t + 1] = "PSH" end
	if bit.band(fl, 0x01) ~= 0 then t[#t + 1] = "FIN" end
	if bit.band(fl, 0x04) ~= 0 then t[#t + 1] = "RST" end
	return table.concat(t, ", ")
end

local function plist_value(s, key)
	return s:match("<key>" .. key .. "</key>%s*<string>([^<]*)</string>")
end

-- Lockdown payload of one mux TCP segment. Returns a summary for Info.
local function dissect_lockdown(tvb, pinfo, tree)
	local n = tvb:len()
	local t = tree:add(lkd, tvb())
	if n >= 1 and tvb(0, 1):uint() >= 0x14 and tvb(0, 1):uint() <= 0x17 and n >= 3
	    and tvb(1, 1):uint() == 3 then
		t:add(lf.tls, tvb())
		return "lockdown TLS"
	end
	local off = 0
	local summary
	if n >= 4 then
		local l = tvb(0, 4):uint()
		if l == n - 4 or (n == 4 and l > 0 and l < 0x1000000) then
			t:add(lf.length, tvb(0, 4))
			off = 4
			if n == 4 then
				return "lockdown length " .. l
			end
		end
	end
	local s = tvb:raw(off, n - off)
	if s:sub(1, 5) == "<?xml" or s:find("<plist", 1, true) then
		t:add(lf.plist, tvb(off, n - off), s)
		local req = plist_value(s, "Request")
		local err = plist_value(s, "Error")
		if req then t:add(lf.request, tvb(off, n - off), req) end
		if err then t:add(lf.error, tvb(off, n - off), err) end
		if err then
			summary = "lockdown Error: " .. err .. (req and (" (" .. req .. ")") or "")
		elseif req then
			summary = "lockdown Request: " .. req
		else
			summary = "lockdown plist"
		end
	elseif s:sub(1, 6) == "bplist" then
		summary = "lockdown binary plist"
	else
		summary = "lockdown data"
	end
	return summary
end

local function dissect_tcp(tvb, off, pinfo, tree)
	local n = tvb:len()
	if n - off < 20 then
		return "TCP (truncated)"
	end
	local sp, dp = tvb(off, 2):uint(), tvb(off + 2, 2):uint()
	local seq, ack = tvb(off + 4, 4):uint(), tvb(off + 8, 4):uint()
	local fl, win = tvb(off + 13, 1):uint(), tvb(off + 14, 2):uint()
	tree:add(mf.sport, tvb(off, 2))
	tree:add(mf.dport, tvb(off + 2, 2))
	tree:add(mf.seq, tvb(off + 4, 4))
	tree:add(mf.ack, tvb(off + 8, 4))
	tree:add(mf.offset, tvb(off + 12, 1))
	local ft = tree:add(mf.flags, tvb(off + 13, 1))
	ft:append_text(" (" .. flag_names(fl) .. ")")
	ft:add(mf.f_fin, tvb(off + 13, 1))
	ft:add(mf.f_syn, tvb(off + 13, 1))
	ft:add(mf.f_rst, tvb(off + 13, 1))
	ft:add(mf.f_psh, tvb(off + 13, 1))
	ft:add(mf.f_ack, tvb(off + 13, 1))
	tree:add(mf.window, tvb(off + 14, 2))
	tree:add(mf.window_bytes, tvb(off + 14, 2), win * 256)
	tree:add(mf.checksum, tvb(off + 16, 2))
	tree:add(mf.urgent, tvb(off + 18, 2))
	local plen = n - off - 20
	tree:add(mf.payload_len, plen)
	local info = string.format("%d → %d [%s] Seq=%d Ack=%d Win=%d Len=%d", sp, dp,
		flag_names(fl), seq, ack, win * 256, plen)
	if plen > 0 then
		local ptvb = tvb(off + 20, plen):tvb()
		tree:add(mf.payload, tvb(off + 20, plen))
		if sp == LOCKDOWN_PORT or dp == LOCKDOWN_PORT then
			info = info .. "  " .. dissect_lockdown(ptvb, pinfo, tree)
		end
	end
	return info
end

local function heuristic(tvb, pinfo, tree)
	local n = tvb:len()
	if n < 8 then return false end
	local proto, plen = tvb(0, 4):uint(), tvb(4, 4):uint()
	if not protos[proto] or plen ~= n then return false end
	local hdr = 8
	if proto ~= 0 and n >= 16 and tvb(8, 4):uint() == MUX_MAGIC then hdr = 16 end
	if proto == 2 and hdr ~= 16 then return false end

	pinfo.cols.protocol = "usbmux"
	local t = tree:add(mux, tvb(), "Apple usbmux (v" .. (hdr == 16 and 2 or 1) .. " header)")
	t:add(mf.protocol, tvb(0, 4))
	t:add(mf.length, tvb(4, 4))
	if hdr == 16 then
		t:add(mf.magic, tvb(8, 4))
		t:add(mf.tx_seq, tvb(12, 2))
		t:add(mf.rx_seq, tvb(14, 2))
	end
	local info = protos[proto]
	if proto == 0 and n >= 20 then
		t:add(mf.ver_major, tvb(8, 4))
		t:add(mf.ver_minor, tvb(12, 4))
		t:add(mf.ver_pad, tvb(16, 4))
		info = string.format("VERSION %d.%d", tvb(8, 4):uint(), tvb(12, 4):uint())
	elseif proto == 2 and n > hdr then
		t:add(mf.setup, tvb(hdr, 1))
		info = string.format("SETUP 0x%02x", tvb(hdr, 1):uint())
	elseif proto == 1 and n > hdr then
		-- usbmuxd reads CONTROL at offset 16 whatever the header version
		t:add(mf.ctl_type, tvb(hdr, 1))
		if n > hdr + 1 then
			t:add(mf.ctl_text, tvb(hdr + 1, n - hdr - 1))
		end
		info = "CONTROL " .. tvb(hdr, 1):uint()
	elseif proto == 6 then
		info = "TCP " .. dissect_tcp(tvb, hdr, pinfo, t)
	end
	if hdr == 16 then
		info = info .. string.format("  (tx %d rx %d)", tvb(12, 2):uint(), tvb(14, 2):uint())
	end
	pinfo.cols.info = info
	return true
end

mux:register_heuristic("usb.bulk", heuristic)

-- Lockdown over TCP (and over decrypted TLS): 4-byte BE length + plist,
-- reassembled with Wireshark's desegmentation.
function lkd.dissector(tvb, pinfo, tree)
	local n = tvb:len()
	if n >= 2 and tvb(0, 1):uint() >= 0x14 and tvb(0, 1):uint() <= 0x18
	    and tvb(1, 1):uint() == 3 then
		return 0 -- a TLS record: not ours
	end
	local off = 0
	local infos = {}
	while off < n do
		if n - off < 4 then
			pinfo.desegment_offset = off
			pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
			break
		end
		local l = tvb(off, 4):uint()
		if l == 0 or l > LOCKDOWN_MAX then
			if off == 0 then return 0 end
			break
		end
		if n - off < 4 + l then
			pinfo.desegment_offset = off
			pinfo.desegment_len = 4 + l - (n - off)
			break
		end
		infos[#infos + 1] = dissect_lockdown(tvb(off, 4 + l):tvb(), pinfo, tree)
		off = off + 4 + l
	end
	if #infos > 0 then
		pinfo.cols.protocol = "lockdown"
		pinfo.cols.info = table.concat(infos, "; ")
	end
	return n
end

DissectorTable.get("tcp.port"):add(LOCKDOWN_PORT, lkd)
DissectorTable.get("tls.port"):add(LOCKDOWN_PORT, lkd)

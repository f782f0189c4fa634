/* cap_streams.h - the "TCP view" of a capture: each usbmux connection
 * re-created as a synthetic IPv4/TCP flow, so Wireshark's TCP (and, with the
 * session keys, TLS) dissectors follow lockdown; plus the NSS key-log sink.
 *
 * Nothing is sent anywhere: packets go into a capture file on an interface of
 * link type LINKTYPE_IPV4 (228). Host is 10.0.0.1, device 10.0.0.2 (fixed
 * synthetic addresses), ports are the mux ports. Per connection:
 *   open   -> SYN (host), SYN|ACK (device), ACK (host); ISN 0 both ways,
 *             like usbmux itself, so relative and absolute numbers agree
 *   data   -> PSH|ACK segments from the sender, seq = bytes sent so far + 1,
 *             ack = bytes received + 1, split at CAP_STREAMS_MSS; no pure
 *             ACKs (USB is reliable; Wireshark does not need them)
 *   close  -> RST|ACK from the side that closed, like usbmux (which never
 *             sends FIN)
 * Data for a connection never opened (capture started mid-way) opens it
 * implicitly. IPv4 header and TCP checksums are real.
 *
 * TLS in the middle of a connection (lockdown's StartSession): when the host
 * sends a TLS ClientHello record (16 03 0x .. .. 01) on a flow that already
 * carried plaintext, that flow ends (FIN both ways, ACK) and the connection
 * goes on in a new flow from the same device port (62078) and a fresh host
 * port (CAP_STREAMS_FLOW_PORT_FIRST, then +1 per extra flow). The TLS flow
 * starts with the ClientHello, which is what Wireshark's TLS heuristic on TCP
 * (on by default) needs: with the keys (DSB or tls.keylog_file) it decrypts
 * the session. The TLS records are followed; after an alert (StopSession's
 * close_notify), bytes at a record boundary that are no TLS record start a
 * new plaintext flow the same way. Why not one flow: Wireshark binds a TCP
 * conversation to one dissector, so on a single flow either the plaintext
 * before or after the TLS part is shown as TLS "Continuation Data"/garbage.
 * Why keep 62078 rather than a TLS port like 443: "tcp.port == 62078" still
 * finds all of lockdown, and the heuristic does not need the port.
 *
 * Redaction (default on; cap_streams_set_redact): plaintext payload goes
 * through a cap_redactor per connection and direction (EscrowBag, private
 * keys; see cap_tap.h), like the USB capture. TLS payload is left alone.
 *
 * Key log: a sink with the lp_tls_keylog_fn signature (proto/tls.h) that
 * appends each line to a file (0600, flushed per line; --keylog) and/or
 * writes it to a capture as a Decryption Secrets Block (--tls-keys). The DSB
 * is written the moment the line arrives: OpenSSL's key-log callback fires
 * while the handshake derives the secrets, before it encrypts anything with
 * them, and the streams writer emits packets in the order the host link
 * reports them, so the DSB precedes the first record it decrypts (what
 * readers such as tshark's single pass need). No buffering of packets.
 *
 * Reference: RFC 791 (IPv4), RFC 793 (TCP), doc/protocol.md 2.7/2.8, 6.3;
 * NSS key log format (Mozilla NSS documentation). */
#ifndef LP_CAP_STREAMS_H
#define LP_CAP_STREAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/capture/cap_writer.h"

#define CAP_STREAMS_HOST_IP 0x0A000001u	   /* 10.0.0.1 */
#define CAP_STREAMS_DEV_IP 0x0A000002u	   /* 10.0.0.2 */
#define CAP_STREAMS_MSS 65000u		   /* payload per synthetic segment (< 65535 - 40) */
#define CAP_STREAMS_CONN_MAX 4096u	   /* connections tracked at once */
#define CAP_KEYLOG_LINE_MAX 1024u	   /* longest key-log line accepted */
#define CAP_STREAMS_FLOW_PORT_FIRST 49152u /* host port of the first extra (TLS/plaintext) flow */

/* cap_streams_event() arguments (match the host link's observer). */
enum cap_streams_dir { CAP_STREAMS_H2D = 0, CAP_STREAMS_D2H = 1 };
enum cap_streams_ev { CAP_STREAMS_DATA = 0, CAP_STREAMS_OPEN = 1, CAP_STREAMS_CLOSE = 2 };

struct cap_streams;

/* Adds an IPv4 interface named `if_name` (NULL = "usbmux") to `w` (borrowed,
 * must outlive the streams writer). */
int cap_streams_new(struct cap_writer *w, const char *if_name, struct cap_streams **out,
		    struct lp_errinfo *e);
/* NULL ok. Connections still open are left as they are (no RST invented). */
void cap_streams_free(struct cap_streams *s);

/* Redact secrets in plaintext payload (default true; false = --no-redact).
 * Set before the first event. */
void cap_streams_set_redact(struct cap_streams *s, bool redact);
/* Payload bytes blanked so far. */
uint64_t cap_streams_redacted(const struct cap_streams *s);

/* One event of mux connection `conn` (the link's id for it), whose host-side
 * port is `sport` and device-side port `dport` (as the host sees them).
 * dir: 0 host->device, 1 device->host. event: 0 data (data/len borrowed),
 * 1 open, 2 close. Returns 0 or a negative lp_err (writer errors; LP_ETOOBIG
 * over CAP_STREAMS_CONN_MAX connections; LP_EINVAL bad dir/event). */
int cap_streams_event(struct cap_streams *s, uint64_t wall_ns, uint32_t conn, uint16_t sport,
		      uint16_t dport, int dir, int event, const uint8_t *data, size_t len);

/* Adapter for the host link's stream observer (proto/hostlink.h
 * hl_stream_observer_fn, same signature; ud = the streams writer): stamps
 * each event with the wall time of `clock` (set with cap_streams_set_clock;
 * without a clock the time is 0). Errors are kept for cap_streams_error(). */
void cap_streams_set_clock(struct cap_streams *s, const struct lp_clock *clock);
void cap_streams_observe(void *ud, uint32_t conn, uint16_t sport, uint16_t dport, int dir,
			 const uint8_t *data, size_t len, int event);
/* First error cap_streams_observe() met, 0 if none. */
int cap_streams_error(const struct cap_streams *s);

/* Build one synthetic IPv4/TCP packet into out (needs 40 + len bytes):
 * exposed for tests. flags as in TCP (0x02 SYN, 0x10 ACK, ...). Returns the
 * packet length. */
size_t cap_streams_build(uint8_t *out, uint32_t src_ip, uint32_t dst_ip, uint16_t sport,
			 uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t ip_id,
			 const uint8_t *data, size_t len);

/* ---- NSS key log sink ---------------------------------------------------- */
struct cap_keylog;

/* path: key-log file to append to (created 0600), NULL = none.
 * dsb: writer that gets a DSB per line (borrowed), NULL = none. */
int cap_keylog_open(const char *path, struct cap_writer *dsb, struct cap_keylog **out,
		    struct lp_errinfo *e);
/* lp_tls_keylog_fn: ud = the cap_keylog, line without newline. Lines with
 * control characters or over CAP_KEYLOG_LINE_MAX are dropped. Errors are
 * kept for cap_keylog_close(). */
void cap_keylog_line(void *ud, const char *line);
/* Lines accepted so far. */
size_t cap_keylog_count(const struct cap_keylog *k);
/* Close the file; returns the first error seen (0 if none). NULL ok. */
int cap_keylog_close(struct cap_keylog *k);

#endif

/* diag_bus.c - the verdict rule for what only a bus-level capture shows:
 * packets corrupted on the wire.
 *
 * A packet that fails its CRC, or bytes that are no packet at all, come from
 * the signal between host and device: the cable, a connector, a hub or an
 * extension lead. USB hides them from the host's software by retrying, so a
 * session can look healthy (even TRUSTED) while the link is marginal; the
 * next longer transfer or a backup is what fails. So any corrupted packet
 * makes the link FLAKY, whatever the device did, with the counts as evidence
 * and the cable/port remedy; the verdict the device's stages gave is kept in
 * the evidence. */
#include <stdio.h>
#include <string.h>

#include "src/diag/diag.h"

void diag_rule_bus_corruption(struct diag_report *r, uint64_t bad, uint64_t total, uint64_t crc_bad,
			      uint64_t first_pkt, uint64_t retries, uint64_t gave_up)
{
	char was[64] = "";

	if (!r || !bad)
		return;
	if (r->verdict != DIAG_V_NONE && r->verdict != DIAG_V_FLAKY)
		snprintf(was, sizeof(was), "; without them the verdict would be %s",
			 diag_verdict_name(r->verdict));
	diag_set_verdict(
		r, DIAG_V_FLAKY,
		"%llu of %llu packets on the wire were corrupted (%llu failed their CRC, %llu unreadable; "
		"first at packet %llu); %llu transactions retried, %llu given up by the host%s",
		(unsigned long long)bad, (unsigned long long)total, (unsigned long long)crc_bad,
		(unsigned long long)(bad - crc_bad), (unsigned long long)first_pkt,
		(unsigned long long)retries, (unsigned long long)gave_up, was);
	snprintf(
		r->remedy_extra, sizeof(r->remedy_extra),
		"%llu of %llu packets failed their CRC or were unreadable: signal integrity - replace the cable, "
		"avoid hubs and extension leads, and plug straight into a port on the computer.",
		(unsigned long long)bad, (unsigned long long)total);
}

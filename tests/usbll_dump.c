/* usbll_dump.c - one line per packet of a bus-level capture, as decoded by
 * src/capture/usbll.c, in the shape of
 *   tshark -T fields -e frame.number -e usbll.pid -e usbll.crc5.status -e usbll.crc16.status
 * (tab-separated; PID byte as 0x%02x; CRC status 1 good, 0 bad, empty when
 * the packet has no such CRC), so tests/t/62-bus.t can hold linkprobe's
 * decoder against Wireshark's on the same file. Exit 0, or 2 with a message
 * when the file cannot be read or is not a USB 2.0 packet capture. */
#include <stdio.h>

#include <pcap/pcap.h>

#include "src/capture/usbll.h"

int main(int argc, char **argv)
{
	char err[PCAP_ERRBUF_SIZE] = "";
	struct pcap_pkthdr *h;
	const u_char *d;
	unsigned long n = 0;
	pcap_t *p;

	if (argc != 2) {
		fprintf(stderr, "usage: usbll-dump FILE\n");
		return 2;
	}
	p = pcap_open_offline(argv[1], err);
	if (!p) {
		fprintf(stderr, "usbll-dump: %s\n", err);
		return 2;
	}
	if (!usbll_linktype_speed(pcap_datalink(p), NULL)) {
		fprintf(stderr, "usbll-dump: link type %d is not a USB 2.0 packet capture\n",
			pcap_datalink(p));
		pcap_close(p);
		return 2;
	}
	while (pcap_next_ex(p, &h, &d) == 1) {
		struct usbll_pkt k;
		int r = usbll_decode(d, h->caplen, &k);
		const char *c5 = "", *c16 = "";
		n++;
		if (r == 0 && (k.kind == USBLL_K_TOKEN || k.kind == USBLL_K_SOF))
			c5 = k.crc_ok ? "1" : "0";
		else if (r == 0 && k.kind == USBLL_K_DATA)
			c16 = k.crc_ok ? "1" : "0";
		printf("%lu\t0x%02x\t%s\t%s\n", n, h->caplen ? d[0] : 0, c5, c16);
	}
	pcap_close(p);
	return 0;
}

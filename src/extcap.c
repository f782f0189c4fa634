/* extcap.c - Wireshark extcap interface (placeholder until implemented). */
#include <stdio.h>

#include "app.h"

int extcap_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "linkprobe: extcap is not implemented yet\n");
	return EXIT_USAGE;
}

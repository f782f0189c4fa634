/* fuzz_main.h - a main() for running a harness without libFuzzer: built
 * with -DFUZZ_MAIN, it feeds each file named on the command line (up to
 * 1 MiB) to LLVMFuzzerTestOneInput once. Included last by the harnesses
 * that say "Also builds standalone". */
#ifndef LP_FUZZ_MAIN_H
#define LP_FUZZ_MAIN_H
#ifdef FUZZ_MAIN
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *fp = fopen(argv[i], "rb");
		static uint8_t buf[1 << 20];
		size_t n;

		if (!fp)
			return 1;
		n = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		LLVMFuzzerTestOneInput(buf, n);
	}
	return 0;
}
#endif
#endif

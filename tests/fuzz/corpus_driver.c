/* Runs a libFuzzer target over its committed seed corpus, as a regular test:
 * every seed must go through the parser without a crash or a sanitizer
 * report.  The real fuzzing is `clang -fsanitize=fuzzer` on the same target
 * (see tests/fuzz/README.md); this keeps the targets compiling and the seeds
 * passing in every build.
 *
 *   FUZZ_CORPUS=<dir> ./fuzz_http_corpus     (default: $MESHD_SRCDIR/tests/fuzz/corpus/<name>)
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FUZZ_NAME
#error "FUZZ_NAME must name the corpus directory"
#endif

int main(void)
{
	char dir[4096];
	const char *env = getenv("FUZZ_CORPUS");
	const char *src = getenv("MESHD_SRCDIR");
	if (env)
		snprintf(dir, sizeof(dir), "%s", env);
	else
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", src ? src : ".", FUZZ_NAME);
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "no corpus at %s\n", dir);
		return 1;
	}
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[8192];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		static uint8_t buf[1 << 20];
		size_t len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		/* An exact-size heap copy, so ASan sees any read past the end. */
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, buf, len);
		LLVMFuzzerTestOneInput(copy, len);
		free(copy);
		n++;
	}
	closedir(d);
	printf("%s: %d seeds\n", FUZZ_NAME, n);
	return n > 0 ? 0 : 1;
}

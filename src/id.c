/* id — random row ids and UUIDs; see include/meshd/id.h. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include <sodium.h>

#include "meshd/id.h"

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* One randombytes_buf() per id, not one per character (libsodium 1.0.18
 * makes a getrandom syscall per call).  Uniform by rejection: a byte is
 * used only below 248 = 4 * 62. */
void id_new(char out[ID_LEN + 1])
{
	uint8_t r[64];
	int n = 0;
	while (n < ID_LEN) {
		randombytes_buf(r, sizeof(r));
		for (size_t i = 0; i < sizeof(r) && n < ID_LEN; i++)
			if (r[i] < 248)
				out[n++] = base62[r[i] % 62];
	}
	out[ID_LEN] = '\0';
}

void id_uuid4(char out[UUID_LEN + 1])
{
	uint8_t b[16];
	randombytes_buf(b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
}

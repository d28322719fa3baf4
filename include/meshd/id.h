/* id — identifiers meshd mints (PROTOCOL.md §1).  Any thread. */
#ifndef MESHD_ID_H
#define MESHD_ID_H

#define ID_LEN 32    /* row ids: 32 chars of [0-9A-Za-z] */
#define UUID_LEN 36  /* system-push messageId: UUID v4 */

/* 32 base62 characters, uniformly drawn (libsodium randombytes). */
void id_new(char out[ID_LEN + 1]);
/* Lowercase UUID v4 "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx". */
void id_uuid4(char out[UUID_LEN + 1]);

#endif

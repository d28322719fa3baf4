/* meshclient — the client side of the claudemesh protocol (PROTOCOL.md),
 * without any I/O.
 *
 * Builders turn arguments into one compact JSON frame (malloc'd text; free
 * it with free()); mc_parse() classifies a frame from the broker.  The
 * caller moves the bytes: the integration tests over tests/lib/wsc.h, the
 * benchmark (contrib/meshbench) over libevent + wslay.
 *
 * Keys are Ed25519 (libsodium); DMs are crypto_box between the two Ed25519
 * keys converted to X25519; multicast payloads are plain base64 of UTF-8
 * text (PROTOCOL.md §1).  Every string handed to a builder must be valid
 * UTF-8 (jansson refuses anything else: the builder returns NULL).  Builders
 * return NULL on a missing required argument or when out of memory.
 *
 * Any thread: nothing here holds state between calls.
 */
#ifndef MESHCLIENT_H
#define MESHCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define MC_PK_HEX_LEN 64        /* Ed25519 public key in hex */
#define MC_SIG_HEX_LEN 128      /* Ed25519 detached signature in hex */
#define MC_ATTEST_TTL_MS (12LL * 3600 * 1000)   /* the CLI's attestation lifetime */

/* ------------------------------------------------------------------ keys */

struct mc_identity {
	unsigned char pk[32];
	unsigned char sk[64];   /* libsodium layout: seed || pk */
	char pk_hex[MC_PK_HEX_LEN + 1];         /* lowercase */
};

/* Deterministic key pair from a 32-byte seed (crypto_sign_seed_keypair). */
bool mc_identity_from_seed(const unsigned char seed[32], struct mc_identity *out)
	__attribute__((warn_unused_result));
/* A fresh random key pair (crypto_sign_keypair). */
bool mc_identity_random(struct mc_identity *out) __attribute__((warn_unused_result));

/* Ed25519 detached signature over the len bytes at msg, as 128 lowercase hex
 * characters plus NUL in out. */
bool mc_sign_hex(const struct mc_identity *id, const void *msg, size_t len,
		 char out[MC_SIG_HEX_LEN + 1]) __attribute__((warn_unused_result));
/* True if sig_hex (128 hex, any case) is pubkey_hex's (64 hex, any case)
 * signature over the NUL-terminated string msg. */
bool mc_verify_hex(const char *pubkey_hex, const char *msg, const char *sig_hex)
	__attribute__((warn_unused_result));

/* --------------------------------------------------------------- helpers */

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
long long mc_now_ms(void);
/* n-1 random characters from [0-9A-Za-z] and a NUL: char id[33] gives the
 * broker's 32-character id format.  n == 0 writes nothing. */
void mc_random_id(char *out, size_t n);

/* Standard base64 (with padding) of len bytes; malloc'd, NULL when out of memory. */
char *mc_b64(const void *data, size_t len);
/* Decodes standard padded base64.  *out is malloc'd and NUL-terminated (the
 * NUL not counted in *len); false (nothing allocated) if b64 is not valid. */
bool mc_unb64(const char *b64, unsigned char **out, size_t *len)
	__attribute__((warn_unused_result));

/* ------------------------------------------------------------ encryption */

/* Seals a DM from sender to the holder of recipient_pubkey_hex: crypto_box_easy
 * with both Ed25519 keys converted to X25519 and a random 24-byte nonce.
 * *nonce_b64 and *ciphertext_b64 are malloc'd standard base64.  False if the
 * recipient key is not 64 hex characters of a valid point. */
bool mc_encrypt_dm(const struct mc_identity *sender, const char *recipient_pubkey_hex,
		   const void *plain, size_t len, char **nonce_b64, char **ciphertext_b64)
	__attribute__((warn_unused_result));
/* Opens a DM addressed to recipient and sent by sender_pubkey_hex (a push's
 * senderPubkey).  *plain is malloc'd and NUL-terminated (not counted in
 * *len).  False (nothing allocated) if anything does not decode or the box
 * does not authenticate. */
bool mc_decrypt_dm(const struct mc_identity *recipient, const char *sender_pubkey_hex,
		   const char *nonce_b64, const char *ciphertext_b64,
		   unsigned char **plain, size_t *len) __attribute__((warn_unused_result));

/* ------------------------------------------------------------- handshake */

/* A group for `groups` arrays.  Arrays end with an entry whose name is NULL:
 * (struct mc_group[]){ { "backend", "lead" }, { NULL } }; a lone { NULL }
 * sends [].  role NULL omits the key. */
struct mc_group {
	const char *name;
	const char *role;
};

/* hello (PROTOCOL.md §5.1).  NULL strings are omitted from the frame.  The
 * last block is for tests that need frames the broker must refuse; zero
 * values give an honest frame. */
struct mc_hello_opts {
	const char *mesh_id;            /* required */
	const char *member_id;          /* required */
	const char *session_pubkey;
	const char *display_name;
	const char *session_id;
	long long pid;                  /* always sent */
	const char *cwd;
	const char *hostname;
	const char *peer_type;
	const char *channel;
	const char *model;
	const struct mc_group *groups;  /* NULL: key omitted */

	const char *pubkey;             /* NULL: member->pk_hex; sent and signed as given */
	long long timestamp;            /* 0: mc_now_ms() */
	const char *signature;          /* sent verbatim instead of the real signature */
	bool corrupt_signature;         /* flip one bit of the real signature */
};

/* Signed by member over `meshId|memberId|pubkey|timestamp`. */
char *mc_hello(const struct mc_identity *member, const struct mc_hello_opts *o);

/* session_hello (PROTOCOL.md §5.2); conventions as mc_hello_opts. */
struct mc_session_hello_opts {
	const char *mesh_id;            /* required */
	const char *parent_member_id;
	const char *display_name;
	const char *session_id;
	long long pid;                  /* always sent */
	const char *cwd;
	const char *hostname;
	const char *peer_type;
	const char *channel;
	const char *model;
	const struct mc_group *groups;  /* NULL: key omitted; { NULL } sends [] */

	long long timestamp;            /* 0: mc_now_ms() */
	long long expires_at;           /* 0: mc_now_ms() + MC_ATTEST_TTL_MS */
	const char *signature;          /* replaces the session-key hello signature */
	bool corrupt_signature;
	const char *attestation_signature;      /* replaces the parent's attestation signature */
	bool corrupt_attestation;
};

/* parentAttestation signed by parent over
 * `claudemesh-session-attest|<parentPubkey>|<sessionPubkey>|<expiresAt>`, the
 * frame signed by session over
 * `claudemesh-session-hello|<meshId>|<parentPubkey>|<sessionPubkey>|<timestamp>`. */
char *mc_session_hello(const struct mc_identity *parent, const struct mc_identity *session,
		       const struct mc_session_hello_opts *o);

/* ------------------------------------------------------ other requests */

/* send (§6.1).  NULL fields are omitted (a send without targetSpec, nonce or
 * ciphertext is a legal test of the broker's silent failures). */
struct mc_send_opts {
	const char *id;
	const char *client_message_id;
	const char *request_fingerprint;
	const char *target_spec;
	const char *priority;           /* "now" | "next" | "low" */
	const char *nonce;
	const char *ciphertext;
};
char *mc_send(const struct mc_send_opts *o);

/* {"type":"client_ack",...}; either id may be NULL (omitted). */
char *mc_client_ack(const char *client_message_id, const char *broker_message_id);
/* {"type":"list_peers"[,"_reqId"]} */
char *mc_list_peers(const char *req_id);
/* {"type":"set_status","status":…}; status is sent even if not in the enum. */
char *mc_set_status(const char *status);
/* {"type":"set_summary"[,"summary"]} */
char *mc_set_summary(const char *summary);
/* {"type":"join_group","name":…[,"role"]} */
char *mc_join_group(const char *name, const char *role);
/* {"type":"leave_group","name":…} */
char *mc_leave_group(const char *name);
/* {"type":"message_status","messageId":…[,"_reqId"]} */
char *mc_message_status(const char *message_id, const char *req_id);

/* Edits a frame for malformed-input tests: merges the JSON object
 * merge_json into it (recursively: objects merge, anything else replaces;
 * may be NULL), then deletes each key of the NULL-terminated list drop (may
 * be NULL); "a.b" names key b inside object a.  NULL if frame or merge_json
 * is not a JSON object. */
char *mc_patch(const char *frame, const char *merge_json, const char *const *drop);

/* ---------------------------------------------------------------- parser */

enum mc_frame_type {
	MC_OTHER = 0,           /* an object with a string type we do not decode */
	MC_HELLO_ACK,
	MC_ACK,
	MC_PUSH,
	MC_ERROR,
	MC_PEERS_LIST,
	MC_MESSAGE_STATUS_RESULT,
};

/* A frame from the broker.  Every pointer borrows from json and lives until
 * mc_frame_free(); a field absent from the frame (or of the wrong type) is
 * NULL / false. */
struct mc_frame {
	enum mc_frame_type type;
	json_t *json;           /* the whole frame: assert anything else on it */
	const char *type_str;   /* the frame's "type" */
	const char *req_id;     /* "_reqId" */
	/* NULL when the frame has every field PROTOCOL.md says the type always
	 * carries, with the right JSON type; otherwise the first offender, e.g.
	 * "ack.queued". */
	const char *bad_field;

	struct mc_hello_ack {
		const char *presence_id;
		const char *member_display_name;
	} hello_ack;

	struct mc_ack {
		const char *id;
		const char *message_id;
		bool queued;
		const char *error;
	} ack;

	struct mc_push {
		const char *message_id;
		const char *mesh_id;
		const char *sender_pubkey;
		const char *priority;           /* absent on some multicast pushes */
		const char *nonce;
		const char *ciphertext;
		const char *created_at;
		const char *client_message_id;  /* drained pushes only */
		const char *request_fingerprint;
		const char *sender_member_pubkey;       /* multicast pushes only */
		const char *sender_member_id;
		const char *sender_name;
		const char *reply_to_id;
		const char *subtype;            /* "system", "reminder" */
		bool system;                    /* subtype == "system" */
		const char *event;              /* system pushes */
		json_t *event_data;             /* system pushes: borrowed object */
	} push;

	struct mc_error {
		const char *code;
		const char *message;
		const char *id;
	} error;

	struct mc_peers_list {
		json_t *peers;          /* borrowed array */
	} peers_list;

	struct mc_message_status_result {
		const char *message_id;
		const char *target_spec;
		bool delivered;
		const char *delivered_at;       /* NULL when JSON null */
		json_t *recipients;     /* borrowed array */
	} message_status;
};

/* Parses one text message.  False (f zeroed, nothing to free) unless it is a
 * JSON object, without duplicate keys, carrying a string "type".  True
 * otherwise, whatever else is missing (see bad_field). */
bool mc_parse(const char *json, size_t len, struct mc_frame *f)
	__attribute__((warn_unused_result));
void mc_frame_free(struct mc_frame *f);
/* "hello_ack", "ack", … "other", for messages. */
const char *mc_frame_type_name(enum mc_frame_type t);

#endif

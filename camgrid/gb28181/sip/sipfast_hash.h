/* Digests for camgrid.gb28181.sip._sipfast (sipfast_hash.c). */
#ifndef CAMGRID_SIPFAST_HASH_H
#define CAMGRID_SIPFAST_HASH_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[4];
    uint64_t total;
    unsigned char buf[64];
    size_t used;
} md5_t;

void md5_init(md5_t *s);
void md5_update(md5_t *s, const void *data, size_t n);
void md5_hex(md5_t *s, char out[32]);  /* lower-case hex, no terminator; s is used up */
int blake2s_mac(const unsigned char *key, size_t klen, const unsigned char *data, size_t n,
                unsigned char *out, size_t outlen);  /* keyed BLAKE2s (RFC 7693); -1 for bad sizes */
size_t base64_encode(const unsigned char *in, size_t n, char *out);  /* returns the length written */
int base64_decode_exact(const char *in, size_t n, unsigned char *out, size_t want);

#endif

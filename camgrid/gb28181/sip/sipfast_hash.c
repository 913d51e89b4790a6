/* The digests the native REGISTER decision needs, in plain C (no OpenSSL headers needed to build):
 * MD5 (RFC 1321) for the digest response, keyed BLAKE2s (RFC 7693) for the platform's nonces
 * (camgrid.gb28181.sip.digest.NonceFactory), and standard base64. tests/gb28181/sip/
 * test_sipfast_hash.py holds each to hashlib / base64 over random inputs. */
#include <stdint.h>
#include <string.h>
#include "sipfast_hash.h"

/* -- MD5 ------------------------------------------------------------------------------------------ */
static uint32_t
rol(uint32_t x, int c)
{
    return (x << c) | (x >> (32 - c));
}

static const uint32_t MD5_K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};
static const int MD5_R[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static void
md5_block(uint32_t h[4], const unsigned char *p)
{
    uint32_t w[16], a = h[0], b = h[1], c = h[2], d = h[3];
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
    for (i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
        }
        f += a + MD5_K[i] + w[g];
        a = d;
        d = c;
        c = b;
        b += rol(f, MD5_R[i]);
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
}

void
md5_init(md5_t *s)
{
    s->h[0] = 0x67452301;
    s->h[1] = 0xefcdab89;
    s->h[2] = 0x98badcfe;
    s->h[3] = 0x10325476;
    s->total = 0;
    s->used = 0;
}

void
md5_update(md5_t *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    s->total += n;
    if (s->used) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->buf + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
        if (s->used < 64)
            return;
        md5_block(s->h, s->buf);
        s->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64)
        md5_block(s->h, p);
    memcpy(s->buf, p, n);
    s->used = n;
}

void
md5_hex(md5_t *s, char out[32])
{
    static const char HEX[] = "0123456789abcdef";
    unsigned char tail[72] = {0x80};
    uint64_t bits = s->total * 8;
    size_t pad = (s->used < 56 ? 56 : 120) - s->used;
    int i;
    for (i = 0; i < 8; i++)
        tail[pad + i] = (unsigned char)(bits >> (8 * i));
    md5_update(s, tail, pad + 8);
    for (i = 0; i < 16; i++) {
        unsigned char byte = (unsigned char)(s->h[i / 4] >> (8 * (i % 4)));
        out[2 * i] = HEX[byte >> 4];
        out[2 * i + 1] = HEX[byte & 15];
    }
}

/* -- BLAKE2s -------------------------------------------------------------------------------------- */
static const uint32_t B2S_IV[8] = {
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
};
static const unsigned char B2S_SIGMA[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static uint32_t
ror(uint32_t x, int c)
{
    return (x >> c) | (x << (32 - c));
}

#define B2S_G(a, b, c, d, x, y) do { \
        v[a] += v[b] + (x); v[d] = ror(v[d] ^ v[a], 16); v[c] += v[d]; v[b] = ror(v[b] ^ v[c], 12); \
        v[a] += v[b] + (y); v[d] = ror(v[d] ^ v[a], 8); v[c] += v[d]; v[b] = ror(v[b] ^ v[c], 7); \
    } while (0)

static void
b2s_compress(uint32_t h[8], const unsigned char block[64], uint64_t counter, int last)
{
    uint32_t v[16], m[16];
    int i;
    for (i = 0; i < 16; i++)
        m[i] = (uint32_t)block[4 * i] | (uint32_t)block[4 * i + 1] << 8 | (uint32_t)block[4 * i + 2] << 16
               | (uint32_t)block[4 * i + 3] << 24;
    for (i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = B2S_IV[i];
    }
    v[12] ^= (uint32_t)counter;
    v[13] ^= (uint32_t)(counter >> 32);
    if (last)
        v[14] = ~v[14];
    for (i = 0; i < 10; i++) {
        const unsigned char *s = B2S_SIGMA[i];
        B2S_G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        B2S_G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        B2S_G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        B2S_G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        B2S_G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        B2S_G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        B2S_G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        B2S_G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (i = 0; i < 8; i++)
        h[i] ^= v[i] ^ v[i + 8];
}

int
blake2s_mac(const unsigned char *key, size_t klen, const unsigned char *data, size_t n, unsigned char *out, size_t outlen)
{
    uint32_t h[8];
    unsigned char block[64];
    uint64_t counter = 0;
    size_t i;
    if (klen > 32 || outlen == 0 || outlen > 32)
        return -1;
    memcpy(h, B2S_IV, sizeof h);
    h[0] ^= 0x01010000u ^ ((uint32_t)klen << 8) ^ (uint32_t)outlen;
    if (klen) {  /* the key is the first block, zero-padded; the last one only when there is no data */
        memset(block, 0, sizeof block);
        memcpy(block, key, klen);
        counter = 64;
        b2s_compress(h, block, counter, n == 0);
    }
    while (n > 64) {
        counter += 64;
        b2s_compress(h, data, counter, 0);
        data += 64;
        n -= 64;
    }
    if (n > 0 || klen == 0) {  /* the last block (an empty one for no key and no data) */
        memset(block, 0, sizeof block);
        memcpy(block, data, n);
        counter += n;
        b2s_compress(h, block, counter, 1);
    }
    for (i = 0; i < outlen; i++)
        out[i] = (unsigned char)(h[i / 4] >> (8 * (i % 4)));
    return 0;
}

/* -- base64 ---------------------------------------------------------------------------------------- */
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
base64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

static int
b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes exactly `want` bytes from canonical base64 (length 4*ceil(want/3), '=' padding, the
 * unused bits zero); -1 for anything else. Stricter than base64.b64decode(validate=True), which
 * is fine: the caller declines what it cannot read and Python decides. */
int
base64_decode_exact(const char *in, size_t n, unsigned char *out, size_t want)
{
    size_t groups = (want + 2) / 3, i, o = 0;
    if (n != 4 * groups)
        return -1;
    for (i = 0; i < groups; i++) {
        const char *q = in + 4 * i;
        int a = b64_value(q[0]), b = b64_value(q[1]), c, d;
        size_t left = want - o;
        uint32_t v;
        if (a < 0 || b < 0)
            return -1;
        c = left > 1 ? b64_value(q[2]) : (q[2] == '=' ? 0 : -1);
        d = left > 2 ? b64_value(q[3]) : (q[3] == '=' ? 0 : -1);
        if (c < 0 || d < 0)
            return -1;
        v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (unsigned char)(v >> 16);
        if (left > 1)
            out[o++] = (unsigned char)(v >> 8);
        else if (v & 0xFFFF)
            return -1;
        if (left > 2)
            out[o++] = (unsigned char)v;
        else if (left == 2 && (v & 0xFF))
            return -1;
    }
    return 0;
}

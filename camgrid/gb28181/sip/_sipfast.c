/* camgrid.gb28181.sip._sipfast: the SIP hot path in C.
 *
 * Optional, like camgrid.media._native: built by setup.py with optional=True and loaded by
 * camgrid.gb28181.sip.fastpath, which says why when it is not. The pure-Python code stays the
 * reference: tests/gb28181/test_sipfast.py holds this module to it.
 *
 * The rule that keeps the two exact: this module handles only the clean shape of a message
 * (ASCII head, no folded lines, no comma-joined Via/Route, a plain Content-Length, ...), and
 * for anything else returns None so that the caller runs the Python code, which also produces
 * every error text. It never rejects a message itself.
 *
 *   parse(data, max_size, stream)    -> (method, uri, status, reason, headers, body) | None
 *                                       what camgrid.gb28181.sip.message.parse_message gives
 *   keepalive(data, host, port, server) -> (sender, utf8, reply_port, response) | None
 *                                       a GB/T 28181 Keepalive MESSAGE, answered 200 exactly as
 *                                       SipStack.respond would answer it (only the To tag differs:
 *                                       it comes from this module's own counter)
 *   recv_batch(fd, count, size)     -> [(data, host, port), ...]   (recvmmsg; Linux)
 *   send_batch(fd, [(data, host, port), ...]) -> datagrams sent    (sendmmsg; Linux)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <errno.h>

#ifdef __linux__
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#endif

#define API_VERSION 2
#define MAX_HEADERS 64

typedef struct {
    const char *name;   /* raw name, trailing blanks removed */
    Py_ssize_t nlen;
    const char *value;  /* stripped */
    Py_ssize_t vlen;
    int known;          /* index into CANONICAL, or -1 */
} header_t;

typedef struct {
    const char *method, *uri, *reason;
    Py_ssize_t mlen, ulen, rlen;
    int status;         /* 0 for a request */
    header_t h[MAX_HEADERS];
    int nh;
    const char *body;
    Py_ssize_t blen;
} msg_t;

/* Canonical names (camgrid.gb28181.sip.message._CANONICAL) and the compact forms. */
static const char *CANONICAL[] = {
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Type",
    "Content-Length", "Expires", "User-Agent", "Server", "Allow", "Supported", "Subject",
    "Date", "Event", "Subscription-State", "Authorization", "WWW-Authenticate",
    "Proxy-Authorization", "Proxy-Authenticate", "Route", "Record-Route", "Allow-Events",
    "Content-Encoding", "Min-Expires", "Retry-After", "Warning", "Accept", "Require",
    "Session-Expires", "Refer-To", "Monitor-User-Identity", "X-GB-Ver", "Note", NULL,
};
enum { H_VIA = 0, H_FROM = 1, H_TO = 2, H_CALL_ID = 3, H_CSEQ = 4, H_CONTENT_TYPE = 7,
       H_CONTENT_LENGTH = 8, H_ROUTE = 22, H_RECORD_ROUTE = 23 };
#define N_CANONICAL 36
static PyObject *canonical_str[N_CANONICAL];

static int
compact_index(char c)
{
    switch (c | 0x20) {
    case 'i': return H_CALL_ID;
    case 'm': return 5;   /* Contact */
    case 'e': return 25;  /* Content-Encoding */
    case 'l': return H_CONTENT_LENGTH;
    case 'c': return H_CONTENT_TYPE;
    case 'f': return H_FROM;
    case 's': return 14;  /* Subject */
    case 'k': return 13;  /* Supported */
    case 't': return H_TO;
    case 'v': return H_VIA;
    case 'o': return 16;  /* Event */
    case 'u': return 24;  /* Allow-Events */
    case 'r': return 32;  /* Refer-To */
    case 'x': return 31;  /* Session-Expires */
    }
    return -1;
}

static int
known_index(const char *name, Py_ssize_t n)
{
    int i;
    if (n == 1)
        return compact_index(name[0]);
    for (i = 0; CANONICAL[i] != NULL; i++)
        if ((Py_ssize_t)strlen(CANONICAL[i]) == n && strncasecmp(CANONICAL[i], name, (size_t)n) == 0)
            return i;
    return -1;
}

/* -- scanning ---------------------------------------------------------------------------------- */

static const char *
find_seq(const char *d, Py_ssize_t n, const char *seq, Py_ssize_t slen)
{
    return (const char *)memmem(d, (size_t)n, seq, (size_t)slen);
}

static int
all_digits(const char *s, Py_ssize_t n)
{
    Py_ssize_t i;
    if (n < 1 || n > 18)
        return 0;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static long long
digits_value(const char *s, Py_ssize_t n)
{
    long long v = 0;
    Py_ssize_t i;
    for (i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static void
strip_blanks(const char **s, Py_ssize_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static const header_t *
first_header(const msg_t *m, int known)
{
    int i;
    for (i = 0; i < m->nh; i++)
        if (m->h[i].known == known)
            return &m->h[i];
    return NULL;
}

static int
parse_start_line(msg_t *m, const char *s, Py_ssize_t n)
{
    const char *sp1, *sp2;
    Py_ssize_t i;
    if (memchr(s, '\t', (size_t)n) != NULL)
        return -1;
    if (n >= 4 && memcmp(s, "SIP/", 4) == 0) {
        if (n < 11 || memcmp(s, "SIP/2.0 ", 8) != 0)
            return -1;
        sp1 = s + 7;
        sp2 = memchr(sp1 + 1, ' ', (size_t)(n - 8));
        if (sp2 == NULL)
            sp2 = s + n;
        if (!all_digits(sp1 + 1, sp2 - sp1 - 1) || sp2 - sp1 - 1 != 3)
            return -1;
        m->status = (int)digits_value(sp1 + 1, 3);
        if (m->status < 100 || m->status > 699)
            return -1;
        m->reason = sp2 < s + n ? sp2 + 1 : sp2;
        m->rlen = s + n - m->reason;
        strip_blanks(&m->reason, &m->rlen);
        return 0;
    }
    sp1 = memchr(s, ' ', (size_t)n);
    if (sp1 == NULL)
        return -1;
    sp2 = memchr(sp1 + 1, ' ', (size_t)(s + n - sp1 - 1));
    if (sp2 == NULL || memchr(sp2 + 1, ' ', (size_t)(s + n - sp2 - 1)) != NULL)
        return -1;
    if (s + n - sp2 - 1 != 7 || memcmp(sp2 + 1, "SIP/2.0", 7) != 0)
        return -1;
    m->method = s;
    m->mlen = sp1 - s;
    if (m->mlen < 1)
        return -1;
    for (i = 0; i < m->mlen; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return -1;
    m->uri = sp1 + 1;
    m->ulen = sp2 - sp1 - 1;
    if (m->ulen < 1 || memchr(m->uri, ':', (size_t)m->ulen) == NULL)
        return -1;
    m->status = 0;
    return 0;
}

/* CSeq "<digits> <METHOD>" as SipMessage.cseq reads it; the method compared to `method`. */
static int
cseq_ok(const header_t *h, const char *method, Py_ssize_t mlen)
{
    const char *sp, *meth;
    Py_ssize_t k, n;
    if (h == NULL)
        return 0;
    sp = memchr(h->value, ' ', (size_t)h->vlen);
    if (sp == NULL || !all_digits(h->value, sp - h->value))
        return 0;
    meth = sp + 1;
    n = h->value + h->vlen - meth;
    strip_blanks(&meth, &n);
    if (method == NULL)
        return 1;
    if (n != mlen)
        return 0;
    for (k = 0; k < n; k++)
        if ((meth[k] >= 'a' && meth[k] <= 'z' ? meth[k] - 32 : meth[k]) != method[k])
            return 0;
    return 1;
}

/* Where the line at `line` ends (its '\n', or `end`); *llen: its length without trailing '\r's. */
static const char *
line_end(const char *line, const char *end, Py_ssize_t *llen)
{
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (eol == NULL)
        eol = end;
    *llen = eol - line;
    while (*llen > 0 && line[*llen - 1] == '\r')
        (*llen)--;
    return eol;
}

/* Fill `m` from a datagram or framed stream message; -1 when the Python parser must decide. */
static int
scan(msg_t *m, const char *d, Py_ssize_t n, Py_ssize_t max_size, int stream)
{
    const char *end, *p, *head_end, *line, *eol, *colon;
    Py_ssize_t sep = 4, i, llen;
    const header_t *cl;

    if (n > max_size || n == 0)
        return -1;
    end = find_seq(d, n, "\r\n\r\n", 4);
    if (end == NULL) {
        end = find_seq(d, n, "\n\n", 2);
        sep = 2;
    }
    if (end == NULL)
        return -1;  /* no body separator: rare, left to Python */
    head_end = end;
    for (p = d; p < head_end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x7f || (c < 0x20 && c != '\t' && c != '\n' && c != '\r'))
            return -1;
        if (c == '\r' && !(p + 1 == head_end || p[1] == '\n'))
            return -1;
    }
    m->nh = 0;
    m->method = m->uri = m->reason = NULL;
    m->mlen = m->ulen = m->rlen = 0;
    line = d;
    /* The first line (no leading blank lines: those are rare and left to Python). */
    eol = line_end(line, head_end, &llen);
    if (llen == 0 || parse_start_line(m, line, llen) < 0)
        return -1;
    line = eol < head_end ? eol + 1 : head_end;
    while (line < head_end) {
        header_t *h;
        const char *name, *value;
        Py_ssize_t nlen, vlen;
        eol = line_end(line, head_end, &llen);
        if (llen > 0) {
            if (line[0] == ' ' || line[0] == '\t' || m->nh == MAX_HEADERS)
                return -1;
            colon = memchr(line, ':', (size_t)llen);
            if (colon == NULL)
                return -1;
            name = line;
            nlen = colon - line;
            while (nlen > 0 && name[nlen - 1] == ' ')
                nlen--;
            if (nlen == 0)
                return -1;
            for (i = 0; i < nlen; i++)
                if (name[i] == ' ' || name[i] == '\t')
                    return -1;
            value = colon + 1;
            vlen = line + llen - value;
            strip_blanks(&value, &vlen);
            h = &m->h[m->nh++];
            h->name = name;
            h->nlen = nlen;
            h->value = value;
            h->vlen = vlen;
            h->known = known_index(name, nlen);
            if ((h->known == H_VIA || h->known == H_ROUTE || h->known == H_RECORD_ROUTE)
                && memchr(value, ',', (size_t)vlen) != NULL)
                return -1;
        }
        line = eol + 1;
    }
    m->body = end + sep;
    m->blen = d + n - m->body;
    cl = first_header(m, H_CONTENT_LENGTH);
    if (cl != NULL) {
        long long length;
        if (!all_digits(cl->value, cl->vlen))
            return -1;
        length = digits_value(cl->value, cl->vlen);
        if (length > m->blen)
            return -1;
        m->blen = (Py_ssize_t)length;
    } else if (stream) {
        m->blen = 0;
    }
    if (m->status == 0) {
        if (!first_header(m, H_VIA) || !first_header(m, H_FROM) || !first_header(m, H_TO)
            || !first_header(m, H_CALL_ID))
            return -1;
        if (!cseq_ok(first_header(m, H_CSEQ), m->method, m->mlen))
            return -1;
    } else {
        if (!first_header(m, H_VIA) || !first_header(m, H_CALL_ID) || !cseq_ok(first_header(m, H_CSEQ), NULL, 0))
            return -1;
    }
    return 0;
}

/* -- parse() ---------------------------------------------------------------------------------- */

static PyObject *
ascii_str(const char *s, Py_ssize_t n)
{
    PyObject *o = PyUnicode_New(n, 127);
    if (o != NULL)
        memcpy(PyUnicode_1BYTE_DATA(o), s, (size_t)n);
    return o;
}

/* "-".join(part.capitalize() for part in name.lower().split("-")) for an ASCII name. */
static PyObject *
capitalised(const char *s, Py_ssize_t n)
{
    PyObject *o = PyUnicode_New(n, 127);
    Py_UCS1 *out;
    Py_ssize_t i;
    int first = 1;
    if (o == NULL)
        return NULL;
    out = PyUnicode_1BYTE_DATA(o);
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (first && c >= 'a' && c <= 'z')
            c -= 32;
        else if (!first && c >= 'A' && c <= 'Z')
            c += 32;
        out[i] = (Py_UCS1)c;
        first = c == '-';
    }
    return o;
}

static PyObject *
parse(PyObject *module, PyObject *args)
{
    const char *d;
    Py_ssize_t n, max_size, i;
    int stream;
    msg_t m;
    PyObject *headers, *method = NULL, *uri = NULL, *status = NULL, *reason = NULL, *body = NULL;

    if (!PyArg_ParseTuple(args, "y#np:parse", &d, &n, &max_size, &stream))
        return NULL;
    if (scan(&m, d, n, max_size, stream) < 0)
        Py_RETURN_NONE;
    headers = PyList_New(m.nh);
    if (headers == NULL)
        return NULL;
    for (i = 0; i < m.nh; i++) {
        header_t *h = &m.h[i];
        PyObject *name, *value, *pair;
        if (h->known >= 0) {
            name = canonical_str[h->known];
            Py_INCREF(name);
        } else {
            name = capitalised(h->name, h->nlen);
        }
        value = name != NULL ? ascii_str(h->value, h->vlen) : NULL;
        pair = value != NULL ? PyTuple_Pack(2, name, value) : NULL;
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (pair == NULL) {
            Py_DECREF(headers);
            return NULL;
        }
        PyList_SET_ITEM(headers, i, pair);
    }
    if (m.status == 0) {
        method = ascii_str(m.method, m.mlen);
        uri = ascii_str(m.uri, m.ulen);
        status = Py_None;
        Py_INCREF(Py_None);
        reason = PyUnicode_New(0, 127);
    } else {
        method = Py_None;
        Py_INCREF(Py_None);
        uri = Py_None;
        Py_INCREF(Py_None);
        status = PyLong_FromLong(m.status);
        reason = ascii_str(m.reason, m.rlen);
    }
    body = PyBytes_FromStringAndSize(m.body, m.blen);
    if (method == NULL || uri == NULL || status == NULL || reason == NULL || body == NULL) {
        Py_XDECREF(method);
        Py_XDECREF(uri);
        Py_XDECREF(status);
        Py_XDECREF(reason);
        Py_XDECREF(body);
        Py_DECREF(headers);
        return NULL;
    }
    return Py_BuildValue("(NNNNNN)", method, uri, status, reason, headers, body);
}

/* -- keepalive() ------------------------------------------------------------------------------- */

static int
is_space(char c)  /* bytes regex \s */
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static const char *
skip_space(const char *p, const char *end)
{
    while (p < end && is_space(*p))
        p++;
    return p;
}

static const char *
expect(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

/* `\s*<Tag>\s*(chars){1,max}\s*</Tag>`; the class: 'd' digits, 'w' [0-9A-Za-z], 'a' letters. */
static const char *
element(const char *p, const char *end, const char *open, const char *close, char cls, int max)
{
    int k = 0;
    p = skip_space(p, end);
    if ((p = expect(p, end, open)) == NULL)
        return NULL;
    p = skip_space(p, end);
    while (p < end) {
        char c = *p;
        int ok = cls == 'd' ? (c >= '0' && c <= '9')
               : cls == 'a' ? ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
               : ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'));
        if (!ok)
            break;
        p++;
        k++;
    }
    if (k < 1 || k > max)
        return NULL;
    p = skip_space(p, end);
    return expect(p, end, close);
}

/* manscdp.codec._declared_encoding(...) in ("utf-8", "utf8"): the last `encoding = "..."`
 * (any case) before the first '>' of the first 200 bytes. */
static int
declares_utf8(const char *body, Py_ssize_t blen)
{
    Py_ssize_t n = blen < 200 ? blen : 200, i;
    const char *p = body, *end = body + n, *gt;
    p = skip_space(p, end);
    if (end - p < 5 || strncasecmp(p, "<?xml", 5) != 0)
        return 0;
    p += 5;
    gt = memchr(p, '>', (size_t)(end - p));
    if (gt == NULL)
        gt = end;
    for (i = (gt - p) - 8; i >= 0; i--) {
        const char *q = p + i, *v;
        Py_ssize_t vn = 0;
        if (strncasecmp(q, "encoding", 8) != 0)
            continue;
        q = skip_space(q + 8, end);
        if (q >= end || *q != '=')
            continue;
        q = skip_space(q + 1, end);
        if (q >= end || (*q != '"' && *q != '\''))
            continue;
        v = ++q;
        while (q < end && (((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z') || (*q >= '0' && *q <= '9')
                           || *q == '.' || *q == '_' || *q == '-'))
            q++, vn++;
        if (vn == 0)
            continue;
        return (vn == 5 && strncasecmp(v, "utf-8", 5) == 0) || (vn == 4 && strncasecmp(v, "utf8", 4) == 0);
    }
    return 0;
}

/* The body shape of manscdp.codec._PLAIN_KEEPALIVE; returns 1 and sets *utf8 when it matches. */
static int
plain_keepalive(const char *b, Py_ssize_t n, int *utf8)
{
    const char *p = b, *end = b + n, *q;
    int has_decl = 0;
    p = skip_space(p, end);
    if ((q = expect(p, end, "<?xml")) != NULL) {
        const char *stop = q;
        while (stop < end && *stop != '<' && *stop != '>')
            stop++;
        if (stop >= end || *stop != '>' || stop[-1] != '?' || stop - 1 < q)
            return 0;
        has_decl = stop - 1 > q;
        p = stop + 1;
    }
    p = skip_space(p, end);
    if ((p = expect(p, end, "<Notify>")) == NULL)
        return 0;
    p = skip_space(p, end);
    if ((p = expect(p, end, "<CmdType>Keepalive</CmdType>")) == NULL)
        return 0;
    if ((p = element(p, end, "<SN>", "</SN>", 'd', 18)) == NULL)
        return 0;
    if ((p = element(p, end, "<DeviceID>", "</DeviceID>", 'w', 32)) == NULL)
        return 0;
    if ((p = element(p, end, "<Status>", "</Status>", 'a', 16)) == NULL)
        return 0;
    p = skip_space(p, end);
    if ((p = expect(p, end, "</Notify>")) == NULL)
        return 0;
    while (p < end && (is_space(*p) || *p == '\0'))
        p++;
    if (p != end)
        return 0;
    *utf8 = has_decl ? declares_utf8(b, n) : 0;
    return 1;
}

/* headers.user_of's direct cut: `<sip:user@...>` with a plain user, else -1. */
static int
from_user(const header_t *h, const char **user, Py_ssize_t *ulen)
{
    const char *v = h->value, *end = h->value + h->vlen, *start, *at, *gt, *c;
    start = find_seq(v, h->vlen, "<sip:", 5);
    if (start == NULL)
        return -1;
    start += 5;
    at = memchr(start, '@', (size_t)(end - start));
    gt = memchr(start, '>', (size_t)(end - start));
    if (at == NULL || gt == NULL || at >= gt || at == start)
        return -1;
    for (c = start; c < at; c++)
        if (strchr(";:?<\"\\", *c) != NULL)
            return -1;
    *user = start;
    *ulen = at - start;
    return 0;
}

/* NameAddr.parse(value).uri.user where that parse surely succeeds and gives the same user:
 * `<sip:user@host[:port][;params]>` as the value's first '<', one '@', a plain host name or IPv4
 * address, a port of 1..65535, no '?'. -1 otherwise (Python decides, and says what is wrong). */
static int
uri_user(const header_t *h, const char **user, Py_ssize_t *ulen)
{
    const char *v = h->value, *end = h->value + h->vlen, *start, *at, *gt, *hp_end, *c, *colon;
    if (from_user(h, user, ulen) < 0)
        return -1;
    start = *user;
    if (memchr(v, '<', (size_t)(start - 5 - v)) != NULL)
        return -1;
    gt = memchr(start, '>', (size_t)(end - start));
    if (memchr(start, '?', (size_t)(gt - start)) != NULL)
        return -1;
    hp_end = memchr(start, ';', (size_t)(gt - start));
    if (hp_end == NULL)
        hp_end = gt;
    at = start + *ulen;
    if (at >= hp_end || memchr(at + 1, '@', (size_t)(hp_end - at - 1)) != NULL)
        return -1;
    colon = memchr(at + 1, ':', (size_t)(hp_end - at - 1));
    if (colon == NULL)
        colon = hp_end;
    if (colon == at + 1)
        return -1;
    for (c = at + 1; c < colon; c++)
        if (!((*c >= '0' && *c <= '9') || ((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') || *c == '.' || *c == '-'))
            return -1;
    if (colon < hp_end) {
        Py_ssize_t n = hp_end - colon - 1;
        long long port;
        if (n > 5 || !all_digits(colon + 1, n))
            return -1;
        port = digits_value(colon + 1, n);
        if (port < 1 || port > 65535)
            return -1;
    }
    return 0;
}

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static int
put(buf_t *b, const char *s, size_t n)
{
    if (b->len + n > b->cap)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

#define PUTS(b, s) put((b), (s), strlen(s))

static int
put_header(buf_t *b, const char *name, const char *value, Py_ssize_t vlen)
{
    if (PUTS(b, name) < 0 || put(b, ": ", 2) < 0 || put(b, value, (size_t)vlen) < 0 || put(b, "\r\n", 2) < 0)
        return -1;
    return 0;
}

typedef struct { const char *k, *v; Py_ssize_t kn, vn; } param_t;

/* The top Via as SipStack._receive_request rewrites it (received=, rport=) and where the answer
 * goes (Via.response_address). Returns -1 for any Via shape left to Python. */
static int
top_via(buf_t *out, const header_t *via, const char *peer_host, Py_ssize_t hlen, int peer_port, int *reply_port)
{
    const char *v = via->value, *end = via->value + via->vlen, *sent, *semi, *host, *colon;
    Py_ssize_t slen, host_len, i;
    long port = 0;
    param_t params[16];
    int np = 0, rport = -1, changed = 0, j;
    char num[16];

    if (end - v < 12 || memcmp(v, "SIP/2.0/UDP ", 12) != 0)
        return -1;
    sent = v + 12;
    while (sent < end && (*sent == ' ' || *sent == '\t'))
        sent++;
    semi = memchr(sent, ';', (size_t)(end - sent));
    if (semi == NULL)
        semi = end;
    slen = semi - sent;
    strip_blanks(&sent, &slen);
    host = sent;
    colon = memchr(sent, ':', (size_t)slen);
    host_len = colon ? colon - sent : slen;
    if (host_len < 1)
        return -1;
    for (i = 0; i < host_len; i++) {
        char c = host[i];
        if (!((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '.' || c == '-'))
            return -1;
    }
    if (colon) {
        Py_ssize_t pn = sent + slen - colon - 1;
        if (!all_digits(colon + 1, pn) || pn > 5)
            return -1;
        port = (long)digits_value(colon + 1, pn);
        if (port < 1 || port > 65535)
            return -1;
    }
    /* Parameters: split on ';', each stripped; `k[=v]`, key lower-cased. */
    while (semi < end) {
        const char *part = semi + 1, *next, *eq;
        Py_ssize_t plen;
        next = memchr(part, ';', (size_t)(end - part));
        if (next == NULL)
            next = end;
        plen = next - part;
        strip_blanks(&part, &plen);
        semi = next;
        if (plen == 0)
            continue;
        if (np == 16)
            return -1;
        eq = memchr(part, '=', (size_t)plen);
        params[np].k = part;
        params[np].kn = eq ? eq - part : plen;
        params[np].v = eq ? eq + 1 : part + plen;
        params[np].vn = eq ? part + plen - eq - 1 : 0;
        strip_blanks(&params[np].k, &params[np].kn);
        strip_blanks(&params[np].v, &params[np].vn);
        for (i = 0; i < params[np].kn; i++)
            if (params[np].k[i] >= 'A' && params[np].k[i] <= 'Z')
                return -1;  /* would be lower-cased: left to Python */
        for (j = 0; j < np; j++)
            if (params[j].kn == params[np].kn && memcmp(params[j].k, params[np].k, (size_t)params[j].kn) == 0)
                return -1;  /* a repeated key */
        if (params[np].kn == 8 && memcmp(params[np].k, "received", 8) == 0)
            return -1;
        if (params[np].kn == 5 && memcmp(params[np].k, "rport", 5) == 0)
            rport = np;
        np++;
    }
    *reply_port = rport >= 0 ? peer_port : (port ? (int)port : peer_port);
    if (rport >= 0)
        changed = 1;
    if (host_len != hlen || memcmp(host, peer_host, (size_t)hlen) != 0)
        changed = 1;
    if (!changed)
        return put_header(out, "Via", via->value, via->vlen);
    /* str(Via): SIP/2.0/UDP host[:port];k=v...;received=peer */
    if (PUTS(out, "Via: SIP/2.0/UDP ") < 0 || put(out, host, (size_t)host_len) < 0)
        return -1;
    if (port) {
        snprintf(num, sizeof num, ":%ld", port);
        if (PUTS(out, num) < 0)
            return -1;
    }
    for (j = 0; j < np; j++) {
        if (put(out, ";", 1) < 0 || put(out, params[j].k, (size_t)params[j].kn) < 0)
            return -1;
        if (j == rport) {
            snprintf(num, sizeof num, "=%d", peer_port);
            if (PUTS(out, num) < 0)
                return -1;
        } else if (params[j].vn > 0) {
            if (put(out, "=", 1) < 0 || put(out, params[j].v, (size_t)params[j].vn) < 0)
                return -1;
        }
    }
    if (host_len != hlen || memcmp(host, peer_host, (size_t)hlen) != 0) {
        if (PUTS(out, ";received=") < 0 || put(out, peer_host, (size_t)hlen) < 0)
            return -1;
    }
    return put(out, "\r\n", 2);
}

static char tag_prefix[32] = "k";
static unsigned long long tag_counter = 0;

static PyObject *
set_tag_prefix(PyObject *module, PyObject *args)
{
    const char *prefix;
    Py_ssize_t n;
    unsigned long long start;
    if (!PyArg_ParseTuple(args, "s#K:set_tag_prefix", &prefix, &n, &start))
        return NULL;
    if (n < 1 || n >= (Py_ssize_t)sizeof tag_prefix) {
        PyErr_SetString(PyExc_ValueError, "tag prefix must be 1..31 characters");
        return NULL;
    }
    memcpy(tag_prefix, prefix, (size_t)n);
    tag_prefix[n] = '\0';
    tag_counter = start;
    Py_RETURN_NONE;
}

/* What make_response(request, status, server=...) puts between the status line and the extra
 * headers: Via (the top one as _receive_request rewrites it) and Record-Route in order, From, To
 * with a tag of ours when it has none, Call-ID, CSeq, Server. -1: a shape left to Python. */
static int
answer_head(buf_t *out, const msg_t *m, const char *peer_host, Py_ssize_t hlen, int peer_port,
            const char *server, Py_ssize_t slen, int *reply_port)
{
    const header_t *h, *to;
    char tag[64];
    int i;

    h = first_header(m, H_VIA);
    for (i = 0; i < m->nh; i++) {
        const header_t *x = &m->h[i];
        if (x == h) {
            if (top_via(out, x, peer_host, hlen, peer_port, reply_port) < 0)
                return -1;
        } else if (x->known == H_VIA || x->known == H_RECORD_ROUTE) {
            if (put_header(out, CANONICAL[x->known], x->value, x->vlen) < 0)
                return -1;
        }
    }
    h = first_header(m, H_FROM);
    to = first_header(m, H_TO);
    if (put_header(out, "From", h->value, h->vlen) < 0 || PUTS(out, "To: ") < 0 || put(out, to->value, (size_t)to->vlen) < 0)
        return -1;
    if (find_seq(to->value, to->vlen, "tag=", 4) == NULL) {
        snprintf(tag, sizeof tag, ";tag=%s%llx", tag_prefix, tag_counter++);
        if (PUTS(out, tag) < 0)
            return -1;
    }
    h = first_header(m, H_CALL_ID);
    if (put(out, "\r\n", 2) < 0 || put_header(out, "Call-ID", h->value, h->vlen) < 0)
        return -1;
    h = first_header(m, H_CSEQ);
    if (put_header(out, "CSeq", h->value, h->vlen) < 0 || put_header(out, "Server", server, slen) < 0)
        return -1;
    return 0;
}

static PyObject *
keepalive(PyObject *module, PyObject *args)
{
    const char *d, *peer_host, *server, *user, *ct;
    Py_ssize_t n, hlen, slen, ulen, ctn, k;
    int peer_port, utf8 = 0, reply_port = 0, has_manscdp = 0;
    msg_t m;
    const header_t *h;
    char space[4096];
    buf_t out = {space, 0, sizeof space};

    if (!PyArg_ParseTuple(args, "y#s#is#:keepalive", &d, &n, &peer_host, &hlen, &peer_port, &server, &slen))
        return NULL;
    if (scan(&m, d, n, 65536, 0) < 0 || m.status != 0 || m.mlen != 7 || memcmp(m.method, "MESSAGE", 7) != 0)
        Py_RETURN_NONE;
    h = first_header(&m, H_CONTENT_TYPE);
    if (h == NULL)
        Py_RETURN_NONE;
    ct = h->value;
    ctn = h->vlen;
    {
        const char *semi = memchr(ct, ';', (size_t)ctn);
        if (semi != NULL)
            ctn = semi - ct;
    }
    for (k = 0; k + 7 <= ctn; k++)
        if (strncasecmp(ct + k, "manscdp", 7) == 0) {
            has_manscdp = 1;
            break;
        }
    if (!has_manscdp || !plain_keepalive(m.body, m.blen, &utf8))
        Py_RETURN_NONE;
    if (from_user(first_header(&m, H_FROM), &user, &ulen) < 0)
        Py_RETURN_NONE;
    if (PUTS(&out, "SIP/2.0 200 OK\r\n") < 0
        || answer_head(&out, &m, peer_host, hlen, peer_port, server, slen, &reply_port) < 0
        || PUTS(&out, "Content-Length: 0\r\n\r\n") < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(NOiy#)", ascii_str(user, ulen), utf8 ? Py_True : Py_False, reply_port, out.p, (Py_ssize_t)out.len);
}

enum { H_CONTACT = 5, H_EXPIRES = 9, H_AUTHORIZATION = 18, H_X_GB_VER = 34 };

static PyObject *
header_or_none(const msg_t *m, int known)
{
    const header_t *h = first_header(m, known);
    if (h == NULL)
        Py_RETURN_NONE;
    return ascii_str(h->value, h->vlen);
}

/* Credentials.parse of an Authorization value in its clean shape: `Digest` and k=v / k="v"
 * parameters, no backslash in a quoted value, each key once. Returns the fields of Credentials
 * in order (username, realm, nonce, uri, response, algorithm upper-cased, qop or None, nc, cnonce),
 * or Py_None when the value is absent, not that shape, or lacks a required field (Python then
 * parses it, and says what is wrong). */
enum { D_USERNAME, D_REALM, D_NONCE, D_URI, D_RESPONSE, D_ALGORITHM, D_QOP, D_NC, D_CNONCE, D_FIELDS };
static const char *DIGEST_KEYS[D_FIELDS] = {"username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc", "cnonce"};

static int
is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static PyObject *
digest_fields(const header_t *h)
{
    const char *p, *end, *v[D_FIELDS] = {0};
    Py_ssize_t vn[D_FIELDS] = {0};
    char alg[16];
    int i;
    PyObject *out;

    if (h == NULL)
        Py_RETURN_NONE;
    p = h->value;
    end = h->value + h->vlen;
    if (end - p < 7 || strncasecmp(p, "digest", 6) != 0 || p[6] != ' ')
        Py_RETURN_NONE;
    p += 7;
    for (;;) {
        const char *key, *val;
        Py_ssize_t kn, n;
        int k = -1;
        while (p < end && (is_ws(*p) || *p == ','))
            p++;
        if (p == end)
            break;
        key = p;
        while (p < end && *p != '=' && *p != ',' && !is_ws(*p) && *p != '"' && *p != '\\')
            p++;
        kn = p - key;
        while (p < end && is_ws(*p))
            p++;
        if (kn == 0 || p == end || *p != '=')
            Py_RETURN_NONE;
        p++;
        while (p < end && is_ws(*p))
            p++;
        if (p < end && *p == '"') {
            const char *close;
            val = ++p;
            close = memchr(p, '"', (size_t)(end - p));
            if (close == NULL || memchr(p, '\\', (size_t)(close - p)) != NULL)
                Py_RETURN_NONE;
            n = close - val;
            p = close + 1;
            while (p < end && is_ws(*p))
                p++;
            if (p < end && *p != ',')
                Py_RETURN_NONE;
        } else {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            val = p;
            p = comma ? comma : end;
            n = p - val;
            strip_blanks(&val, &n);
            if (memchr(val, '"', (size_t)n) != NULL || memchr(val, '\\', (size_t)n) != NULL)
                Py_RETURN_NONE;
        }
        for (i = 0; i < D_FIELDS; i++)
            if ((Py_ssize_t)strlen(DIGEST_KEYS[i]) == kn && strncasecmp(DIGEST_KEYS[i], key, (size_t)kn) == 0) {
                k = i;
                break;
            }
        if (k >= 0) {
            if (v[k] != NULL)
                Py_RETURN_NONE;  /* a repeated key */
            v[k] = val;
            vn[k] = n;
        }
    }
    if (!v[D_USERNAME] || !v[D_NONCE] || !v[D_URI] || !v[D_RESPONSE])
        Py_RETURN_NONE;
    if (v[D_ALGORITHM] == NULL) {
        v[D_ALGORITHM] = "MD5";
        vn[D_ALGORITHM] = 3;
    }
    if (vn[D_ALGORITHM] >= (Py_ssize_t)sizeof alg)
        Py_RETURN_NONE;
    for (i = 0; i < vn[D_ALGORITHM]; i++) {
        char c = v[D_ALGORITHM][i];
        alg[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
    }
    out = PyTuple_New(D_FIELDS);
    if (out == NULL)
        return NULL;
    for (i = 0; i < D_FIELDS; i++) {
        PyObject *o;
        if (i == D_QOP && vn[i] == 0) {
            o = Py_None;
            Py_INCREF(o);
        } else if (i == D_ALGORITHM) {
            o = ascii_str(alg, vn[i]);
        } else {
            o = ascii_str(v[i] ? v[i] : "", vn[i]);
        }
        if (o == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, o);
    }
    return out;
}

/* A REGISTER over UDP in the clean shape: what the registrar reads of it, and the head of every
 * answer to it (answer_head), so that the answer is the status line + head + extra headers +
 * Content-Length. The body must be empty. */
static PyObject *
register_(PyObject *module, PyObject *args)
{
    const char *d, *peer_host, *server, *user;
    Py_ssize_t n, hlen, slen, ulen;
    int peer_port, reply_port = 0;
    msg_t m;
    char space[4096];
    buf_t out = {space, 0, sizeof space};

    if (!PyArg_ParseTuple(args, "y#s#is#:register", &d, &n, &peer_host, &hlen, &peer_port, &server, &slen))
        return NULL;
    if (scan(&m, d, n, 65536, 0) < 0 || m.status != 0 || m.mlen != 8 || memcmp(m.method, "REGISTER", 8) != 0
        || m.blen != 0)
        Py_RETURN_NONE;
    if (uri_user(first_header(&m, H_FROM), &user, &ulen) < 0)
        Py_RETURN_NONE;
    if (answer_head(&out, &m, peer_host, hlen, peer_port, server, slen, &reply_port) < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(NNNNNiy#N)", ascii_str(user, ulen), header_or_none(&m, H_AUTHORIZATION),
                         header_or_none(&m, H_CONTACT), header_or_none(&m, H_EXPIRES), header_or_none(&m, H_X_GB_VER),
                         reply_port, out.p, (Py_ssize_t)out.len, digest_fields(first_header(&m, H_AUTHORIZATION)));
}

/* -- UDP batches -------------------------------------------------------------------------------- */
#ifdef __linux__
#define BATCH_MAX 256

static char *recv_buffer = NULL;  /* count x size, grown on demand; touched with the GIL held */
static size_t recv_buffer_size = 0;
static struct mmsghdr batch_msgs[BATCH_MAX];
static struct iovec batch_iovs[BATCH_MAX];
static struct sockaddr_storage batch_addrs[BATCH_MAX];

static PyObject *
address_of(const struct sockaddr_storage *ss, int *port)
{
    char text[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
        *port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
        *port = ntohs(a->sin6_port);
    } else {
        text[0] = '\0';
        *port = 0;
    }
    return PyUnicode_FromString(text);
}

static PyObject *
recv_batch(PyObject *module, PyObject *args)
{
    int fd, count = 64, got, k;
    Py_ssize_t size = 65536;
    size_t need;
    PyObject *out;

    if (!PyArg_ParseTuple(args, "i|in:recv_batch", &fd, &count, &size))
        return NULL;
    if (count < 1 || count > BATCH_MAX || size < 1 || size > 131072 || fd < 0) {
        PyErr_Format(PyExc_ValueError, "recv_batch: count 1..%d, size 1..131072, fd >= 0", BATCH_MAX);
        return NULL;
    }
    need = (size_t)count * (size_t)size;
    if (need > recv_buffer_size) {
        char *grown = PyMem_RawRealloc(recv_buffer, need);
        if (grown == NULL)
            return PyErr_NoMemory();
        recv_buffer = grown;
        recv_buffer_size = need;
    }
    for (k = 0; k < count; k++) {
        batch_iovs[k].iov_base = recv_buffer + (size_t)k * (size_t)size;
        batch_iovs[k].iov_len = (size_t)size;
        memset(&batch_msgs[k].msg_hdr, 0, sizeof batch_msgs[k].msg_hdr);
        batch_msgs[k].msg_hdr.msg_iov = &batch_iovs[k];
        batch_msgs[k].msg_hdr.msg_iovlen = 1;
        batch_msgs[k].msg_hdr.msg_name = &batch_addrs[k];
        batch_msgs[k].msg_hdr.msg_namelen = sizeof batch_addrs[k];
    }
    got = recvmmsg(fd, batch_msgs, (unsigned int)count, MSG_DONTWAIT, NULL);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return PyList_New(0);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    out = PyList_New(got);
    if (out == NULL)
        return NULL;
    for (k = 0; k < got; k++) {
        int port;
        PyObject *host = address_of(&batch_addrs[k], &port);
        PyObject *item = host ? Py_BuildValue("(y#Ni)", (char *)batch_iovs[k].iov_base,
                                              (Py_ssize_t)batch_msgs[k].msg_len, host, port) : NULL;
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, item);
    }
    return out;
}

static PyObject *
send_batch(PyObject *module, PyObject *args)
{
    int fd, k, n, sent, total = 0;
    PyObject *items, *fast;

    if (!PyArg_ParseTuple(args, "iO:send_batch", &fd, &items))
        return NULL;
    fast = PySequence_Fast(items, "send_batch takes a sequence of (data, host, port)");
    if (fast == NULL)
        return NULL;
    n = (int)PySequence_Fast_GET_SIZE(fast);
    while (total < n) {
        int count = n - total < BATCH_MAX ? n - total : BATCH_MAX;
        for (k = 0; k < count; k++) {
            PyObject *item = PySequence_Fast_GET_ITEM(fast, total + k);
            const char *data, *host;
            Py_ssize_t dlen;
            int port;
            struct sockaddr_in *a4 = (struct sockaddr_in *)&batch_addrs[k];
            struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&batch_addrs[k];
            if (!PyArg_ParseTuple(item, "y#si", &data, &dlen, &host, &port)) {
                Py_DECREF(fast);
                return NULL;
            }
            memset(&batch_addrs[k], 0, sizeof batch_addrs[k]);
            memset(&batch_msgs[k].msg_hdr, 0, sizeof batch_msgs[k].msg_hdr);
            if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
                a4->sin_family = AF_INET;
                a4->sin_port = htons((uint16_t)port);
                batch_msgs[k].msg_hdr.msg_namelen = sizeof *a4;
            } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
                a6->sin6_family = AF_INET6;
                a6->sin6_port = htons((uint16_t)port);
                batch_msgs[k].msg_hdr.msg_namelen = sizeof *a6;
            } else {
                Py_DECREF(fast);
                PyErr_Format(PyExc_ValueError, "not a numeric address: %s", host);
                return NULL;
            }
            batch_iovs[k].iov_base = (void *)data;
            batch_iovs[k].iov_len = (size_t)dlen;
            batch_msgs[k].msg_hdr.msg_name = &batch_addrs[k];
            batch_msgs[k].msg_hdr.msg_iov = &batch_iovs[k];
            batch_msgs[k].msg_hdr.msg_iovlen = 1;
        }
        sent = sendmmsg(fd, batch_msgs, (unsigned int)count, MSG_DONTWAIT);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;  /* UDP: what is not sent now is lost, as with a full queue; SIP retransmits */
            /* An error for the first datagram (e.g. unreachable): skip it and go on. */
            total += 1;
            continue;
        }
        total += sent;
        if (sent < count)
            total += 1;  /* the one that failed */
    }
    Py_DECREF(fast);
    return PyLong_FromLong(total);
}
#endif

/* -- module ------------------------------------------------------------------------------------- */
static PyMethodDef methods[] = {
    {"parse", parse, METH_VARARGS,
     "parse(data, max_size, stream) -> (method, uri, status, reason, headers, body) | None.\n"
     "None: not the clean shape handled here; camgrid.gb28181.sip.message parses it instead."},
    {"keepalive", keepalive, METH_VARARGS,
     "keepalive(data, peer_host, peer_port, server) -> (sender, utf8, reply_port, response) | None\n"
     "for a GB/T 28181 Keepalive MESSAGE in its plain shape; None for anything else."},
    {"register", register_, METH_VARARGS,
     "register(data, peer_host, peer_port, server) -> (from_user, authorization, contact, expires, x_gb_ver,\n"
     "reply_port, head, digest) | None for a REGISTER in its plain shape (no body); head: the answer's\n"
     "headers from Via to Server, each line ending CRLF; digest: the Credentials fields of a clean\n"
     "Authorization, else None. None for anything else."},
    {"set_tag_prefix", set_tag_prefix, METH_VARARGS,
     "set_tag_prefix(prefix, start): To tags of keepalive answers are prefix + a hex counter."},
#ifdef __linux__
    {"recv_batch", recv_batch, METH_VARARGS,
     "recv_batch(fd, count=64, size=65536) -> [(data, host, port), ...]: one recvmmsg call;\n"
     "[] when nothing waits; OSError otherwise."},
    {"send_batch", send_batch, METH_VARARGS,
     "send_batch(fd, [(data, host, port), ...]) -> count handed to the kernel or dropped on error\n"
     "(sendmmsg; stops at a full send queue)."},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "camgrid.gb28181.sip._sipfast",
    "The SIP hot path in C (see camgrid.gb28181.sip.fastpath).", -1, methods,
};

PyMODINIT_FUNC
PyInit__sipfast(void)
{
    int i;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    for (i = 0; i < N_CANONICAL; i++) {
        canonical_str[i] = PyUnicode_InternFromString(CANONICAL[i]);
        if (canonical_str[i] == NULL) {
            Py_DECREF(m);
            return NULL;
        }
    }
    if (PyModule_AddIntConstant(m, "API_VERSION", API_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

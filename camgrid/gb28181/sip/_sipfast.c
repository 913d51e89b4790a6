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
 *   register(data, host, port, server) -> what the registrar reads of a plain REGISTER | None
 *   RegisterDecider(...).decide(data, host, port, server)
 *                                    the two hot outcomes of a REGISTER decided here (a challenge,
 *                                    a digest answer that verifies); see its comment
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

#define API_VERSION 4
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
 * Content-Length. The body must be empty. 0, or -1 for any other shape. */
static int
read_plain_register(const char *d, Py_ssize_t n, const char *peer_host, Py_ssize_t hlen, int peer_port,
                    const char *server, Py_ssize_t slen, msg_t *m, buf_t *out, const char **user, Py_ssize_t *ulen,
                    int *reply_port)
{
    if (scan(m, d, n, 65536, 0) < 0 || m->status != 0 || m->mlen != 8 || memcmp(m->method, "REGISTER", 8) != 0
        || m->blen != 0)
        return -1;
    if (uri_user(first_header(m, H_FROM), user, ulen) < 0)
        return -1;
    return answer_head(out, m, peer_host, hlen, peer_port, server, slen, reply_port);
}

static PyObject *
found_tuple(const msg_t *m, const char *user, Py_ssize_t ulen, int reply_port, const buf_t *out)
{
    return Py_BuildValue("(NNNNNiy#N)", ascii_str(user, ulen), header_or_none(m, H_AUTHORIZATION),
                         header_or_none(m, H_CONTACT), header_or_none(m, H_EXPIRES), header_or_none(m, H_X_GB_VER),
                         reply_port, out->p, (Py_ssize_t)out->len, digest_fields(first_header(m, H_AUTHORIZATION)));
}

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
    if (read_plain_register(d, n, peer_host, hlen, peer_port, server, slen, &m, &out, &user, &ulen, &reply_port) < 0)
        Py_RETURN_NONE;
    return found_tuple(&m, user, ulen, reply_port, &out);
}

/* -- The REGISTER decision ---------------------------------------------------------------------------
 * RegisterDecider answers the two hot outcomes of a plain REGISTER without Python: the challenge
 * of a REGISTER without Authorization, and the check of a digest answer that verifies. It reads
 * the tables the Python side keeps (camgrid.signaling.auth_cache.AuthCache's flat HA1 buffers,
 * the slot map, BanList's bans, the LoadMonitor's flag) and the NonceFactory's key, so there is
 * nothing to keep in step. Everything else (unknown, pending or banned devices, unregistering,
 * a wrong answer, a stale nonce, SHA-256, overload) goes back to Registrar.handle_native with the
 * request read, and the Python code decides and answers as before.
 *
 *   decide(data, host, port, server) -> None                      not a plain REGISTER
 *                                     | (0, found)                read; Python decides (found as register())
 *                                     | (1, answer, reply_port)   challenged here (401)
 *                                     | (2, found, issued_at, fingerprint, expires, ok)   answer
 *                                                                 verified; Python checks for a replay
 *                                                                 and accepts
 * where `expires` is the requested expiry (-1: none given) and `ok` the 200 OK that Registrar._register
 * would send (Date, Expires, Contact, X-GB-Ver), or None: it is built only within the wall-clock second
 * whose Date prefix Python last gave set_date() (local time in the registrar's zone, formatted by
 * registrar.gb_date), so the zone and its rules stay in Python. Python sends `ok` only when the
 * answer is not a replay. */
#include <time.h>
#include "sipfast_hash.h"

typedef struct {
    PyObject_HEAD
    PyObject *slots, *flags, *md5, *realm_ix, *realms, *unusual, *banned, *load, *overloaded_name;
    unsigned char key[32];
    Py_ssize_t klen;
    char realm[256];
    Py_ssize_t realm_len;
    double ttl;
    long expires_min, expires_max;  /* expires_max < 0: no 200 OK built here */
    long long date_second;  /* the wall-clock second date_prefix is for */
    char date_prefix[64];  /* "YYYY-MM-DDTHH:MM:SS." of that second in the registrar's zone */
    Py_ssize_t date_len;  /* 0: none set */
    int need_flags, qop;
} decider_t;

static void
decider_dealloc(decider_t *self)
{
    Py_XDECREF(self->slots);
    Py_XDECREF(self->flags);
    Py_XDECREF(self->md5);
    Py_XDECREF(self->realm_ix);
    Py_XDECREF(self->realms);
    Py_XDECREF(self->unusual);
    Py_XDECREF(self->banned);
    Py_XDECREF(self->load);
    Py_XDECREF(self->overloaded_name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
decider_init(decider_t *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"slots", "flags", "md5", "realm_ix", "realms", "unusual", "banned", "load", "need_flags",
                         "key", "realm", "ttl", "expires_min", "qop", "expires_max", NULL};
    PyObject *slots, *flags, *md5, *realm_ix, *realms, *unusual, *banned, *load;
    const char *key, *realm;
    Py_ssize_t klen, rlen;
    int need_flags, qop;
    double ttl;
    long expires_min, expires_max = -1;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!OO!O!O!Oiy#s#dlp|l:RegisterDecider", kw, &PyDict_Type, &slots,
                                     &PyByteArray_Type, &flags, &PyByteArray_Type, &md5, &realm_ix, &PyList_Type,
                                     &realms, &PyDict_Type, &unusual, &PyDict_Type, &banned, &load, &need_flags,
                                     &key, &klen, &realm, &rlen, &ttl, &expires_min, &qop, &expires_max))
        return -1;
    if (klen > 32 || rlen >= (Py_ssize_t)sizeof self->realm) {
        PyErr_SetString(PyExc_ValueError, "nonce key over 32 bytes or realm too long");
        return -1;
    }
    if (!PyObject_CheckBuffer(realm_ix)) {
        PyErr_SetString(PyExc_TypeError, "realm_ix must be an array('H')");
        return -1;
    }
#define KEEP(field, value) do { Py_INCREF(value); Py_XSETREF(self->field, value); } while (0)
    KEEP(slots, slots);
    KEEP(flags, flags);
    KEEP(md5, md5);
    KEEP(realm_ix, realm_ix);
    KEEP(realms, realms);
    KEEP(unusual, unusual);
    KEEP(banned, banned);
    KEEP(load, load);
#undef KEEP
    Py_XSETREF(self->overloaded_name, PyUnicode_InternFromString("overloaded"));
    if (self->overloaded_name == NULL)
        return -1;
    memcpy(self->key, key, (size_t)klen);
    self->klen = klen;
    memcpy(self->realm, realm, (size_t)rlen);
    self->realm_len = rlen;
    self->ttl = ttl;
    self->expires_min = expires_min < 1 ? 1 : expires_min;
    self->expires_max = expires_max;
    self->date_len = 0;
    self->need_flags = need_flags;
    self->qop = qop;
    return 0;
}

static double
wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The device's slot when the decision may be taken here: a 20-digit ID, known, approved, with a
 * plain MD5 HA1, neither it nor the source address banned. -1 otherwise, -2 on a Python error. */
static Py_ssize_t
usable_slot(decider_t *self, const char *user, Py_ssize_t ulen, const char *host, Py_ssize_t hlen)
{
    PyObject *id, *slot_obj, *host_obj;
    Py_ssize_t slot;
    int banned;

    if (ulen != 20 || !all_digits(user, 10) || !all_digits(user + 10, 10))  /* all_digits takes up to 18 */
        return -1;
    id = PyUnicode_FromStringAndSize(user, ulen);
    if (id == NULL)
        return -2;
    slot_obj = PyDict_GetItemWithError(self->slots, id);
    banned = slot_obj != NULL && PyDict_Size(self->banned) > 0 ? PyDict_Contains(self->banned, id) : 0;
    Py_DECREF(id);
    if (slot_obj == NULL)
        return PyErr_Occurred() ? -2 : -1;
    if (banned)
        return banned < 0 ? -2 : -1;
    slot = PyLong_AsSsize_t(slot_obj);
    if (slot < 0)
        return PyErr_Occurred() ? -2 : -1;
    if (slot >= PyByteArray_GET_SIZE(self->flags) || (slot + 1) * 16 > PyByteArray_GET_SIZE(self->md5))
        return -1;
    if ((((unsigned char *)PyByteArray_AS_STRING(self->flags))[slot] & self->need_flags) != self->need_flags)
        return -1;
    if (PyDict_Size(self->unusual) > 0) {  /* HA1 values kept as given (not plain hex): Python's */
        PyObject *k = PyLong_FromSsize_t(slot);
        int has = k == NULL ? -1 : PyDict_Contains(self->unusual, k);
        Py_XDECREF(k);
        if (has)
            return has < 0 ? -2 : -1;
    }
    if (PyDict_Size(self->banned) > 0) {
        host_obj = PyUnicode_FromStringAndSize(host, hlen);
        if (host_obj == NULL)
            return -2;
        banned = PyDict_Contains(self->banned, host_obj);
        Py_DECREF(host_obj);
        if (banned)
            return banned < 0 ? -2 : -1;
    }
    return slot;
}

/* Registrar's _requested_expires when its answer is plain: the Contact's expires= (digits) or
 * else the Expires header (digits); -1 for none given, -2 for any shape left to Python. */
static long
plain_expires(const msg_t *m)
{
    const header_t *contact = first_header(m, H_CONTACT), *expires = first_header(m, H_EXPIRES);
    const char *v;
    Py_ssize_t n, k;

    if (contact != NULL) {
        for (k = 0; k + 8 <= contact->vlen; k++)
            if (strncasecmp(contact->value + k, "expires=", 8) == 0) {
                const char *end = contact->value + contact->vlen;
                v = contact->value + k + 8;
                n = 0;
                while (v + n < end && v[n] != ';' && v[n] != ',')
                    n++;
                strip_blanks(&v, &n);
                return n >= 1 && n <= 9 && all_digits(v, n) ? (long)digits_value(v, n) : -2;
            }
    }
    if (expires == NULL)
        return -1;
    v = expires->value;
    n = expires->vlen;
    strip_blanks(&v, &n);
    return n >= 1 && n <= 9 && all_digits(v, n) ? (long)digits_value(v, n) : -2;
}

static int
is_overloaded(decider_t *self)
{
    PyObject *flag;
    int yes;
    if (self->load == Py_None)
        return 0;
    flag = PyObject_GetAttr(self->load, self->overloaded_name);
    if (flag == NULL)
        return -1;
    yes = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    return yes;
}

static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* NonceFactory._sig: keyed BLAKE2s (12 bytes) of the nonce's 8-byte time and the realm. */
static void
nonce_mac(const decider_t *self, const unsigned char stamp[8], unsigned char mac[12])
{
    unsigned char text[8 + sizeof self->realm];
    memcpy(text, stamp, 8);
    memcpy(text + 8, self->realm, (size_t)self->realm_len);
    blake2s_mac(self->key, (size_t)self->klen, text, 8 + (size_t)self->realm_len, mac, 12);  /* sizes valid by init */
}

/* The digest fields of a clean Authorization (digest_fields' parse, as pointers). */
typedef struct { const char *v[D_FIELDS]; Py_ssize_t n[D_FIELDS]; } creds_t;

static int
creds_of(PyObject *fields, creds_t *c)
{
    int i;
    for (i = 0; i < D_FIELDS; i++) {
        PyObject *o = PyTuple_GET_ITEM(fields, i);
        if (o == Py_None) {
            c->v[i] = NULL;
            c->n[i] = 0;
        } else if ((c->v[i] = PyUnicode_AsUTF8AndSize(o, &c->n[i])) == NULL) {
            return -1;
        }
    }
    return 0;
}

#define SAME(c, i, s, len) ((c)->n[i] == (len) && memcmp((c)->v[i], (s), (size_t)(len)) == 0)

/* 1: the answer verifies against the slot's HA1 with a fresh nonce of ours; 0: anything else. */
static int
verified(decider_t *self, const creds_t *c, const char *user, Py_ssize_t slot, double *issued_at)
{
    unsigned char raw[20], sig[12];
    const char *realm = self->realm;
    Py_ssize_t realm_len = self->realm_len, i;
    uint64_t bits = 0;
    double age;
    char ha1[32], ha2[32], expected[32];
    const unsigned char *h;
    md5_t s;
    unsigned char diff = 0;
    PyObject *auth_realm;

    if (c->v[D_NONCE] == NULL || base64_decode_exact(c->v[D_NONCE], (size_t)c->n[D_NONCE], raw, 20) < 0)
        return 0;
    nonce_mac(self, raw, sig);
    for (i = 0; i < 12; i++)
        diff |= (unsigned char)(sig[i] ^ raw[8 + i]);
    if (diff)
        return 0;
    for (i = 0; i < 8; i++)
        bits = bits << 8 | raw[i];
    memcpy(issued_at, &bits, sizeof bits);
    age = wall_now() - *issued_at;
    if (!(age >= -5 && age <= self->ttl))
        return 0;  /* stale (or NaN): Python challenges again with stale=TRUE */
    if (!SAME(c, D_USERNAME, user, 20) || !SAME(c, D_ALGORITHM, "MD5", 3))
        return 0;
    if (c->v[D_QOP] != NULL && !SAME(c, D_QOP, "auth", 4))
        return 0;
    {  /* the realm the device's secret was made with: its own, else the platform's */
        unsigned short ix;
        Py_buffer view;
        if (PyObject_GetBuffer(self->realm_ix, &view, PyBUF_SIMPLE) < 0)
            return -1;
        if (view.len < (slot + 1) * (Py_ssize_t)sizeof ix) {
            PyBuffer_Release(&view);
            return 0;
        }
        memcpy(&ix, (char *)view.buf + slot * (Py_ssize_t)sizeof ix, sizeof ix);
        PyBuffer_Release(&view);
        if (ix >= PyList_GET_SIZE(self->realms))
            return 0;
        auth_realm = PyList_GET_ITEM(self->realms, ix);
        if (auth_realm != Py_None && PyUnicode_Check(auth_realm) && PyUnicode_GET_LENGTH(auth_realm) > 0) {
            if ((realm = PyUnicode_AsUTF8AndSize(auth_realm, &realm_len)) == NULL)
                return -1;
        }
    }
    if (!SAME(c, D_REALM, realm, realm_len))
        return 0;
    h = (const unsigned char *)PyByteArray_AS_STRING(self->md5) + slot * 16;
    for (i = 0; i < 16; i++) {
        static const char HEX[] = "0123456789abcdef";
        ha1[2 * i] = HEX[h[i] >> 4];
        ha1[2 * i + 1] = HEX[h[i] & 15];
    }
    md5_init(&s);
    md5_update(&s, "REGISTER:", 9);
    md5_update(&s, c->v[D_URI], (size_t)c->n[D_URI]);
    md5_hex(&s, ha2);
    md5_init(&s);
    md5_update(&s, ha1, 32);
    md5_update(&s, ":", 1);
    md5_update(&s, c->v[D_NONCE], (size_t)c->n[D_NONCE]);
    md5_update(&s, ":", 1);
    if (c->v[D_QOP] != NULL) {
        md5_update(&s, c->v[D_NC], (size_t)c->n[D_NC]);
        md5_update(&s, ":", 1);
        md5_update(&s, c->v[D_CNONCE], (size_t)c->n[D_CNONCE]);
        md5_update(&s, ":auth:", 6);
    }
    md5_update(&s, ha2, 32);
    md5_hex(&s, expected);
    if (c->n[D_RESPONSE] != 32)
        return 0;
    diff = 0;
    for (i = 0; i < 32; i++) {
        char r = c->v[D_RESPONSE][i];
        diff |= (unsigned char)(expected[i] ^ (r >= 'A' && r <= 'Z' ? r + 32 : r));
    }
    return diff == 0;
}

/* Registrar._register's 200 OK for a verified answer, or Py_None when it cannot be built here
 * (no Date prefix for this second, no maximum given, too long): the status line, the answer head,
 * Date (the prefix and milliseconds), Expires (the requested one or 3600, at most expires_max),
 * the Contact up to ";expires" when one was sent, and the X-GB-Ver echo. */
static PyObject *
accepted_answer(decider_t *self, const msg_t *m, const buf_t *head, long expires)
{
    struct timespec ts;
    const header_t *contact = first_header(m, H_CONTACT), *ver = first_header(m, H_X_GB_VER);
    char space[4096 + 512], number[64];
    buf_t b = {space, 0, sizeof space};
    Py_ssize_t clen;
    const char *cut;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (self->expires_max < 0 || self->date_len == 0 || (long long)ts.tv_sec != self->date_second)
        Py_RETURN_NONE;
    if (expires < 0)
        expires = 3600;
    if (expires > self->expires_max)
        expires = self->expires_max;
    snprintf(number, sizeof number, "%03ld\r\nExpires: %ld\r\n", (long)(ts.tv_nsec / 1000000), expires);
    if (PUTS(&b, "SIP/2.0 200 OK\r\n") < 0 || put(&b, head->p, head->len) < 0 || PUTS(&b, "Date: ") < 0
        || put(&b, self->date_prefix, (size_t)self->date_len) < 0 || PUTS(&b, number) < 0)
        Py_RETURN_NONE;
    if (contact != NULL && contact->vlen > 0) {  /* contact.split(";expires", 1)[0] */
        clen = contact->vlen;
        cut = memmem(contact->value, (size_t)clen, ";expires", 8);
        if (cut != NULL)
            clen = cut - contact->value;
        if (put_header(&b, "Contact", contact->value, clen) < 0)
            Py_RETURN_NONE;
    }
    if (ver != NULL && ver->vlen > 0 && put_header(&b, "X-GB-Ver", ver->value, ver->vlen) < 0)
        Py_RETURN_NONE;
    if (PUTS(&b, "Content-Length: 0\r\n\r\n") < 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(b.p, (Py_ssize_t)b.len);
}

static PyObject *
decider_set_date(decider_t *self, PyObject *args)
{
    long long second;
    const char *prefix;
    Py_ssize_t n;

    if (!PyArg_ParseTuple(args, "Ly#:set_date", &second, &prefix, &n))
        return NULL;
    if (n <= 0 || n >= (Py_ssize_t)sizeof self->date_prefix) {
        PyErr_SetString(PyExc_ValueError, "Date prefix empty or too long");
        return NULL;
    }
    memcpy(self->date_prefix, prefix, (size_t)n);
    self->date_len = n;
    self->date_second = second;
    Py_RETURN_NONE;
}

static PyObject *
decider_decide(decider_t *self, PyObject *args)
{
    const char *d, *peer_host, *server, *user;
    Py_ssize_t n, hlen, slen, ulen, slot, i;
    int peer_port, reply_port = 0, overloaded, hot;
    long expires;
    msg_t m;
    char space[4096];
    buf_t out = {space, 0, sizeof space};
    const header_t *authorization, *ver;
    PyObject *found, *fields;
    creds_t creds;
    double issued_at = 0;
    uint64_t fingerprint = 0;

    if (!PyArg_ParseTuple(args, "y#s#is#:decide", &d, &n, &peer_host, &hlen, &peer_port, &server, &slen))
        return NULL;
    if (read_plain_register(d, n, peer_host, hlen, peer_port, server, slen, &m, &out, &user, &ulen, &reply_port) < 0)
        Py_RETURN_NONE;
    slot = usable_slot(self, user, ulen, peer_host, hlen);
    if (slot == -2)
        return NULL;
    expires = plain_expires(&m);
    authorization = first_header(&m, H_AUTHORIZATION);
    hot = slot >= 0 && expires != -2 && (expires == -1 || expires >= self->expires_min);  /* else handle_native's */
    if (hot && authorization == NULL) {
        if ((overloaded = is_overloaded(self)) < 0)
            return NULL;
        if (!overloaded) {  /* the challenge: Registrar._challenge's answer with a nonce made here */
            unsigned char raw[20];
            char nonce[28];
            double now = wall_now();
            uint64_t bits;
            char answer_space[4096 + 512];
            buf_t answer = {answer_space, 0, sizeof answer_space};

            memcpy(&bits, &now, sizeof bits);
            for (i = 0; i < 8; i++)
                raw[i] = (unsigned char)(bits >> (56 - 8 * i));
            nonce_mac(self, raw, raw + 8);
            base64_encode(raw, 20, nonce);
            ver = first_header(&m, H_X_GB_VER);
            if (PUTS(&answer, "SIP/2.0 401 Unauthorized\r\n") == 0 && put(&answer, out.p, out.len) == 0
                && PUTS(&answer, "WWW-Authenticate: Digest realm=\"") == 0
                && put(&answer, self->realm, (size_t)self->realm_len) == 0 && PUTS(&answer, "\", nonce=\"") == 0
                && put(&answer, nonce, 28) == 0 && PUTS(&answer, "\", algorithm=MD5") == 0
                && (!self->qop || PUTS(&answer, ", qop=\"auth\"") == 0) && PUTS(&answer, "\r\n") == 0
                && (ver == NULL || ver->vlen == 0 || put_header(&answer, "X-GB-Ver", ver->value, ver->vlen) == 0)
                && PUTS(&answer, "Content-Length: 0\r\n\r\n") == 0)
                return Py_BuildValue("(iy#i)", 1, answer.p, (Py_ssize_t)answer.len, reply_port);
            /* too long for the buffer: Python answers */
        }
    }
    found = found_tuple(&m, user, ulen, reply_port, &out);
    if (found == NULL)
        return NULL;
    fields = PyTuple_GET_ITEM(found, 7);
    if (hot && authorization != NULL && fields != Py_None) {
        int ok;
        if (creds_of(fields, &creds) < 0 || (ok = verified(self, &creds, user, slot, &issued_at)) < 0) {
            Py_DECREF(found);
            return NULL;
        }
        if (ok) {
            for (i = 0; i < 16; i++)
                fingerprint = fingerprint << 4 | (uint64_t)hex_digit(creds.v[D_RESPONSE][i]);
            PyObject *ok_answer = accepted_answer(self, &m, &out, expires);
            if (ok_answer == NULL) {
                Py_DECREF(found);
                return NULL;
            }
            return Py_BuildValue("(iNdKlN)", 2, found, issued_at, (unsigned long long)fingerprint, expires,
                                 ok_answer);
        }
    }
    return Py_BuildValue("(iN)", 0, found);
}

static PyMethodDef decider_methods[] = {
    {"decide", (PyCFunction)decider_decide, METH_VARARGS,
     "decide(data, peer_host, peer_port, server) -> None | (0, found) | (1, answer, reply_port)\n"
     "| (2, found, issued_at, fingerprint, expires, ok): see the module's comment above RegisterDecider."},
    {"set_date", (PyCFunction)decider_set_date, METH_VARARGS,
     "set_date(second, prefix): the Date prefix (bytes, \"YYYY-MM-DDTHH:MM:SS.\") of that wall-clock second"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DeciderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "camgrid.gb28181.sip._sipfast.RegisterDecider",
    .tp_basicsize = sizeof(decider_t),
    .tp_dealloc = (destructor)decider_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "RegisterDecider(slots=, flags=, md5=, realm_ix=, realms=, unusual=, banned=, load=, need_flags=,\n"
              "key=, realm=, ttl=, expires_min=, qop=, expires_max=-1): the native REGISTER decision over the\n"
              "registrar's tables.",
    .tp_methods = decider_methods,
    .tp_init = (initproc)decider_init,
    .tp_new = PyType_GenericNew,
};

/* Test hooks: the digests above against hashlib / base64. */
static PyObject *
md5_hex_py(PyObject *module, PyObject *args)
{
    Py_buffer data;
    md5_t s;
    char out[32];
    if (!PyArg_ParseTuple(args, "y*:md5_hex", &data))
        return NULL;
    md5_init(&s);
    md5_update(&s, data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    md5_hex(&s, out);
    return PyUnicode_FromStringAndSize(out, 32);
}

static PyObject *
blake2s_mac_py(PyObject *module, PyObject *args)
{
    Py_buffer key, data;
    unsigned char out[32];
    int size, rc;
    if (!PyArg_ParseTuple(args, "y*y*i:blake2s_mac", &key, &data, &size))
        return NULL;
    rc = blake2s_mac(key.buf, (size_t)key.len, data.buf, (size_t)data.len, out, (size_t)size);
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    if (rc < 0) {
        PyErr_SetString(PyExc_ValueError, "key over 32 bytes or size not 1-32");
        return NULL;
    }
    return PyBytes_FromStringAndSize((char *)out, size);
}

static PyObject *
base64_py(PyObject *module, PyObject *args)
{
    Py_buffer data;
    char *out;
    PyObject *text;
    size_t len;
    if (!PyArg_ParseTuple(args, "y*:base64", &data))
        return NULL;
    out = PyMem_Malloc(4 * ((size_t)data.len + 2) / 3 + 4);
    if (out == NULL) {
        PyBuffer_Release(&data);
        return PyErr_NoMemory();
    }
    len = base64_encode(data.buf, (size_t)data.len, out);
    PyBuffer_Release(&data);
    text = PyUnicode_FromStringAndSize(out, (Py_ssize_t)len);
    PyMem_Free(out);
    return text;
}

static PyObject *
unbase64_py(PyObject *module, PyObject *args)
{
    const char *text;
    Py_ssize_t n;
    int want;
    unsigned char out[64];
    if (!PyArg_ParseTuple(args, "s#i:unbase64", &text, &n, &want))
        return NULL;
    if (want < 0 || want > 64 || base64_decode_exact(text, (size_t)n, out, (size_t)want) < 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((char *)out, want);
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
    {"md5_hex", md5_hex_py, METH_VARARGS, "md5_hex(data) -> lower-case hex MD5 (test hook for sipfast_hash.c)."},
    {"blake2s_mac", blake2s_mac_py, METH_VARARGS, "blake2s_mac(key, data, size) -> keyed BLAKE2s (test hook)."},
    {"base64", base64_py, METH_VARARGS, "base64(data) -> standard base64 text (test hook)."},
    {"unbase64", unbase64_py, METH_VARARGS,
     "unbase64(text, size) -> exactly size bytes from canonical base64, or None (test hook)."},
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
    if (PyType_Ready(&DeciderType) < 0 || PyModule_AddObjectRef(m, "RegisterDecider", (PyObject *)&DeciderType) < 0
        || PyModule_AddIntConstant(m, "API_VERSION", API_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* camgrid.media._native: the media node's per-frame and per-packet loops in C.
 *
 * Optional: built by setuptools when a compiler and the Python headers are there (setup.py,
 * optional=True); camgrid.media.fastpath loads it or says why not, and the pure-Python code
 * stays the reference that tests/media/test_fastpath.py compares this module against, byte for
 * byte. Nothing here keeps state between calls except recv_many's receive buffer, which is
 * only touched while the GIL is held. Long copies and file writes release the GIL.
 *
 * Annex B scanning is exactly camgrid.media.h26x.nal_bounds: a start code is 00 00 01 (found
 * by memchr for the 01, then a look at the two bytes before it); bytes before the first start
 * code belong to no NAL unit; zero bytes before a start code (the first byte of a 4-byte start
 * code, trailing_zero_8bits) belong to none; empty units are skipped. Emulation prevention
 * bytes (00 00 03) are payload and are copied as they are.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/types.h>
#include <sys/socket.h>
#endif

/* -- Annex B ---------------------------------------------------------------------------------- */

/* The first i >= from with d[i..i+2] == 00 00 01, or -1. */
static Py_ssize_t
find_start_code(const unsigned char *d, Py_ssize_t n, Py_ssize_t from)
{
    Py_ssize_t p = from + 2;
    while (p < n) {
        const unsigned char *q = memchr(d + p, 1, (size_t)(n - p));
        if (q == NULL)
            return -1;
        p = q - d;
        if (d[p - 1] == 0 && d[p - 2] == 0)
            return p - 2;
        p += 1;
    }
    return -1;
}

typedef struct {
    const unsigned char *d;
    Py_ssize_t n;
    Py_ssize_t next;  /* the next start code, or -1 */
} scan_t;

static void
scan_init(scan_t *s, const unsigned char *d, Py_ssize_t n)
{
    s->d = d;
    s->n = n;
    s->next = find_start_code(d, n, 0);
}

/* The next NAL unit's [start, end); 0 when there is none. */
static int
scan_next(scan_t *s, Py_ssize_t *start, Py_ssize_t *end)
{
    while (s->next >= 0) {
        Py_ssize_t a = s->next + 3, b;
        s->next = find_start_code(s->d, s->n, a);
        b = s->next < 0 ? s->n : s->next;
        while (b > a && s->d[b - 1] == 0)
            b--;
        if (b > a) {
            *start = a;
            *end = b;
            return 1;
        }
    }
    return 0;
}

/* A NAL unit's length as the 4-byte prefix holds it; -1 with ValueError when it does not fit. */
static int
check_nal_length(Py_ssize_t len)
{
    if ((unsigned long long)len > 0xFFFFFFFFULL) {
        PyErr_Format(PyExc_ValueError, "a NAL unit of %zd bytes does not fit a 4-byte length", len);
        return -1;
    }
    return 0;
}

static PyObject *
nal_bounds(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    scan_t s;
    Py_ssize_t a, b;
    PyObject *out, *pair;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    out = PyList_New(0);
    if (out == NULL)
        goto done;
    scan_init(&s, (const unsigned char *)view.buf, view.len);
    while (scan_next(&s, &a, &b)) {
        pair = Py_BuildValue("(nn)", a, b);
        if (pair == NULL || PyList_Append(out, pair) < 0) {
            Py_XDECREF(pair);
            Py_CLEAR(out);
            goto done;
        }
        Py_DECREF(pair);
    }
done:
    PyBuffer_Release(&view);
    return out;
}

/* Bytes that `view` takes as length-prefixed NAL units; -1 with an exception. */
static Py_ssize_t
prefixed_size(const Py_buffer *view)
{
    scan_t s;
    Py_ssize_t a, b, size = 0;
    scan_init(&s, (const unsigned char *)view->buf, view->len);
    while (scan_next(&s, &a, &b)) {
        if (check_nal_length(b - a) < 0)
            return -1;
        size += 4 + (b - a);  /* at most 4/3 of the input: no overflow */
    }
    return size;
}

/* Write the NAL units of d[0:n], length-prefixed, at *w (not past `limit`). Needs no GIL:
 * 0, or WRITE_TOO_LONG (a NAL unit over 4 GiB) or WRITE_OVER (more than fits before limit). */
enum { WRITE_OK = 0, WRITE_TOO_LONG = -1, WRITE_OVER = -2 };

static int
write_prefixed(const unsigned char *d, Py_ssize_t n, char **w, const char *limit)
{
    scan_t s;
    Py_ssize_t a, b, len;
    unsigned char *p;
    scan_init(&s, d, n);
    while (scan_next(&s, &a, &b)) {
        len = b - a;
        if ((unsigned long long)len > 0xFFFFFFFFULL)
            return WRITE_TOO_LONG;
        if (limit - *w < 4 + len)
            return WRITE_OVER;
        p = (unsigned char *)*w;
        p[0] = (unsigned char)(len >> 24);
        p[1] = (unsigned char)(len >> 16);
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        memcpy(p + 4, d + a, (size_t)len);
        *w += 4 + len;
    }
    return WRITE_OK;
}

static void
write_error(int code)
{
    if (code == WRITE_TOO_LONG)
        PyErr_SetString(PyExc_ValueError, "a NAL unit does not fit a 4-byte length");
    else
        PyErr_SetString(PyExc_ValueError, "the NAL units are larger than the stated total");
}

static PyObject *
annexb_to_length_prefixed(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    Py_ssize_t size;
    PyObject *out = NULL;
    char *w;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    size = prefixed_size(&view);
    if (size >= 0 && (out = PyBytes_FromStringAndSize(NULL, size)) != NULL) {
        int code;
        w = PyBytes_AS_STRING(out);
        code = write_prefixed((const unsigned char *)view.buf, view.len, &w, PyBytes_AS_STRING(out) + size);
        if (code != WRITE_OK) {
            write_error(code);
            Py_CLEAR(out);
        }
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *
length_prefixed_sizes(PyObject *module, PyObject *arg)
{
    PyObject *seq, *out = NULL, *item;
    Py_ssize_t i, n, size;
    Py_buffer view;

    seq = PySequence_Fast(arg, "length_prefixed_sizes() takes a sequence of bytes-like frames");
    if (seq == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    out = PyList_New(n);
    if (out == NULL)
        goto done;
    for (i = 0; i < n; i++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &view, PyBUF_SIMPLE) < 0)
            goto fail;
        size = prefixed_size(&view);
        PyBuffer_Release(&view);
        if (size < 0 || (item = PyLong_FromSsize_t(size)) == NULL)
            goto fail;
        PyList_SET_ITEM(out, i, item);
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    Py_DECREF(seq);
    return out;
}

/* Buffers of every item of a sequence; NULL with an exception. Release with release_views. */
static Py_buffer *
get_views(PyObject *seq, Py_ssize_t n)
{
    Py_ssize_t i;
    Py_buffer *views = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Py_buffer));
    if (views == NULL)
        return (Py_buffer *)PyErr_NoMemory();
    for (i = 0; i < n; i++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &views[i], PyBUF_SIMPLE) < 0) {
            while (i-- > 0)
                PyBuffer_Release(&views[i]);
            PyMem_Free(views);
            return NULL;
        }
    }
    return views;
}

static void
release_views(Py_buffer *views, Py_ssize_t n)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
}

#define NOGIL_COPY_BYTES (64 * 1024)  /* larger copies let the disk threads run meanwhile */

static PyObject *
join_length_prefixed(PyObject *module, PyObject *args)
{
    PyObject *frames, *seq, *out = NULL;
    Py_buffer head, *views = NULL;
    Py_ssize_t total, i, n = 0;
    char *w, *limit;
    int code = WRITE_OK;

    if (!PyArg_ParseTuple(args, "y*On:join_length_prefixed", &head, &frames, &total))
        return NULL;
    seq = PySequence_Fast(frames, "join_length_prefixed() takes a sequence of bytes-like frames");
    if (seq == NULL)
        goto release;
    if (total < 0 || total > PY_SSIZE_T_MAX - head.len) {
        PyErr_Format(PyExc_ValueError, "total %zd out of range", total);
        goto done;
    }
    n = PySequence_Fast_GET_SIZE(seq);
    views = get_views(seq, n);
    if (views == NULL)
        goto done;
    out = PyBytes_FromStringAndSize(NULL, head.len + total);
    if (out == NULL)
        goto done;
    w = PyBytes_AS_STRING(out);
    memcpy(w, head.buf, (size_t)head.len);
    w += head.len;
    limit = w + total;
    /* `out` is not visible to anyone yet and every input buffer is held: safe without the GIL. */
    if (total >= NOGIL_COPY_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        for (i = 0; i < n && code == WRITE_OK; i++)
            code = write_prefixed((const unsigned char *)views[i].buf, views[i].len, &w, limit);
        Py_END_ALLOW_THREADS
    } else {
        for (i = 0; i < n && code == WRITE_OK; i++)
            code = write_prefixed((const unsigned char *)views[i].buf, views[i].len, &w, limit);
    }
    if (code != WRITE_OK) {
        write_error(code);
        Py_CLEAR(out);
    } else if (w != limit) {
        PyErr_Format(PyExc_ValueError, "the NAL units take %zd bytes, not the stated %zd",
                     total - (Py_ssize_t)(limit - w), total);
        Py_CLEAR(out);
    }
done:
    if (views != NULL)
        release_views(views, n);
    Py_DECREF(seq);
release:
    PyBuffer_Release(&head);
    return out;
}

/* -- files -------------------------------------------------------------------------------------- */
static PyObject *
write_parts(PyObject *module, PyObject *args)
{
    PyObject *parts, *seq;
    Py_buffer *views;
    Py_ssize_t i, n, done, total = 0;
    ssize_t r;
    int fd, sync = 1, err = 0;

    if (!PyArg_ParseTuple(args, "iO|p:write_parts", &fd, &parts, &sync))
        return NULL;
    if (fd < 0) {
        PyErr_Format(PyExc_ValueError, "bad file descriptor %d", fd);
        return NULL;
    }
    seq = PySequence_Fast(parts, "write_parts() takes a sequence of bytes-like parts");
    if (seq == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    views = get_views(seq, n);
    if (views == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    /* Every part written whole (short writes continued, EINTR retried), then one fsync: the
     * GIL is released for all of it, so the event loop runs while the disk works. */
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < n && !err; i++) {
        for (done = 0; done < views[i].len;) {
            r = write(fd, (const char *)views[i].buf + done, (size_t)(views[i].len - done));
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                err = errno;
                break;
            }
            done += r;
            total += r;
        }
    }
    if (!err && sync) {
        while (fsync(fd) < 0) {
            if (errno != EINTR) {
                err = errno;
                break;
            }
        }
    }
    Py_END_ALLOW_THREADS
    release_views(views, n);
    Py_DECREF(seq);
    if (err) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromSsize_t(total);
}

/* -- RTP ---------------------------------------------------------------------------------------- */
#define RUN_MAX 1024

/* The in-order run at the front of a batch of datagrams: what MediaStream.on_datagrams hands to
 * the demuxer without building an RtpPacket or touching the reorder buffer. The run takes packets
 * from `start` while each is plain RTP (first byte 0x80: version 2, no padding, extension or CSRC,
 * at least 12 bytes), carries `ssrc` (any when ssrc < 0), has the sequence number that follows
 * (starting at `seq`) and the run's first payload type; it ends after a marker packet (the demuxer
 * flushes there) or before the first packet that is not so (the Python path takes that one).
 * Returns (payloads, markers, payload_type, last_ssrc, wire_bytes); markers has one byte per
 * payload (1: marker set). An empty run is ([], b"", -1, -1, 0). */
static PyObject *
rtp_run(PyObject *module, PyObject *args)
{
    PyObject *datagrams, *seq_obj, *payloads = NULL, *item, *result = NULL;
    Py_ssize_t start, i, n, count = 0;
    long long ssrc;
    int seq, pt = -1, k;
    long long last_ssrc = -1;
    Py_ssize_t wire = 0;
    char markers[RUN_MAX];

    if (!PyArg_ParseTuple(args, "OnLi:rtp_run", &datagrams, &start, &ssrc, &seq))
        return NULL;
    if (!PyList_Check(datagrams)) {
        PyErr_SetString(PyExc_TypeError, "rtp_run() takes a list of datagrams");
        return NULL;
    }
    if (seq < 0 || seq > 0xFFFF || ssrc > 0xFFFFFFFFLL) {
        PyErr_SetString(PyExc_ValueError, "sequence number or SSRC out of range");
        return NULL;
    }
    seq_obj = datagrams;
    n = PyList_GET_SIZE(seq_obj);
    if (start < 0 || start > n) {
        PyErr_Format(PyExc_ValueError, "start %zd out of range", start);
        return NULL;
    }
    payloads = PyList_New(0);
    if (payloads == NULL)
        return NULL;
    for (i = start; i < n && count < RUN_MAX; i++) {
        const unsigned char *d;
        Py_ssize_t len;
        long long pssrc;
        item = PyList_GET_ITEM(seq_obj, i);
        if (!PyBytes_Check(item))
            break;
        d = (const unsigned char *)PyBytes_AS_STRING(item);
        len = PyBytes_GET_SIZE(item);
        if (len < 12 || d[0] != 0x80)
            break;
        pssrc = ((long long)d[8] << 24) | (d[9] << 16) | (d[10] << 8) | d[11];
        if ((ssrc >= 0 && pssrc != ssrc) || ((d[2] << 8) | d[3]) != seq || (pt >= 0 && (d[1] & 0x7F) != pt))
            break;
        k = d[1] & 0x7F;
        {
            PyObject *payload = PyBytes_FromStringAndSize((const char *)d + 12, len - 12);
            if (payload == NULL || PyList_Append(payloads, payload) < 0) {
                Py_XDECREF(payload);
                Py_DECREF(payloads);
                return NULL;
            }
            Py_DECREF(payload);
        }
        pt = k;
        last_ssrc = pssrc;
        wire += len;
        markers[count++] = (d[1] & 0x80) ? 1 : 0;
        seq = (seq + 1) & 0xFFFF;
        if (d[1] & 0x80)
            break;
    }
    result = Py_BuildValue("(Ny#iLn)", payloads, markers, count, pt, last_ssrc, wire);
    return result;
}

/* -- UDP ---------------------------------------------------------------------------------------- */
#ifdef __linux__
#define RECV_MAX_COUNT 1024
#define RECV_MAX_SIZE 65536

static char *recv_buffer = NULL;  /* count x size bytes, grown on demand; used with the GIL held */
static size_t recv_buffer_size = 0;
static struct mmsghdr recv_msgs[RECV_MAX_COUNT];
static struct iovec recv_iovs[RECV_MAX_COUNT];

static PyObject *
recv_many(PyObject *module, PyObject *args)
{
    int fd, count = 64, got, k;
    Py_ssize_t size = RECV_MAX_SIZE;
    size_t need;
    PyObject *out, *item;

    if (!PyArg_ParseTuple(args, "i|in:recv_many", &fd, &count, &size))
        return NULL;
    if (count < 1 || count > RECV_MAX_COUNT) {
        PyErr_Format(PyExc_ValueError, "count must be 1..%d, not %d", RECV_MAX_COUNT, count);
        return NULL;
    }
    if (size < 1 || size > RECV_MAX_SIZE) {
        PyErr_Format(PyExc_ValueError, "size must be 1..%d, not %zd", RECV_MAX_SIZE, size);
        return NULL;
    }
    if (fd < 0) {
        PyErr_Format(PyExc_ValueError, "bad file descriptor %d", fd);
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
        recv_iovs[k].iov_base = recv_buffer + (size_t)k * (size_t)size;
        recv_iovs[k].iov_len = (size_t)size;
        memset(&recv_msgs[k].msg_hdr, 0, sizeof(recv_msgs[k].msg_hdr));
        recv_msgs[k].msg_hdr.msg_iov = &recv_iovs[k];
        recv_msgs[k].msg_hdr.msg_iovlen = 1;
        recv_msgs[k].msg_len = 0;
    }
    /* Non-blocking and short: the GIL stays held (it also guards the shared buffer). */
    got = recvmmsg(fd, recv_msgs, (unsigned int)count, MSG_DONTWAIT, NULL);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return PyList_New(0);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    out = PyList_New(got);
    if (out == NULL)
        return NULL;
    for (k = 0; k < got; k++) {
        item = PyBytes_FromStringAndSize(recv_iovs[k].iov_base, (Py_ssize_t)recv_msgs[k].msg_len);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, item);
    }
    return out;
}
#endif

/* -- module ------------------------------------------------------------------------------------- */
static PyMethodDef methods[] = {
    {"nal_bounds", nal_bounds, METH_O,
     "nal_bounds(data) -> [(start, end), ...]: the NAL units of Annex B data, as h26x.nal_bounds."},
    {"annexb_to_length_prefixed", annexb_to_length_prefixed, METH_O,
     "annexb_to_length_prefixed(data) -> bytes: each NAL unit behind a 4-byte big-endian length."},
    {"length_prefixed_sizes", length_prefixed_sizes, METH_O,
     "length_prefixed_sizes(frames) -> [int, ...]: bytes each frame takes length-prefixed."},
    {"join_length_prefixed", join_length_prefixed, METH_VARARGS,
     "join_length_prefixed(head, frames, total) -> bytes: head, then every frame's NAL units\n"
     "length-prefixed, in one allocation; ValueError unless they take exactly `total` bytes."},
    {"write_parts", write_parts, METH_VARARGS,
     "write_parts(fd, parts, sync=True) -> int: every part written whole, then fsync, without the\n"
     "GIL; the bytes written. OSError on the first failure (the file may hold some of the parts)."},
    {"rtp_run", rtp_run, METH_VARARGS,
     "rtp_run(datagrams, start, ssrc, seq) -> (payloads, markers, payload_type, last_ssrc, wire_bytes):\n"
     "the in-order run of plain RTP packets from datagrams[start] (see MediaStream.on_datagrams)."},
#ifdef __linux__
    {"recv_many", recv_many, METH_VARARGS,
     "recv_many(fd, count=64, size=65536) -> [bytes, ...]: up to `count` datagrams from a UDP socket\n"
     "in one recvmmsg call, each cut to `size` bytes; [] when none waits; OSError otherwise."},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "camgrid.media._native",
    "The media node's per-frame and per-packet loops in C (see camgrid.media.fastpath).", -1, methods,
};

/* Raised whenever an entry point is added or changes: camgrid.media.fastpath refuses a module
 * built from older source (an install that was not rebuilt) rather than call what it lacks. */
#define API_VERSION 2

PyMODINIT_FUNC
PyInit__native(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (m != NULL && PyModule_AddIntConstant(m, "API_VERSION", API_VERSION) < 0)
        Py_CLEAR(m);
    return m;
}

/* camgrid.media._native: the media node's per-frame and per-packet loops in C.
 *
 * Optional: built by setuptools when a compiler and the Python headers are there (setup.py,
 * optional=True); camgrid.media.fastpath loads it or says why not, and the pure-Python code
 * stays the reference that tests/media/test_fastpath.py compares this module against, byte for
 * byte. Nothing here keeps state between calls except recv_many's receive buffer, which is
 * only touched while the GIL is held, and PsDemuxer objects (one per stream). Long copies and
 * file writes release the GIL.
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
#include <stddef.h>
#include <structmember.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifdef __linux__
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/epoll.h>
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

/* -- PS demuxer ---------------------------------------------------------------------------------- */
/* camgrid.media.ps.PythonPsDemuxer in C, move for move: pack and PES framing, resync over garbage,
 * the lost-packet rule (a pack header inside a video PES), the program stream map, PTS/DTS and the
 * gathering of a unit's payloads, with the same counters. What a finished unit becomes (its codec,
 * whether it is a key frame, the AccessUnit) is ps.make_unit's policy: built here by unit_build when
 * the demuxer was given the AccessUnit class (camgrid.media.ps.NativePsDemuxer), else by calling
 * `make_unit(codecs, stream_id, pts, dts, data)`, in the order the Python reference builds them. A
 * unit's payloads are gathered straight into the bytes object that is handed over (shrunk to fit);
 * the payload of a video PES that spans datagrams goes there from each datagram (ps_spill_*). */
#define PS_STREAMS 256

/* -- access units built in C ---------------------------------------------------------------------- */
/* camgrid.media.ps.make_unit, move for move, for the native demuxer: the codec from the map (else,
 * for video, guessed from the parameter sets as guess_video_codec does, and kept for the stream),
 * the key-frame flag as is_keyframe finds it, and the AccessUnit (a slots dataclass) filled slot by
 * slot, without running its Python __init__. Python's make_unit stays the reference (the Python
 * demuxer calls it; tests/media/test_ps_native.py holds the two equal). */
#define UNIT_FIELDS 6
static const char *unit_field_names[UNIT_FIELDS] = {"stream_id", "codec", "pts", "dts", "data", "keyframe"};
static PyObject *str_h264, *str_h265, *str_unknown;

/* The byte offsets of AccessUnit's slots (its dataclass fields, in order) in `offsets`; 0, or -1
 * with TypeError when `type` is not such a class. */
static int
unit_slots_init(PyObject *type, Py_ssize_t *offsets)
{
    int i;
    if (!PyType_Check(type) || ((PyTypeObject *)type)->tp_dictoffset != 0) {
        PyErr_SetString(PyExc_TypeError, "unit_type must be a slots class (camgrid.media.ps.AccessUnit)");
        return -1;
    }
    for (i = 0; i < UNIT_FIELDS; i++) {
        PyObject *descr = PyObject_GetAttrString(type, unit_field_names[i]);
        PyMemberDef *member;
        if (descr == NULL)
            return -1;
        if (Py_TYPE(descr) != &PyMemberDescr_Type) {
            Py_DECREF(descr);
            PyErr_Format(PyExc_TypeError, "unit_type.%s is not a slot", unit_field_names[i]);
            return -1;
        }
        member = ((PyMemberDescrObject *)descr)->d_member;
        Py_DECREF(descr);
        if (member->type != T_OBJECT_EX || member->offset < (Py_ssize_t)sizeof(PyObject)
            || member->offset + (Py_ssize_t)sizeof(PyObject *) > ((PyTypeObject *)type)->tp_basicsize) {
            PyErr_Format(PyExc_TypeError, "unit_type.%s is not an object slot", unit_field_names[i]);
            return -1;
        }
        offsets[i] = member->offset;
    }
    return 0;
}

/* guess_video_codec: "h264" for an H.264 SPS, else "h265" for an H.265 VPS/SPS/PPS of the base
 * layer, else "unknown" (borrowed). The headers are those of h26x.nal_bounds' units, as
 * ps._nal_headers reads them: the unit's first byte and the byte after it in the frame (-1 past its end). */
static PyObject *
unit_guess_codec(const unsigned char *d, Py_ssize_t n)
{
    scan_t s;
    Py_ssize_t a, b;
    int h265 = 0;
    scan_init(&s, d, n);
    while (scan_next(&s, &a, &b)) {
        int first = d[a], second = a + 1 < n ? d[a + 1] : -1;
        if ((first & 0x9F) == 0x07 && (first & 0x60))
            return str_h264;
        if ((first == 0x40 || first == 0x42 || first == 0x44) && second == 0x01)
            h265 = 1;
    }
    return h265 ? str_h265 : str_unknown;
}

/* is_keyframe for H.264 (hevc 0) or H.265 (hevc 1): whether the first picture NAL unit is IDR/IRAP. */
static int
unit_is_keyframe(const unsigned char *d, Py_ssize_t n, int hevc)
{
    Py_ssize_t i = find_start_code(d, n, 0);
    while (i >= 0 && i < n - 3) {
        int header = d[i + 3];
        if (hevc) {
            int kind = (header >> 1) & 0x3F;
            if (kind < 32)
                return kind >= 16 && kind <= 21;
        } else {
            int kind = header & 0x1F;
            if (kind >= 1 && kind <= 5)
                return kind == 5;
        }
        i = find_start_code(d, n, i + 3);
    }
    return 0;
}

/* make_unit(codecs, sid, pts, dts, data) as an AccessUnit of `type` (slots at `offsets`); *key is
 * set when it is a video key frame. A new reference, or NULL with an exception. The unit holds
 * only ints, strings, bytes and None, so it cannot be part of a reference cycle: it is taken off
 * the garbage collector's lists, which the node's many kept frames otherwise lengthen. */
static PyObject *
unit_build(PyObject *type, const Py_ssize_t *offsets, PyObject *codecs, int sid, PyObject *pts, PyObject *dts,
           PyObject *data, int *key)
{
    PyObject *sid_obj, *codec, *unit, *values[UNIT_FIELDS];
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    int video = sid >= 0xE0 && sid <= 0xEF, keyframe = 1, i;
    if ((sid_obj = PyLong_FromLong(sid)) == NULL)
        return NULL;
    codec = PyDict_GetItemWithError(codecs, sid_obj);  /* borrowed */
    if (codec == NULL && PyErr_Occurred())
        goto fail;
    if (codec == NULL || codec == Py_None) {
        codec = video ? unit_guess_codec(d, n) : str_unknown;
        if (codec != str_unknown && PyDict_SetItem(codecs, sid_obj, codec) < 0)
            goto fail;
    }
    Py_INCREF(codec);
    if (PyUnicode_Check(codec) && PyUnicode_CompareWithASCIIString(codec, "h264") == 0)
        keyframe = unit_is_keyframe(d, n, 0);
    else if (PyUnicode_Check(codec) && PyUnicode_CompareWithASCIIString(codec, "h265") == 0)
        keyframe = unit_is_keyframe(d, n, 1);
    if ((unit = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, 0)) == NULL) {
        Py_DECREF(codec);
        goto fail;
    }
    values[0] = sid_obj;  /* the reference made above moves into the unit */
    values[1] = codec;
    values[2] = Py_NewRef(pts);
    values[3] = Py_NewRef(dts);
    values[4] = Py_NewRef(data);
    values[5] = Py_NewRef(keyframe ? Py_True : Py_False);
    for (i = 0; i < UNIT_FIELDS; i++)
        *(PyObject **)((char *)unit + offsets[i]) = values[i];
    if (PyObject_IS_GC(unit))
        PyObject_GC_UnTrack(unit);
    *key = video && keyframe;
    return unit;
fail:
    Py_DECREF(sid_obj);
    return NULL;
}

/* Module-level make_unit(unit_type, codecs, stream_id, pts, dts, data), for the tests that hold
 * unit_build to camgrid.media.ps.make_unit. */
static PyObject *
native_make_unit(PyObject *module, PyObject *args)
{
    PyObject *type, *codecs, *pts, *dts, *data;
    Py_ssize_t offsets[UNIT_FIELDS];
    int sid, key;
    if (!PyArg_ParseTuple(args, "OO!iOOO!:make_unit", &type, &PyDict_Type, &codecs, &sid, &pts, &dts, &PyBytes_Type,
                          &data))
        return NULL;
    if (sid < 0 || sid >= PS_STREAMS) {
        PyErr_SetString(PyExc_ValueError, "stream id out of range");
        return NULL;
    }
    if (unit_slots_init(type, offsets) < 0)
        return NULL;
    return unit_build(type, offsets, codecs, sid, pts, dts, data, &key);
}

typedef struct {
    PyObject *data;        /* bytes under construction (only this object refers to it); NULL: none yet */
    Py_ssize_t len;
    long long pts, dts;
    int has_pts, active;
} ps_unit_t;

typedef struct {
    PyObject_HEAD
    unsigned char *buf;
    Py_ssize_t len, cap;
    Py_ssize_t scanned_to;  /* the incomplete PES at buf[0] was searched for a pack header up to here */
    int gathering[PS_STREAMS], n_gathering;  /* ids of the active units, in the order they began */
    PyObject *codecs, *make_unit, *stream_types, *unknown;
    Py_ssize_t max_buffer;
    Py_ssize_t resyncs, dropped_bytes, packs;
    int busy;  /* inside feed or flush (make_unit runs Python code, which must not feed this demuxer) */
    PyObject *unit_type;  /* AccessUnit: units built here (unit_build) instead of by make_unit; NULL: make_unit */
    Py_ssize_t unit_slots[UNIT_FIELDS];
    int finished_key;  /* unit_build made a video key frame since this was last cleared (rtp_run_step) */
    /* A video PES that is still arriving (buf holds its header, 00 00 01 Ex .. the end of its PES
     * header, and nothing else): its payload goes straight from the datagrams into the bytes of
     * the unit it will join, after the unit's len bytes ("pending", not yet part of the unit),
     * instead of into buf and from there into the unit (ps_spill_*). spill_sid < 0: none. */
    int spill_sid, spill_has_pts;
    long long spill_pts, spill_dts;
    Py_ssize_t spill_pend, spill_end;  /* pending bytes; the PES's end (bytes from its start code) */
    unsigned char spill_tail[3];       /* the PES's last 3 bytes so far (a pack header cut by a datagram boundary) */
    ps_unit_t units[PS_STREAMS];
} PsDemuxerObject;

/* The first i >= from with d[i..i+3] == 00 00 01 BA and i + 4 <= limit, or -1. This is the
 * lost-packet search over every byte of video payload, so it lets memchr (vectorised by the C
 * library) find each BA (one byte in 256 of coded video, unlike a lone 01, where a memchr for the
 * 01 of each start code stopped every few hundred bytes) and only then looks at the 00 00 01
 * before it: 2-3 times as fast as an SSE2 loop over 32 positions at a time, in a micro-benchmark. */
static Py_ssize_t
find_pack_header(const unsigned char *d, Py_ssize_t limit, Py_ssize_t from)
{
    Py_ssize_t i = from + 3;  /* where the BA of a header at `from` lies */
    while (i < limit) {
        const unsigned char *q = memchr(d + i, 0xBA, (size_t)(limit - i));
        if (q == NULL)
            return -1;
        i = q - d;
        if (d[i - 1] == 1 && d[i - 2] == 0 && d[i - 3] == 0)
            return i - 3;
        i++;
    }
    return -1;
}

static long long
read_timestamp(const unsigned char *b)
{
    return ((long long)((b[0] >> 1) & 0x07) << 30) | ((long long)b[1] << 22) | ((long long)(b[2] >> 1) << 15)
           | ((long long)b[3] << 7) | (b[4] >> 1);
}

static void
ps_clear_units(PsDemuxerObject *self, int count_dropped)
{
    int i;
    self->spill_sid = -1;
    self->spill_pend = 0;
    for (i = 0; i < PS_STREAMS; i++) {
        if (count_dropped && self->units[i].active)
            self->dropped_bytes += self->units[i].len;
        Py_CLEAR(self->units[i].data);
        self->units[i].len = 0;
        self->units[i].active = 0;
    }
    self->n_gathering = 0;
}

static void
ps_deactivate(PsDemuxerObject *self, int sid)
{
    int i;
    self->units[sid].active = 0;
    self->units[sid].len = 0;
    for (i = 0; i < self->n_gathering && self->gathering[i] != sid; i++)
        ;
    if (i < self->n_gathering) {
        memmove(&self->gathering[i], &self->gathering[i + 1], (size_t)(self->n_gathering - i - 1) * sizeof(int));
        self->n_gathering--;
    }
}

static int
ps_ready(PsDemuxerObject *self)
{
    if (self->make_unit == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "PsDemuxer.__init__ was not called");
        return 0;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "PsDemuxer used from inside its own make_unit");
        return 0;
    }
    return 1;
}

/* Hand the unit of `sid` to make_unit and append the result to `out`; 0, or -1 with an exception. */
static int
ps_finish(PsDemuxerObject *self, int sid, PyObject *out)
{
    ps_unit_t *u = &self->units[sid];
    PyObject *data, *pts, *dts, *unit, *carry = NULL;
    Py_ssize_t len;
    if (!u->active)
        return 0;
    if (self->spill_sid == sid) {  /* the PES still arriving starts the next unit: its bytes move */
        Py_ssize_t need = self->spill_end - self->len;
        if ((carry = PyBytes_FromStringAndSize(NULL, need < 4096 ? 4096 : need)) == NULL)
            return -1;
        memcpy(PyBytes_AS_STRING(carry), PyBytes_AS_STRING(u->data) + u->len, (size_t)self->spill_pend);
    }
    data = u->data;
    u->data = carry;
    len = u->len;
    ps_deactivate(self, sid);
    if (len == 0) {
        Py_XDECREF(data);
        return 0;
    }
    if (_PyBytes_Resize(&data, len) < 0)
        return -1;
    if (u->has_pts) {
        pts = PyLong_FromLongLong(u->pts);
        dts = PyLong_FromLongLong(u->dts);
    } else {
        pts = Py_NewRef(Py_None);
        dts = Py_NewRef(Py_None);
    }
    unit = NULL;
    if (pts != NULL && dts != NULL && self->unit_type != NULL) {
        int key = 0;
        unit = unit_build(self->unit_type, self->unit_slots, self->codecs, sid, pts, dts, data, &key);
        self->finished_key |= key;
    } else if (pts != NULL && dts != NULL) {
        PyObject *sid_obj = PyLong_FromLong(sid);
        if (sid_obj != NULL) {
            PyObject *args[5] = {self->codecs, sid_obj, pts, dts, data};
            unit = PyObject_Vectorcall(self->make_unit, args, 5, NULL);
            Py_DECREF(sid_obj);
        }
    }
    Py_XDECREF(pts);
    Py_XDECREF(dts);
    Py_DECREF(data);
    if (unit == NULL)
        return -1;
    if (PyList_Append(out, unit) < 0) {
        Py_DECREF(unit);
        return -1;
    }
    Py_DECREF(unit);
    return 0;
}

static int
ps_append_payload(ps_unit_t *u, const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t cap;
    if (n == 0)
        return 0;
    if (u->data == NULL) {
        u->data = PyBytes_FromStringAndSize(NULL, n < 4096 ? 4096 : n);
        if (u->data == NULL)
            return -1;
    }
    cap = PyBytes_GET_SIZE(u->data);
    if (n > cap - u->len) {
        if (n > PY_SSIZE_T_MAX / 2 - u->len) {
            PyErr_NoMemory();
            return -1;
        }
        cap = 2 * (u->len + n);
        if (_PyBytes_Resize(&u->data, cap) < 0) {  /* frees and NULLs it on failure */
            u->len = 0;
            return -1;
        }
    }
    memcpy(PyBytes_AS_STRING(u->data) + u->len, p, (size_t)n);
    u->len += n;
    return 0;
}

static void
ps_read_map(PsDemuxerObject *self, const unsigned char *body, Py_ssize_t n)
{
    Py_ssize_t i, end, info_len, map_len;
    if (n < 6)
        return;
    info_len = (body[2] << 8) | body[3];
    i = 4 + info_len;
    if (i + 2 > n)
        return;
    map_len = (body[i] << 8) | body[i + 1];
    i += 2;
    end = n < i + map_len ? n : i + map_len;
    while (i + 4 <= end) {
        PyObject *type_obj = PyLong_FromLong(body[i]), *id_obj = PyLong_FromLong(body[i + 1]), *codec;
        Py_ssize_t es_len = (body[i + 2] << 8) | body[i + 3];
        if (type_obj != NULL && id_obj != NULL) {
            codec = PyDict_GetItemWithError(self->stream_types, type_obj);  /* borrowed */
            if (codec == NULL && !PyErr_Occurred())
                codec = self->unknown;
            if (codec != NULL)
                PyDict_SetItem(self->codecs, id_obj, codec);
        }
        Py_XDECREF(type_obj);
        Py_XDECREF(id_obj);
        PyErr_Clear();  /* small ints and a dict of strings: nothing here fails in practice */
        i += 4 + es_len;
    }
}

static int
ps_read_pes(PsDemuxerObject *self, int sid, const unsigned char *body, Py_ssize_t n, PyObject *out)
{
    int flags, header_len, has_pts = 0;
    Py_ssize_t start;
    long long pts = 0, dts = 0;
    ps_unit_t *u = &self->units[sid];
    if (n < 3 || body[0] >> 6 != 2) {
        self->resyncs++;
        return 0;
    }
    flags = body[1] >> 6;
    header_len = body[2];
    start = 3 + header_len;
    if (start > n) {
        self->resyncs++;
        return 0;
    }
    if ((flags & 2) && header_len >= 5) {
        has_pts = 1;
        pts = read_timestamp(body + 3);
        dts = flags == 3 && header_len >= 10 ? read_timestamp(body + 8) : pts;
    }
    if (has_pts && u->active && (!u->has_pts || u->pts != pts || u->dts != dts)) {
        if (ps_finish(self, sid, out) < 0)  /* a new timestamp starts the next unit */
            return -1;
    }
    if (!u->active) {
        u->active = 1;
        self->gathering[self->n_gathering++] = sid;
        u->has_pts = has_pts;
        u->pts = pts;
        u->dts = dts;
        u->len = 0;
    }
    return ps_append_payload(u, body + start, n - start);
}

/* PythonPsDemuxer._parse: the position up to which the buffer is consumed (may pass its end by a
 * pack header's stuffing), or -1 with an exception. */
static Py_ssize_t
ps_parse(PsDemuxerObject *self, PyObject *out)
{
    const unsigned char *b = self->buf;
    Py_ssize_t pos = 0, n = self->len, scanned = self->scanned_to;
    self->scanned_to = 0;
    while (n - pos >= 4) {
        int code;
        Py_ssize_t length, end, lost;
        if (b[pos] != 0 || b[pos + 1] != 0 || b[pos + 2] != 1) {
            Py_ssize_t next = find_start_code(b, n, pos + 1);
            self->resyncs++;
            if (next < 0) {
                Py_ssize_t keep = n - 2 > pos ? n - 2 : pos;  /* a start code may begin in the last two bytes */
                self->dropped_bytes += keep - pos;
                return keep;
            }
            self->dropped_bytes += next - pos;
            pos = next;
            continue;
        }
        code = b[pos + 3];
        if (code == 0xBA) {
            if (n - pos < 14)
                return pos;
            if (b[pos + 4] >> 6 != 1) {  /* MPEG-1 or damaged: skip the start code */
                self->resyncs++;
                pos += 4;
                continue;
            }
            self->packs++;
            pos += 14 + (b[pos + 13] & 0x07);
            continue;
        }
        if (code == 0xB9) {
            pos += 4;
            continue;
        }
        if (code < 0xBB) {
            self->resyncs++;
            pos += 3;
            continue;
        }
        if (n - pos < 6)
            return pos;
        length = (b[pos + 4] << 8) | b[pos + 5];
        end = pos + 6 + length;
        lost = -1;
        if (code >= 0xE0 && code <= 0xEF) {
            /* Only the bytes added since the PES at buf[0] was last searched (minus 3, for a
             * start code cut by the boundary) are searched again. */
            Py_ssize_t from = pos == 0 && scanned > 9 ? scanned - 3 : pos + 6;
            lost = find_pack_header(b, end < n ? end : n, from);
        }
        if (lost >= 0) {
            self->resyncs++;
            self->dropped_bytes += lost - pos;
            if (lost - pos > 8 && (b[pos + 7] & 0x80)) {  /* it carried a PTS: the unit before it was whole */
                if (ps_finish(self, code, out) < 0)
                    return -1;
            } else {  /* a piece of the unit being gathered is gone */
                ps_deactivate(self, code);
            }
            pos = lost;
            continue;
        }
        if (end > n) {
            self->scanned_to = n - pos;  /* buf[pos] becomes buf[0] when the buffer is trimmed */
            return pos;
        }
        if (code == 0xBC)
            ps_read_map(self, b + pos + 6, length);
        else if ((code >= 0xC0 && code <= 0xEF) || code == 0xBD) {
            if (ps_read_pes(self, code, b + pos + 6, length, out) < 0)
                return -1;
        }
        pos = end;  /* system header (BB), padding (BE), private 2 (BF) and others are skipped */
    }
    return pos;
}

/* Room for `need` bytes in the unit's bytes object; 0, or -1 with an exception. */
static int
ps_reserve(ps_unit_t *u, Py_ssize_t need)
{
    Py_ssize_t cap;
    if (u->data == NULL) {
        u->data = PyBytes_FromStringAndSize(NULL, need < 4096 ? 4096 : need);
        return u->data == NULL ? -1 : 0;
    }
    cap = PyBytes_GET_SIZE(u->data);
    if (need <= cap)
        return 0;
    cap = need > 2 * u->len ? need : 2 * u->len;
    if (_PyBytes_Resize(&u->data, cap) < 0) {  /* frees and NULLs it on failure */
        u->len = 0;
        return -1;
    }
    return 0;
}

/* After a feed: when buf holds nothing but a video PES that is still arriving, with its whole PES
 * header, and whose payload will join its stream's unit without finishing it first (ps_read_pes
 * decides that from the same bytes; nothing can change it before the PES ends but a flush, which
 * ps_finish handles), its payload so far moves into the unit's bytes and the rest will go there
 * straight from the datagrams (ps_spill_feed). The lost-packet search over buf is done (the parse
 * stopped at this PES having searched all of it). 0, or -1 with an exception. */
static int
ps_spill_begin(PsDemuxerObject *self)
{
    const unsigned char *b = self->buf;
    Py_ssize_t length, end, header_end;
    int sid, flags, header_len, has_pts = 0;
    long long pts = 0, dts = 0;
    ps_unit_t *u;
    if (self->len < 9 || self->scanned_to != self->len || b[0] != 0 || b[1] != 0 || b[2] != 1 || b[3] < 0xE0
        || b[3] > 0xEF)
        return 0;
    sid = b[3];
    length = (b[4] << 8) | b[5];
    end = 6 + length;
    if (end <= self->len || end > self->max_buffer || length < 3 || b[6] >> 6 != 2)
        return 0;
    flags = b[7] >> 6;
    header_len = b[8];
    header_end = 9 + header_len;
    if (header_end > end || header_end > self->len)
        return 0;
    if ((flags & 2) && header_len >= 5) {
        has_pts = 1;
        pts = read_timestamp(b + 9);
        dts = flags == 3 && header_len >= 10 ? read_timestamp(b + 14) : pts;
    }
    u = &self->units[sid];
    if (has_pts && u->active && (!u->has_pts || u->pts != pts || u->dts != dts))
        return 0;  /* the unit finishes when this PES is read: left to ps_parse */
    if (!u->active)
        u->len = 0;
    if (ps_reserve(u, u->len + (end - header_end)) < 0)
        return -1;
    memcpy(self->spill_tail, b + self->len - 3, 3);
    self->spill_pend = self->len - header_end;
    memcpy(PyBytes_AS_STRING(u->data) + u->len, b + header_end, (size_t)self->spill_pend);
    self->len = header_end;
    self->scanned_to = 0;
    self->spill_sid = sid;
    self->spill_end = end;
    self->spill_has_pts = has_pts;
    self->spill_pts = pts;
    self->spill_dts = dts;
    return 0;
}

/* The next n bytes at p while a PES spills (ps_spill_begin), as ps_parse would take them at the
 * PES at buf[0]: the lost-packet search over the new bytes (and the 3 before them); then, when the
 * PES goes on past them, they are pending in the unit and 1 is returned (nothing else to do: the
 * reference would only have buffered them). Otherwise the spill ends and 0 is returned with buf
 * holding the bytes from where parsing goes on (a pack header that cut the PES, or the end of the
 * PES, whose payload has joined its unit as ps_read_pes would add it) that came before p, and
 * *skip the bytes of p that parsing goes on after; the caller appends the rest of p and parses.
 * -1 with an exception. */
static int
ps_spill_feed(PsDemuxerObject *self, const unsigned char *p, Py_ssize_t n, PyObject *out, Py_ssize_t *skip)
{
    int sid = self->spill_sid;
    ps_unit_t *u = &self->units[sid];
    Py_ssize_t header_end = self->len, have = header_end + self->spill_pend, end = self->spill_end;
    Py_ssize_t limit = have + n < end ? have + n : end, lost = -1, edge_len = 3 + (n < 3 ? n : 3);
    unsigned char edge[6];
    memcpy(edge, self->spill_tail, 3);
    memcpy(edge + 3, p, (size_t)(edge_len - 3));
    lost = find_pack_header(edge, limit - (have - 3) < edge_len ? limit - (have - 3) : edge_len, 0);
    if (lost >= 0) {
        lost += have - 3;
    } else {
        lost = find_pack_header(p, limit - have, 0);
        if (lost >= 0)
            lost += have;
    }
    if (lost < 0 && have + n < end) {
        memcpy(PyBytes_AS_STRING(u->data) + u->len + self->spill_pend, p, (size_t)n);
        self->spill_pend += n;
        if (n >= 3) {
            memcpy(self->spill_tail, p + n - 3, 3);
        } else {
            memmove(self->spill_tail, self->spill_tail + n, (size_t)(3 - n));
            memcpy(self->spill_tail + 3 - n, p, (size_t)n);
        }
        return 1;
    }
    self->spill_sid = -1;
    if (lost >= 0) {  /* ps_parse's lost-packet rule, the cut PES at buf[0] */
        int carried_pts = lost > 8 && (self->buf[7] & 0x80);
        self->spill_pend = 0;
        self->resyncs++;
        self->dropped_bytes += lost;
        if (carried_pts) {
            if (ps_finish(self, sid, out) < 0)
                return -1;
        } else {
            ps_deactivate(self, sid);
        }
        self->len = 0;
        if (lost < have) {  /* it began in the last bytes before these */
            memcpy(self->buf, self->spill_tail + (lost - (have - 3)), (size_t)(have - lost));
            self->len = have - lost;
        }
        *skip = lost < have ? 0 : lost - have;
    } else {  /* the PES is whole: its payload joins the unit (ps_read_pes) */
        Py_ssize_t last = end - have;
        memcpy(PyBytes_AS_STRING(u->data) + u->len + self->spill_pend, p, (size_t)last);
        if (!u->active) {
            u->active = 1;
            self->gathering[self->n_gathering++] = sid;
            u->has_pts = self->spill_has_pts;
            u->pts = self->spill_pts;
            u->dts = self->spill_dts;
        }
        u->len += self->spill_pend + last;
        self->spill_pend = 0;
        self->len = 0;
        *skip = last;
    }
    self->scanned_to = 0;
    return 0;
}

/* Append n bytes at p to the buffer and parse: PythonPsDemuxer.feed. The caller has checked
 * ps_ready and set `busy`; the finished units go to `out`. 0, or -1 with an exception. */
static int
ps_feed_bytes(PsDemuxerObject *self, const unsigned char *p, Py_ssize_t n, PyObject *out)
{
    Py_ssize_t pos;
    if (self->spill_sid >= 0) {
        Py_ssize_t skip = 0;
        int rc = ps_spill_feed(self, p, n, out, &skip);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
        p += skip;  /* buf holds the bytes before p that parsing goes on from */
        n -= skip;
    }
    if (n > self->cap - self->len) {
        Py_ssize_t cap = self->cap ? self->cap : 65536;
        unsigned char *grown;
        while (cap - self->len < n) {
            if (cap > PY_SSIZE_T_MAX / 2) {
                PyErr_NoMemory();
                return -1;
            }
            cap *= 2;
        }
        grown = PyMem_Realloc(self->buf, (size_t)cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->buf = grown;
        self->cap = cap;
    }
    memcpy(self->buf + self->len, p, (size_t)n);
    self->len += n;
    pos = ps_parse(self, out);
    if (pos < 0) {
        self->scanned_to = 0;
        return -1;
    }
    if (pos >= self->len) {
        self->len = 0;
    } else if (pos > 0) {
        memmove(self->buf, self->buf + pos, (size_t)(self->len - pos));
        self->len -= pos;
    }
    if (self->len > self->max_buffer) {
        self->dropped_bytes += self->len;
        self->len = 0;
        self->scanned_to = 0;
    }
    return ps_spill_begin(self);
}

/* Every unit still being gathered, in the order they began, to `out` (caller: ps_ready, busy). */
static int
ps_flush_into(PsDemuxerObject *self, PyObject *out)
{
    int order[PS_STREAMS], count = self->n_gathering, i;
    memcpy(order, self->gathering, (size_t)count * sizeof(int));  /* ps_finish changes the list */
    for (i = 0; i < count; i++) {
        if (ps_finish(self, order[i], out) < 0)
            return -1;
    }
    return 0;
}

static PyObject *
PsDemuxer_feed(PsDemuxerObject *self, PyObject *arg)
{
    Py_buffer view;
    PyObject *out;
    int rc;

    if (!ps_ready(self) || PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    out = PyList_New(0);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    self->busy = 1;
    rc = ps_feed_bytes(self, (const unsigned char *)view.buf, view.len, out);
    self->busy = 0;
    PyBuffer_Release(&view);
    if (rc < 0)
        Py_CLEAR(out);
    return out;
}

static PyObject *
PsDemuxer_flush(PsDemuxerObject *self, PyObject *unused)
{
    PyObject *out;
    int rc;
    if (!ps_ready(self) || (out = PyList_New(0)) == NULL)
        return NULL;
    self->busy = 1;
    rc = ps_flush_into(self, out);
    self->busy = 0;
    if (rc < 0)
        Py_CLEAR(out);
    return out;
}

/* Whether a unit make_unit built is a video key frame (its `keyframe` attribute, for stream ids
 * E0-EF); -1 with an exception. */
static int
is_video_keyframe(PyObject *unit, PyObject *keyframe_name)
{
    PyObject *sid_obj, *flag;
    long sid;
    int truth;
    if ((sid_obj = PyObject_GetAttrString(unit, "stream_id")) == NULL)
        return -1;
    sid = PyLong_AsLong(sid_obj);
    Py_DECREF(sid_obj);
    if (sid == -1 && PyErr_Occurred())
        return -1;
    if (sid < 0xE0 || sid > 0xEF)
        return 0;
    if ((flag = PyObject_GetAttr(unit, keyframe_name)) == NULL)
        return -1;
    truth = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    return truth;
}

/* The state of one in-order run of RTP datagrams (feed_rtp, and UdpDrain.drain from its receive
 * buffer): what the next datagram must carry and what the run took so far. */
typedef struct {
    long long ssrc;       /* expected SSRC; < 0: any */
    int seq;              /* expected sequence number; < 0: any (TCP) */
    int pt;               /* the run's payload type; -1 before the first datagram */
    int stop;             /* a datagram completed a video key frame: the run ends after it */
    long long last_ssrc;
    Py_ssize_t count, wire;
} rtp_run_t;

static void
rtp_run_init(rtp_run_t *run, long long ssrc, int seq)
{
    run->ssrc = ssrc;
    run->seq = seq;
    run->pt = -1;
    run->stop = 0;
    run->last_ssrc = -1;
    run->count = run->wire = 0;
}

/* One datagram of a run (the caller has checked ps_ready and set `busy`): 1 when it was plain RTP
 * as the run expects and its payload went to the demuxer (a marker flushes it, as
 * MediaStream._deliver does; the finished units go to `out`), 0 when it is not (the run ends
 * before it), -1 with an exception. The datagram's bytes must stay put while make_unit runs. */
static int
rtp_run_step(PsDemuxerObject *self, rtp_run_t *run, const unsigned char *d, Py_ssize_t len, PyObject *out,
             PyObject *keyframe_name)
{
    long long pssrc;
    Py_ssize_t before;
    int k, rc;
    if (len < 12 || d[0] != 0x80)
        return 0;
    pssrc = ((long long)d[8] << 24) | (d[9] << 16) | (d[10] << 8) | d[11];
    k = d[1] & 0x7F;
    if ((run->ssrc >= 0 && pssrc != run->ssrc) || (run->seq >= 0 && ((d[2] << 8) | d[3]) != run->seq)
        || (run->pt >= 0 && k != run->pt))
        return 0;
    before = PyList_GET_SIZE(out);
    self->finished_key = 0;
    rc = ps_feed_bytes(self, d + 12, len - 12, out);
    if (rc == 0 && (d[1] & 0x80))
        rc = ps_flush_into(self, out);
    if (rc < 0)
        return -1;
    if (self->unit_type != NULL) {  /* unit_build said whether one was a video key frame */
        run->stop |= self->finished_key;
        before = PyList_GET_SIZE(out);
    }
    for (; before < PyList_GET_SIZE(out); before++) {
        int key = is_video_keyframe(PyList_GET_ITEM(out, before), keyframe_name);
        if (key < 0)
            return -1;
        run->stop |= key;
    }
    run->pt = k;
    run->last_ssrc = pssrc;
    run->wire += len;
    run->count++;
    if (run->seq >= 0)
        run->seq = (run->seq + 1) & 0xFFFF;
    return 1;
}

static PyObject *keyframe_str;  /* "keyframe", interned at module init */

/* MediaStream.on_datagrams' in-order run, received and demuxed in one call. From datagrams[start]
 * on, each datagram is taken while it is plain RTP (a bytes object of at least 12 bytes whose
 * first byte is 0x80: version 2 without padding, extension or CSRC), carries `ssrc` (any when
 * ssrc < 0), the next sequence number (from `seq`; any when seq < 0, for TCP) and the run's
 * first payload type: its payload is fed to the demuxer straight from the datagram (no bytes
 * object per payload), and a marker flushes the demuxer, as _deliver does. The run ends before
 * the first datagram that is not so (the caller's Python path takes that one), and after a
 * datagram that completed a video key frame, so that the caller sees the demuxer's codecs as they
 * were just after that datagram when it handles the key frame (MediaStream._units reads them).
 * Returns (units, count, payload_type, last_ssrc, wire_bytes); (units, 0, -1, -1, 0) when the
 * first datagram does not qualify. If make_unit raises, the exception propagates and the units
 * of this call are lost (make_unit is pure; it does not raise on any input). */
static PyObject *
PsDemuxer_feed_rtp(PsDemuxerObject *self, PyObject *args)
{
    PyObject *datagrams, *out;
    Py_ssize_t start, i;
    long long ssrc;
    int seq, rc;
    rtp_run_t run;

    if (!PyArg_ParseTuple(args, "O!nLi:feed_rtp", &PyList_Type, &datagrams, &start, &ssrc, &seq))
        return NULL;
    if (seq > 0xFFFF || ssrc > 0xFFFFFFFFLL) {
        PyErr_SetString(PyExc_ValueError, "sequence number or SSRC out of range");
        return NULL;
    }
    if (start < 0 || start > PyList_GET_SIZE(datagrams)) {
        PyErr_Format(PyExc_ValueError, "start %zd out of range", start);
        return NULL;
    }
    if (!ps_ready(self) || (out = PyList_New(0)) == NULL)
        return NULL;
    rtp_run_init(&run, ssrc, seq);
    self->busy = 1;
    /* The list is re-read each time: make_unit runs Python code in between. */
    for (i = start; !run.stop && i < PyList_GET_SIZE(datagrams); i++) {
        PyObject *item = PyList_GET_ITEM(datagrams, i);
        if (!PyBytes_CheckExact(item))
            break;
        Py_INCREF(item);  /* held while make_unit runs */
        rc = rtp_run_step(self, &run, (const unsigned char *)PyBytes_AS_STRING(item), PyBytes_GET_SIZE(item), out,
                          keyframe_str);
        Py_DECREF(item);
        if (rc < 0)
            goto fail;
        if (rc == 0)
            break;
    }
    self->busy = 0;
    return Py_BuildValue("(NniLn)", out, run.count, run.pt, run.last_ssrc, run.wire);
fail:
    self->busy = 0;
    Py_DECREF(out);
    return NULL;
}

static PyObject *
PsDemuxer_lost(PsDemuxerObject *self, PyObject *unused)
{
    if (!ps_ready(self))
        return NULL;
    self->dropped_bytes += self->len + self->spill_pend;  /* a spilling PES's pending bytes were buffered in the reference */
    self->len = 0;
    self->scanned_to = 0;
    ps_clear_units(self, 1);
    Py_RETURN_NONE;
}

static int
PsDemuxer_init(PsDemuxerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"make_unit", "stream_types", "max_buffer", "unit_type", NULL};
    PyObject *make_unit, *stream_types, *codecs, *unknown, *unit_type = Py_None;
    Py_ssize_t max_buffer, unit_slots[UNIT_FIELDS];

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!n|O:PsDemuxer", kwlist, &make_unit, &PyDict_Type,
                                     &stream_types, &max_buffer, &unit_type))
        return -1;
    if (unit_type != Py_None && unit_slots_init(unit_type, unit_slots) < 0)
        return -1;
    if (!PyCallable_Check(make_unit)) {
        PyErr_SetString(PyExc_TypeError, "make_unit must be callable");
        return -1;
    }
    if (max_buffer < 0) {
        PyErr_SetString(PyExc_ValueError, "max_buffer must not be negative");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "PsDemuxer used from inside its own make_unit");
        return -1;
    }
    if ((codecs = PyDict_New()) == NULL)
        return -1;
    if ((unknown = PyUnicode_InternFromString("unknown")) == NULL) {
        Py_DECREF(codecs);
        return -1;
    }
    ps_clear_units(self, 0);
    Py_XSETREF(self->codecs, codecs);
    Py_XSETREF(self->unknown, unknown);
    Py_XSETREF(self->make_unit, Py_NewRef(make_unit));
    Py_XSETREF(self->stream_types, Py_NewRef(stream_types));
    if (unit_type != Py_None) {
        Py_XSETREF(self->unit_type, Py_NewRef(unit_type));
        memcpy(self->unit_slots, unit_slots, sizeof(unit_slots));
    } else {
        Py_CLEAR(self->unit_type);
    }
    self->max_buffer = max_buffer;
    self->len = self->scanned_to = 0;
    self->resyncs = self->dropped_bytes = self->packs = 0;
    return 0;
}

static void
PsDemuxer_dealloc(PsDemuxerObject *self)
{
    ps_clear_units(self, 0);
    Py_CLEAR(self->codecs);
    Py_CLEAR(self->make_unit);
    Py_CLEAR(self->stream_types);
    Py_CLEAR(self->unknown);
    Py_CLEAR(self->unit_type);
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef PsDemuxer_methods[] = {
    {"feed", (PyCFunction)PsDemuxer_feed, METH_O,
     "feed(data) -> [unit, ...]: bytes of the stream (e.g. one RTP payload); the units they completed."},
    {"flush", (PyCFunction)PsDemuxer_flush, METH_NOARGS,
     "flush() -> [unit, ...]: every unit still being gathered, in the order they began."},
    {"feed_rtp", (PyCFunction)PsDemuxer_feed_rtp, METH_VARARGS,
     "feed_rtp(datagrams, start, ssrc, seq) -> (units, count, payload_type, last_ssrc, wire_bytes): the\n"
     "in-order run of plain RTP packets from datagrams[start], their payloads fed and flushed at\n"
     "markers in one call (see MediaStream.on_datagrams); ssrc < 0: any; seq < 0: any (TCP)."},
    {"lost", (PyCFunction)PsDemuxer_lost, METH_NOARGS,
     "lost(): packets went missing here: the buffer and the units being gathered are dropped."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef PsDemuxer_members[] = {
    {"codecs", T_OBJECT, offsetof(PsDemuxerObject, codecs), READONLY, "stream id -> codec"},
    {"resyncs", T_PYSSIZET, offsetof(PsDemuxerObject, resyncs), 0, "times garbage was skipped"},
    {"dropped_bytes", T_PYSSIZET, offsetof(PsDemuxerObject, dropped_bytes), 0, "bytes dropped"},
    {"packs", T_PYSSIZET, offsetof(PsDemuxerObject, packs), 0, "pack headers read"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject PsDemuxerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "camgrid.media._native.PsDemuxer",
    .tp_basicsize = sizeof(PsDemuxerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "PsDemuxer(make_unit, stream_types, max_buffer, unit_type=None): camgrid.media.ps.PythonPsDemuxer\n"
              "in C (use camgrid.media.ps.PsDemuxer, which passes these). With unit_type (AccessUnit) the\n"
              "units are built in C as make_unit would build them, and make_unit is not called.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PsDemuxer_init,
    .tp_dealloc = (destructor)PsDemuxer_dealloc,
    .tp_methods = PsDemuxer_methods,
    .tp_members = PsDemuxer_members,
};

/* -- UDP ---------------------------------------------------------------------------------------- */
#ifdef __linux__
#define RECV_MAX_COUNT 1024
#define RECV_MAX_SIZE 65536

static char *recv_buffer = NULL;  /* count x size bytes, grown on demand; used with the GIL held */
static size_t recv_buffer_size = 0;
static struct mmsghdr recv_msgs[RECV_MAX_COUNT];
static struct iovec recv_iovs[RECV_MAX_COUNT];

static struct sockaddr_in recv_addrs[RECV_MAX_COUNT];

/* Up to `count` datagrams in one recvmmsg call; with `sources`, also their IPv4 senders packed
 * 6 bytes each (address, port, network order; zeros for another family), as (datagrams, sources). */
static PyObject *
recv_batch(PyObject *args, const char *format, int sources)
{
    int fd, count = 64, got, k;
    Py_ssize_t size = RECV_MAX_SIZE;
    size_t need;
    PyObject *out, *item, *packed = NULL;

    if (!PyArg_ParseTuple(args, format, &fd, &count, &size))
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
        if (sources) {
            recv_msgs[k].msg_hdr.msg_name = &recv_addrs[k];
            recv_msgs[k].msg_hdr.msg_namelen = sizeof(recv_addrs[k]);
        }
        recv_msgs[k].msg_len = 0;
    }
    /* Non-blocking and short: the GIL stays held (it also guards the shared buffer). */
    got = recvmmsg(fd, recv_msgs, (unsigned int)count, MSG_DONTWAIT, NULL);
    if (got < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return PyErr_SetFromErrno(PyExc_OSError);
        got = 0;
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
    if (!sources)
        return out;
    packed = PyBytes_FromStringAndSize(NULL, 6 * (Py_ssize_t)got);
    if (packed == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    for (k = 0; k < got; k++) {
        unsigned char *w = (unsigned char *)PyBytes_AS_STRING(packed) + 6 * k;
        if (recv_msgs[k].msg_hdr.msg_namelen >= sizeof(struct sockaddr_in) && recv_addrs[k].sin_family == AF_INET) {
            memcpy(w, &recv_addrs[k].sin_addr, 4);
            memcpy(w + 4, &recv_addrs[k].sin_port, 2);
        } else {
            memset(w, 0, 6);
        }
    }
    return Py_BuildValue("(NN)", out, packed);
}

static PyObject *
recv_many(PyObject *module, PyObject *args)
{
    return recv_batch(args, "i|in:recv_many", 0);
}

static PyObject *
recv_many_from(PyObject *module, PyObject *args)
{
    return recv_batch(args, "i|in:recv_many_from", 1);
}
/* -- UdpDrain: every ready stream socket of a node in one call ---------------------------------- */
/* One epoll set of UDP stream sockets (camgrid.media.ingest.UdpDrain registers its fd with the
 * event loop). drain() takes each ready socket's datagrams with one recvmmsg (at most `batch`, for
 * fairness: a socket with more stays ready) into a buffer kept between calls, and feeds the
 * in-order run at the head of each batch to the stream's demuxer straight from that buffer
 * (rtp_run_step, as feed_rtp does: no bytes object and no copy per datagram). The run's state comes
 * from the stream as MediaStream.on_datagrams reads it: `stream.demuxer` (a PsDemuxer),
 * `stream.spec.ssrc` and `stream.jitter.in_order` (`stream.first_packet_at` without a reorder
 * buffer). Whatever the run does not take (from the first datagram that Python must judge, or after
 * a datagram that completed a video key frame) comes back as bytes, in order, for
 * MediaStream.on_datagrams. Python thus runs once per ready socket with a finished frame or a
 * leftover, not once per datagram. */
typedef struct {
    PyObject_HEAD
    int epfd;
    int busy;
    int batch, max_events;
    Py_ssize_t size;
    PyObject **by_fd;  /* fd -> its stream (a strong reference), NULL: none */
    int by_fd_len;
    Py_ssize_t registered, errors;
    char *buf;
    struct mmsghdr *msgs;
    struct iovec *iovs;
    struct epoll_event *events;
} UdpDrainObject;

static PyObject *str_demuxer, *str_spec, *str_ssrc, *str_jitter, *str_in_order, *str_first_packet_at;

static int
UdpDrain_init(UdpDrainObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"batch", "size", "max_events", NULL};
    int batch = 64, max_events = 256, k;
    Py_ssize_t size = RECV_MAX_SIZE;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|ini:UdpDrain", kwlist, &batch, &size, &max_events))
        return -1;
    if (self->epfd > 0 || self->buf != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "UdpDrain.__init__ called twice");
        return -1;
    }
    if (batch < 1 || batch > RECV_MAX_COUNT || size < 12 || size > RECV_MAX_SIZE || max_events < 1 || max_events > 65536) {
        PyErr_Format(PyExc_ValueError, "batch must be 1..%d, size 12..%d, max_events 1..65536", RECV_MAX_COUNT,
                     RECV_MAX_SIZE);
        return -1;
    }
    self->batch = batch;
    self->size = size;
    self->max_events = max_events;
    self->buf = PyMem_RawMalloc((size_t)batch * (size_t)size);
    self->msgs = PyMem_RawCalloc((size_t)batch, sizeof(struct mmsghdr));
    self->iovs = PyMem_RawCalloc((size_t)batch, sizeof(struct iovec));
    self->events = PyMem_RawCalloc((size_t)max_events, sizeof(struct epoll_event));
    if (self->buf == NULL || self->msgs == NULL || self->iovs == NULL || self->events == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (k = 0; k < batch; k++) {
        self->iovs[k].iov_base = self->buf + (size_t)k * (size_t)size;
        self->iovs[k].iov_len = (size_t)size;
        self->msgs[k].msg_hdr.msg_iov = &self->iovs[k];
        self->msgs[k].msg_hdr.msg_iovlen = 1;
    }
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epfd < 0) {
        self->epfd = -1;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static PyObject *
UdpDrain_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    UdpDrainObject *self = (UdpDrainObject *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->epfd = -1;
    return (PyObject *)self;
}

static void
udp_drain_clear(UdpDrainObject *self)
{
    int fd;
    for (fd = 0; fd < self->by_fd_len; fd++)
        Py_CLEAR(self->by_fd[fd]);
    PyMem_Free(self->by_fd);
    self->by_fd = NULL;
    self->by_fd_len = 0;
    self->registered = 0;
}

static void
UdpDrain_dealloc(UdpDrainObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->epfd >= 0)
        close(self->epfd);
    udp_drain_clear(self);
    PyMem_RawFree(self->buf);
    PyMem_RawFree(self->msgs);
    PyMem_RawFree(self->iovs);
    PyMem_RawFree(self->events);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
UdpDrain_traverse(UdpDrainObject *self, visitproc visit, void *arg)
{
    int fd;
    for (fd = 0; fd < self->by_fd_len; fd++)
        Py_VISIT(self->by_fd[fd]);
    return 0;
}

static int
UdpDrain_tp_clear(UdpDrainObject *self)
{
    udp_drain_clear(self);
    return 0;
}

static int
udp_drain_usable(UdpDrainObject *self)
{
    if (self->epfd < 0) {
        PyErr_SetString(PyExc_ValueError, "UdpDrain is closed (or __init__ was not called)");
        return 0;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "UdpDrain used from inside its own drain()");
        return 0;
    }
    return 1;
}

static PyObject *
UdpDrain_add(UdpDrainObject *self, PyObject *args)
{
    int fd;
    PyObject *stream;
    struct epoll_event ev;

    if (!PyArg_ParseTuple(args, "iO:add", &fd, &stream) || !udp_drain_usable(self))
        return NULL;
    if (fd < 0) {
        PyErr_Format(PyExc_ValueError, "bad file descriptor %d", fd);
        return NULL;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        if (errno == EEXIST)
            PyErr_Format(PyExc_ValueError, "file descriptor %d is already registered", fd);
        else
            PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    if (fd >= self->by_fd_len) {
        int len = self->by_fd_len ? self->by_fd_len : 64, i;
        PyObject **grown;
        while (len <= fd)
            len *= 2;
        grown = PyMem_Realloc(self->by_fd, (size_t)len * sizeof(PyObject *));
        if (grown == NULL) {
            (void)epoll_ctl(self->epfd, EPOLL_CTL_DEL, fd, NULL);
            return PyErr_NoMemory();
        }
        for (i = self->by_fd_len; i < len; i++)
            grown[i] = NULL;
        self->by_fd = grown;
        self->by_fd_len = len;
    }
    if (self->by_fd[fd] != NULL) {  /* a socket closed without remove() left the set; its number is reused */
        Py_SETREF(self->by_fd[fd], Py_NewRef(stream));
        Py_RETURN_NONE;
    }
    self->by_fd[fd] = Py_NewRef(stream);
    self->registered++;
    Py_RETURN_NONE;
}

static PyObject *
UdpDrain_remove(UdpDrainObject *self, PyObject *arg)
{
    int fd = _PyLong_AsInt(arg);
    PyObject *stream;
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (!udp_drain_usable(self))
        return NULL;
    if (fd < 0 || fd >= self->by_fd_len || self->by_fd[fd] == NULL)
        Py_RETURN_FALSE;
    (void)epoll_ctl(self->epfd, EPOLL_CTL_DEL, fd, NULL);  /* a socket already closed has left the set */
    stream = self->by_fd[fd];
    self->by_fd[fd] = NULL;
    self->registered--;
    Py_DECREF(stream);
    Py_RETURN_TRUE;
}

static PyObject *
UdpDrain_close(UdpDrainObject *self, PyObject *unused)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "UdpDrain used from inside its own drain()");
        return NULL;
    }
    if (self->epfd >= 0) {
        close(self->epfd);
        self->epfd = -1;
    }
    udp_drain_clear(self);
    Py_RETURN_NONE;
}

static PyObject *
UdpDrain_fileno(UdpDrainObject *self, PyObject *unused)
{
    if (self->epfd < 0) {
        PyErr_SetString(PyExc_ValueError, "UdpDrain is closed");
        return NULL;
    }
    return PyLong_FromLong(self->epfd);
}

/* The run state MediaStream.on_datagrams would use for `stream`: 1 with *demuxer (a new
 * reference), *ssrc and *seq set; 0 when the run cannot be taken and every datagram goes to
 * Python, including when reading the state fails (a stream object that lacks what is read here,
 * a demuxer whose __init__ did not run): on_datagrams then meets the same error and
 * UdpDrain.drain logs it for that stream alone, rather than one stream's fault failing every
 * drain (the epoll set is level-triggered: its datagrams would be read and lost each time). */
static int
stream_run_state(PyObject *stream, PyObject **demuxer, long long *ssrc, int *seq)
{
    PyObject *d, *spec, *value, *jitter;
    int ok = 0;
    if ((d = PyObject_GetAttr(stream, str_demuxer)) == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (!PyObject_TypeCheck(d, &PsDemuxerType) || ((PsDemuxerObject *)d)->make_unit == NULL) {
        Py_DECREF(d);
        return 0;
    }
    if ((spec = PyObject_GetAttr(stream, str_spec)) == NULL)
        goto fail;
    value = PyObject_GetAttr(spec, str_ssrc);
    Py_DECREF(spec);
    if (value == NULL)
        goto fail;
    if (value == Py_None) {
        *ssrc = -1;
    } else if (PyLong_Check(value)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(value);
            goto fail;
        }
        if (overflow || v < 0 || v > 0xFFFFFFFFLL) {  /* an SSRC no packet can carry: Python counts them */
            Py_DECREF(value);
            Py_DECREF(d);
            return 0;
        }
        *ssrc = v;
    } else {
        Py_DECREF(value);
        Py_DECREF(d);
        return 0;
    }
    Py_DECREF(value);
    if ((jitter = PyObject_GetAttr(stream, str_jitter)) == NULL)
        goto fail;
    if (jitter == Py_None) {  /* in order by nature (TCP): any number, once a first packet came */
        Py_DECREF(jitter);
        if ((value = PyObject_GetAttr(stream, str_first_packet_at)) == NULL)
            goto fail;
        ok = value != Py_None;
        *seq = -1;
    } else {
        value = PyObject_GetAttr(jitter, str_in_order);
        Py_DECREF(jitter);
        if (value == NULL)
            goto fail;
        if (value != Py_None) {
            long v = PyLong_AsLong(value);
            if (v == -1 && PyErr_Occurred()) {
                Py_DECREF(value);
                goto fail;
            }
            ok = v >= 0 && v <= 0xFFFF;
            *seq = (int)v;
        }
    }
    Py_DECREF(value);
    if (!ok) {
        Py_DECREF(d);
        return 0;
    }
    *demuxer = d;
    return 1;
fail:
    Py_DECREF(d);
    PyErr_Clear();
    return 0;
}

/* The datagrams of msgs[from:got] as a list of bytes; NULL with an exception. */
static PyObject *
udp_drain_rest(UdpDrainObject *self, int from, int got)
{
    PyObject *rest = PyList_New(got - from), *item;
    int k;
    if (rest == NULL)
        return NULL;
    for (k = from; k < got; k++) {
        item = PyBytes_FromStringAndSize(self->iovs[k].iov_base, (Py_ssize_t)self->msgs[k].msg_len);
        if (item == NULL) {
            Py_DECREF(rest);
            return NULL;
        }
        PyList_SET_ITEM(rest, k - from, item);
    }
    return rest;
}

static PyObject *
UdpDrain_drain(UdpDrainObject *self, PyObject *unused)
{
    PyObject *results, *stream, *units, *rest, *demuxer, *row;
    int ready, e, fd, got, k, fast, rc;
    long long ssrc = -1;
    int seq = -1;
    rtp_run_t run;

    if (!udp_drain_usable(self) || (results = PyList_New(0)) == NULL)
        return NULL;
    ready = epoll_wait(self->epfd, self->events, self->max_events, 0);
    if (ready < 0) {
        if (errno == EINTR)
            return results;
        Py_DECREF(results);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    self->busy = 1;
    for (e = 0; e < ready; e++) {
        fd = self->events[e].data.fd;
        if (fd < 0 || fd >= self->by_fd_len || (stream = self->by_fd[fd]) == NULL)
            continue;  /* removed since (a closed socket's number) */
        got = recvmmsg(fd, self->msgs, (unsigned int)self->batch, MSG_DONTWAIT, NULL);
        if (got <= 0) {
            if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                self->errors++;  /* ICMP errors surface here on some kernels; the next read goes on */
            continue;
        }
        Py_INCREF(stream);
        demuxer = NULL;
        units = NULL;
        rtp_run_init(&run, -1, -1);
        fast = stream_run_state(stream, &demuxer, &ssrc, &seq);
        if (fast < 0)
            goto fail_stream;
        if ((units = PyList_New(0)) == NULL)
            goto fail_stream;
        k = 0;
        if (fast) {
            PsDemuxerObject *dm = (PsDemuxerObject *)demuxer;
            if (!ps_ready(dm))
                goto fail_stream;
            rtp_run_init(&run, ssrc, seq);
            dm->busy = 1;
            for (; !run.stop && k < got; k++) {
                rc = rtp_run_step(dm, &run, self->iovs[k].iov_base, (Py_ssize_t)self->msgs[k].msg_len, units,
                                  keyframe_str);
                if (rc < 0) {
                    dm->busy = 0;
                    goto fail_stream;
                }
                if (rc == 0)
                    break;
            }
            dm->busy = 0;
        }
        if (k < got) {
            if ((rest = udp_drain_rest(self, k, got)) == NULL)
                goto fail_stream;
        } else {
            rest = Py_NewRef(Py_None);
        }
        row = Py_BuildValue("(OOniLnN)", stream, units, run.count, run.pt, run.last_ssrc, run.wire, rest);
        Py_CLEAR(units);
        Py_XDECREF(demuxer);
        Py_DECREF(stream);
        if (row == NULL || PyList_Append(results, row) < 0) {
            Py_XDECREF(row);
            goto fail;
        }
        Py_DECREF(row);
    }
    self->busy = 0;
    return results;
fail_stream:
    Py_XDECREF(units);
    Py_XDECREF(demuxer);
    Py_DECREF(stream);
fail:
    self->busy = 0;
    Py_DECREF(results);
    return NULL;
}

static PyObject *
UdpDrain_len(UdpDrainObject *self, PyObject *unused)
{
    return PyLong_FromSsize_t(self->registered);
}

static PyMethodDef UdpDrain_methods[] = {
    {"fileno", (PyCFunction)UdpDrain_fileno, METH_NOARGS, "fileno() -> int: the epoll set, to watch for reading."},
    {"add", (PyCFunction)UdpDrain_add, METH_VARARGS,
     "add(fd, stream): a bound, non-blocking UDP socket and the MediaStream its datagrams feed."},
    {"remove", (PyCFunction)UdpDrain_remove, METH_O,
     "remove(fd) -> bool: forget a socket (before closing it); False if it was not registered."},
    {"drain", (PyCFunction)UdpDrain_drain, METH_NOARGS,
     "drain() -> [(stream, units, count, payload_type, last_ssrc, wire_bytes, rest), ...]: one row per ready\n"
     "socket that gave datagrams: the in-order run demuxed as feed_rtp does (count datagrams, the units they\n"
     "finished) and `rest`, the datagrams after it as bytes for MediaStream.on_datagrams (None: none)."},
    {"close", (PyCFunction)UdpDrain_close, METH_NOARGS, "close(): the epoll set closed, every socket forgotten."},
    {"registered", (PyCFunction)UdpDrain_len, METH_NOARGS, "registered() -> int: sockets in the set."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef UdpDrain_members[] = {
    {"errors", T_PYSSIZET, offsetof(UdpDrainObject, errors), READONLY, "recvmmsg failures (ICMP errors, a closed socket)"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject UdpDrainType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "camgrid.media._native.UdpDrain",
    .tp_basicsize = sizeof(UdpDrainObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "UdpDrain(batch=64, size=65536, max_events=256): the stream sockets of a node read and demuxed\n"
              "in one call per wake-up (see camgrid.media.ingest.UdpDrain).",
    .tp_new = UdpDrain_new,
    .tp_init = (initproc)UdpDrain_init,
    .tp_dealloc = (destructor)UdpDrain_dealloc,
    .tp_traverse = (traverseproc)UdpDrain_traverse,
    .tp_clear = (inquiry)UdpDrain_tp_clear,
    .tp_methods = UdpDrain_methods,
    .tp_members = UdpDrain_members,
};
#endif


/* -- the C library's heap ---------------------------------------------------------------------- */
/* A media node frees and allocates a frame's worth of bytes per frame per stream (each GOP's
 * frames go at the next key frame). With glibc's defaults the heap's free top is given back to the
 * kernel past 128 KiB (and blocks past 128 KiB come from mmap, unmapped on free), so the next
 * frames fault fresh zeroed pages in: clear_page was 8.8 % of the node's CPU in the ingest bench's
 * backlog, 1.5 % with these settings (docs/benchmarks.md, ingest). They keep up to 512 MiB of freed
 * heap for reuse, take blocks below 32 MiB from the heap, and grow it 16 MiB at a time. True where
 * the C library has mallopt (glibc), else False (nothing changed). */
static PyObject *
keep_freed_heap(PyObject *module, PyObject *unused)
{
#ifdef __GLIBC__
    int ok = mallopt(M_TRIM_THRESHOLD, 512 << 20) && mallopt(M_MMAP_THRESHOLD, 32 << 20)
             && mallopt(M_TOP_PAD, 16 << 20);
    return PyBool_FromLong(ok);
#else
    Py_RETURN_FALSE;
#endif
}

/* -- module ------------------------------------------------------------------------------------- */
static PyMethodDef methods[] = {
    {"keep_freed_heap", keep_freed_heap, METH_NOARGS,
     "keep_freed_heap() -> bool: glibc keeps freed heap for reuse instead of returning it to the kernel\n"
     "(process-wide; called by a media node's UDP ingest). False where mallopt is not available."},
    {"make_unit", native_make_unit, METH_VARARGS,
     "make_unit(unit_type, codecs, stream_id, pts, dts, data) -> unit: camgrid.media.ps.make_unit in C, the\n"
     "unit of class unit_type (AccessUnit) filled without its __init__ (what PsDemuxer(unit_type=) does)."},
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
#ifdef __linux__
    {"recv_many", recv_many, METH_VARARGS,
     "recv_many(fd, count=64, size=65536) -> [bytes, ...]: up to `count` datagrams from a UDP socket\n"
     "in one recvmmsg call, each cut to `size` bytes; [] when none waits; OSError otherwise."},
    {"recv_many_from", recv_many_from, METH_VARARGS,
     "recv_many_from(fd, count=64, size=65536) -> ([bytes, ...], sources): recv_many, and each datagram's\n"
     "IPv4 sender packed in `sources`, 6 bytes apiece (address, port; network order; zeros if not IPv4)."},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "camgrid.media._native",
    "The media node's per-frame and per-packet loops in C (see camgrid.media.fastpath).", -1, methods,
};

/* Raised whenever an entry point is added or changes: camgrid.media.fastpath refuses a module
 * built from older source (an install that was not rebuilt) rather than call what it lacks. */
#define API_VERSION 8

PyMODINIT_FUNC
PyInit__native(void)
{
    PyObject *m;
    if (PyType_Ready(&PsDemuxerType) < 0)
        return NULL;
    if ((keyframe_str = PyUnicode_InternFromString("keyframe")) == NULL
        || (str_h264 = PyUnicode_InternFromString("h264")) == NULL
        || (str_h265 = PyUnicode_InternFromString("h265")) == NULL
        || (str_unknown = PyUnicode_InternFromString("unknown")) == NULL)
        return NULL;
#ifdef __linux__
    if (PyType_Ready(&UdpDrainType) < 0)
        return NULL;
    if ((str_demuxer = PyUnicode_InternFromString("demuxer")) == NULL
        || (str_spec = PyUnicode_InternFromString("spec")) == NULL
        || (str_ssrc = PyUnicode_InternFromString("ssrc")) == NULL
        || (str_jitter = PyUnicode_InternFromString("jitter")) == NULL
        || (str_in_order = PyUnicode_InternFromString("in_order")) == NULL
        || (str_first_packet_at = PyUnicode_InternFromString("first_packet_at")) == NULL)
        return NULL;
#endif
    m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "API_VERSION", API_VERSION) < 0
        || PyModule_AddObjectRef(m, "PsDemuxer", (PyObject *)&PsDemuxerType) < 0)
        Py_CLEAR(m);
#ifdef __linux__
    if (m != NULL && PyModule_AddObjectRef(m, "UdpDrain", (PyObject *)&UdpDrainType) < 0)
        Py_CLEAR(m);
#endif
    return m;
}

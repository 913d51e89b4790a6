/*
 * rtp_sender: N cameras' RTP/PS over UDP from one thread, paced as cameras send, with sendmmsg.
 *
 *   cc -O2 -o rtp_sender rtp_sender.c
 *   ./rtp_sender TEMPLATE DEST_ADDR BASE_PORT COUNT SECONDS [flood] [SSRC_BASE]
 *
 * TEMPLATE (written by bench/_media_common.py write_template) holds one loop of footage as RTP
 * payloads (PS already cut into packets of 1400 bytes), little-endian:
 *   "CGRTPT01", u32 packets, u32 loop_us, u32 loop_ticks (90 kHz)
 *   per packet: u32 due_us (from the loop start), u32 rtp_ts, u16 length, u8 marker, u8 0, payload
 * Stream s (0..COUNT-1) goes to BASE_PORT+s with SSRC SSRC_BASE+s (default 0x10000000+s), its
 * own random-looking first sequence number and timestamp, and starts s/COUNT of the way into the
 * loop, so that streams' frames and key frames are spread over time as independent cameras'
 * are. Each frame's packets leave in one burst at the frame's time (as cameras send), looping
 * the footage for SECONDS. The 12-byte RTP header is built per packet; the payload is not copied
 * (sendmmsg with two iovecs). With "flood", pacing is off: frames go round-robin over the
 * streams as fast as the socket takes them (to find a receiver's ceiling).
 *
 * Prints one JSON line at the end: packets and bytes sent (and per stream), send errors, how
 * late frames left (max, and how many more than 5 ms late: the sender itself falling behind),
 * elapsed seconds and CPU seconds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256

typedef struct {
    uint32_t due_us, ts;
    uint16_t len;
    uint8_t marker;
    const unsigned char *payload;
} Packet;

typedef struct {
    int64_t next_us; /* when its next frame is due, µs from the start */
    uint32_t pos;    /* template index of the next frame's first packet */
    uint32_t loops;
    uint16_t seq;
    uint32_t ts0, ssrc;
    int64_t offset_us; /* template time at which this stream starts */
    uint64_t sent;
} Stream;

static volatile sig_atomic_t stop_flag = 0;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static Packet *pk;
static uint32_t npk, loop_us, loop_ticks;
static Stream *st;
static int nst;
static int *heap, heap_n;

static int64_t frame_time(Stream *s) { /* µs from the start at which frame s->pos is due */
    return (int64_t)s->loops * loop_us + pk[s->pos].due_us - s->offset_us;
}

static void heap_down(int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_n && st[heap[l]].next_us < st[heap[m]].next_us) m = l;
        if (r < heap_n && st[heap[r]].next_us < st[heap[m]].next_us) m = r;
        if (m == i) return;
        int t = heap[i]; heap[i] = heap[m]; heap[m] = t;
        i = m;
    }
}

/* send buffers */
static int sock;
static struct sockaddr_in *dests;
static struct mmsghdr msgs[BATCH];
static struct iovec iovs[BATCH][2];
static unsigned char hdrs[BATCH][12];
static int nmsg;
static uint64_t sent_packets, sent_bytes, errors;
static int msg_stream[BATCH];

static void flush_batch(void) {
    int done = 0;
    while (done < nmsg) {
        int r = sendmmsg(sock, msgs + done, nmsg - done, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            errors++;
            done++; /* drop this one and go on */
            continue;
        }
        for (int i = done; i < done + r; i++) {
            st[msg_stream[i]].sent++;
            sent_bytes += msgs[i].msg_len;
        }
        sent_packets += r;
        done += r;
    }
    nmsg = 0;
}

static void queue_packet(int si, Packet *p) {
    Stream *s = &st[si];
    unsigned char *h = hdrs[nmsg];
    uint32_t ts = s->ts0 + s->loops * loop_ticks + p->ts;
    h[0] = 0x80;
    h[1] = (p->marker ? 0x80 : 0) | 96;
    h[2] = s->seq >> 8; h[3] = s->seq & 0xFF;
    h[4] = ts >> 24; h[5] = ts >> 16; h[6] = ts >> 8; h[7] = ts;
    h[8] = s->ssrc >> 24; h[9] = s->ssrc >> 16; h[10] = s->ssrc >> 8; h[11] = s->ssrc;
    s->seq++;
    iovs[nmsg][0].iov_base = h;
    iovs[nmsg][0].iov_len = 12;
    iovs[nmsg][1].iov_base = (void *)p->payload;
    iovs[nmsg][1].iov_len = p->len;
    msgs[nmsg].msg_hdr.msg_name = &dests[si];
    msgs[nmsg].msg_hdr.msg_namelen = sizeof dests[si];
    msgs[nmsg].msg_hdr.msg_iov = iovs[nmsg];
    msgs[nmsg].msg_hdr.msg_iovlen = 2;
    msg_stream[nmsg] = si;
    if (++nmsg == BATCH) flush_batch();
}

/* queue every packet of stream si's next frame and move it on to the following one */
static void send_frame(int si) {
    Stream *s = &st[si];
    uint32_t due = pk[s->pos].due_us;
    while (s->pos < npk && pk[s->pos].due_us == due) queue_packet(si, &pk[s->pos++]);
    if (s->pos == npk) { s->pos = 0; s->loops++; }
    s->next_us = frame_time(s);
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s TEMPLATE DEST_ADDR BASE_PORT COUNT SECONDS [flood] [SSRC_BASE]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1], *addr = argv[2];
    int base = atoi(argv[3]);
    nst = atoi(argv[4]);
    double seconds = atof(argv[5]);
    int flood = argc > 6 && strcmp(argv[6], "flood") == 0;
    uint32_t ssrc_base = argc > 7 ? (uint32_t)strtoul(argv[7], NULL, 0) : 0x10000000u;
    if (nst <= 0 || base <= 0 || base + nst - 1 > 65535 || seconds <= 0) { fprintf(stderr, "bad arguments\n"); return 2; }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 1; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *raw = malloc(size);
    if (!raw || fread(raw, 1, size, f) != (size_t)size || size < 20 || memcmp(raw, "CGRTPT01", 8)) {
        fprintf(stderr, "%s: not a template\n", path);
        return 1;
    }
    fclose(f);
    memcpy(&npk, raw + 8, 4); memcpy(&loop_us, raw + 12, 4); memcpy(&loop_ticks, raw + 16, 4);
    pk = calloc(npk, sizeof(Packet));
    long off = 20;
    for (uint32_t i = 0; i < npk; i++) {
        if (off + 12 > size) { fprintf(stderr, "template truncated\n"); return 1; }
        memcpy(&pk[i].due_us, raw + off, 4); memcpy(&pk[i].ts, raw + off + 4, 4);
        memcpy(&pk[i].len, raw + off + 8, 2); pk[i].marker = raw[off + 10];
        pk[i].payload = raw + off + 12;
        off += 12 + pk[i].len;
    }

    sock = socket(AF_INET, SOCK_DGRAM, 0);
    int sndbuf = 4 << 20;
    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    st = calloc(nst, sizeof(Stream));
    dests = calloc(nst, sizeof(struct sockaddr_in));
    heap = calloc(nst, sizeof(int));
    for (int i = 0; i < nst; i++) {
        dests[i].sin_family = AF_INET;
        dests[i].sin_port = htons(base + i);
        inet_pton(AF_INET, addr, &dests[i].sin_addr);
        Stream *s = &st[i];
        s->ssrc = ssrc_base + i;
        s->seq = (uint16_t)(i * 7919 + 1234);
        s->ts0 = (uint32_t)i * 2654435761u;
        s->offset_us = (int64_t)loop_us * i / nst;
        while (s->pos < npk && pk[s->pos].due_us < s->offset_us) s->pos++; /* first frame at or after its offset */
        if (s->pos == npk) { s->pos = 0; s->loops = 1; }
        s->next_us = frame_time(s);
        heap[i] = i;
    }
    heap_n = nst;
    for (int i = nst / 2 - 1; i >= 0; i--) heap_down(i);

    uint64_t late_frames = 0, frames = 0;
    int64_t max_late = 0;
    int64_t start = now_us(), end_rel = (int64_t)(seconds * 1e6);
    if (flood) {
        int si = 0;
        while (!stop_flag && now_us() - start < end_rel) {
            for (int k = 0; k < 64; k++) { send_frame(si); frames++; si = (si + 1) % nst; }
            flush_batch();
        }
    } else {
        while (!stop_flag) {
            int64_t rel = now_us() - start;
            if (rel >= end_rel) break;
            int sent_any = 0;
            while (heap_n && st[heap[0]].next_us <= rel) {
                int si = heap[0];
                int64_t late = rel - st[si].next_us;
                if (late > max_late) max_late = late;
                if (late > 5000) late_frames++;
                send_frame(si);
                frames++;
                sent_any = 1;
                heap_down(0);
                if (nmsg > BATCH / 2) flush_batch();
            }
            if (sent_any) { flush_batch(); continue; }
            int64_t wait = st[heap[0]].next_us - rel;
            if (rel + wait > end_rel) wait = end_rel - rel;
            if (wait > 0) {
                struct timespec ts = {.tv_sec = wait / 1000000, .tv_nsec = (wait % 1000000) * 1000};
                nanosleep(&ts, NULL);
            }
        }
    }
    flush_batch();
    double elapsed = (now_us() - start) / 1e6;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"packets\": %llu, \"bytes\": %llu, \"frames\": %llu, \"errors\": %llu, \"elapsed_s\": %.6f, "
           "\"packets_per_s\": %.1f, \"max_late_us\": %lld, \"late_frames_5ms\": %llu, \"flood\": %s, "
           "\"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f, \"per_stream\": [",
           (unsigned long long)sent_packets, (unsigned long long)sent_bytes, (unsigned long long)frames,
           (unsigned long long)errors, elapsed, sent_packets / elapsed, (long long)max_late,
           (unsigned long long)late_frames, flood ? "true" : "false",
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    for (int i = 0; i < nst; i++) printf("%s%llu", i ? ", " : "", (unsigned long long)st[i].sent);
    printf("]}\n");
    return 0;
}

/*
 * recvmmsg_sink: the ceiling for RTP ingest on one core. Binds COUNT UDP ports from BASE_PORT,
 * waits on all of them with epoll on one thread and drains each ready socket with recvmmsg
 * (batches of 64), counting packets and bytes. Nothing else: no parsing beyond reading the RTP
 * sequence number to count gaps, no copies beyond the kernel's.
 *
 *   cc -O2 -o recvmmsg_sink recvmmsg_sink.c
 *   ./recvmmsg_sink BASE_PORT COUNT SECONDS [RCVBUF_BYTES] [BIND_ADDR]
 *
 * SECONDS = 0 runs until SIGTERM/SIGINT. Prints {"ready": ...} once every socket is bound, then
 * on exit one JSON line: packets, bytes, seconds from the first to the last packet, packets/s
 * and bytes/s over that span, per-second packet counts, sequence gaps seen (per socket, RTP
 * sequence numbers), truncated datagrams and CPU seconds (getrusage: user, system).
 * The receive buffer (default 4 MiB) matches camgrid.media.ingest.UDP_RECEIVE_BUFFER.
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
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define BUF_SIZE 2048 /* an RTP packet of 1400 payload bytes is 1412: a longer one is counted as truncated */
#define MAX_SECONDS 3600

static volatile sig_atomic_t stop_flag = 0;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s BASE_PORT COUNT SECONDS [RCVBUF_BYTES] [BIND_ADDR]\n", argv[0]);
        return 2;
    }
    int base = atoi(argv[1]), count = atoi(argv[2]);
    double seconds = atof(argv[3]);
    int rcvbuf = argc > 4 ? atoi(argv[4]) : 4 << 20;
    const char *addr = argc > 5 ? argv[5] : "127.0.0.1";
    if (count <= 0 || base <= 0 || base + count - 1 > 65535) {
        fprintf(stderr, "bad port range %d+%d\n", base, count);
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    int ep = epoll_create1(0);
    int *fds = calloc(count, sizeof(int));
    int *last_seq = malloc(count * sizeof(int));
    if (ep < 0 || !fds || !last_seq) { perror("setup"); return 1; }
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fd < 0) { perror("socket"); return 1; }
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(base + i)};
        inet_pton(AF_INET, addr, &sa.sin_addr);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            fprintf(stderr, "bind %s:%d: %s\n", addr, base + i, strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) { perror("epoll_ctl"); return 1; }
        fds[i] = fd;
        last_seq[i] = -1;
    }

    static char bufs[BATCH][BUF_SIZE];
    static struct iovec iov[BATCH];
    static struct mmsghdr msgs[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = BUF_SIZE;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    static uint64_t per_second[MAX_SECONDS];
    uint64_t packets = 0, bytes = 0, gaps = 0, truncated = 0, calls = 0;
    double first = 0, last = 0;
    double start = now_s(), end = seconds > 0 ? start + seconds : 0;
    printf("{\"ready\": true, \"sockets\": %d, \"base_port\": %d}\n", count, base);
    fflush(stdout);

    struct epoll_event events[256];
    while (!stop_flag && (end == 0 || now_s() < end)) {
        int n = epoll_wait(ep, events, 256, 100);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            break;
        }
        for (int e = 0; e < n; e++) {
            int idx = (int)events[e].data.u32;
            for (;;) {
                int got = recvmmsg(fds[idx], msgs, BATCH, MSG_DONTWAIT, NULL);
                calls++;
                if (got <= 0) break;
                double t = now_s();
                if (!packets) first = t;
                last = t;
                long sec = (long)(t - first);
                if (sec >= 0 && sec < MAX_SECONDS) per_second[sec] += got;
                for (int i = 0; i < got; i++) {
                    unsigned len = msgs[i].msg_len;
                    bytes += len;
                    if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) truncated++;
                    if (len >= 12) {
                        int seq = ((unsigned char)bufs[i][2] << 8) | (unsigned char)bufs[i][3];
                        if (last_seq[idx] >= 0) {
                            int d = (seq - last_seq[idx] - 1) & 0xFFFF;
                            if (d && d < 0x8000) gaps += d;
                        }
                        last_seq[idx] = seq;
                    }
                    msgs[i].msg_hdr.msg_flags = 0;
                }
                packets += got;
                if (got < BATCH) break;
            }
        }
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double span = last - first;
    printf("{\"packets\": %llu, \"bytes\": %llu, \"seconds\": %.6f, \"packets_per_s\": %.1f, \"bytes_per_s\": %.1f, "
           "\"seq_gaps\": %llu, \"truncated\": %llu, \"recvmmsg_calls\": %llu, \"sockets\": %d, "
           "\"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f, \"per_second\": [",
           (unsigned long long)packets, (unsigned long long)bytes, span,
           span > 0 ? packets / span : 0.0, span > 0 ? bytes / span : 0.0,
           (unsigned long long)gaps, (unsigned long long)truncated, (unsigned long long)calls, count,
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    long secs = packets ? (long)span + 1 : 0;
    for (long s = 0; s < secs && s < MAX_SECONDS; s++) printf("%s%llu", s ? ", " : "", (unsigned long long)per_second[s]);
    printf("]}\n");
    fflush(stdout);
    return 0;
}

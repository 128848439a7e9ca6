/* dunno_responder — the policy benchmark's ceiling: a Postfix policy service (SMTPD_POLICY_README)
 * that reads each request's name=value lines up to the empty line and answers "action=DUNNO"
 * without looking at them. What it costs is the protocol and the loopback socket alone, so a
 * policy server's rate over its rate is the share its own work leaves.
 *
 * An epoll loop per thread (one per CPU unless told), each waiting on the one listening socket
 * (EPOLLEXCLUSIVE: a new connection wakes one of them) and serving the connections it accepted.
 * Requests pipelined on a connection are answered in order; a client that does not read its
 * answers is not read from until it has taken them. SIGTERM or SIGINT ends it, exit status 0.
 *
 *   dunno_responder PORT [THREADS]      listens on 127.0.0.1:PORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char ANSWER[] = "action=DUNNO\n\n";
enum { ANSWER_SIZE = sizeof ANSWER - 1, ANSWERS_AT_ONCE = 256 };

/* ANSWERS_AT_ONCE + 1 answers back to back: a write may start at any offset into an answer
 * (where a short write left off) and still take ANSWERS_AT_ONCE answers' worth. */
static char answers[(ANSWERS_AT_ONCE + 1) * ANSWER_SIZE];
static int listener;

struct connection {
    int fd;
    char last;        /* the last byte read: a '\n' followed by '\n' ends a request */
    size_t owed;      /* bytes of answers not yet written */
    size_t written;   /* bytes of answers written, for where the next write starts */
};

static void end(int epoll, struct connection* c) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Writes what is owed. Returns 1 if it all went, 0 if the socket is full, -1 on an error. */
static int flush(struct connection* c) {
    while (c->owed) {
        const size_t at = c->written % ANSWER_SIZE;
        size_t n = sizeof answers - at;
        if (n > c->owed) n = c->owed;
        const ssize_t w = write(c->fd, answers + at, n);
        if (w < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->owed -= (size_t)w;
        c->written += (size_t)w;
    }
    return 1;
}

/* Waits for reading (all answers written) or for room to write the rest. */
static int wait_for(int epoll, struct connection* c, uint32_t events) {
    struct epoll_event e = {.events = events, .data.ptr = c};
    return epoll_ctl(epoll, EPOLL_CTL_MOD, c->fd, &e);
}

static void readable(int epoll, struct connection* c) {
    char buffer[16384];
    const ssize_t got = read(c->fd, buffer, sizeof buffer);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (got <= 0) {
        end(epoll, c);
        return;
    }
    size_t requests = 0;
    for (ssize_t i = 0; i < got; ++i) {
        if (buffer[i] == '\n' && c->last == '\n') {
            ++requests;
            c->last = 0;  /* the next request's lines start afresh */
        } else {
            c->last = buffer[i];
        }
    }
    if (!requests) return;
    c->owed += requests * ANSWER_SIZE;
    const int flushed = flush(c);
    if (flushed < 0 || (flushed == 0 && wait_for(epoll, c, EPOLLOUT) < 0)) end(epoll, c);
}

static void writable(int epoll, struct connection* c) {
    const int flushed = flush(c);
    if (flushed < 0 || (flushed == 1 && wait_for(epoll, c, EPOLLIN) < 0)) end(epoll, c);
}

static void accept_one(int epoll) {
    const int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  /* another thread took it, or the client left */
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct connection* c = calloc(1, sizeof *c);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
    if (!c || (c->fd = fd, epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &e) < 0)) {
        free(c);
        close(fd);
    }
}

static void* serve(void* unused) {
    (void)unused;
    const int epoll = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
    if (epoll < 0 || epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &e) < 0) {
        perror("dunno_responder: epoll");
        exit(1);
    }
    struct epoll_event ready[64];
    for (;;) {
        const int n = epoll_wait(epoll, ready, 64, -1);
        for (int i = 0; i < n; ++i) {
            struct connection* c = ready[i].data.ptr;
            if (!c) accept_one(epoll);
            else if (ready[i].events & EPOLLOUT) writable(epoll, c);
            else readable(epoll, c);
        }
    }
    return NULL;
}

int main(int argc, char** argv) {
    const long port = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    long threads = argc > 2 ? strtol(argv[2], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (argc < 2 || argc > 3 || port <= 0 || port > 65535 || threads <= 0 || threads > 256) {
        fprintf(stderr, "usage: dunno_responder PORT [THREADS]\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof answers; i += ANSWER_SIZE) memcpy(answers + i, ANSWER, ANSWER_SIZE);

    /* SIGTERM and SIGINT are taken by sigwait below, in this thread only. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(listener, (struct sockaddr*)&address, sizeof address) < 0 || listen(listener, 4096) < 0) {
        perror("dunno_responder: 127.0.0.1");
        return 1;
    }
    for (long i = 0; i < threads; ++i) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, serve, NULL) != 0) {
            fprintf(stderr, "dunno_responder: no thread\n");
            return 1;
        }
        pthread_detach(thread);
    }
    printf("dunno_responder: 127.0.0.1:%ld, %ld threads\n", port, threads);
    fflush(stdout);
    int signal_number;
    sigwait(&stop, &signal_number);
    return 0;
}

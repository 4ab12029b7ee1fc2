/*
 * The event thread's wait (wait.c): a private waker and a wait for it or
 * the library's events fd, on Linux, other POSIX systems and Windows.
 * Kept free of Node-API so that scripts/matrix/wait_test.c can check it on
 * its own (natively, under qemu-user and under wine).
 */
#ifndef X0X_NODE_WAIT_H
#define X0X_NODE_WAIT_H

#include <stdint.h>

/* rfd is waited on and drained; wfd is written to wake (the same
 * descriptor for an eventfd or a self-connected socket). Either is -1
 * (INVALID_SOCKET on Windows) when not open. */
typedef struct xn_waker {
    intptr_t rfd, wfd;
} xn_waker;

enum {
    XN_WAIT_WOKEN = 1,   /* the waker was signalled (and is drained now) */
    XN_WAIT_EVENTS = 2,  /* the events fd is readable */
    XN_WAIT_GONE = 3,    /* the events fd was closed: the agent is gone */
    XN_WAIT_TIMEOUT = 0, /* nothing yet (also: interrupted); wait again */
    XN_WAIT_ERROR = -1,  /* the wait itself failed (cannot happen with valid fds) */
};

/* Opens w; returns 0, or -1 (errno / the Winsock error says why). */
int xn_waker_open(xn_waker *w);
/* Makes w readable until the next wait that reports XN_WAIT_WOKEN; any
 * thread; signals while it is readable collapse into one wake-up. */
void xn_waker_signal(xn_waker *w);
/* Empties w without waiting (xn_wait does this when it reports WOKEN). */
void xn_waker_drain(xn_waker *w);
/* Closes w (idempotent). No thread may wait on or signal it afterwards. */
void xn_waker_close(xn_waker *w);
/* Waits up to timeout_ms (-1: without limit) until w is signalled or, if
 * watch_events, events_fd (the library's x0x_events_fd) is readable. A
 * wake-up takes precedence over events. Returns an XN_WAIT_* value. */
int xn_wait(xn_waker *w, int events_fd, int watch_events, int timeout_ms);

#endif

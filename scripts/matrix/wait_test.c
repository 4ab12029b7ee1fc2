/* Checks the Node addon's event-thread wait (bindings/node/src/wait.c) on
 * its own, without Node or the Go runtime, against the library's real
 * readiness fd (capi/helpers.c). scripts/test-node.sh runs it natively and
 * scripts/build-matrix.sh per target: under qemu-user for arm64 and under
 * wine for Windows, where it is the test of the WSAPoll port that wine can
 * run. Contract (wait.h): a wait times out while nothing is readable; it
 * reports the events fd only when asked to watch it; a wake-up takes
 * precedence and is drained by the wait that reports it; many signals
 * collapse into one wake-up; another thread's signal ends a wait without
 * limit. Prints "wait: ok" and exits 0, or "wait: FAIL ..." and exits 1. */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L
#endif
#include "helpers.h"
#include "wait.h"

#include <pthread.h>
#include <stdio.h>

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#else
#include <time.h>
#endif

static void sleep_ms(int ms) {
#ifdef _WIN32
    Sleep((DWORD)ms);
#else
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
#endif
}

static void *signal_later(void *arg) {
    sleep_ms(50);
    xn_waker_signal(arg);
    return NULL;
}

#define CHECK(cond, what)                                                  \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("wait: FAIL %s (round %d, line %d)\n", what, round, __LINE__); \
            return 1;                                                      \
        }                                                                  \
    } while (0)

int main(void) {
#ifdef _WIN32
    WSADATA wd; /* capi_notify_new's sockets; the waker starts Winsock itself */
    int round = -1;
    CHECK(WSAStartup(MAKEWORD(2, 2), &wd) == 0, "WSAStartup");
#endif
    for (int round = 0; round < 20; round++) {
        int quiet = round == 0 ? 100 : 5; /* ms a wait must stay without news */
        xn_waker w;
        CHECK(xn_waker_open(&w) == 0, "xn_waker_open");
        int efd_w = -1;
        int efd = capi_notify_new(&efd_w);
        CHECK(efd >= 0 && efd_w >= 0, "capi_notify_new");

        CHECK(xn_wait(&w, efd, 1, quiet) == XN_WAIT_TIMEOUT, "a wait with nothing readable did not time out");
        capi_notify_signal(efd_w);
        CHECK(xn_wait(&w, efd, 1, 5000) == XN_WAIT_EVENTS, "queued events were not reported");
        CHECK(xn_wait(&w, efd, 0, quiet) == XN_WAIT_TIMEOUT, "events were reported while not watched");

        xn_waker_signal(&w);
        CHECK(xn_wait(&w, efd, 1, 5000) == XN_WAIT_WOKEN, "a wake-up beside events was not reported first");
        CHECK(xn_wait(&w, efd, 0, quiet) == XN_WAIT_TIMEOUT, "the reported wake-up was not drained");

        for (int i = 0; i < (round == 0 ? 20000 : 10); i++) {
            xn_waker_signal(&w);
        }
        sleep_ms(round == 0 ? 100 : 1); /* datagrams still in flight arrive */
        CHECK(xn_wait(&w, efd, 0, 5000) == XN_WAIT_WOKEN, "many signals gave no wake-up");
        CHECK(xn_wait(&w, efd, 0, quiet) == XN_WAIT_TIMEOUT, "many signals gave more than one wake-up");

        pthread_t t;
        CHECK(pthread_create(&t, NULL, signal_later, &w) == 0, "pthread_create");
        int r = xn_wait(&w, efd, 0, -1);
        pthread_join(t, NULL);
        CHECK(r == XN_WAIT_WOKEN, "another thread's signal did not end a wait without limit");

        capi_notify_reset(efd);
        CHECK(xn_wait(&w, efd, 1, quiet) == XN_WAIT_TIMEOUT, "events reported after the queue was emptied");

        capi_notify_close(efd, efd_w);
        xn_waker_close(&w);
        xn_waker_close(&w); /* idempotent */
    }
    printf("wait: ok (20 rounds: timeout, events, wake-up first, coalescing, cross-thread)\n");
    return 0;
}

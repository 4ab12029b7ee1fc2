/* Checks the pull API's readiness fd of capi/helpers.c on its own, without
 * the Go runtime (scripts/build-matrix.sh builds it per target, with
 * capi/helpers.c, and runs it: natively, under qemu-user or under wine).
 * On Windows the fd is the read end of a loopback TCP socket pair, and this
 * is the test of that port that wine can run (wine 8 cannot create x0x
 * agents: see build-matrix.sh). The contract (include/x0x.h, Pull API): not
 * readable while nothing was signalled, readable (poll/select) once
 * signalled however often, and not readable again after a reset.
 * Prints "notify: ok" and exits 0, or "notify: FAIL ..." and exits 1. */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L
#endif
#include "helpers.h"

#include <stdio.h>

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#else
#include <poll.h>
#include <time.h>
#endif

static int readable(int fd, int ms) {
#ifdef _WIN32
    fd_set set;
    FD_ZERO(&set);
    FD_SET((SOCKET)(uintptr_t)fd, &set);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return select(0, &set, NULL, NULL, &tv) > 0;
#else
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) > 0 && (p.revents & POLLIN);
#endif
}

static void sleep_ms(int ms) {
#ifdef _WIN32
    Sleep((DWORD)ms);
#else
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
#endif
}

#define CHECK(cond, what)                                                  \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("notify: FAIL %s (line %d)\n", what, __LINE__);         \
            return 1;                                                      \
        }                                                                  \
    } while (0)

int main(void) {
#ifdef _WIN32
    WSADATA wd; /* for this program's own select(); the library starts Winsock itself */
    CHECK(WSAStartup(MAKEWORD(2, 2), &wd) == 0, "WSAStartup");
#endif
    for (int round = 0; round < 50; round++) {
        int wfd = -1;
        int rfd = capi_notify_new(&wfd);
        CHECK(rfd >= 0 && wfd >= 0, "capi_notify_new");
        CHECK(!readable(rfd, round == 0 ? 100 : 0), "readable before any signal");
        capi_notify_signal(wfd);
        CHECK(readable(rfd, 5000), "not readable after a signal");
        CHECK(readable(rfd, 0), "not readable any more without a reset");
        capi_notify_reset(rfd);
        CHECK(!readable(rfd, round == 0 ? 100 : 0), "still readable after the reset");
        /* Many signals (more than a pipe or socket buffer would take if
         * each wrote unconditionally) collapse into one readable state. */
        for (int i = 0; i < (round == 0 ? 20000 : 10); i++) {
            capi_notify_signal(wfd);
        }
        CHECK(readable(rfd, 5000), "not readable after many signals");
        sleep_ms(round == 0 ? 100 : 1); /* let bytes still in flight arrive */
        capi_notify_reset(rfd);
        CHECK(!readable(rfd, round == 0 ? 100 : 0), "still readable after the reset of many signals");
        capi_notify_signal(wfd);
        CHECK(readable(rfd, 5000), "not readable after a signal following a reset");
        capi_notify_close(rfd, wfd);
    }
    printf("notify: ok (50 rounds of signal/reset/close)\n");
    return 0;
}

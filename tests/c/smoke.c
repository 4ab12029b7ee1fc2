/* Smoke test of a libx0x build for one target (scripts/build-matrix.sh
 * compiles it per target: linux-arm64 runs under qemu-user, win32-x64 as an
 * .exe beside x0x.dll under wine). It loads the library, creates two agents
 * on 127.0.0.1 with their data directories under DIR, connects them, and
 * exchanges one direct message each way, received through the pull API
 * (the events fd, waited on with poll(), or select() on Windows, where the
 * fd is a socket).
 *
 * Usage: smoke DIR   (DIR must exist and be empty; the caller removes it)
 * Prints one line per step; the last is "smoke: ok ..." and the exit
 * status 0, or "smoke: FAIL ..." and 1. Only 127.0.0.1 is used. */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L
#endif
#include "x0x.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#else
#include <poll.h>
#endif

static double now_s(void) {
#ifdef _WIN32
    return (double)GetTickCount64() / 1000.0;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
#endif
}

/* The last error of a failed call that a later successful call cleared. */
static char saved_error[1024];

static int fail(const char *what, int rc) {
    printf("smoke: FAIL %s: %s (%s)\n", what, x0x_status_name(rc),
           saved_error[0] != '\0' ? saved_error : x0x_last_error());
    return 1;
}

#define TRY(what, expr)                                                    \
    do {                                                                   \
        int rc_ = (expr);                                                  \
        if (rc_ != X0X_OK) {                                               \
            return fail(what, rc_);                                        \
        }                                                                  \
    } while (0)

static int make_agent(const char *dir, const char *name, x0x_agent *out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    x0x_config cfg;
    int rc = x0x_config_new(&cfg);
    if (rc != X0X_OK) {
        return rc;
    }
    if ((rc = x0x_config_set(cfg, "data_dir", path)) == X0X_OK &&
        (rc = x0x_config_set(cfg, "bind_addr", "127.0.0.1:0")) == X0X_OK) {
        rc = x0x_agent_create(cfg, 60000, out);
    }
    if (rc != X0X_OK) {
        snprintf(saved_error, sizeof saved_error, "%s", x0x_last_error());
    }
    x0x_config_destroy(cfg);
    return rc;
}

/* Waits until the events fd of agent is readable, up to ms; 1 if it is. */
static int wait_readable(int fd, int ms) {
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

/* Waits up to timeout_s for a direct message `want` from `from` on the pull
 * API of agent. Returns 1 if it came. */
static int receive(x0x_agent agent, const char *want, const uint8_t from[X0X_ID_SIZE], double timeout_s) {
    int fd = -1;
    if (x0x_events_fd(agent, &fd) != X0X_OK) {
        return 0;
    }
    double deadline = now_s() + timeout_s;
    while (now_s() < deadline) {
        if (!wait_readable(fd, 250)) {
            continue;
        }
        x0x_event evs[16];
        size_t n = 0;
        int found = 0;
        if (x0x_events_drain(agent, evs, 16, &n) != X0X_OK) {
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (evs[i].kind == X0X_EVENT_DIRECT_MESSAGE && evs[i].payload_len == strlen(want) &&
                memcmp(evs[i].payload, want, evs[i].payload_len) == 0 &&
                memcmp(evs[i].from, from, X0X_ID_SIZE) == 0) {
                found = 1;
            }
        }
        x0x_events_release(evs, n);
        if (found) {
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *dir = argv[1];
    double t0 = now_s();
    uint32_t abi = x0x_abi_version();
    printf("smoke: library loaded, ABI %u.%u\n", (unsigned)(abi >> 16), (unsigned)(abi & 0xffff));
    if (abi != (uint32_t)X0X_ABI_VERSION) {
        printf("smoke: FAIL the library has ABI %u.%u, the header %u.%u\n", (unsigned)(abi >> 16),
               (unsigned)(abi & 0xffff), X0X_ABI_VERSION_MAJOR, X0X_ABI_VERSION_MINOR);
        return 1;
    }

    x0x_agent a, b;
    uint8_t a_id[X0X_ID_SIZE], b_id[X0X_ID_SIZE];
    char *addr = NULL;
    TRY("create agent a", make_agent(dir, "a", &a));
    TRY("create agent b", make_agent(dir, "b", &b));
    TRY("x0x_agent_id a", x0x_agent_id(a, a_id));
    TRY("x0x_agent_id b", x0x_agent_id(b, b_id));
    TRY("x0x_agent_addr a", x0x_agent_addr(a, &addr));
    printf("smoke: two agents created (a on %s)\n", addr);
    int rc = x0x_connect(b, addr, 30000, NULL);
    x0x_free(addr);
    if (rc != X0X_OK) {
        return fail("x0x_connect b -> a", rc);
    }
    TRY("x0x_wait_for_agent b -> a", x0x_wait_for_agent(b, a_id, 30000));
    TRY("x0x_wait_for_agent a -> b", x0x_wait_for_agent(a, b_id, 30000));
    printf("smoke: connected\n");

    const char *m1 = "smoke: hello a, from b";
    const char *m2 = "smoke: hello b, from a";
    TRY("x0x_send_direct b -> a", x0x_send_direct(b, a_id, (const uint8_t *)m1, strlen(m1), 30000));
    if (!receive(a, m1, b_id, 30)) {
        printf("smoke: FAIL a did not receive b's direct message\n");
        return 1;
    }
    TRY("x0x_send_direct a -> b", x0x_send_direct(a, b_id, (const uint8_t *)m2, strlen(m2), 30000));
    if (!receive(b, m2, a_id, 30)) {
        printf("smoke: FAIL b did not receive a's direct message\n");
        return 1;
    }
    printf("smoke: direct messages exchanged both ways\n");
    TRY("x0x_agent_destroy a", x0x_agent_destroy(a));
    TRY("x0x_agent_destroy b", x0x_agent_destroy(b));
    printf("smoke: ok (%.1f s)\n", now_s() - t0);
    return 0;
}

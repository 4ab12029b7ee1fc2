/* Sanitizer self-check for scripts/test-capi.sh: each mode misuses memory
 * the library returned, and the script expects AddressSanitizer to report
 * it. This proves that the sanitizer set-up used for test_x0x.c really sees
 * library-owned memory (allocated by the Go side with malloc), so a clean
 * run of test_x0x means no leaks or misuse of that memory.
 * Usage: asan_probe clean|leak|double-free|use-after-release DATA_DIR
 * ("clean" misuses nothing and must pass; DATA_DIR is created and left for
 * the caller to remove, since a sanitizer abort skips any cleanup). */
#define _GNU_SOURCE
#include "x0x.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    x0x_config cfg;
    if (x0x_config_new(&cfg) != X0X_OK) return 2;
    /* An agent in a throw-away data directory supplies library memory. */
    if (x0x_config_set(cfg, "data_dir", argv[2]) != X0X_OK) return 2;
    x0x_agent a;
    if (x0x_agent_create(cfg, 20000, &a) != X0X_OK) return 2;
    x0x_config_destroy(cfg);
    char *addr = NULL;
    if (x0x_agent_addr(a, &addr) != X0X_OK) return 2;
    int rc = 0;
    if (strcmp(argv[1], "clean") == 0) {
        x0x_free(addr);
    } else if (strcmp(argv[1], "leak") == 0) {
        addr = NULL; /* lost: LeakSanitizer must report it */
    } else if (strcmp(argv[1], "double-free") == 0) {
        x0x_free(addr);
        x0x_free(addr);
    } else if (strcmp(argv[1], "use-after-release") == 0) {
        x0x_free(addr);
        uint8_t self[32];
        x0x_agent_id(a, self);
        x0x_send_direct(a, self, (const uint8_t *)"probe", 5, 1000);
        int fd;
        x0x_events_fd(a, &fd);
        x0x_event ev;
        size_t n = 0;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 10000) != 1) return 2;
        x0x_events_drain(a, &ev, 1, &n);
        if (n != 1) return 2;
        const uint8_t *p = ev.payload;
        x0x_events_release(&ev, 1);
        rc = p[0]; /* heap-use-after-free */
    } else {
        return 2;
    }
    x0x_agent_destroy(a);
    return rc == 'p' ? 3 : 0; /* only reached if ASan missed the use after free */
}

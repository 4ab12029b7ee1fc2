/* Benchmarks of the C ABI from C: how many injected events per second a C
 * consumer drains through the pull API (x0x_debug_inject_events on one
 * thread, poll + x0x_events_drain in batches on another), and the mean cost
 * of one x0x_publish call (64-byte payload, an agent with no peers). Prints
 * one JSON object per figure, like `make bench`. Only 127.0.0.1 is used. */
#define _GNU_SOURCE
#include "x0x.h"

#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

struct inject {
    x0x_agent agent;
    uint32_t n;
    size_t len;
    int rc;
};

static void *injector(void *arg) {
    struct inject *in = arg;
    in->rc = x0x_debug_inject_events(in->agent, in->n, in->len);
    return NULL;
}

static int die(const char *what, int rc) {
    fprintf(stderr, "bench_events: %s: %s: %s\n", what, x0x_status_name(rc), x0x_last_error());
    return 1;
}

/* Drains n injected events of len bytes and returns events per second. */
static double events_per_s(x0x_agent a, uint32_t n, size_t len) {
    static x0x_event evs[4096];
    int fd;
    x0x_events_fd(a, &fd);
    struct inject in = {a, n, len, -1};
    pthread_t th;
    double t0 = now_s();
    pthread_create(&th, NULL, injector, &in);
    uint32_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0) continue;
        size_t k = 0;
        if (x0x_events_drain(a, evs, 4096, &k) != X0X_OK) break;
        for (size_t i = 0; i < k; i++)
            if (evs[i].kind == X0X_EVENT_DIRECT_MESSAGE && evs[i].payload_len == len) got++;
        x0x_events_release(evs, k);
    }
    double dt = now_s() - t0;
    pthread_join(th, NULL);
    return in.rc == X0X_OK ? got / dt : 0;
}

int main(void) {
    char root[] = "/tmp/x0x-cbench.XXXXXX";
    if (!mkdtemp(root)) return 1;
    x0x_config cfg;
    x0x_agent a;
    int rc;
    x0x_config_new(&cfg);
    x0x_config_set(cfg, "data_dir", root);
    x0x_config_set(cfg, "event_queue_capacity", "65536");
    if ((rc = x0x_agent_create(cfg, 20000, &a)) != X0X_OK) return die("agent_create", rc);
    x0x_config_destroy(cfg);

    events_per_s(a, 20000, 16); /* warm up */
    printf("{\"name\": \"c_events_per_s_16B\", \"value\": %.0f, \"unit\": \"events/s\"}\n", events_per_s(a, 500000, 16));
    printf("{\"name\": \"c_events_per_s_1024B\", \"value\": %.0f, \"unit\": \"events/s\"}\n",
           events_per_s(a, 200000, 1024));

    uint8_t payload[64];
    memset(payload, 7, sizeof payload);
    const int calls = 2000;
    double t0 = now_s();
    for (int i = 0; i < calls; i++)
        if ((rc = x0x_publish(a, "bench", payload, sizeof payload, 0, NULL)) != X0X_OK) return die("publish", rc);
    printf("{\"name\": \"c_publish_call_us\", \"value\": %.1f, \"unit\": \"us\"}\n", (now_s() - t0) / calls * 1e6);

    x0x_agent_destroy(a);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* C test of libx0x through include/x0x.h: every function of the header,
 * two agents on 127.0.0.1 exchanging direct messages through the pull API
 * and the callback API, publish/subscribe both ways, topic handles (several
 * handles and subscriptions, neighbour events, lag markers, C and
 * asynchronous validators), injected events, task lists, private groups
 * (also restored by an agent created again from their data directory),
 * identity export/import, and misuse (NULL pointers,
 * stale, foreign and wrong-kind handles, double destroy, oversized inputs,
 * wrong passphrases). Run by scripts/test-capi.sh under AddressSanitizer
 * (leak checking on). Prints one line per failed check and ends with
 * "N passed, M failed"; exits non-zero if M > 0. Only loopback is used. */
#define _GNU_SOURCE
#include "x0x.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            passed++;                                                      \
        } else {                                                           \
            failed++;                                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                    \
            printf(__VA_ARGS__);                                           \
            printf(" [last error: %s]\n", x0x_last_error());               \
        }                                                                  \
    } while (0)

/* CHECK_RC checks that expr returns status want. */
#define CHECK_RC(expr, want)                                               \
    do {                                                                   \
        int rc_ = (expr);                                                  \
        CHECK(rc_ == (want), "%s = %s, want %s", #expr, x0x_status_name(rc_), x0x_status_name(want)); \
    } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, X0X_OK)

static char root[] = "/tmp/x0x-ctest.XXXXXX";

/* A task list of agent a that test_destroy checks is invalid after a's
 * destroy. */
static x0x_tasklist g_list_of_a;

static void path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", root, name); }

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Creates an agent with its own data directory under root. bootstrap may
 * be NULL; passphrase may be NULL. Returns the status. */
static int make_agent_at(const char *name, const char *bind, const char *bootstrap, const char *passphrase,
                         x0x_identity id, x0x_agent *out) {
    char dir[512];
    path(dir, sizeof dir, name);
    x0x_config cfg;
    int rc = x0x_config_new(&cfg);
    if (rc != X0X_OK) return rc;
    if ((rc = x0x_config_set(cfg, "data_dir", dir)) != X0X_OK) goto done;
    if ((rc = x0x_config_set(cfg, "bind_addr", bind)) != X0X_OK) goto done;
    if (bootstrap && (rc = x0x_config_set(cfg, "bootstrap", bootstrap)) != X0X_OK) goto done;
    if (passphrase &&
        (rc = x0x_config_set_passphrase(cfg, (const uint8_t *)passphrase, strlen(passphrase))) != X0X_OK)
        goto done;
    if (id != X0X_NULL_HANDLE && (rc = x0x_config_set_identity(cfg, id)) != X0X_OK) goto done;
    rc = x0x_agent_create(cfg, 20000, out);
done:
    x0x_config_destroy(cfg);
    return rc;
}

static int make_agent(const char *name, const char *bootstrap, const char *passphrase, x0x_identity id,
                      x0x_agent *out) {
    return make_agent_at(name, "127.0.0.1:0", bootstrap, passphrase, id, out);
}

/* Waits up to timeout_ms for a direct message with the given payload on
 * the pull API of agent; checks from/to. Returns 1 if found. */
static int pull_message(x0x_agent agent, const char *want, const uint8_t from[32], const uint8_t to[32],
                        int timeout_ms) {
    int fd = -1;
    if (x0x_events_fd(agent, &fd) != X0X_OK) return 0;
    double deadline = now_s() + timeout_ms / 1000.0;
    int found = 0;
    while (!found && now_s() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 200);
        if (r <= 0) continue;
        x0x_event evs[8];
        size_t n = 0;
        if (x0x_events_drain(agent, evs, 8, &n) != X0X_OK) return 0;
        CHECK(n > 0, "fd readable but drain returned no event");
        for (size_t i = 0; i < n; i++) {
            if (evs[i].kind == X0X_EVENT_DIRECT_MESSAGE && evs[i].payload_len == strlen(want) &&
                memcmp(evs[i].payload, want, evs[i].payload_len) == 0) {
                CHECK(memcmp(evs[i].from, from, 32) == 0, "direct message: wrong sender");
                CHECK(memcmp(evs[i].to, to, 32) == 0, "direct message: wrong recipient");
                found = 1;
            }
        }
        x0x_events_release(evs, n);
        for (size_t i = 0; i < n; i++) {
            CHECK(evs[i].payload == NULL && evs[i].addr == NULL && evs[i].agents == NULL,
                  "release did not clear the record");
        }
    }
    return found;
}

/* State shared with an event callback. */
struct cb_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int messages;          /* direct messages seen */
    char last[64];         /* last payload (NUL-terminated copy) */
    uint8_t from[32];
    int reentrant_ok;      /* calls made from inside the callback succeeded */
    int destroy_in_cb;     /* destroy the agent from inside the callback */
    int destroy_rc;
    int calls_after_destroy;
};

static void on_event(x0x_agent agent, const x0x_event *ev, void *user_data) {
    struct cb_state *st = user_data;
    pthread_mutex_lock(&st->mu);
    if (st->destroy_in_cb == 2) {
        st->calls_after_destroy++;
    }
    pthread_mutex_unlock(&st->mu);
    uint8_t id[32];
    /* Calls back into the library from the callback thread. */
    int ok = x0x_agent_id(agent, id) == X0X_OK && x0x_set_event_callback(agent, on_event, user_data) == X0X_OK;
    int destroy_rc = -1;
    if (st->destroy_in_cb == 1 && ev->kind == X0X_EVENT_DIRECT_MESSAGE) {
        destroy_rc = x0x_agent_destroy(agent);
    }
    pthread_mutex_lock(&st->mu);
    if (ev->kind == X0X_EVENT_DIRECT_MESSAGE) {
        size_t n = ev->payload_len < sizeof st->last - 1 ? ev->payload_len : sizeof st->last - 1;
        memcpy(st->last, ev->payload, n);
        st->last[n] = '\0';
        memcpy(st->from, ev->from, 32);
        st->messages++;
        st->reentrant_ok = ok;
        if (destroy_rc != -1) {
            st->destroy_rc = destroy_rc;
            st->destroy_in_cb = 2;
        }
    }
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* Waits until st->messages >= n (up to timeout_ms). */
static int wait_messages(struct cb_state *st, int n, int timeout_ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&st->mu);
    while (st->messages < n) {
        if (pthread_cond_timedwait(&st->cv, &st->mu, &ts) == ETIMEDOUT) break;
    }
    int ok = st->messages >= n;
    pthread_mutex_unlock(&st->mu);
    return ok;
}

static void cb_state_init(struct cb_state *st) {
    memset(st, 0, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
}

static void cb_state_destroy(struct cb_state *st) {
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
}

/* Thread body: a failing call on another thread must not change the main
 * thread's last error. */
static void *fail_on_other_thread(void *arg) {
    int *rc = arg;
    *rc = x0x_agent_destroy((x0x_agent)0x0200000000777777ull);
    if (strstr(x0x_last_error(), "not a handle issued") == NULL) *rc = -1;
    return NULL;
}

static void test_library(void) {
    uint32_t v = x0x_abi_version();
    CHECK(v >> 16 == X0X_ABI_VERSION_MAJOR && (v & 0xffff) >= X0X_ABI_VERSION_MINOR, "ABI version %#x", v);
    CHECK(strcmp(x0x_status_name(X0X_ERR_TIMEOUT), "X0X_ERR_TIMEOUT") == 0, "status name");
    CHECK(strcmp(x0x_status_name(12345), "X0X_ERR_UNKNOWN") == 0, "unknown status name");
    for (int st = X0X_OK; st <= X0X_ERR_REFUSED; st++)
        CHECK(strcmp(x0x_status_name(st), "X0X_ERR_UNKNOWN") != 0, "status %d has no name", st);
    x0x_free(NULL);
    x0x_events_release(NULL, 0);

    uint8_t id[32], back[32];
    for (int i = 0; i < 32; i++) id[i] = (uint8_t)(i * 7 + 1);
    char hex[X0X_ID_HEX_SIZE];
    CHECK_OK(x0x_id_to_hex(id, hex));
    CHECK(strlen(hex) == 64 && strncmp(hex, "01080f", 6) == 0, "hex %s", hex);
    CHECK(x0x_last_error()[0] == '\0', "last error not reset after success");
    CHECK_OK(x0x_id_from_hex(hex, back));
    CHECK(memcmp(id, back, 32) == 0, "hex round trip");
    CHECK_RC(x0x_id_to_hex(NULL, hex), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_id_to_hex(id, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_id_from_hex(NULL, back), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_id_from_hex(hex, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_id_from_hex("abcd", back), X0X_ERR_INVALID_ARG);
    CHECK(strlen(x0x_last_error()) > 0, "no last error after a failure");
    hex[10] = 'z';
    CHECK_RC(x0x_id_from_hex(hex, back), X0X_ERR_INVALID_ARG);
    /* A string without NUL in the first X0X_MAX_STRING+1 bytes. */
    char *big = malloc(X0X_MAX_STRING + 100);
    memset(big, 'a', X0X_MAX_STRING + 100);
    CHECK_RC(x0x_id_from_hex(big, back), X0X_ERR_TOO_LARGE);
    free(big);

    /* Thread-local last error. */
    CHECK_RC(x0x_id_from_hex("abcd", back), X0X_ERR_INVALID_ARG);
    char mine[256];
    snprintf(mine, sizeof mine, "%s", x0x_last_error());
    pthread_t t;
    int trc = 0;
    pthread_create(&t, NULL, fail_on_other_thread, &trc);
    pthread_join(t, NULL);
    CHECK(trc == X0X_ERR_INVALID_HANDLE, "other thread: rc %d", trc);
    CHECK(strcmp(mine, x0x_last_error()) == 0, "last error changed by another thread: %s", x0x_last_error());
}

static void test_config(void) {
    x0x_config cfg;
    CHECK_RC(x0x_config_new(NULL), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_config_new(&cfg));
    CHECK(cfg != X0X_NULL_HANDLE, "null config handle");
    CHECK_RC(x0x_config_set(cfg, "no_such_key", "x"), X0X_ERR_INVALID_ARG);
    CHECK(strstr(x0x_last_error(), "no_such_key") != NULL, "error does not name the key");
    CHECK_RC(x0x_config_set(cfg, NULL, "x"), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_config_set(cfg, "data_dir", NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_config_set(cfg, "bootstrap", "no-port"), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_config_set(cfg, "bootstrap", "1234@127.0.0.1:5"), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_config_set(cfg, "bootstrap", "127.0.0.1:99999"), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_config_set(cfg, "bootstrap", "127.0.0.1:9"));
    CHECK_RC(x0x_config_set(cfg, "network", "moon"), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_config_set(cfg, "network", "local"));
    CHECK_RC(x0x_config_set(cfg, "bind_addr", "nonsense"), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_config_set(cfg, "event_queue_capacity", "0"), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_config_set(cfg, "event_queue_capacity", "65537"), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_config_set(cfg, "event_queue_capacity", "12abc"), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_config_set(cfg, "event_queue_capacity", "16"));
    char *big = malloc(X0X_MAX_STRING + 2);
    memset(big, 'd', X0X_MAX_STRING + 1);
    big[X0X_MAX_STRING + 1] = '\0';
    CHECK_RC(x0x_config_set(cfg, "data_dir", big), X0X_ERR_TOO_LARGE);
    big[X0X_MAX_STRING] = '\0'; /* exactly the limit is accepted */
    CHECK_OK(x0x_config_set(cfg, "machine_key_path", big));
    free(big);
    CHECK_RC(x0x_config_set_passphrase(cfg, NULL, 3), X0X_ERR_INVALID_ARG);
    uint8_t pw[X0X_MAX_PASSPHRASE + 1];
    memset(pw, 'p', sizeof pw);
    CHECK_RC(x0x_config_set_passphrase(cfg, pw, sizeof pw), X0X_ERR_TOO_LARGE);
    CHECK_OK(x0x_config_set_passphrase(cfg, pw, X0X_MAX_PASSPHRASE));
    CHECK_OK(x0x_config_set_passphrase(cfg, NULL, 0));
    CHECK_RC(x0x_config_set_identity(cfg, cfg), X0X_ERR_INVALID_HANDLE); /* config used as identity */
    CHECK_OK(x0x_config_set_identity(cfg, X0X_NULL_HANDLE));
    CHECK_OK(x0x_config_destroy(cfg));
    CHECK_RC(x0x_config_destroy(cfg), X0X_ERR_INVALID_HANDLE);
    CHECK(strstr(x0x_last_error(), "already destroyed") != NULL, "double destroy: %s", x0x_last_error());
    CHECK_RC(x0x_config_set(cfg, "data_dir", "/tmp"), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_config_destroy(X0X_NULL_HANDLE), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_config_destroy(0xdeadbeefcafef00dull), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_config_destroy(cfg + 1000000), X0X_ERR_INVALID_HANDLE); /* never issued */
    CHECK(strstr(x0x_last_error(), "not a handle issued") != NULL, "never issued: %s", x0x_last_error());
    x0x_agent a;
    CHECK_RC(x0x_agent_create(0xdeadbeefcafef00dull, 1000, &a), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_agent_create(X0X_NULL_HANDLE, 1000, NULL), X0X_ERR_INVALID_ARG);
}

/* Messages between two agents: B bootstraps from A; A reads with the pull
 * API, B with a callback. */
static void test_two_agents(x0x_agent *pa, x0x_agent *pb) {
    x0x_agent a, b;
    CHECK_OK(make_agent("a", NULL, NULL, X0X_NULL_HANDLE, &a));
    char *addr = NULL;
    CHECK_OK(x0x_agent_addr(a, &addr));
    CHECK(addr && strncmp(addr, "127.0.0.1:", 10) == 0, "addr %s", addr ? addr : "(null)");
    CHECK_RC(x0x_agent_addr(a, NULL), X0X_ERR_INVALID_ARG);
    uint8_t a_agent[32], a_machine[32], b_agent[32], b_machine[32];
    CHECK_OK(x0x_agent_id(a, a_agent));
    CHECK_OK(x0x_machine_id(a, a_machine));
    CHECK(memcmp(a_agent, a_machine, 32) != 0, "agent and machine IDs equal");
    CHECK_RC(x0x_agent_id(a, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_machine_id(a, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_join_network(a, 2000), X0X_ERR_NO_PEERS);

    char hex[X0X_ID_HEX_SIZE], boot[600];
    x0x_id_to_hex(a_machine, hex);
    snprintf(boot, sizeof boot, "%s@%s", hex, addr);
    CHECK_OK(make_agent("b", boot, NULL, X0X_NULL_HANDLE, &b));
    CHECK_OK(x0x_agent_id(b, b_agent));
    CHECK_OK(x0x_machine_id(b, b_machine));
    CHECK_OK(x0x_join_network(b, 10000));

    /* A pinned ID that is not the node at that address. */
    uint8_t wrong[32];
    memset(wrong, 0x42, 32);
    char whex[X0X_ID_HEX_SIZE], waddr[600];
    x0x_id_to_hex(wrong, whex);
    snprintf(waddr, sizeof waddr, "%s@%s", whex, addr);
    int rc_self, crc = x0x_connect(b, waddr, 5000, NULL);
    CHECK(crc == X0X_ERR_AUTH, "connect with wrong pinned ID = %s, want X0X_ERR_AUTH", x0x_status_name(crc));
    CHECK_RC(x0x_connect(b, NULL, 1000, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_connect(b, "not an address", 1000, NULL), X0X_ERR_INVALID_ARG);
    rc_self = x0x_connect(a, addr, 5000, NULL);
    CHECK(rc_self == X0X_ERR_AUTH, "connect to self = %s, want X0X_ERR_AUTH", x0x_status_name(rc_self));
    uint8_t peer[32];
    CHECK_OK(x0x_connect(b, addr, 5000, peer));
    CHECK(memcmp(peer, a_machine, 32) == 0, "connect returned another peer ID");
    x0x_free(addr);

    CHECK_OK(x0x_wait_for_agent(b, a_agent, 10000));
    CHECK_OK(x0x_wait_for_agent(a, b_agent, 10000));
    double t0 = now_s();
    CHECK_OK(x0x_wait_for_agent(a, a_agent, 60000)); /* its own ID: at once */
    CHECK(now_s() - t0 < 1.0, "x0x_wait_for_agent(own id) took %.2f s", now_s() - t0);
    CHECK_RC(x0x_wait_for_agent(a, wrong, 300), X0X_ERR_TIMEOUT);
    CHECK_RC(x0x_wait_for_agent(a, NULL, 300), X0X_ERR_INVALID_ARG);

    uint8_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(x0x_connected_peers(a, &ids, &n));
    CHECK(n == 1 && ids && memcmp(ids, b_machine, 32) == 0, "A's peers: %zu", n);
    x0x_free(ids);
    CHECK_RC(x0x_connected_peers(a, NULL, &n), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_peer_agents(a, b_machine, &ids, &n));
    CHECK(n == 1 && ids && memcmp(ids, b_agent, 32) == 0, "B's agents seen by A: %zu", n);
    x0x_free(ids);
    CHECK_OK(x0x_peer_agents(a, wrong, &ids, &n));
    CHECK(n == 0 && ids == NULL, "unknown peer has agents");
    CHECK_RC(x0x_peer_agents(a, NULL, &ids, &n), X0X_ERR_INVALID_ARG);

    /* B -> A, received with the pull API. */
    const char *m1 = "hello A, from B";
    CHECK_OK(x0x_send_direct(b, a_agent, (const uint8_t *)m1, strlen(m1), 5000));
    CHECK(pull_message(a, m1, b_agent, a_agent, 10000), "A did not pull B's message");

    /* A -> B, received with the callback API. */
    struct cb_state st;
    cb_state_init(&st);
    CHECK_OK(x0x_set_event_callback(b, on_event, &st));
    const char *m2 = "hello B, from A";
    CHECK_OK(x0x_send_direct(a, b_agent, (const uint8_t *)m2, strlen(m2), 5000));
    CHECK(wait_messages(&st, 1, 10000), "B's callback got no message");
    pthread_mutex_lock(&st.mu);
    CHECK(strcmp(st.last, m2) == 0, "B's callback payload %s", st.last);
    CHECK(memcmp(st.from, a_agent, 32) == 0, "B's callback: wrong sender");
    CHECK(st.reentrant_ok, "calls from inside the callback failed");
    pthread_mutex_unlock(&st.mu);
    CHECK_OK(x0x_set_event_callback(b, NULL, NULL));
    /* With the callback removed, the next message goes to B's queue. */
    const char *m3 = "second message to B";
    CHECK_OK(x0x_send_direct(a, b_agent, (const uint8_t *)m3, strlen(m3), 5000));
    CHECK(pull_message(b, m3, a_agent, b_agent, 10000), "B did not pull the message after removing the callback");
    CHECK(st.messages == 1, "callback called after removal: %d", st.messages);

    /* Sending misuse. */
    CHECK_RC(x0x_send_direct(a, NULL, (const uint8_t *)"x", 1, 1000), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_send_direct(a, b_agent, NULL, 5, 1000), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_send_direct(a, wrong, (const uint8_t *)"x", 1, 1000), X0X_ERR_NO_ROUTE);
    /* Larger than X0X_MAX_PAYLOAD: rejected before the buffer is read. */
    uint8_t small[8] = {0};
    CHECK_RC(x0x_send_direct(a, b_agent, small, (size_t)X0X_MAX_PAYLOAD + 1, 1000), X0X_ERR_TOO_LARGE);
    /* Within X0X_MAX_PAYLOAD but above the node's frame limit. */
    size_t big_len = 5u << 20;
    uint8_t *bigp = calloc(1, big_len);
    CHECK_RC(x0x_send_direct(a, b_agent, bigp, big_len, 5000), X0X_ERR_TOO_LARGE);
    free(bigp);
    CHECK_OK(x0x_send_direct(a, b_agent, NULL, 0, 5000)); /* empty payload is fine */

    /* Drain/fd misuse. */
    size_t got = 7;
    CHECK_OK(x0x_events_drain(a, NULL, 0, &got));
    CHECK(got == 0, "drain with max 0 returned %zu", got);
    CHECK_RC(x0x_events_drain(a, NULL, 4, &got), X0X_ERR_INVALID_ARG);
    x0x_event ev1;
    CHECK_RC(x0x_events_drain(a, &ev1, 1, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_events_fd(a, NULL), X0X_ERR_INVALID_ARG);
    uint64_t dropped = 99;
    CHECK_OK(x0x_events_dropped(a, &dropped));
    CHECK(dropped == 0, "A dropped %llu events", (unsigned long long)dropped);
    CHECK_RC(x0x_events_dropped(a, NULL), X0X_ERR_INVALID_ARG);
    cb_state_destroy(&st);
    *pa = a;
    *pb = b;
}

/* An agent with no peers: the fd is readable exactly while events are
 * queued; a full queue drops and counts. */
/* Two peers at different IPs (127.0.0.1 and 127.0.0.2) see an agent at its
 * own address: it reports X0X_EVENT_NAT_TYPE_DETECTED with X0X_NAT_NONE and
 * that address, then X0X_EVENT_EXTERNAL_ADDRESS_DISCOVERED of that address
 * (not before). */
static void test_nat_event(void) {
    x0x_agent n, o1, o2;
    CHECK_OK(make_agent("nat-n", NULL, NULL, X0X_NULL_HANDLE, &n));
    CHECK_OK(make_agent("nat-o1", NULL, NULL, X0X_NULL_HANDLE, &o1));
    CHECK_OK(make_agent_at("nat-o2", "127.0.0.2:0", NULL, NULL, X0X_NULL_HANDLE, &o2));
    char *addr = NULL, *a1 = NULL, *a2 = NULL;
    CHECK_OK(x0x_agent_addr(n, &addr));
    CHECK_OK(x0x_agent_addr(o1, &a1));
    CHECK_OK(x0x_agent_addr(o2, &a2));
    CHECK_OK(x0x_connect(n, a1, 10000, NULL));
    CHECK_OK(x0x_connect(n, a2, 10000, NULL));
    int fd = -1, found = 0, external = 0;
    CHECK_OK(x0x_events_fd(n, &fd));
    double deadline = now_s() + 20;
    while (!(found && external) && now_s() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0) continue;
        x0x_event evs[16];
        size_t k = 0;
        CHECK_OK(x0x_events_drain(n, evs, 16, &k));
        for (size_t i = 0; i < k; i++) {
            if (evs[i].kind == X0X_EVENT_EXTERNAL_ADDRESS_DISCOVERED) {
                CHECK(found, "X0X_EVENT_EXTERNAL_ADDRESS_DISCOVERED before X0X_EVENT_NAT_TYPE_DETECTED");
                CHECK(evs[i].addr && strcmp(evs[i].addr, addr) == 0, "discovered external address %s, want %s",
                      evs[i].addr ? evs[i].addr : "(null)", addr);
                external = 1;
            }
            if (evs[i].kind != X0X_EVENT_NAT_TYPE_DETECTED) continue;
            CHECK(evs[i].reserved[0] == X0X_NAT_NONE, "NAT type %llu, want X0X_NAT_NONE",
                  (unsigned long long)evs[i].reserved[0]);
            CHECK(evs[i].addr && strcmp(evs[i].addr, addr) == 0, "external address %s, want %s",
                  evs[i].addr ? evs[i].addr : "(null)", addr);
            found = 1;
        }
        x0x_events_release(evs, k);
    }
    CHECK(found, "no X0X_EVENT_NAT_TYPE_DETECTED");
    CHECK(external, "no X0X_EVENT_EXTERNAL_ADDRESS_DISCOVERED");
    x0x_free(addr);
    x0x_free(a1);
    x0x_free(a2);
    CHECK_OK(x0x_agent_destroy(o2));
    CHECK_OK(x0x_agent_destroy(o1));
    CHECK_OK(x0x_agent_destroy(n));
}

static void test_pull_queue(void) {
    x0x_agent c;
    char dir[512];
    path(dir, sizeof dir, "c");
    x0x_config cfg;
    CHECK_OK(x0x_config_new(&cfg));
    CHECK_OK(x0x_config_set(cfg, "data_dir", dir));
    CHECK_OK(x0x_config_set(cfg, "event_queue_capacity", "2"));
    CHECK_OK(x0x_agent_create(cfg, 20000, &c));
    CHECK_OK(x0x_config_destroy(cfg));
    uint8_t self[32];
    CHECK_OK(x0x_agent_id(c, self));
    int fd = -1, fd2 = -2;
    CHECK_OK(x0x_events_fd(c, &fd));
    CHECK_OK(x0x_events_fd(c, &fd2));
    CHECK(fd >= 0 && fd == fd2, "events fd %d %d", fd, fd2);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK(poll(&p, 1, 0) == 0, "fd readable with an empty queue");
    for (int i = 0; i < 5; i++) {
        char msg[24];
        snprintf(msg, sizeof msg, "self %d", i);
        CHECK_OK(x0x_send_direct(c, self, (const uint8_t *)msg, strlen(msg), 1000));
    }
    uint64_t dropped = 0;
    double deadline = now_s() + 10;
    while (now_s() < deadline && x0x_events_dropped(c, &dropped) == X0X_OK && dropped < 3) usleep(1000);
    CHECK(dropped == 3, "dropped %llu, want 3", (unsigned long long)dropped);
    CHECK(poll(&p, 1, 0) == 1 && (p.revents & POLLIN), "fd not readable with queued events");
    x0x_event evs[4];
    size_t n = 0;
    CHECK_OK(x0x_events_drain(c, evs, 1, &n));
    CHECK(n == 1 && evs[0].kind == X0X_EVENT_DIRECT_MESSAGE && evs[0].payload_len == 6 &&
              memcmp(evs[0].payload, "self 0", 6) == 0,
          "first drained event");
    CHECK(poll(&p, 1, 0) == 1, "fd not readable with one event left");
    x0x_events_release(evs, n);
    x0x_events_release(evs, n); /* releasing twice is harmless */
    CHECK_OK(x0x_events_drain(c, evs, 4, &n));
    CHECK(n == 1 && evs[0].payload_len == 6 && memcmp(evs[0].payload, "self 1", 6) == 0, "second event");
    CHECK(poll(&p, 1, 0) == 0, "fd readable after the queue was emptied");
    x0x_events_release(evs, n);
    /* Destroy from inside its own callback: no deadlock, handle gone. */
    struct cb_state st;
    cb_state_init(&st);
    st.destroy_in_cb = 1;
    CHECK_OK(x0x_set_event_callback(c, on_event, &st));
    CHECK_OK(x0x_send_direct(c, self, (const uint8_t *)"bye", 3, 1000));
    CHECK(wait_messages(&st, 1, 10000), "callback for self-message not called");
    pthread_mutex_lock(&st.mu);
    CHECK(st.destroy_rc == X0X_OK, "destroy from callback = %s", x0x_status_name(st.destroy_rc));
    pthread_mutex_unlock(&st.mu);
    CHECK_RC(x0x_agent_destroy(c), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_events_fd(c, &fd), X0X_ERR_INVALID_HANDLE);
    usleep(200 * 1000); /* let the dispatcher finish before freeing st */
    pthread_mutex_lock(&st.mu);
    CHECK(st.calls_after_destroy == 0, "%d callbacks after destroy", st.calls_after_destroy);
    pthread_mutex_unlock(&st.mu);
    cb_state_destroy(&st);
}

/* Waits up to timeout_ms for a topic message with the given payload on the
 * pull API of agent; checks topic, sender and sequence. Returns 1 if found. */
static int pull_topic(x0x_agent agent, const char *topic, const char *want, const uint8_t from[32],
                      int timeout_ms) {
    int fd = -1;
    if (x0x_events_fd(agent, &fd) != X0X_OK) return 0;
    double deadline = now_s() + timeout_ms / 1000.0;
    int found = 0;
    while (!found && now_s() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        x0x_event evs[16];
        size_t n = 0;
        if (x0x_events_drain(agent, evs, 16, &n) != X0X_OK) return 0;
        for (size_t i = 0; i < n; i++) {
            if (evs[i].kind == X0X_EVENT_TOPIC_MESSAGE && evs[i].payload_len == strlen(want) &&
                memcmp(evs[i].payload, want, evs[i].payload_len) == 0) {
                CHECK(evs[i].topic && strcmp(evs[i].topic, topic) == 0, "topic message: wrong topic");
                CHECK(memcmp(evs[i].from, from, 32) == 0, "topic message: wrong origin");
                CHECK(evs[i].reserved[0] > 0 && evs[i].reserved[1] > 0, "topic message: no seq/time");
                CHECK(evs[i].reserved[3] == 0, "x0x_subscribe record names a subscription");
                found = 1;
            }
        }
        x0x_events_release(evs, n);
        for (size_t i = 0; i < n; i++) CHECK(evs[i].topic == NULL, "release did not clear topic");
    }
    return found;
}

/* Publishes want on topic from `from` every 200 ms until `to` pulls it (the
 * topic tree forms asynchronously after subscribing). */
static int publish_until(x0x_agent from, x0x_agent to, const char *topic, const char *want,
                         const uint8_t from_id[32]) {
    for (int tries = 0; tries < 75; tries++) {
        uint8_t id[32] = {0}, zero[32] = {0};
        if (x0x_publish(from, topic, (const uint8_t *)want, strlen(want), 2000, id) != X0X_OK) return 0;
        CHECK(memcmp(id, zero, 32) != 0, "publish returned a zero message ID");
        if (pull_topic(to, topic, want, from_id, 200)) return 1;
    }
    return 0;
}

/* Publish/subscribe between a and b both ways, and misuse. */
static void test_pubsub(x0x_agent a, x0x_agent b) {
    uint8_t a_agent[32], b_agent[32];
    CHECK_OK(x0x_agent_id(a, a_agent));
    CHECK_OK(x0x_agent_id(b, b_agent));
    CHECK_OK(x0x_subscribe(a, "c/topic"));
    CHECK_OK(x0x_subscribe(a, "c/topic")); /* idempotent */
    CHECK_OK(x0x_subscribe(b, "c/topic"));
    CHECK(publish_until(b, a, "c/topic", "to A on a topic", b_agent), "A got no topic message from B");
    CHECK(publish_until(a, b, "c/topic", "to B on a topic", a_agent), "B got no topic message from A");
    CHECK_OK(x0x_publish(a, "c/elsewhere", NULL, 0, 1000, NULL)); /* unsubscribed topic, empty payload */

    char longtopic[X0X_MAX_TOPIC + 2];
    memset(longtopic, 't', sizeof longtopic - 1);
    longtopic[sizeof longtopic - 1] = 0;
    CHECK_RC(x0x_subscribe(a, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_subscribe(a, ""), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_subscribe(a, longtopic), X0X_ERR_TOO_LARGE);
    CHECK_RC(x0x_publish(a, longtopic, NULL, 0, 1000, NULL), X0X_ERR_TOO_LARGE);
    CHECK_RC(x0x_publish(a, "c/topic", NULL, 3, 1000, NULL), X0X_ERR_INVALID_ARG);
    size_t big = (1u << 20) + 1;
    uint8_t *bigp = calloc(1, big);
    CHECK_RC(x0x_publish(a, "c/topic", bigp, big, 1000, NULL), X0X_ERR_TOO_LARGE);
    free(bigp);
    CHECK_RC(x0x_unsubscribe(a, "c/never"), X0X_ERR_NOT_FOUND);
    CHECK_RC(x0x_unsubscribe(a, NULL), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_unsubscribe(a, "c/topic"));
    CHECK_RC(x0x_unsubscribe(a, "c/topic"), X0X_ERR_NOT_FOUND);
    CHECK_RC(x0x_subscribe(X0X_NULL_HANDLE, "c/topic"), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_publish(X0X_NULL_HANDLE, "c/topic", NULL, 0, 1000, NULL), X0X_ERR_INVALID_HANDLE);
}

/* ---- Topic handles (ABI 0.6) ------------------------------------------ */

/* A topic handle and a subscription of agent a that test_destroy checks
 * are invalid after a's destroy. */
static x0x_topic g_topic_of_a;
static x0x_subscription g_sub_of_a;

/* What a pull should find: a record of `kind` whose reserved[3] is
 * `handle` (and with payload `payload`, if not NULL). seen/rec are set
 * when found (rec keeps the scalars only). */
struct want {
    uint32_t kind;
    uint64_t handle;
    const char *payload;
    int seen;
    x0x_event rec;
};

/* Drains agent's records for up to timeout_ms until every want is seen.
 * Records with a payload starting with "bad" are counted in *bad (if not
 * NULL). Returns the number of wants seen. */
static int pull_wants(x0x_agent agent, struct want *w, int nw, int timeout_ms, int *bad) {
    int fd = -1;
    if (x0x_events_fd(agent, &fd) != X0X_OK) return 0;
    double deadline = now_s() + timeout_ms / 1000.0;
    int seen = 0;
    for (int i = 0; i < nw; i++) seen += w[i].seen;
    while (seen < nw && now_s() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        x0x_event evs[32];
        size_t n = 0;
        if (x0x_events_drain(agent, evs, 32, &n) != X0X_OK) return seen;
        for (size_t i = 0; i < n; i++) {
            const x0x_event *e = &evs[i];
            if (bad && e->payload_len >= 3 && memcmp(e->payload, "bad", 3) == 0) (*bad)++;
            for (int k = 0; k < nw; k++) {
                if (w[k].seen || e->kind != w[k].kind || e->reserved[3] != w[k].handle) continue;
                if (w[k].payload && (e->payload_len != strlen(w[k].payload) ||
                                     memcmp(e->payload, w[k].payload, e->payload_len) != 0))
                    continue;
                w[k].seen = 1;
                w[k].rec = *e;
                w[k].rec.addr = w[k].rec.error = w[k].rec.topic = NULL;
                w[k].rec.payload = w[k].rec.agents = NULL;
                seen++;
                if (e->topic == NULL) CHECK(0, "record of kind %u has no topic", e->kind);
                break;
            }
        }
        x0x_events_release(evs, n);
    }
    return seen;
}

/* Publishes want on topic `from` every 200 ms until agent `to` pulls it on
 * subscription sub (topic trees form asynchronously). Also publishes
 * also_bad (if not NULL) each time, counting "bad" records at `to`. */
static int topic_publish_until_all(x0x_topic from, x0x_agent to, struct want *w, int nw, const char *want,
                                   const char *also_bad, int *bad);
static int topic_publish_until(x0x_topic from, x0x_agent to, x0x_subscription sub, const char *want,
                               const char *also_bad, int *bad) {
    struct want w = {X0X_EVENT_TOPIC_MESSAGE, sub, want, 0, {0}};
    return topic_publish_until_all(from, to, &w, 1, want, also_bad, bad);
}

/* As topic_publish_until, until every want (payload want) is seen. */
static int topic_publish_until_all(x0x_topic from, x0x_agent to, struct want *w, int nw, const char *want,
                                   const char *also_bad, int *bad) {
    for (int tries = 0; tries < 75; tries++) {
        uint8_t id[32] = {0}, zero[32] = {0};
        if (also_bad) {
            int rc = x0x_topic_publish(from, (const uint8_t *)also_bad, strlen(also_bad), NULL);
            CHECK(rc == X0X_OK, "publish %s = %s", also_bad, x0x_status_name(rc));
        }
        int rc = x0x_topic_publish(from, (const uint8_t *)want, strlen(want), id);
        if (rc != X0X_OK) {
            CHECK(0, "x0x_topic_publish = %s", x0x_status_name(rc));
            return 0;
        }
        CHECK(memcmp(id, zero, 32) != 0, "topic publish returned a zero message ID");
        if (pull_wants(to, w, nw, 200, bad) == nw) return 1;
    }
    return 0;
}

struct validator_state {
    pthread_mutex_t mu;
    int calls, refused, bad_record, leave_rc;
    x0x_topic topic;
};

/* A C validator: refuses payloads starting with "bad". */
static int refuse_bad(x0x_topic topic, const x0x_event *m, void *user_data) {
    struct validator_state *vs = user_data;
    int bad = m->payload_len >= 3 && memcmp(m->payload, "bad", 3) == 0;
    pthread_mutex_lock(&vs->mu);
    vs->calls++;
    vs->refused += bad;
    if (m->kind != X0X_EVENT_VALIDATE || m->reserved[3] != topic || topic != vs->topic || m->topic == NULL ||
        strcmp(m->topic, "c/valid") != 0 || m->reserved[0] == 0 || m->reserved[2] != 0)
        vs->bad_record++;
    pthread_mutex_unlock(&vs->mu);
    return bad ? X0X_VALIDATION_REJECT : X0X_VALIDATION_ACCEPT;
}

/* A C validator that leaves its own topic (allowed from inside it). */
static int leave_self(x0x_topic topic, const x0x_event *m, void *user_data) {
    (void)m;
    struct validator_state *vs = user_data;
    int rc = x0x_topic_leave(topic);
    pthread_mutex_lock(&vs->mu);
    vs->calls++;
    vs->leave_rc = rc;
    pthread_mutex_unlock(&vs->mu);
    return X0X_VALIDATION_ACCEPT;
}

/* Topic handles between a and b: several handles and subscriptions,
 * neighbour events and list, publish-only handles, a C validator, and
 * misuse of every kind of handle. */
static void test_topics(x0x_agent a, x0x_agent b) {
    uint8_t b_machine[32];
    CHECK_OK(x0x_machine_id(b, b_machine));
    char longtopic[X0X_MAX_TOPIC + 2];
    memset(longtopic, 't', sizeof longtopic - 1);
    longtopic[sizeof longtopic - 1] = 0;
    x0x_topic ta = 0, ta2 = 0, tb = 0, tpo = 0, x = 0;
    x0x_subscription sa = 0, sa2 = 0, ev_a = 0, sx = 0;
    CHECK_RC(x0x_topic_join(a, NULL, 0, &x), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_topic_join(a, "", 0, &x), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_topic_join(a, longtopic, 0, &x), X0X_ERR_TOO_LARGE);
    CHECK_RC(x0x_topic_join(a, "c/handles", 0x80, &x), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_topic_join(a, "c/handles", 0, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_topic_join(X0X_NULL_HANDLE, "c/handles", 0, &x), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_topic_join_validated(a, "c/handles", 0, NULL, NULL, X0X_MAX_VALIDATION_MS + 1, &x),
             X0X_ERR_INVALID_ARG);
    CHECK(x == 0, "a failed join wrote its output");

    CHECK_OK(x0x_topic_join(a, "c/handles", 0, &ta));
    CHECK_OK(x0x_topic_events(ta, &ev_a));
    CHECK_OK(x0x_topic_subscribe(ta, &sa));
    CHECK_OK(x0x_topic_join(a, "c/handles", 0, &ta2)); /* a second, independent handle */
    CHECK_OK(x0x_topic_subscribe(ta2, &sa2));
    CHECK(ta && ta2 && ta != ta2 && sa && sa2 && sa != sa2 && ev_a, "handles %llx %llx %llx %llx",
          (unsigned long long)ta, (unsigned long long)ta2, (unsigned long long)sa, (unsigned long long)sa2);
    CHECK_OK(x0x_topic_join(b, "c/handles", 0, &tb));

    /* Neighbour events: b joined the topic. */
    struct want up = {X0X_EVENT_TOPIC_NEIGHBOUR_UP, ev_a, NULL, 0, {0}};
    CHECK(pull_wants(a, &up, 1, 20000, NULL) == 1, "no X0X_EVENT_TOPIC_NEIGHBOUR_UP");
    CHECK(memcmp(up.rec.peer, b_machine, 32) == 0, "neighbour-up names another peer");
    uint8_t *ids = NULL;
    size_t count = 0;
    CHECK_OK(x0x_topic_neighbours(ta, &ids, &count));
    int has_b = 0;
    for (size_t i = 0; i < count; i++) has_b |= memcmp(ids + 32 * i, b_machine, 32) == 0;
    CHECK(has_b, "b not among the %zu topic neighbours", count);
    x0x_free(ids);
    CHECK_RC(x0x_topic_neighbours(ta, NULL, &count), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_topic_neighbours(ta, &ids, NULL), X0X_ERR_INVALID_ARG);

    /* b's messages reach both of a's handles, each record naming its subscription. */
    struct want both[2] = {{X0X_EVENT_TOPIC_MESSAGE, sa, "to A by handle", 0, {0}},
                           {X0X_EVENT_TOPIC_MESSAGE, sa2, "to A by handle", 0, {0}}};
    CHECK(topic_publish_until_all(tb, a, both, 2, "to A by handle", NULL, NULL),
          "A's handles got nothing from B (first %d, second %d)", both[0].seen, both[1].seen);
    CHECK(both[1].rec.reserved[0] > 0 && both[1].rec.reserved[1] > 0 && both[1].rec.reserved[2] >= 1,
          "topic message: no seq/time/hops");

    /* A publish-only handle reaches a subscriber. */
    CHECK_OK(x0x_topic_join(b, "c/handles", X0X_TOPIC_PUBLISH_ONLY, &tpo));
    CHECK_RC(x0x_topic_subscribe(tpo, &x), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_topic_events(tpo, &sx)); /* neighbours may be watched */
    CHECK_OK(x0x_subscription_close(sx));
    CHECK(topic_publish_until(tpo, a, sa, "publish-only", NULL, NULL), "publish-only handle reached nobody");
    CHECK_RC(x0x_topic_publish(tpo, NULL, 1, NULL), X0X_ERR_INVALID_ARG);
    size_t big = (1u << 20) + 1;
    uint8_t *bigp = calloc(1, big);
    CHECK_RC(x0x_topic_publish(tpo, bigp, big, NULL), X0X_ERR_TOO_LARGE);
    free(bigp);
    CHECK_OK(x0x_topic_leave(tpo));

    /* A C validator on a: b's "bad" messages are neither delivered nor
     * forwarded, a's own publish of one fails with X0X_ERR_REJECTED. */
    struct validator_state vs = {.mu = PTHREAD_MUTEX_INITIALIZER};
    x0x_topic tv = 0, tbv = 0;
    x0x_subscription sv = 0;
    CHECK_OK(x0x_topic_join_validated(a, "c/valid", 0, refuse_bad, &vs, 0, &tv));
    pthread_mutex_lock(&vs.mu);
    vs.topic = tv;
    pthread_mutex_unlock(&vs.mu);
    CHECK_OK(x0x_topic_subscribe(tv, &sv));
    CHECK_OK(x0x_topic_join(b, "c/valid", 0, &tbv));
    int bad = 0;
    CHECK(topic_publish_until(tbv, a, sv, "good from B", "bad from B", &bad), "a validated message never arrived");
    CHECK(bad == 0, "%d refused messages were delivered", bad);
    CHECK_RC(x0x_topic_publish(tv, (const uint8_t *)"bad local", 9, NULL), X0X_ERR_REJECTED);
    CHECK(strstr(x0x_last_error(), "x0x_topic_publish") != NULL, "last error: %s", x0x_last_error());
    CHECK_OK(x0x_topic_publish(tv, (const uint8_t *)"good local", 10, NULL));
    struct want local = {X0X_EVENT_TOPIC_MESSAGE, sv, "good local", 0, {0}};
    CHECK(pull_wants(a, &local, 1, 10000, &bad) == 1 && bad == 0, "local validated message");
    /* B's "bad" went out before its "good" but is verified in parallel
     * with it, so its validation may still be running: wait for it. */
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&vs.mu);
        int refused = vs.refused;
        pthread_mutex_unlock(&vs.mu);
        if (refused >= 2) break;
        usleep(100 * 1000);
    }
    pthread_mutex_lock(&vs.mu);
    CHECK(vs.calls >= 3 && vs.refused >= 2 && vs.bad_record == 0, "validator calls %d refused %d bad records %d",
          vs.calls, vs.refused, vs.bad_record);
    pthread_mutex_unlock(&vs.mu);
    CHECK_OK(x0x_topic_leave(tv)); /* waits for running validator calls */
    pthread_mutex_lock(&vs.mu);
    int calls = vs.calls;
    pthread_mutex_unlock(&vs.mu);
    CHECK_OK(x0x_topic_publish(tbv, (const uint8_t *)"bad after leave", 15, NULL));
    usleep(300 * 1000);
    pthread_mutex_lock(&vs.mu);
    CHECK(vs.calls == calls, "validator called after its topic was left");
    pthread_mutex_unlock(&vs.mu);
    CHECK_OK(x0x_topic_leave(tbv));

    /* Misuse: closed, left, wrong-kind and foreign handles. */
    CHECK_OK(x0x_subscription_close(sa2));
    CHECK_RC(x0x_subscription_close(sa2), X0X_ERR_INVALID_HANDLE);
    x0x_subscription sa3 = 0;
    CHECK_OK(x0x_topic_subscribe(ta2, &sa3));
    CHECK_OK(x0x_topic_leave(ta2));
    CHECK_RC(x0x_topic_leave(ta2), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_subscription_close(sa3), X0X_ERR_INVALID_HANDLE); /* closed by the leave */
    CHECK_RC(x0x_topic_publish(ta2, (const uint8_t *)"x", 1, NULL), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_topic_subscribe(ta2, &x), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_topic_events(ta2, &x), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_topic_neighbours(ta2, &ids, &count), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_topic_validation_result(ta2, 1, X0X_VALIDATION_ACCEPT), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_topic_publish(a, (const uint8_t *)"x", 1, NULL), X0X_ERR_INVALID_HANDLE); /* an agent */
    CHECK_RC(x0x_topic_leave(sa), X0X_ERR_INVALID_HANDLE);                                /* a subscription */
    CHECK_RC(x0x_subscription_close(ta), X0X_ERR_INVALID_HANDLE);                         /* a topic */
    CHECK_RC(x0x_subscription_close(X0X_NULL_HANDLE), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_topic_leave(0x05ffffffffffffffull), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_subscription_close(0x06ffffffffffffffull), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_topic_validation_result(ta, 1, X0X_VALIDATION_ACCEPT), X0X_ERR_NOT_FOUND); /* no validator */
    CHECK_RC(x0x_topic_subscribe(ta, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_topic_events(ta, NULL), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_topic_leave(tb));
    g_topic_of_a = ta; /* test_destroy: invalid once a is destroyed */
    g_sub_of_a = sa;
}

struct publish_args {
    x0x_topic topic;
    const char *payload;
    int rc;
};

static void *publish_thread(void *arg) {
    struct publish_args *pa = arg;
    pa->rc = x0x_topic_publish(pa->topic, (const uint8_t *)pa->payload, strlen(pa->payload), NULL);
    return NULL;
}

/* Answers validation requests from inside the event callback. */
static void answer_in_callback(x0x_agent agent, const x0x_event *ev, void *user_data) {
    (void)agent;
    int *answered = user_data;
    if (ev->kind == X0X_EVENT_VALIDATE) {
        int ok = ev->payload_len == 3 && memcmp(ev->payload, "yes", 3) == 0;
        if (x0x_topic_validation_result(ev->reserved[3], ev->reserved[2],
                                        ok ? X0X_VALIDATION_ACCEPT : X0X_VALIDATION_REJECT) == X0X_OK)
            __atomic_add_fetch(answered, 1, __ATOMIC_SEQ_CST);
    }
}

/* One agent with a queue of 8: the lag marker of a slow reader, answered
 * and unanswered asynchronous validation, a validator leaving its own
 * topic, and validation answered from the callback. */
static void test_topic_lag_and_validation(void) {
    x0x_agent x;
    char dir[512];
    path(dir, sizeof dir, "lag");
    x0x_config cfg;
    CHECK_OK(x0x_config_new(&cfg));
    CHECK_OK(x0x_config_set(cfg, "data_dir", dir));
    CHECK_OK(x0x_config_set(cfg, "event_queue_capacity", "8"));
    CHECK_OK(x0x_agent_create(cfg, 20000, &x));
    CHECK_OK(x0x_config_destroy(cfg));
    uint8_t self[32];
    CHECK_OK(x0x_agent_id(x, self));

    /* 40 messages into a queue of 8, nobody reading: the first 8 arrive,
     * then one marker for the 32 lost, then the next message. */
    x0x_topic t;
    x0x_subscription s;
    CHECK_OK(x0x_topic_join(x, "c/lag", 0, &t));
    CHECK_OK(x0x_topic_subscribe(t, &s));
    for (int i = 0; i < 40; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%02d", i % 100);
        CHECK_OK(x0x_topic_publish(t, (const uint8_t *)m, 3, NULL));
    }
    uint64_t dropped = 0;
    double deadline = now_s() + 20;
    while (now_s() < deadline && x0x_events_dropped(x, &dropped) == X0X_OK && dropped < 32) usleep(1000);
    CHECK(dropped == 32, "dropped %llu, want 32", (unsigned long long)dropped);
    CHECK_OK(x0x_topic_publish(t, (const uint8_t *)"m40", 3, NULL));
    int next = 0, markers = 0, done = 0, order_ok = 1;
    while (!done && now_s() < deadline) {
        x0x_event evs[4];
        size_t n = 0;
        CHECK_OK(x0x_events_drain(x, evs, 4, &n));
        for (size_t i = 0; i < n; i++) {
            const x0x_event *e = &evs[i];
            if (e->reserved[3] != s) {
                order_ok = 0;
                continue;
            }
            if (e->kind == X0X_EVENT_LAGGED) {
                markers++;
                if (next != 8 || e->reserved[0] != 32 || !e->topic || strcmp(e->topic, "c/lag") != 0) order_ok = 0;
                next = 40;
            } else if (e->kind == X0X_EVENT_TOPIC_MESSAGE) {
                char m[16];
                snprintf(m, sizeof m, "m%02d", next % 100);
                if (e->payload_len != 3 || memcmp(e->payload, m, 3) != 0) order_ok = 0;
                done = next == 40;
                next++;
            }
        }
        x0x_events_release(evs, n);
        if (n == 0) usleep(1000);
    }
    CHECK(done && markers == 1 && order_ok, "lag: done %d markers %d order %d (next %d)", done, markers, order_ok, next);
    CHECK_OK(x0x_topic_leave(t));

    /* Asynchronous validation: requests through the pull API, answered on
     * this thread while another publishes. */
    x0x_topic tv, tq;
    x0x_subscription sv;
    CHECK_OK(x0x_topic_join_validated(x, "c/async", 0, NULL, NULL, 10000, &tv));
    CHECK_OK(x0x_topic_subscribe(tv, &sv));
    const char *verdicts[2] = {"yes", "no!"};
    for (int k = 0; k < 2; k++) {
        struct publish_args pa = {tv, verdicts[k], -1};
        pthread_t th;
        pthread_create(&th, NULL, publish_thread, &pa);
        struct want req = {X0X_EVENT_VALIDATE, tv, verdicts[k], 0, {0}};
        CHECK(pull_wants(x, &req, 1, 10000, NULL) == 1, "no validation request for %s", verdicts[k]);
        CHECK(memcmp(req.rec.from, self, 32) == 0 && req.rec.reserved[2] != 0 && req.rec.reserved[0] != 0,
              "validation request fields");
        CHECK_OK(x0x_topic_validation_result(tv, req.rec.reserved[2], k == 0 ? X0X_VALIDATION_ACCEPT : 7));
        CHECK_RC(x0x_topic_validation_result(tv, req.rec.reserved[2], X0X_VALIDATION_ACCEPT), X0X_ERR_NOT_FOUND);
        pthread_join(th, NULL);
        CHECK(pa.rc == (k == 0 ? X0X_OK : X0X_ERR_REJECTED), "publish of %s = %s", verdicts[k], x0x_status_name(pa.rc));
        if (k == 0) {
            struct want yes = {X0X_EVENT_TOPIC_MESSAGE, sv, "yes", 0, {0}};
            CHECK(pull_wants(x, &yes, 1, 10000, NULL) == 1, "accepted message not delivered");
        }
    }
    CHECK_RC(x0x_topic_validation_result(tv, 987654321, X0X_VALIDATION_ACCEPT), X0X_ERR_NOT_FOUND);

    /* Nobody answers: refused after the time limit; a late answer is too late. */
    CHECK_OK(x0x_topic_join_validated(x, "c/async-short", 0, NULL, NULL, 100, &tq));
    double t0 = now_s();
    CHECK_RC(x0x_topic_publish(tq, (const uint8_t *)"late", 4, NULL), X0X_ERR_REJECTED);
    CHECK(now_s() - t0 >= 0.09 && now_s() - t0 < 5, "unanswered request took %.3f s (limit 0.1 s)", now_s() - t0);
    struct want late = {X0X_EVENT_VALIDATE, tq, "late", 0, {0}};
    CHECK(pull_wants(x, &late, 1, 5000, NULL) == 1, "no request for the unanswered message");
    CHECK_RC(x0x_topic_validation_result(tq, late.rec.reserved[2], X0X_VALIDATION_ACCEPT), X0X_ERR_NOT_FOUND);
    CHECK_OK(x0x_topic_leave(tq));
    CHECK_RC(x0x_topic_validation_result(tq, late.rec.reserved[2], X0X_VALIDATION_ACCEPT), X0X_ERR_INVALID_HANDLE);

    /* A validator function may leave its own topic. */
    struct validator_state vs = {.mu = PTHREAD_MUTEX_INITIALIZER, .leave_rc = -1};
    x0x_topic tl;
    CHECK_OK(x0x_topic_join_validated(x, "c/leave-in-validator", 0, leave_self, &vs, 0, &tl));
    int rc = x0x_topic_publish(tl, (const uint8_t *)"x", 1, NULL);
    CHECK(rc == X0X_OK || rc == X0X_ERR_CLOSED, "publish while its validator leaves = %s", x0x_status_name(rc));
    pthread_mutex_lock(&vs.mu);
    CHECK(vs.calls == 1 && vs.leave_rc == X0X_OK, "leave from the validator: calls %d rc %s", vs.calls,
          x0x_status_name(vs.leave_rc));
    pthread_mutex_unlock(&vs.mu);
    CHECK_RC(x0x_topic_leave(tl), X0X_ERR_INVALID_HANDLE);

    /* With a callback: requests answered from inside it, messages tagged. */
    int answered = 0;
    CHECK_OK(x0x_set_event_callback(x, answer_in_callback, &answered));
    CHECK_OK(x0x_topic_publish(tv, (const uint8_t *)"yes", 3, NULL));
    CHECK_RC(x0x_topic_publish(tv, (const uint8_t *)"nay", 3, NULL), X0X_ERR_REJECTED);
    CHECK(__atomic_load_n(&answered, __ATOMIC_SEQ_CST) == 2, "callback answered %d requests", answered);
    CHECK_OK(x0x_set_event_callback(x, NULL, NULL));
    CHECK_OK(x0x_agent_destroy(x));
    CHECK_RC(x0x_topic_leave(tv), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_subscription_close(sv), X0X_ERR_INVALID_HANDLE);
}

struct inject_args {
    x0x_agent agent;
    uint32_t n;
    int rc;
};

static void *inject_thread(void *arg) {
    struct inject_args *ia = arg;
    ia->rc = x0x_debug_inject_events(ia->agent, ia->n, 16);
    return NULL;
}

/* Injected events all arrive through a small queue while being drained. */
static void test_inject(x0x_agent a) {
    struct inject_args ia = {.agent = a, .n = 20000, .rc = -1};
    pthread_t th;
    pthread_create(&th, NULL, inject_thread, &ia);
    size_t got = 0;
    int fd = -1;
    CHECK_OK(x0x_events_fd(a, &fd));
    double deadline = now_s() + 30;
    int bad = 0;
    while (got < ia.n && now_s() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        x0x_event evs[512];
        size_t n = 0;
        if (x0x_events_drain(a, evs, 512, &n) != X0X_OK) break;
        for (size_t i = 0; i < n; i++) {
            if (evs[i].kind != X0X_EVENT_DIRECT_MESSAGE) continue; /* the network's own events */
            if (evs[i].payload_len == 16 && evs[i].payload[15] == 0xAB)
                got++;
            else
                bad++;
        }
        x0x_events_release(evs, n);
    }
    pthread_join(th, NULL);
    CHECK(ia.rc == X0X_OK, "inject = %s", x0x_status_name(ia.rc));
    CHECK(got == ia.n && bad == 0, "injected %u, received %zu (+%d others)", ia.n, got, bad);
    CHECK_RC(x0x_debug_inject_events(a, 1, 65537), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_debug_inject_events(X0X_NULL_HANDLE, 1, 1), X0X_ERR_INVALID_HANDLE);
}

/* Polls the JSON get(handle, &json) returns (a task list's snapshot, a
 * group's info) until it contains needle (or timeout_ms passes). Returns 1
 * if found. */
static int wait_json(int (*get)(uint64_t, char **), uint64_t handle, const char *needle, int timeout_ms) {
    double deadline = now_s() + timeout_ms / 1000.0;
    while (now_s() < deadline) {
        char *json = NULL;
        if (get(handle, &json) != X0X_OK) return 0;
        int found = strstr(json, needle) != NULL;
        x0x_free(json);
        if (found) return 1;
        usleep(20 * 1000);
    }
    return 0;
}

/* Counts queued X0X_EVENT_TASK_CHANGED events of op for list_hex. */
static int count_task_events(x0x_agent agent, const char *list_hex, uint64_t op, const uint8_t task[32]) {
    x0x_event evs[64];
    size_t n = 0;
    int count = 0;
    do {
        if (x0x_events_drain(agent, evs, 64, &n) != X0X_OK) return -1;
        for (size_t i = 0; i < n; i++) {
            if (evs[i].kind != X0X_EVENT_TASK_CHANGED) continue;
            CHECK(evs[i].topic && strcmp(evs[i].topic, list_hex) == 0, "task event: wrong list");
            CHECK(evs[i].payload_len == 32, "task event: payload of %zu bytes", evs[i].payload_len);
            if (evs[i].reserved[0] == op && evs[i].payload_len == 32 && memcmp(evs[i].payload, task, 32) == 0) count++;
        }
        x0x_events_release(evs, n);
    } while (n > 0);
    return count;
}

/* Task lists between a and b: every function, the typed errors, events,
 * and misuse. */
static void test_tasklist(x0x_agent a, x0x_agent b) {
    x0x_tasklist la = 0, lb = 0, lb2 = 0;
    uint8_t list_id[32], id_b[32], t1[32], t2[32], t3[32], unknown[32];
    char list_hex[X0X_ID_HEX_SIZE], hex[X0X_ID_HEX_SIZE], needle[256];
    memset(unknown, 0x5a, 32);
    CHECK_OK(x0x_tasklist_create(a, "c checklist", &la));
    CHECK_OK(x0x_tasklist_id(la, list_id));
    x0x_id_to_hex(list_id, list_hex);
    CHECK_OK(x0x_tasklist_join(b, list_id, &lb));
    CHECK_OK(x0x_tasklist_join(b, list_id, &lb2)); /* same list, new handle */
    CHECK(lb2 != lb, "second join returned the same handle");
    CHECK_OK(x0x_tasklist_id(lb2, id_b));
    CHECK(memcmp(id_b, list_id, 32) == 0, "joined list has another ID");

    /* Limits (X0X_MAX_TASKLIST_NAME, X0X_MAX_TASK_TITLE,
     * X0X_MAX_TASK_DESCRIPTION): at the limit fine, one byte more
     * X0X_ERR_TOO_LARGE; a description may be longer than X0X_MAX_STRING. */
    {
        static char big[X0X_MAX_TASK_DESCRIPTION + 2];
        x0x_tasklist lx = 0;
        uint8_t tx[32];
        memset(big, 'x', X0X_MAX_TASK_DESCRIPTION + 1);
        big[X0X_MAX_TASKLIST_NAME + 1] = 0;
        CHECK_RC(x0x_tasklist_create(a, big, &lx), X0X_ERR_TOO_LARGE);
        CHECK_RC(x0x_tasklist_add(la, big, NULL, tx), X0X_ERR_TOO_LARGE); /* title: same limit */
        big[X0X_MAX_TASKLIST_NAME + 1] = 'x';
        big[X0X_MAX_STRING + 1] = 0;
        CHECK_RC(x0x_tasklist_add(la, big, NULL, tx), X0X_ERR_TOO_LARGE);
        big[X0X_MAX_STRING + 1] = 'x';
        big[X0X_MAX_TASK_DESCRIPTION + 1] = 0;
        CHECK_RC(x0x_tasklist_add(la, "long description", big, tx), X0X_ERR_TOO_LARGE);
        big[X0X_MAX_TASK_DESCRIPTION] = 0;
        CHECK_OK(x0x_tasklist_add(la, "long description", big, tx));
        CHECK_OK(x0x_tasklist_update(la, tx, "description", big));
        big[X0X_MAX_TASK_TITLE] = 0;
        CHECK_OK(x0x_tasklist_update(la, tx, "title", big));
        big[X0X_MAX_TASK_TITLE] = 'x';
        big[X0X_MAX_TASK_TITLE + 1] = 0;
        CHECK_RC(x0x_tasklist_update(la, tx, "title", big), X0X_ERR_TOO_LARGE);
        CHECK_OK(x0x_tasklist_remove(la, tx));
    }

    CHECK_OK(x0x_tasklist_add(la, "first", "the first task", t1));
    CHECK_OK(x0x_tasklist_add(la, "second", NULL, t2));
    CHECK_OK(x0x_tasklist_add(la, "third", "", t3));
    CHECK(count_task_events(a, list_hex, X0X_TASK_ADDED, t1) == 1, "no local ADDED event for the first task");
    x0x_id_to_hex(t3, hex);
    snprintf(needle, sizeof needle, "\"id\":\"%s\",\"title\":\"third\"", hex);
    CHECK(wait_json(x0x_tasklist_snapshot, lb, needle, 20000), "B's replica never got the third task");
    CHECK(wait_json(x0x_tasklist_snapshot, lb, "\"name\":\"c checklist\"", 5000), "B's replica has no list name");

    /* Writers: only the creator, until it grants B. */
    uint8_t b_id[32], a_id[32], scratch[32];
    char b_id_hex[X0X_ID_HEX_SIZE], a_id_hex[X0X_ID_HEX_SIZE];
    CHECK_OK(x0x_agent_id(b, b_id));
    CHECK_OK(x0x_agent_id(a, a_id));
    x0x_id_to_hex(b_id, b_id_hex);
    x0x_id_to_hex(a_id, a_id_hex);
    snprintf(needle, sizeof needle, "\"creator\":\"%s\",\"writers\":[],\"open\":false", a_id_hex);
    CHECK(wait_json(x0x_tasklist_snapshot, lb, needle, 5000), "B's snapshot does not show A as the only writer");
    CHECK_RC(x0x_tasklist_add(lb, "not yet", NULL, scratch), X0X_ERR_NOT_WRITER);
    CHECK_RC(x0x_tasklist_claim(lb, t1), X0X_ERR_NOT_WRITER);
    CHECK_RC(x0x_tasklist_add_writer(lb, b_id), X0X_ERR_NOT_WRITER); /* only the creator grants */
    CHECK_RC(x0x_tasklist_set_open(lb, 1), X0X_ERR_NOT_WRITER);
    CHECK_RC(x0x_tasklist_add_writer(la, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_add_writer(la, a_id), X0X_ERR_INVALID_ARG); /* the creator itself */
    CHECK_OK(x0x_tasklist_add_writer(la, b_id));
    CHECK_OK(x0x_tasklist_add_writer(la, b_id)); /* again: fine */
    snprintf(needle, sizeof needle, "\"writers\":[\"%s\"]", b_id_hex);
    CHECK(wait_json(x0x_tasklist_snapshot, lb, needle, 20000), "B never saw its grant");
    CHECK(count_task_events(b, list_hex, X0X_TASK_ACCESS_CHANGED, (const uint8_t[32]){0}) >= 1, "B got no ACCESS_CHANGED event");

    /* Claims and completions: typed errors. */
    CHECK_OK(x0x_tasklist_claim(lb, t1));
    CHECK_OK(x0x_tasklist_claim(lb, t1)); /* again: fine */
    x0x_id_to_hex(t1, hex);
    snprintf(needle, sizeof needle, "\"id\":\"%s\",\"title\":\"first\",\"description\":\"the first task\",\"state\":\"claimed\"", hex);
    CHECK(wait_json(x0x_tasklist_snapshot, la, needle, 20000), "A never saw B's claim");
    CHECK_RC(x0x_tasklist_complete(la, t1), X0X_ERR_TASK_CLAIMED_BY_OTHER);
    CHECK_RC(x0x_tasklist_complete(la, t2), X0X_ERR_TASK_NOT_CLAIMED);
    CHECK_OK(x0x_tasklist_complete(lb, t1));
    CHECK_RC(x0x_tasklist_claim(lb, t1), X0X_ERR_TASK_DONE);
    CHECK_OK(x0x_tasklist_reopen(lb, t1));
    snprintf(needle, sizeof needle, "\"id\":\"%s\",\"title\":\"first\",\"description\":\"the first task\",\"state\":\"empty\"", hex);
    CHECK(wait_json(x0x_tasklist_snapshot, la, needle, 20000), "A never saw B's reopen");
    CHECK_OK(x0x_tasklist_claim(la, t1));
    CHECK_RC(x0x_tasklist_claim(la, unknown), X0X_ERR_NOT_FOUND);

    /* Fields. */
    uint8_t b_agent[32];
    char b_hex[X0X_ID_HEX_SIZE];
    CHECK_OK(x0x_agent_id(b, b_agent));
    x0x_id_to_hex(b_agent, b_hex);
    CHECK_OK(x0x_tasklist_update(la, t2, "title", "second, renamed"));
    CHECK_OK(x0x_tasklist_update(la, t2, "description", "now with a description"));
    CHECK_OK(x0x_tasklist_update(la, t2, "assignee", b_hex));
    CHECK_OK(x0x_tasklist_update(la, t2, "priority", "200"));
    snprintf(needle, sizeof needle, "\"assignee\":\"%s\",\"priority\":200", b_hex);
    CHECK(wait_json(x0x_tasklist_snapshot, lb, needle, 20000), "B never saw the update");
    CHECK_OK(x0x_tasklist_update(la, t2, "assignee", ""));
    CHECK_RC(x0x_tasklist_update(la, t2, "colour", "red"), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_update(la, t2, "priority", "256"), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_update(la, t2, "priority", "high"), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_update(la, t2, "assignee", "abc"), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_update(la, t2, NULL, "x"), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_update(la, unknown, "title", "x"), X0X_ERR_NOT_FOUND);

    /* Order: move t3 to the front, then after t1; remove t2. */
    CHECK_OK(x0x_tasklist_move(lb, t3, NULL));
    x0x_id_to_hex(t3, hex);
    snprintf(needle, sizeof needle, "\"tasks\":[{\"id\":\"%s\"", hex);
    CHECK(wait_json(x0x_tasklist_snapshot, la, needle, 20000), "A never saw the move to the front");
    CHECK_OK(x0x_tasklist_move(lb, t3, t1));
    CHECK_RC(x0x_tasklist_move(lb, t3, unknown), X0X_ERR_NOT_FOUND);
    CHECK_OK(x0x_tasklist_remove(la, t2));
    CHECK_RC(x0x_tasklist_remove(la, t2), X0X_ERR_NOT_FOUND);
    x0x_id_to_hex(t2, hex);
    double deadline = now_s() + 20;
    int gone = 0;
    while (!gone && now_s() < deadline) {
        char *json = NULL;
        if (x0x_tasklist_snapshot(lb, &json) != X0X_OK) break;
        gone = strstr(json, hex) == NULL;
        x0x_free(json);
        if (!gone) usleep(20 * 1000);
    }
    CHECK(gone, "B still has the removed task");
    CHECK(count_task_events(b, list_hex, X0X_TASK_REMOVED, t2) == 1, "B got no REMOVED event");

    /* Misuse. */
    CHECK_RC(x0x_tasklist_create(a, NULL, &la), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_create(a, "x", NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_join(a, NULL, &lb), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_add(la, NULL, NULL, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_claim(la, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_snapshot(la, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_id(la, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_tasklist_claim(a, t1), X0X_ERR_INVALID_HANDLE); /* an agent handle */
    CHECK_RC(x0x_tasklist_create(la, "x", &lb), X0X_ERR_INVALID_HANDLE); /* a list handle */

    /* Leave invalidates every handle of the list; join resumes. */
    CHECK_OK(x0x_tasklist_leave(lb));
    CHECK_RC(x0x_tasklist_leave(lb), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_tasklist_leave(lb2), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_tasklist_claim(lb, t1), X0X_ERR_INVALID_HANDLE);
    CHECK_OK(x0x_tasklist_join(b, list_id, &lb));
    CHECK(wait_json(x0x_tasklist_snapshot, lb, "\"title\":\"third\"", 1000), "rejoined list lost its persisted tasks");
    /* la stays open: destroying its agent invalidates it (test_destroy). */
    g_list_of_a = la;
}

/* One running agent per data directory: a second agent on a directory a
 * running agent holds is refused at once with X0X_ERR_IO, and the
 * directory is usable again once the first is destroyed. */
static void test_data_dir_lock(void) {
    x0x_agent first = 0, second = 0;
    x0x_config cfg;
    char dir[512];
    path(dir, sizeof dir, "locked");
    CHECK_OK(x0x_config_new(&cfg));
    CHECK_OK(x0x_config_set(cfg, "data_dir", dir));
    CHECK_OK(x0x_config_set(cfg, "bind_addr", "127.0.0.1:0"));
    CHECK_OK(x0x_agent_create(cfg, 20000, &first));
    double t0 = now_s();
    CHECK_RC(x0x_agent_create(cfg, 20000, &second), X0X_ERR_IO);
    CHECK(strstr(x0x_last_error(), "data directory in use") != NULL && strstr(x0x_last_error(), dir) != NULL,
          "last error does not say the directory is in use");
    CHECK(now_s() - t0 < 5.0, "the second agent was refused after %.2f s", now_s() - t0);
    CHECK(second == 0, "out set on failure");
    CHECK_OK(x0x_agent_destroy(first));
    CHECK_OK(x0x_agent_create(cfg, 20000, &second)); /* free again */
    CHECK_OK(x0x_agent_destroy(second));
    CHECK_OK(x0x_config_destroy(cfg));
}

static void test_identity(x0x_agent a) {
    uint8_t a_agent[32], a_machine[32];
    CHECK_OK(x0x_agent_id(a, a_agent));
    CHECK_OK(x0x_machine_id(a, a_machine));
    const uint8_t *pw = (const uint8_t *)"correct horse";
    size_t pwl = strlen("correct horse");
    uint8_t *bundle = NULL;
    size_t blen = 0;
    CHECK_RC(x0x_identity_export(a, NULL, 0, &bundle, &blen), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_identity_export(a, pw, pwl, NULL, &blen), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_identity_export(a, pw, pwl, &bundle, &blen));
    CHECK(bundle && blen > 0 && blen <= X0X_MAX_BUNDLE, "bundle length %zu", blen);

    x0x_identity id = 0;
    CHECK_RC(x0x_identity_import(bundle, blen, (const uint8_t *)"wrong", 5, &id), X0X_ERR_WRONG_PASSPHRASE);
    CHECK_RC(x0x_identity_import(bundle, 10, pw, pwl, &id), X0X_ERR_CORRUPT);
    CHECK_RC(x0x_identity_import(bundle, blen, NULL, 0, &id), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_identity_import(NULL, 10, pw, pwl, &id), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_identity_import(bundle, blen, pw, pwl, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_identity_import(bundle, (size_t)X0X_MAX_BUNDLE + 1, pw, pwl, &id), X0X_ERR_TOO_LARGE);
    CHECK(id == 0, "failed import wrote a handle");
    CHECK_OK(x0x_identity_import(bundle, blen, pw, pwl, &id));
    x0x_free(bundle);
    uint8_t got[32];
    CHECK_OK(x0x_identity_agent_id(id, got));
    CHECK(memcmp(got, a_agent, 32) == 0, "imported identity has another agent ID");
    CHECK_RC(x0x_identity_agent_id(id, NULL), X0X_ERR_INVALID_ARG);
    /* Wrong-kind handles both ways. */
    CHECK_RC(x0x_identity_agent_id(a, got), X0X_ERR_INVALID_HANDLE);
    CHECK(strstr(x0x_last_error(), "agent handle") != NULL, "wrong kind: %s", x0x_last_error());
    CHECK_RC(x0x_agent_id(id, got), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_identity_destroy(a), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_agent_destroy(id), X0X_ERR_INVALID_HANDLE);

    /* An agent on another "machine" with the imported identity. */
    x0x_agent e;
    CHECK_OK(make_agent("e", NULL, NULL, id, &e));
    uint8_t e_agent[32], e_machine[32];
    CHECK_OK(x0x_agent_id(e, e_agent));
    CHECK_OK(x0x_machine_id(e, e_machine));
    CHECK(memcmp(e_agent, a_agent, 32) == 0, "agent E does not carry the imported identity");
    CHECK(memcmp(e_machine, a_machine, 32) != 0, "agent E has A's machine ID");
    CHECK_OK(x0x_agent_destroy(e));

    /* Saved into a data directory, it becomes that directory's agent. */
    char dir[512];
    path(dir, sizeof dir, "f");
    CHECK_RC(x0x_identity_save(id, NULL, NULL, 0), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_identity_save(id, dir, NULL, 0));
    CHECK_OK(x0x_identity_destroy(id));
    CHECK_RC(x0x_identity_destroy(id), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_identity_save(id, dir, NULL, 0), X0X_ERR_INVALID_HANDLE);
    x0x_agent f;
    CHECK_OK(make_agent("f", NULL, NULL, X0X_NULL_HANDLE, &f));
    uint8_t f_agent[32];
    CHECK_OK(x0x_agent_id(f, f_agent));
    CHECK(memcmp(f_agent, a_agent, 32) == 0, "saved identity not loaded from the data directory");
    CHECK_OK(x0x_agent_destroy(f));
}

/* Key files sealed with a passphrase refuse another one. */
static void test_passphrase(void) {
    x0x_agent g;
    CHECK_OK(make_agent("g", NULL, "right one", X0X_NULL_HANDLE, &g));
    uint8_t id1[32];
    CHECK_OK(x0x_agent_id(g, id1));
    CHECK_OK(x0x_agent_destroy(g));
    x0x_agent bad = 0;
    CHECK_RC(make_agent("g", NULL, "wrong one", X0X_NULL_HANDLE, &bad), X0X_ERR_WRONG_PASSPHRASE);
    CHECK(bad == 0, "failed create wrote a handle");
    CHECK_RC(make_agent("g", NULL, NULL, X0X_NULL_HANDLE, &bad), X0X_ERR_WRONG_PASSPHRASE);
    CHECK_OK(make_agent("g", NULL, "right one", X0X_NULL_HANDLE, &g));
    uint8_t id2[32];
    CHECK_OK(x0x_agent_id(g, id2));
    CHECK(memcmp(id1, id2, 32) == 0, "reopened agent has another ID");
    CHECK_OK(x0x_agent_destroy(g));
}

/* Blocking calls honour their timeout. Nothing listens on the bootstrap
 * address (a UDP port this test just bound and released on 127.0.0.1). */
static void test_timeouts(void) {
    x0x_agent probe, h;
    CHECK_OK(make_agent("probe", NULL, NULL, X0X_NULL_HANDLE, &probe));
    char *dead = NULL;
    CHECK_OK(x0x_agent_addr(probe, &dead));
    CHECK_OK(x0x_agent_destroy(probe));
    CHECK_OK(make_agent("h", dead, NULL, X0X_NULL_HANDLE, &h));
    double t0 = now_s();
    int rc = x0x_join_network(h, 700);
    double took = now_s() - t0;
    CHECK(rc == X0X_ERR_TIMEOUT, "join to a dead address = %s, want X0X_ERR_TIMEOUT", x0x_status_name(rc));
    CHECK(took < 10, "join took %.1fs with a 0.7s timeout", took);
    CHECK(strstr(x0x_last_error(), dead) != NULL, "join error does not name the peer: %s", x0x_last_error());
    rc = x0x_connect(h, dead, 500, NULL);
    CHECK(rc == X0X_ERR_TIMEOUT, "connect to a dead address = %s, want X0X_ERR_TIMEOUT", x0x_status_name(rc));
    x0x_free(dead);
    CHECK_OK(x0x_agent_destroy(h));
}

struct hammer {
    x0x_agent agent;
    int bad; /* results other than OK / CLOSED / INVALID_HANDLE */
    int ok;
};

static void *hammer_agent(void *arg) {
    struct hammer *hm = arg;
    uint8_t self[32] = {0};
    for (int i = 0; i < 400; i++) {
        int rcs[4];
        rcs[0] = x0x_agent_id(hm->agent, self);
        rcs[1] = x0x_send_direct(hm->agent, self, (const uint8_t *)"hammer", 6, 1000);
        x0x_event evs[4];
        size_t n = 0;
        rcs[2] = x0x_events_drain(hm->agent, evs, 4, &n);
        if (rcs[2] == X0X_OK) x0x_events_release(evs, n);
        uint8_t *ids = NULL;
        size_t cnt = 0;
        rcs[3] = x0x_connected_peers(hm->agent, &ids, &cnt);
        x0x_free(ids);
        for (int k = 0; k < 4; k++) {
            if (rcs[k] == X0X_OK) __atomic_fetch_add(&hm->ok, 1, __ATOMIC_SEQ_CST);
            else if (rcs[k] != X0X_ERR_CLOSED && rcs[k] != X0X_ERR_INVALID_HANDLE) hm->bad++;
        }
    }
    return NULL;
}

/* Several threads use an agent while another destroys it: every call
 * returns OK, X0X_ERR_CLOSED or X0X_ERR_INVALID_HANDLE, never crashes. */
static void test_concurrent_destroy(void) {
    x0x_agent k;
    CHECK_OK(make_agent("k", NULL, NULL, X0X_NULL_HANDLE, &k));
    struct hammer hm[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        hm[i] = (struct hammer){.agent = k};
        pthread_create(&th[i], NULL, hammer_agent, &hm[i]);
    }
    /* Destroy once every thread is in its loop. */
    double deadline = now_s() + 10;
    for (int i = 0; i < 3 && now_s() < deadline; i++) {
        while (__atomic_load_n(&hm[i].ok, __ATOMIC_SEQ_CST) == 0 && now_s() < deadline) usleep(100);
    }
    CHECK_OK(x0x_agent_destroy(k));
    int bad = 0, ok = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        bad += hm[i].bad;
        ok += hm[i].ok;
    }
    CHECK(bad == 0, "%d calls racing with destroy returned an unexpected status", bad);
    CHECK(ok >= 3, "threads did not all run before destroy (%d successful calls)", ok);
}

/* What wait_group_record found: the fields the group tests check. */
struct group_rec {
    uint8_t from[32];
    size_t agents_count;
    int agents_has[2]; /* whether the two IDs asked for are in `agents` */
    uint64_t reserved[4];
};

/* Pulls agent's events until one of kind on group hex (with payload, if
 * not NULL) arrives, and copies what the group tests check into *out
 * (ids: two IDs to look for in `agents`, or NULL). Returns 1 if found
 * within timeout_ms. */
static int wait_group_record(x0x_agent agent, uint32_t kind, const char *hex, const char *payload,
                             const uint8_t *ids, struct group_rec *out, int timeout_ms) {
    int fd = -1;
    if (x0x_events_fd(agent, &fd) != X0X_OK) return 0;
    double deadline = now_s() + timeout_ms / 1000.0;
    int found = 0;
    while (!found && now_s() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        x0x_event evs[16];
        size_t n = 0;
        if (x0x_events_drain(agent, evs, 16, &n) != X0X_OK) return 0;
        for (size_t i = 0; i < n && !found; i++) {
            const x0x_event *ev = &evs[i];
            if (ev->kind != kind || ev->topic == NULL || strcmp(ev->topic, hex) != 0) continue;
            if (payload && (ev->payload_len != strlen(payload) || memcmp(ev->payload, payload, ev->payload_len) != 0))
                continue;
            found = 1;
            memcpy(out->from, ev->from, 32);
            out->agents_count = ev->agents_count;
            for (int k = 0; k < 2; k++) {
                out->agents_has[k] = 0;
                for (size_t j = 0; ids && j < ev->agents_count; j++)
                    out->agents_has[k] |= memcmp(ev->agents + j * 32, ids + k * 32, 32) == 0;
            }
            memcpy(out->reserved, ev->reserved, sizeof out->reserved);
        }
        x0x_events_release(evs, n);
    }
    return found;
}

/* Private groups (ABI 0.7): two agents, a key package, an invitation
 * pulled as X0X_EVENT_GROUP_INVITATION, accept, a group message pulled as
 * X0X_EVENT_GROUP_MESSAGE naming the group handle, the info JSON, misuse,
 * close, and the group found again (x0x_groups, x0x_group_open) by an
 * agent created again from the same data directory. */
static void test_groups(void) {
    x0x_agent a = 0, b = 0;
    CHECK_OK(make_agent("group-a", NULL, NULL, X0X_NULL_HANDLE, &a));
    char *addr = NULL, hex[X0X_ID_HEX_SIZE], boot[600];
    uint8_t ids[64], a_machine[32]; /* a's and b's agent IDs */
    CHECK_OK(x0x_agent_addr(a, &addr));
    CHECK_OK(x0x_machine_id(a, a_machine));
    CHECK_OK(x0x_agent_id(a, ids));
    x0x_id_to_hex(a_machine, hex);
    snprintf(boot, sizeof boot, "%s@%s", hex, addr ? addr : "");
    x0x_free(addr);
    CHECK_OK(make_agent("group-b", boot, NULL, X0X_NULL_HANDLE, &b));
    CHECK_OK(x0x_agent_id(b, ids + 32));
    CHECK_OK(x0x_join_network(b, 10000));
    CHECK_OK(x0x_wait_for_agent(a, ids + 32, 10000));
    char a_hex[X0X_ID_HEX_SIZE], b_hex[X0X_ID_HEX_SIZE];
    x0x_id_to_hex(ids, a_hex);
    x0x_id_to_hex(ids + 32, b_hex);

    /* b becomes invitable. */
    uint8_t *kp = NULL;
    size_t kp_len = 0;
    CHECK_RC(x0x_keypackage_publish(b, NULL, &kp_len), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_keypackage_publish(b, &kp, NULL), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_keypackage_publish(b, &kp, &kp_len));
    CHECK(kp != NULL && kp_len > 0, "empty key package");
    x0x_free(kp);

    /* a creates the group and invites b. */
    x0x_group ga = 0, gb = 0, scratch = 0;
    uint8_t gid[32], gid_b[32];
    char gid_hex[X0X_ID_HEX_SIZE], needle[256];
    CHECK_RC(x0x_group_create(a, NULL), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_group_create(X0X_NULL_HANDLE, &ga), X0X_ERR_INVALID_HANDLE);
    CHECK_OK(x0x_group_create(a, &ga));
    CHECK_OK(x0x_group_id(ga, gid));
    CHECK_RC(x0x_group_id(ga, NULL), X0X_ERR_INVALID_ARG);
    x0x_id_to_hex(gid, gid_hex);
    CHECK_RC(x0x_group_invite(ga, NULL, 0), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_group_invite(ga, ids + 32, 0));
    CHECK_RC(x0x_group_invite(ga, ids + 32, 0), X0X_ERR_ALREADY_MEMBER);
    struct group_rec rec;
    memset(&rec, 0, sizeof rec);
    CHECK(wait_group_record(b, X0X_EVENT_GROUP_INVITATION, gid_hex, NULL, ids, &rec, 20000),
          "b got no X0X_EVENT_GROUP_INVITATION");
    CHECK(memcmp(rec.from, ids, 32) == 0, "invitation: from is not a");
    CHECK(rec.agents_count == 2 && rec.agents_has[0] && rec.agents_has[1], "invitation: %zu members",
          rec.agents_count);
    CHECK(rec.reserved[0] > 0 && rec.reserved[3] == 0, "invitation: epoch %llu, reserved[3] %llu",
          (unsigned long long)rec.reserved[0], (unsigned long long)rec.reserved[3]);
    char *json = NULL;
    CHECK_RC(x0x_invitations(b, NULL), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_invitations(b, &json));
    snprintf(needle, sizeof needle, "[{\"group\":\"%s\",\"from\":\"%s\",", gid_hex, a_hex);
    CHECK(json && strstr(json, needle) != NULL, "invitations: %s", json ? json : "(null)");
    x0x_free(json);

    /* b accepts. */
    CHECK_RC(x0x_group_accept(b, NULL, &gb), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_group_accept(b, gid, NULL), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_group_accept(b, gid, &gb));
    CHECK_RC(x0x_group_accept(b, gid, &scratch), X0X_ERR_NOT_FOUND);
    CHECK_RC(x0x_group_decline(b, gid), X0X_ERR_NOT_FOUND);
    CHECK_OK(x0x_invitations(b, &json));
    CHECK(json && strcmp(json, "[]") == 0, "invitations after accept: %s", json ? json : "(null)");
    x0x_free(json);
    CHECK_OK(x0x_group_id(gb, gid_b));
    CHECK(memcmp(gid, gid_b, 32) == 0, "b's group has another ID");
    snprintf(needle, sizeof needle, "\"members\":[\"%s\",\"%s\"]", memcmp(ids, ids + 32, 32) < 0 ? a_hex : b_hex,
             memcmp(ids, ids + 32, 32) < 0 ? b_hex : a_hex);
    CHECK(wait_json(x0x_group_info, ga, needle, 20000), "a's group never listed both members");
    CHECK(wait_json(x0x_group_info, gb, needle, 20000), "b's group never listed both members");

    /* One group message from b, pulled by a with a's group handle. */
    const char *msg = "hello, group";
    int got = 0;
    double deadline = now_s() + 20;
    while (!got && now_s() < deadline) {
        CHECK_OK(x0x_group_publish(gb, (const uint8_t *)msg, strlen(msg)));
        got = wait_group_record(a, X0X_EVENT_GROUP_MESSAGE, gid_hex, msg, NULL, &rec, 300);
    }
    CHECK(got, "a got no X0X_EVENT_GROUP_MESSAGE");
    CHECK(got && memcmp(rec.from, ids + 32, 32) == 0, "message: from is not b");
    CHECK(got && rec.reserved[3] == ga && rec.reserved[0] > 0, "message: reserved[3] %#llx (want %#llx), epoch %llu",
          (unsigned long long)rec.reserved[3], (unsigned long long)ga, (unsigned long long)rec.reserved[0]);

    /* The info JSON. */
    CHECK_RC(x0x_group_info(ga, NULL), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_group_info(ga, &json));
    snprintf(needle, sizeof needle, "{\"id\":\"%s\",\"epoch\":", gid_hex);
    CHECK(json && strstr(json, needle) == json, "info: %s", json ? json : "(null)");
    CHECK(json && strstr(json, "\"online\":[") && strstr(json, "\"closed\":false}"), "info: %s", json ? json : "(null)");
    x0x_free(json);

    /* Misuse. */
    uint8_t small[8] = {0};
    CHECK_RC(x0x_group_publish(ga, NULL, 5), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_group_publish(ga, small, (960u << 10) + 1), X0X_ERR_TOO_LARGE); /* not read */
    CHECK_OK(x0x_group_publish(ga, NULL, 0));
    CHECK_RC(x0x_group_invite_keypackage(ga, NULL, 0, 0), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_group_invite_keypackage(ga, small, sizeof small, 0), X0X_ERR_CORRUPT);
    CHECK_RC(x0x_group_remove(ga, ids), X0X_ERR_NOT_MEMBER); /* itself: use leave */
    CHECK_RC(x0x_group_id(a, gid_b), X0X_ERR_INVALID_HANDLE);   /* an agent handle */
    CHECK_RC(x0x_group_create(ga, &scratch), X0X_ERR_INVALID_HANDLE); /* a group handle */
    CHECK_RC(x0x_group_tasklist_create(ga, NULL, &scratch), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_group_tasklist_join(ga, NULL, &scratch), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_group_update(ga));

    /* Close: the handles end. */
    CHECK_OK(x0x_group_close(ga));
    CHECK_RC(x0x_group_close(ga), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_group_info(ga, &json), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_group_publish(ga, NULL, 0), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_group_leave(ga), X0X_ERR_INVALID_HANDLE);
    CHECK_OK(x0x_agent_destroy(b)); /* invalidates gb */
    CHECK_RC(x0x_group_id(gb, gid_b), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_group_close(gb), X0X_ERR_INVALID_HANDLE);
    CHECK_OK(x0x_agent_destroy(a));

    /* The closed group's state stayed in a's data directory: a, created
     * again from it, has the group open and gets a handle for it. */
    CHECK_OK(make_agent("group-a", NULL, NULL, X0X_NULL_HANDLE, &a));
    CHECK_RC(x0x_groups(a, NULL), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_groups(a, &json));
    snprintf(needle, sizeof needle, "[\"%s\"]", gid_hex);
    CHECK(json && strcmp(json, needle) == 0, "restored groups: %s", json ? json : "(null)");
    x0x_free(json);
    memset(gid_b, 0, sizeof gid_b);
    CHECK_RC(x0x_group_open(a, gid_b, &ga), X0X_ERR_NOT_FOUND); /* no such group */
    CHECK_RC(x0x_group_open(a, NULL, &ga), X0X_ERR_INVALID_ARG);
    CHECK_RC(x0x_group_open(a, gid, NULL), X0X_ERR_INVALID_ARG);
    CHECK_OK(x0x_group_open(a, gid, &ga));
    CHECK_OK(x0x_group_open(a, gid, &scratch));
    CHECK(scratch == ga, "a second x0x_group_open gave another handle");
    CHECK_OK(x0x_group_id(ga, gid_b));
    CHECK(memcmp(gid, gid_b, 32) == 0, "the restored group has another ID");
    snprintf(needle, sizeof needle, "{\"id\":\"%s\",", gid_hex);
    CHECK(wait_json(x0x_group_info, ga, needle, 1000), "restored group's info");
    CHECK(wait_json(x0x_group_info, ga, b_hex, 1000), "the restored group lost member b");
    CHECK_OK(x0x_group_close(ga));
    CHECK_OK(x0x_groups(a, &json));
    CHECK(json && strcmp(json, "[]") == 0, "groups after close: %s", json ? json : "(null)");
    x0x_free(json);
    CHECK_RC(x0x_group_open(a, gid, &ga), X0X_ERR_NOT_FOUND);
    CHECK_OK(x0x_agent_destroy(a));
}

static void test_destroy(x0x_agent a, x0x_agent b) {
    CHECK_OK(x0x_agent_destroy(a));
    CHECK_RC(x0x_agent_destroy(a), X0X_ERR_INVALID_HANDLE);
    uint8_t id[32];
    CHECK_RC(x0x_agent_id(a, id), X0X_ERR_INVALID_HANDLE);
    CHECK(strstr(x0x_last_error(), "already destroyed") != NULL, "stale handle: %s", x0x_last_error());
    CHECK_RC(x0x_join_network(a, 100), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_send_direct(a, id, (const uint8_t *)"x", 1, 100), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_set_event_callback(a, on_event, NULL), X0X_ERR_INVALID_HANDLE);
    uint8_t lid[32];
    CHECK_RC(x0x_tasklist_id(g_list_of_a, lid), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_tasklist_leave(g_list_of_a), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_topic_publish(g_topic_of_a, (const uint8_t *)"x", 1, NULL), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_topic_leave(g_topic_of_a), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_subscription_close(g_sub_of_a), X0X_ERR_INVALID_HANDLE);
    /* B sees A go: PEER_DISCONNECTED in its queue (no callback set). */
    int fd = -1;
    CHECK_OK(x0x_events_fd(b, &fd));
    int seen = 0;
    double deadline = now_s() + 10;
    while (!seen && now_s() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0) continue;
        x0x_event evs[8];
        size_t n = 0;
        CHECK_OK(x0x_events_drain(b, evs, 8, &n));
        for (size_t i = 0; i < n; i++) seen |= evs[i].kind == X0X_EVENT_PEER_DISCONNECTED;
        x0x_events_release(evs, n);
    }
    CHECK(seen, "B saw no PEER_DISCONNECTED after A was destroyed");
    CHECK_OK(x0x_agent_destroy(b));
    CHECK_RC(x0x_agent_destroy(b), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_agent_destroy(X0X_NULL_HANDLE), X0X_ERR_INVALID_HANDLE);
    CHECK_RC(x0x_agent_destroy(0x02ffffffffffffffull), X0X_ERR_INVALID_HANDLE);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    x0x_agent a = 0, b = 0;
    test_library();
    test_config();
    test_two_agents(&a, &b);
    test_nat_event();
    test_pull_queue();
    test_pubsub(a, b);
    test_topics(a, b);
    test_topic_lag_and_validation();
    test_inject(a);
    test_tasklist(a, b);
    test_groups();
    test_identity(a);
    test_data_dir_lock();
    test_passphrase();
    test_timeouts();
    test_concurrent_destroy();
    test_destroy(a, b);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

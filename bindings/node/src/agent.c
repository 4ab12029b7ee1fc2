/*
 * Agents: the event thread, the coalesced wake-up of the JS thread, batch
 * draining, shutdown, and the synchronous per-agent calls.
 *
 * Event path: the library's events fd is readable while events are queued.
 * A per-agent thread waits for it together with our own waker (wait.c:
 * poll() with an eventfd or pipe, WSAPoll() with a socket on Windows). When
 * events are queued and no wake-up is pending, it sets `pending` and
 * queues one call of the thread-safe function; it then waits (on the wake
 * waker only) until the JS thread has drained, cleared `pending` and
 * signalled the waker. So at most one call is ever queued per agent, however many
 * events arrive. The JS-thread callback drains up to XN_DRAIN_ROUNDS
 * batches of XN_DRAIN_BATCH records, converts each batch into one flat JS
 * array and calls the JS dispatcher once per batch.
 */
#include "x0x_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int xn_tag_agent(napi_env env, napi_value ext);

static const uint8_t zero_id[X0X_ID_SIZE];

static void wake(xn_agent *a) {
    xn_waker_signal(&a->waker);
}

static void unref(xn_agent *a) {
    if (--a->refs > 0) {
        return;
    }
    xn_waker_close(&a->waker);
    free(a->buf);
    free(a);
}

static void unlink_agent(xn_agent *a) {
    if (a->pprev != NULL) {
        *a->pprev = a->next;
        if (a->next != NULL) {
            a->next->pprev = a->pprev;
        }
        a->pprev = NULL;
        a->next = NULL;
    }
}

static void *event_thread(void *arg) {
    xn_agent *a = arg;
    while (!atomic_load(&a->stop)) {
        int waiting = atomic_load(&a->pending);
        int r = xn_wait(&a->waker, a->events_fd, !waiting, -1);
        if (r == XN_WAIT_ERROR || r == XN_WAIT_GONE) {
            break; /* cannot happen with valid fds / the agent is gone: events stop */
        }
        if (r == XN_WAIT_EVENTS) {
            atomic_store(&a->pending, 1);
            if (napi_call_threadsafe_function(a->tsfn, NULL, napi_tsfn_nonblocking) != napi_ok) {
                break; /* closing */
            }
        }
        /* WOKEN or TIMEOUT: re-check stop and pending */
    }
    return NULL;
}

/* ---- batch conversion ----------------------------------------------- */

typedef struct id_cache {
    uint8_t id[X0X_ID_SIZE];
    napi_value v;
} id_cache;

/* Returns the hex string of id, reusing the previous value when the ID
 * repeats (typical: one sender, one peer). */
static napi_value cached_hex(napi_env env, id_cache *c, const uint8_t *id) {
    if (c->v != NULL && memcmp(c->id, id, X0X_ID_SIZE) == 0) {
        return c->v;
    }
    napi_value v = xn_hex_value(env, id);
    if (v != NULL) {
        memcpy(c->id, id, X0X_ID_SIZE);
        c->v = v;
    }
    return v;
}

static int known_kind(uint32_t k) {
    return k >= X0X_EVENT_PEER_CONNECTED && k <= X0X_EVENT_GROUP_CHANGED;
}

#define SET(idx, val)                                                                                               \
    do {                                                                                                            \
        napi_value v_ = (val);                                                                                      \
        if (v_ == NULL || napi_set_element(env, arr, (uint32_t)(idx), v_) != napi_ok) {                            \
            return NULL;                                                                                            \
        }                                                                                                           \
    } while (0)

static napi_value num(napi_env env, double d) {
    napi_value v = NULL;
    if (napi_create_double(env, d, &v) != napi_ok) {
        return NULL;
    }
    return v;
}

static napi_value str(napi_env env, const char *s) {
    napi_value v = NULL;
    if (napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) != napi_ok) {
        return NULL;
    }
    return v;
}

/* Converts events[0..n) into a flat array of XN_STRIDE values per event
 * (see x0x_node.h); *count receives the number of events kept (unknown
 * kinds are skipped). Returns NULL on a napi failure. */
static napi_value build_batch(napi_env env, const x0x_event *events, size_t n, uint32_t *count) {
    napi_value arr = NULL;
    if (napi_create_array_with_length(env, n * XN_STRIDE, &arr) != napi_ok) {
        return NULL;
    }
    id_cache peer = {{0}, NULL}, from = {{0}, NULL}, to = {{0}, NULL};
    const char *last_topic = NULL;
    napi_value topic_v = NULL;
    uint32_t j = 0;
    for (size_t i = 0; i < n; i++) {
        const x0x_event *e = &events[i];
        if (!known_kind(e->kind)) {
            continue;
        }
        uint32_t b = j * XN_STRIDE;
        SET(b + 0, num(env, e->kind));
        if (e->status != 0) {
            SET(b + 1, num(env, e->status));
        }
        if (memcmp(e->peer, zero_id, X0X_ID_SIZE) != 0) {
            SET(b + 2, cached_hex(env, &peer, e->peer));
        }
        if (memcmp(e->from, zero_id, X0X_ID_SIZE) != 0) {
            SET(b + 3, cached_hex(env, &from, e->from));
        }
        if (memcmp(e->to, zero_id, X0X_ID_SIZE) != 0) {
            SET(b + 4, cached_hex(env, &to, e->to));
        }
        if (e->addr != NULL) {
            SET(b + 5, str(env, e->addr));
        }
        if (e->error != NULL) {
            SET(b + 6, str(env, e->error));
        }
        if (e->payload != NULL && e->payload_len > 0) {
            napi_value buf = NULL;
            if (napi_create_buffer_copy(env, e->payload_len, e->payload, NULL, &buf) != napi_ok) {
                return NULL;
            }
            SET(b + 7, buf);
        } else if (e->kind == X0X_EVENT_DIRECT_MESSAGE || e->kind == X0X_EVENT_TOPIC_MESSAGE ||
                   e->kind == X0X_EVENT_TASK_CHANGED || e->kind == X0X_EVENT_VALIDATE ||
                   e->kind == X0X_EVENT_GROUP_MESSAGE) {
            napi_value buf = NULL;
            if (napi_create_buffer(env, 0, NULL, &buf) != napi_ok) {
                return NULL;
            }
            SET(b + 7, buf);
        }
        if (e->topic != NULL) {
            if (topic_v == NULL || strcmp(last_topic, e->topic) != 0) {
                topic_v = str(env, e->topic);
                last_topic = e->topic;
            }
            SET(b + 8, topic_v);
        }
        if (e->agents != NULL && e->agents_count > 0) {
            napi_value list = NULL;
            if (napi_create_array_with_length(env, e->agents_count, &list) != napi_ok) {
                return NULL;
            }
            for (size_t k = 0; k < e->agents_count; k++) {
                napi_value h = xn_hex_value(env, e->agents + k * X0X_ID_SIZE);
                if (h == NULL || napi_set_element(env, list, (uint32_t)k, h) != napi_ok) {
                    return NULL;
                }
            }
            SET(b + 9, list);
        }
        if (e->reserved[0] != 0) {
            SET(b + 10, num(env, (double)e->reserved[0]));
        }
        if (e->reserved[1] != 0) {
            SET(b + 11, num(env, (double)e->reserved[1]));
        }
        if (e->reserved[2] != 0) {
            SET(b + 12, num(env, (double)e->reserved[2]));
        }
        if (e->reserved[3] != 0) {
            napi_value h = NULL;
            if (napi_create_bigint_uint64(env, e->reserved[3], &h) != napi_ok) {
                return NULL;
            }
            SET(b + 13, h);
        }
        j++;
    }
    *count = j;
    return arr;
}

static void report_failure(napi_env env, const char *what) {
    bool pending = false;
    napi_value err = NULL;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        (void)napi_get_and_clear_last_exception(env, &err);
    } else {
        napi_value msg = str(env, what);
        if (msg == NULL || napi_create_error(env, NULL, msg, &err) != napi_ok) {
            return;
        }
    }
    if (err != NULL) {
        (void)napi_fatal_exception(env, err); /* 'uncaughtException', like an EventEmitter listener's throw */
    }
}

/* Runs on the JS thread for each wake-up queued by the event thread. */
static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
    (void)data;
    xn_agent *a = context;
    if (env == NULL || js_cb == NULL || a->closed) {
        return; /* tearing down or closed: the thread is gone */
    }
    for (int round = 0; round < XN_DRAIN_ROUNDS && !a->closed; round++) {
        size_t n = 0;
        if (x0x_events_drain(a->handle, a->buf, XN_DRAIN_BATCH, &n) != X0X_OK || n == 0) {
            break;
        }
        napi_handle_scope scope;
        if (napi_open_handle_scope(env, &scope) != napi_ok) {
            x0x_events_release(a->buf, n);
            report_failure(env, "x0x addon: cannot open a handle scope; events lost");
            break;
        }
        uint32_t count = 0;
        napi_value arr = build_batch(env, a->buf, n, &count);
        x0x_events_release(a->buf, n);
        int ok = 0;
        if (arr == NULL) {
            report_failure(env, "x0x addon: converting events failed; events lost");
        } else if (count > 0) {
            napi_value argv[2], recv;
            if (napi_create_uint32(env, count, &argv[1]) == napi_ok && napi_get_undefined(env, &recv) == napi_ok) {
                argv[0] = arr;
                if (napi_call_function(env, recv, js_cb, 2, argv, NULL) == napi_ok) {
                    ok = 1;
                } else {
                    report_failure(env, "x0x addon: the event dispatcher failed");
                }
            } else {
                report_failure(env, "x0x addon: napi failure while dispatching events");
            }
        } else {
            ok = 1;
        }
        (void)napi_close_handle_scope(env, scope);
        if (!ok || n < XN_DRAIN_BATCH) {
            break;
        }
    }
    if (!a->closed) {
        atomic_store(&a->pending, 0);
        wake(a);
    }
}

static void tsfn_finalize(napi_env env, void *finalize_data, void *hint) {
    (void)env;
    (void)hint;
    unref(finalize_data);
}

static void external_finalize(napi_env env, void *data, void *hint) {
    (void)hint;
    xn_agent *a = data;
    /* Normally closed long before; if the JS side dropped an open agent
     * (possible only when the binding is used directly), stop it now. */
    uint64_t h = xn_agent_shutdown(env, a);
    if (h != 0) {
        x0x_agent_destroy(h);
    }
    unref(a);
}

napi_value xn_agent_wrap(napi_env env, xn_addon *addon, uint64_t handle, int events_fd, napi_value dispatch) {
    xn_agent *a = calloc(1, sizeof *a);
    if (a == NULL) {
        (void)napi_throw_error(env, "X0X_ERR_ADDON", "out of memory");
        return NULL;
    }
    a->handle = handle;
    a->events_fd = events_fd;
    a->addon = addon;
    a->buf = calloc(XN_DRAIN_BATCH, sizeof(x0x_event));
    a->waker.rfd = a->waker.wfd = -1;
    if (a->buf == NULL || xn_waker_open(&a->waker) != 0) {
        xn_waker_close(&a->waker);
        free(a->buf);
        free(a);
        (void)napi_throw_error(env, "X0X_ERR_ADDON", "cannot allocate the event buffer or the event thread's waker");
        return NULL;
    }
    napi_value name = str(env, "x0x events");
    napi_status st = name == NULL ? napi_generic_failure
                                  : napi_create_threadsafe_function(env, dispatch, NULL, name, 0, 1, a, tsfn_finalize,
                                                                    a, call_js, &a->tsfn);
    if (st != napi_ok) {
        xn_waker_close(&a->waker);
        free(a->buf);
        free(a);
        xn_throw_napi(env, st, "create_threadsafe_function");
        return NULL;
    }
    a->refs = 1; /* the tsfn */
    napi_value ext = NULL;
    st = napi_create_external(env, a, external_finalize, NULL, &ext);
    if (st != napi_ok) {
        a->closed = 1;
        (void)napi_release_threadsafe_function(a->tsfn, napi_tsfn_abort);
        a->tsfn = NULL;
        xn_throw_napi(env, st, "create_external");
        return NULL;
    }
    a->refs++; /* the external */
    /* From here on the external's finalizer owns a reference; failures
     * mark the agent closed so that the finalizer only drops it. */
    if (!xn_tag_agent(env, ext)) {
        xn_agent_shutdown(env, a);
        xn_throw_napi(env, napi_generic_failure, "type_tag_object");
        return NULL;
    }
    if (pthread_create(&a->thread, NULL, event_thread, a) != 0) {
        xn_agent_shutdown(env, a);
        (void)napi_throw_error(env, "X0X_ERR_ADDON", "cannot start the event thread");
        return NULL;
    }
    a->thread_started = 1;
    a->next = addon->agents;
    if (a->next != NULL) {
        a->next->pprev = &a->next;
    }
    a->pprev = &addon->agents;
    addon->agents = a;
    return ext;
}

uint64_t xn_agent_shutdown(napi_env env, xn_agent *a) {
    (void)env;
    if (a->closed) {
        return 0;
    }
    a->closed = 1;
    if (a->thread_started) {
        atomic_store(&a->stop, 1);
        wake(a);
        pthread_join(a->thread, NULL);
        a->thread_started = 0;
    }
    if (a->tsfn != NULL) {
        (void)napi_release_threadsafe_function(a->tsfn, napi_tsfn_release);
        a->tsfn = NULL;
    }
    unlink_agent(a);
    return a->handle;
}

/* Environment teardown (process exit, worker termination): stop every
 * agent still open so that no thread outlives the environment. */
void xn_addon_cleanup(void *arg) {
    xn_addon *addon = arg;
    while (addon->agents != NULL) {
        xn_agent *a = addon->agents;
        uint64_t h = xn_agent_shutdown(NULL, a);
        if (h != 0) {
            x0x_agent_destroy(h);
        }
    }
}

/* ---- synchronous per-agent calls ------------------------------------ */

xn_agent *xn_agent_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
    if (!xn_args(env, info, want, want, argv)) {
        return NULL;
    }
    xn_agent *a = xn_get_agent(env, argv[0]);
    if (a != NULL && a->closed) {
        xn_throw(env, X0X_ERR_CLOSED, "the agent is closed");
        return NULL;
    }
    return a;
}

static napi_value fail(napi_env env, int st) {
    xn_throw(env, st, x0x_last_error());
    return NULL;
}

napi_value xn_agent_events_dropped(napi_env env, napi_callback_info info) {
    napi_value argv[1], v;
    xn_agent *a = xn_agent_args(env, info, 1, argv);
    uint64_t n = 0;
    if (a == NULL) {
        return NULL;
    }
    int st = x0x_events_dropped(a->handle, &n);
    if (st != X0X_OK) {
        return fail(env, st);
    }
    if (napi_create_double(env, (double)n, &v) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "create_double");
        return NULL;
    }
    return v;
}

static napi_value sub_unsub(napi_env env, napi_callback_info info, int subscribe) {
    napi_value argv[2];
    char *topic = NULL;
    xn_agent *a = xn_agent_args(env, info, 2, argv);
    if (a == NULL || !xn_get_string(env, argv[1], "topic", X0X_MAX_TOPIC, 0, &topic)) {
        return NULL;
    }
    int (*fn)(x0x_agent, const char *) = subscribe ? x0x_subscribe : x0x_unsubscribe;
    if (fn == NULL) {
        free(topic);
        xn_throw(env, XN_UNSUPPORTED, "the linked libx0x has no x0x_subscribe/x0x_unsubscribe");
        return NULL;
    }
    int st = fn(a->handle, topic);
    free(topic);
    if (st != X0X_OK) {
        return fail(env, st);
    }
    return xn_undefined(env);
}

napi_value xn_agent_subscribe(napi_env env, napi_callback_info info) {
    return sub_unsub(env, info, 1);
}

napi_value xn_agent_unsubscribe(napi_env env, napi_callback_info info) {
    return sub_unsub(env, info, 0);
}

napi_value xn_id_list(napi_env env, const uint8_t *ids, size_t count) {
    napi_value arr = NULL;
    if (napi_create_array_with_length(env, count, &arr) != napi_ok) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        napi_value h = xn_hex_value(env, ids + i * X0X_ID_SIZE);
        if (h == NULL || napi_set_element(env, arr, (uint32_t)i, h) != napi_ok) {
            return NULL;
        }
    }
    return arr;
}

napi_value xn_agent_connected_peers(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    uint8_t *ids = NULL;
    size_t count = 0;
    xn_agent *a = xn_agent_args(env, info, 1, argv);
    if (a == NULL) {
        return NULL;
    }
    int st = x0x_connected_peers(a->handle, &ids, &count);
    if (st != X0X_OK) {
        return fail(env, st);
    }
    napi_value arr = xn_id_list(env, ids, count);
    x0x_free(ids);
    if (arr == NULL) {
        xn_throw_napi(env, napi_generic_failure, "building the peer list");
    }
    return arr;
}

napi_value xn_agent_peer_agents(napi_env env, napi_callback_info info) {
    napi_value argv[2];
    uint8_t peer[X0X_ID_SIZE];
    uint8_t *ids = NULL;
    size_t count = 0;
    xn_agent *a = xn_agent_args(env, info, 2, argv);
    if (a == NULL || !xn_get_id(env, argv[1], "peerId", peer)) {
        return NULL;
    }
    int st = x0x_peer_agents(a->handle, peer, &ids, &count);
    if (st != X0X_OK) {
        return fail(env, st);
    }
    napi_value arr = xn_id_list(env, ids, count);
    x0x_free(ids);
    if (arr == NULL) {
        xn_throw_napi(env, napi_generic_failure, "building the agent list");
    }
    return arr;
}

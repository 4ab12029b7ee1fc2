/*
 * Internal declarations of the x0x Node-API addon (not a public header).
 *
 * The addon is a thin layer over include/x0x.h:
 *   - addon.c   module registration, per-environment state, argument
 *               conversion, errors and the synchronous calls;
 *   - agent.c   the per-agent event thread, the thread-safe function that
 *               wakes the JS thread, batch draining, close;
 *   - async.c   every blocking library call, run as napi_async_work and
 *               returned to JS as a Promise;
 *   - topic.c   the non-blocking calls on topic and subscription handles;
 *   - group.c   the non-blocking calls of private groups (ABI 0.7); their
 *               blocking calls are async work in async.c;
 *   - wait.c    the event thread's wait, per operating system.
 * Every napi_status is checked; bad input throws a JS exception and never
 * aborts the process.
 */
#ifndef X0X_NODE_H
#define X0X_NODE_H

#define NAPI_VERSION 8
#include <node_api.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "wait.h"
#include "x0x.h"

/* Functions added after ABI 0.1. They are declared weak so that the addon
 * links (and reports X0X_ERR_UNSUPPORTED at run time) against a libx0x.a
 * that predates them; build.sh checks that every function the archive
 * defines is really linked in. */
#pragma weak x0x_subscribe
#pragma weak x0x_unsubscribe
#pragma weak x0x_publish
#pragma weak x0x_debug_inject_events
#pragma weak x0x_tasklist_create
#pragma weak x0x_tasklist_join
#pragma weak x0x_tasklist_id
#pragma weak x0x_tasklist_leave
#pragma weak x0x_tasklist_add
#pragma weak x0x_tasklist_update
#pragma weak x0x_tasklist_claim
#pragma weak x0x_tasklist_complete
#pragma weak x0x_tasklist_reopen
#pragma weak x0x_tasklist_move
#pragma weak x0x_tasklist_remove
#pragma weak x0x_tasklist_snapshot
#pragma weak x0x_tasklist_add_writer
#pragma weak x0x_tasklist_remove_writer
#pragma weak x0x_tasklist_set_open
/* ABI 0.6: topic handles. */
#pragma weak x0x_topic_join
#pragma weak x0x_topic_join_validated
#pragma weak x0x_topic_validation_result
#pragma weak x0x_topic_publish
#pragma weak x0x_topic_subscribe
#pragma weak x0x_topic_events
#pragma weak x0x_subscription_close
#pragma weak x0x_topic_neighbours
#pragma weak x0x_topic_leave
/* ABI 0.7: private groups. */
#pragma weak x0x_keypackage_publish
#pragma weak x0x_group_create
#pragma weak x0x_invitations
#pragma weak x0x_group_accept
#pragma weak x0x_group_decline
#pragma weak x0x_group_id
#pragma weak x0x_group_info
#pragma weak x0x_group_invite
#pragma weak x0x_group_invite_keypackage
#pragma weak x0x_group_remove
#pragma weak x0x_group_update
#pragma weak x0x_group_leave
#pragma weak x0x_group_publish
#pragma weak x0x_group_tasklist_create
#pragma weak x0x_group_tasklist_join
#pragma weak x0x_group_close
#pragma weak x0x_groups
#pragma weak x0x_group_open

/* Pseudo status (never returned by the library): the linked libx0x lacks
 * the function. Reported to JS as code "X0X_ERR_UNSUPPORTED". */
#define XN_UNSUPPORTED (-1)

/* Number of event records drained per x0x_events_drain call, and the most
 * batches handled per wake-up of the JS thread before yielding to the
 * event loop (the event thread signals again at once if more are queued). */
#define XN_DRAIN_BATCH 1024
#define XN_DRAIN_ROUNDS 8

/* Values per event in the flat array handed to the JS dispatcher:
 * kind, status, peer, from, to, addr, error, payload, topic, agents,
 * reserved[0], reserved[1], reserved[2] (numbers), reserved[3] (a BigInt:
 * the subscription or topic handle of ABI 0.6 records, the group handle of
 * ABI 0.7 group records). Must match lib/index.js. */
#define XN_STRIDE 14

struct xn_agent;

/* Per-environment state (napi instance data): no process-wide mutable
 * state, so the addon works in worker threads too. */
typedef struct xn_addon {
    napi_ref make_error;      /* JS function (code, status, message) -> Error, or NULL */
    struct xn_agent *agents;  /* open agents, closed by the cleanup hook */
} xn_addon;

/* One open agent. Owned jointly by its JS external and its thread-safe
 * function (refs counts both); freed on the JS thread when both are gone.
 * The event thread is joined before the tsfn is released. */
typedef struct xn_agent {
    uint64_t handle;
    int events_fd;                  /* library-owned */
    xn_waker waker;                 /* ours: wakes the event thread (wait.c) */
    pthread_t thread;
    int thread_started;
    atomic_int stop;                /* set by close: the thread exits */
    atomic_int pending;             /* a wake-up of the JS thread is queued */
    napi_threadsafe_function tsfn;  /* NULL once released */
    int closed;                     /* JS thread only */
    int refs;                       /* JS thread only */
    x0x_event *buf;                 /* XN_DRAIN_BATCH records */
    xn_addon *addon;
    struct xn_agent *next, **pprev; /* in addon->agents while open */
} xn_agent;

/* addon.c */
napi_value xn_make_error(napi_env env, int status, const char *msg);
void xn_throw(napi_env env, int status, const char *msg);
/* Reads the arguments into argv: want is the number required (else a
 * TypeError is thrown and 0 returned), max how many to fetch (missing
 * optional ones are undefined). */
int xn_args(napi_env env, napi_callback_info info, size_t want, size_t max, napi_value *argv);
/* Unless present, throws X0X_ERR_UNSUPPORTED for fn, a function of ABI
 * abi (e.g. "0.6") that the linked libx0x lacks, and returns 1. */
int xn_unsupported(napi_env env, int present, const char *fn, const char *abi);
/* Throws a generic Error for a failed napi call unless one is pending. */
void xn_throw_napi(napi_env env, napi_status st, const char *what);
const char *xn_status_name(int status);
int xn_get_string(napi_env env, napi_value v, const char *what, size_t max, int allow_empty, char **out);
int xn_get_bytes(napi_env env, napi_value v, const char *what, size_t max, uint8_t **out, size_t *len);
int xn_get_id(napi_env env, napi_value v, const char *what, uint8_t out[X0X_ID_SIZE]);
int xn_get_u32(napi_env env, napi_value v, const char *what, uint32_t *out);
int xn_get_handle(napi_env env, napi_value v, const char *what, uint64_t *out);
napi_value xn_hex_value(napi_env env, const uint8_t id[X0X_ID_SIZE]);
void xn_hex(const uint8_t id[X0X_ID_SIZE], char out[X0X_ID_HEX_SIZE]);
xn_agent *xn_get_agent(napi_env env, napi_value v);
napi_value xn_undefined(napi_env env);

/* agent.c */
/* Creates the agent record, event thread and tsfn for an agent the
 * library created; returns the JS external or NULL (exception pending;
 * the caller then destroys the library agent). */
napi_value xn_agent_wrap(napi_env env, xn_addon *addon, uint64_t handle, int events_fd, napi_value dispatch);
/* Stops the thread and releases the tsfn; returns the library handle to
 * destroy, or 0 if the agent was already closed. */
uint64_t xn_agent_shutdown(napi_env env, xn_agent *a);
void xn_addon_cleanup(void *arg);
/* Fetches want arguments; returns the open agent of argv[0] or NULL with
 * an exception pending (TypeError, or X0X_ERR_CLOSED). */
xn_agent *xn_agent_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
napi_value xn_agent_events_dropped(napi_env env, napi_callback_info info);
napi_value xn_agent_subscribe(napi_env env, napi_callback_info info);
napi_value xn_agent_unsubscribe(napi_env env, napi_callback_info info);
napi_value xn_agent_connected_peers(napi_env env, napi_callback_info info);
napi_value xn_agent_peer_agents(napi_env env, napi_callback_info info);

/* topic.c: topic handles (ABI 0.6), synchronous calls. */
napi_value xn_topic_join(napi_env env, napi_callback_info info);
napi_value xn_topic_subscribe(napi_env env, napi_callback_info info);
napi_value xn_topic_events(napi_env env, napi_callback_info info);
napi_value xn_subscription_close(napi_env env, napi_callback_info info);
napi_value xn_topic_neighbours(napi_env env, napi_callback_info info);
napi_value xn_topic_validation_result(napi_env env, napi_callback_info info);
napi_value xn_topic_leave(napi_env env, napi_callback_info info);
napi_value xn_id_list(napi_env env, const uint8_t *ids, size_t count);
/* v as a BigInt, or NULL with an exception pending. */
napi_value xn_bigint(napi_env env, uint64_t v);

/* group.c: private groups (ABI 0.7), synchronous calls. */
napi_value xn_invitations(napi_env env, napi_callback_info info);
napi_value xn_groups(napi_env env, napi_callback_info info);
napi_value xn_group_open(napi_env env, napi_callback_info info);
napi_value xn_group_info(napi_env env, napi_callback_info info);
/* 1 if the linked libx0x has every ABI 0.7 group function. */
int xn_have_groups(void);

/* async.c */
napi_value xn_async_agent_create(napi_env env, napi_callback_info info);
napi_value xn_async_agent_close(napi_env env, napi_callback_info info);
napi_value xn_async_join(napi_env env, napi_callback_info info);
napi_value xn_async_connect(napi_env env, napi_callback_info info);
napi_value xn_async_publish(napi_env env, napi_callback_info info);
napi_value xn_async_send_direct(napi_env env, napi_callback_info info);
napi_value xn_async_wait_for_agent(napi_env env, napi_callback_info info);
napi_value xn_async_inject_events(napi_env env, napi_callback_info info);
napi_value xn_async_identity_export(napi_env env, napi_callback_info info);
napi_value xn_async_identity_import(napi_env env, napi_callback_info info);
napi_value xn_async_identity_save(napi_env env, napi_callback_info info);
napi_value xn_identity_agent_id(napi_env env, napi_callback_info info);
napi_value xn_identity_destroy(napi_env env, napi_callback_info info);
napi_value xn_async_tasklist(napi_env env, napi_callback_info info);
napi_value xn_async_topic_publish(napi_env env, napi_callback_info info);
napi_value xn_async_group(napi_env env, napi_callback_info info);

#endif

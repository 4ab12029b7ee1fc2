/*
 * Blocking library calls, run as napi_async_work on the libuv thread pool
 * and returned to JS as Promises.
 *
 * A job copies every input it needs (strings, payloads, IDs) while on the
 * JS thread, so the worker thread never touches JS memory; the library's
 * thread-local last error is read on the worker thread, right after the
 * call that failed. Jobs name the agent by its library handle only: if the
 * agent is destroyed meanwhile, the call fails with X0X_ERR_INVALID_HANDLE
 * or X0X_ERR_CLOSED (never a dangling pointer).
 */
#include "x0x_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum op {
    OP_CREATE,
    OP_DESTROY,
    OP_JOIN,
    OP_CONNECT,
    OP_PUBLISH,
    OP_SEND,
    OP_WAIT,
    OP_INJECT,
    OP_ID_EXPORT,
    OP_ID_IMPORT,
    OP_ID_SAVE,
    OP_TL_CREATE,
    OP_TL_JOIN,
    OP_TL_LEAVE,
    OP_TL_ADD,
    OP_TL_UPDATE,
    OP_TL_CLAIM,
    OP_TL_COMPLETE,
    OP_TL_REOPEN,
    OP_TL_MOVE,
    OP_TL_REMOVE,
    OP_TL_SNAPSHOT,
    OP_TL_ADD_WRITER,
    OP_TL_REMOVE_WRITER,
    OP_TL_SET_OPEN,
    OP_TOPIC_PUBLISH,
    OP_KP_PUBLISH,
    OP_G_CREATE,
    OP_G_ACCEPT,
    OP_G_DECLINE,
    OP_G_INVITE,
    OP_G_INVITE_KP,
    OP_G_REMOVE,
    OP_G_UPDATE,
    OP_G_LEAVE,
    OP_G_PUBLISH,
    OP_G_TL_CREATE,
    OP_G_TL_JOIN,
    OP_G_CLOSE,
} op_t;

/* Agent configuration: string options in order, plus secrets. */
#define MAX_OPTS 64
typedef struct create_args {
    char *keys[MAX_OPTS];
    char *values[MAX_OPTS];
    size_t n;
    uint8_t *passphrase;
    size_t passphrase_len;
    int has_passphrase;
    uint64_t identity;
} create_args;

typedef struct job {
    napi_async_work work;
    napi_deferred deferred;
    napi_ref dispatch; /* OP_CREATE: the JS event dispatcher */
    op_t op;
    uint64_t handle; /* agent, list, identity or group */
    char *s1, *s2, *s3;
    uint8_t *buf, *buf2;
    size_t len, len2;
    uint8_t id[X0X_ID_SIZE], id2[X0X_ID_SIZE];
    int has_id2;
    uint32_t timeout, count;
    create_args *create;
    /* results */
    int status;
    char *err;
    uint8_t out_id[X0X_ID_SIZE], out_id2[X0X_ID_SIZE];
    uint64_t out_handle;
    int out_fd;
    char *out_str;
    uint8_t *out_buf;
    size_t out_len;
} job_t;

static void wipe(uint8_t *p, size_t n) {
    if (p != NULL) {
        volatile uint8_t *v = p;
        while (n--) {
            *v++ = 0;
        }
    }
}

static void free_create(create_args *c) {
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        free(c->keys[i]);
        free(c->values[i]);
    }
    wipe(c->passphrase, c->passphrase_len);
    free(c->passphrase);
    free(c);
}

static void job_free(napi_env env, job_t *j) {
    if (j->dispatch != NULL && env != NULL) {
        (void)napi_delete_reference(env, j->dispatch);
    }
    free(j->s1);
    free(j->s2);
    free(j->s3);
    wipe(j->buf2, j->len2); /* buf2 only ever holds passphrases */
    free(j->buf);
    free(j->buf2);
    free_create(j->create);
    free(j->err);
    if (j->out_str != NULL) {
        x0x_free(j->out_str);
    }
    if (j->out_buf != NULL) {
        x0x_free(j->out_buf);
    }
    free(j);
}

static void set_err(job_t *j, int st) {
    j->status = st;
    if (st != X0X_OK) {
        const char *e = x0x_last_error();
        j->err = strdup(e != NULL ? e : "");
    }
}

static void unsupported(job_t *j, const char *fn) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s: not available in the linked libx0x (function of a later ABI missing)", fn);
    j->status = XN_UNSUPPORTED;
    j->err = strdup(msg);
}

#define NEED(fn)                                                                                                    \
    if ((fn) == NULL) {                                                                                             \
        unsupported(j, #fn);                                                                                        \
        return;                                                                                                     \
    }

static void do_create(job_t *j) {
    create_args *c = j->create;
    x0x_config cfg = X0X_NULL_HANDLE;
    x0x_agent agent = X0X_NULL_HANDLE;
    int st = x0x_config_new(&cfg);
    for (size_t i = 0; st == X0X_OK && i < c->n; i++) {
        st = x0x_config_set(cfg, c->keys[i], c->values[i]);
    }
    if (st == X0X_OK && c->has_passphrase) {
        st = x0x_config_set_passphrase(cfg, c->passphrase, c->passphrase_len);
    }
    if (st == X0X_OK && c->identity != 0) {
        st = x0x_config_set_identity(cfg, c->identity);
    }
    if (st == X0X_OK) {
        st = x0x_agent_create(cfg, j->timeout, &agent);
    }
    if (st != X0X_OK) {
        set_err(j, st);
        if (cfg != X0X_NULL_HANDLE) {
            x0x_config_destroy(cfg);
        }
        return;
    }
    x0x_config_destroy(cfg);
    if ((st = x0x_agent_id(agent, j->out_id)) != X0X_OK || (st = x0x_machine_id(agent, j->out_id2)) != X0X_OK ||
        (st = x0x_agent_addr(agent, &j->out_str)) != X0X_OK || (st = x0x_events_fd(agent, &j->out_fd)) != X0X_OK) {
        set_err(j, st);
        x0x_agent_destroy(agent);
        return;
    }
    j->out_handle = agent;
    j->status = X0X_OK;
}

/* Ends a job that opened handle h (status st of the opening call): reads
 * its ID into out_id with id_of, releasing h with release if that fails,
 * and sets the job's handle and status. */
static void opened(job_t *j, int st, uint64_t h, int (*id_of)(uint64_t, uint8_t *), int (*release)(uint64_t)) {
    if (st == X0X_OK && (st = id_of(h, j->out_id)) != X0X_OK) {
        set_err(j, st);
        release(h);
        return;
    }
    j->out_handle = h;
    set_err(j, st);
}

static void execute(napi_env env, void *data) {
    (void)env;
    job_t *j = data;
    int st = X0X_OK;
    switch (j->op) {
    case OP_CREATE:
        do_create(j);
        return;
    case OP_DESTROY:
        st = x0x_agent_destroy(j->handle);
        break;
    case OP_JOIN:
        st = x0x_join_network(j->handle, j->timeout);
        break;
    case OP_CONNECT:
        st = x0x_connect(j->handle, j->s1, j->timeout, j->out_id);
        break;
    case OP_PUBLISH:
        NEED(x0x_publish);
        st = x0x_publish(j->handle, j->s1, j->buf, j->len, j->timeout, j->out_id);
        break;
    case OP_SEND:
        st = x0x_send_direct(j->handle, j->id, j->buf, j->len, j->timeout);
        break;
    case OP_WAIT:
        st = x0x_wait_for_agent(j->handle, j->id, j->timeout);
        break;
    case OP_INJECT:
        NEED(x0x_debug_inject_events);
        st = x0x_debug_inject_events(j->handle, j->count, j->len);
        break;
    case OP_ID_EXPORT:
        st = x0x_identity_export(j->handle, j->buf2, j->len2, &j->out_buf, &j->out_len);
        break;
    case OP_ID_IMPORT: {
        x0x_identity id = X0X_NULL_HANDLE;
        st = x0x_identity_import(j->buf, j->len, j->buf2, j->len2, &id);
        opened(j, st, id, x0x_identity_agent_id, x0x_identity_destroy);
        return;
    }
    case OP_ID_SAVE:
        st = x0x_identity_save(j->handle, j->s1, j->buf2, j->len2);
        break;
    case OP_TL_CREATE:
    case OP_TL_JOIN: {
        NEED(x0x_tasklist_create);
        NEED(x0x_tasklist_join);
        NEED(x0x_tasklist_id);
        x0x_tasklist list = X0X_NULL_HANDLE;
        st = j->op == OP_TL_CREATE ? x0x_tasklist_create(j->handle, j->s1, &list)
                                   : x0x_tasklist_join(j->handle, j->id, &list);
        opened(j, st, list, x0x_tasklist_id, x0x_tasklist_leave);
        return;
    }
    case OP_TL_LEAVE:
        NEED(x0x_tasklist_leave);
        st = x0x_tasklist_leave(j->handle);
        break;
    case OP_TL_ADD:
        NEED(x0x_tasklist_add);
        st = x0x_tasklist_add(j->handle, j->s1, j->s2, j->out_id);
        break;
    case OP_TL_UPDATE:
        NEED(x0x_tasklist_update);
        st = x0x_tasklist_update(j->handle, j->id, j->s1, j->s2);
        break;
    case OP_TL_CLAIM:
        NEED(x0x_tasklist_claim);
        st = x0x_tasklist_claim(j->handle, j->id);
        break;
    case OP_TL_COMPLETE:
        NEED(x0x_tasklist_complete);
        st = x0x_tasklist_complete(j->handle, j->id);
        break;
    case OP_TL_REOPEN:
        NEED(x0x_tasklist_reopen);
        st = x0x_tasklist_reopen(j->handle, j->id);
        break;
    case OP_TL_MOVE:
        NEED(x0x_tasklist_move);
        st = x0x_tasklist_move(j->handle, j->id, j->has_id2 ? j->id2 : NULL);
        break;
    case OP_TL_REMOVE:
        NEED(x0x_tasklist_remove);
        st = x0x_tasklist_remove(j->handle, j->id);
        break;
    case OP_TL_SNAPSHOT:
        NEED(x0x_tasklist_snapshot);
        st = x0x_tasklist_snapshot(j->handle, &j->out_str);
        break;
    case OP_TL_ADD_WRITER:
        NEED(x0x_tasklist_add_writer);
        st = x0x_tasklist_add_writer(j->handle, j->id);
        break;
    case OP_TL_REMOVE_WRITER:
        NEED(x0x_tasklist_remove_writer);
        st = x0x_tasklist_remove_writer(j->handle, j->id);
        break;
    case OP_TL_SET_OPEN:
        NEED(x0x_tasklist_set_open);
        st = x0x_tasklist_set_open(j->handle, (int)j->count);
        break;
    case OP_TOPIC_PUBLISH:
        NEED(x0x_topic_publish);
        st = x0x_topic_publish(j->handle, j->buf, j->len, j->out_id);
        break;
    case OP_KP_PUBLISH:
        NEED(x0x_keypackage_publish);
        st = x0x_keypackage_publish(j->handle, &j->out_buf, &j->out_len);
        break;
    case OP_G_CREATE:
    case OP_G_ACCEPT: {
        NEED(x0x_group_create);
        NEED(x0x_group_accept);
        NEED(x0x_group_id);
        NEED(x0x_group_close);
        x0x_group g = X0X_NULL_HANDLE;
        st = j->op == OP_G_CREATE ? x0x_group_create(j->handle, &g) : x0x_group_accept(j->handle, j->id, &g);
        opened(j, st, g, x0x_group_id, x0x_group_close);
        return;
    }
    case OP_G_DECLINE:
        NEED(x0x_group_decline);
        st = x0x_group_decline(j->handle, j->id);
        break;
    case OP_G_INVITE:
        NEED(x0x_group_invite);
        st = x0x_group_invite(j->handle, j->id, j->timeout);
        break;
    case OP_G_INVITE_KP:
        NEED(x0x_group_invite_keypackage);
        st = x0x_group_invite_keypackage(j->handle, j->buf, j->len, j->timeout);
        break;
    case OP_G_REMOVE:
        NEED(x0x_group_remove);
        st = x0x_group_remove(j->handle, j->id);
        break;
    case OP_G_UPDATE:
        NEED(x0x_group_update);
        st = x0x_group_update(j->handle);
        break;
    case OP_G_LEAVE:
        NEED(x0x_group_leave);
        st = x0x_group_leave(j->handle);
        break;
    case OP_G_PUBLISH:
        NEED(x0x_group_publish);
        st = x0x_group_publish(j->handle, j->buf, j->len);
        break;
    case OP_G_TL_CREATE:
    case OP_G_TL_JOIN: {
        NEED(x0x_group_tasklist_create);
        NEED(x0x_group_tasklist_join);
        NEED(x0x_tasklist_id);
        NEED(x0x_tasklist_leave);
        x0x_tasklist list = X0X_NULL_HANDLE;
        st = j->op == OP_G_TL_CREATE ? x0x_group_tasklist_create(j->handle, j->s1, &list)
                                     : x0x_group_tasklist_join(j->handle, j->id, &list);
        opened(j, st, list, x0x_tasklist_id, x0x_tasklist_leave);
        return;
    }
    case OP_G_CLOSE:
        NEED(x0x_group_close);
        st = x0x_group_close(j->handle);
        break;
    }
    set_err(j, st);
}

static napi_value bigint(napi_env env, uint64_t v) {
    napi_value r = NULL;
    if (napi_create_bigint_uint64(env, v, &r) != napi_ok) {
        return NULL;
    }
    return r;
}

static int set_prop(napi_env env, napi_value obj, const char *name, napi_value v) {
    return v != NULL && napi_set_named_property(env, obj, name, v) == napi_ok;
}

/* Builds the resolution value of a successful job; NULL on a napi failure
 * (or, for OP_CREATE, a pending exception after which the new agent was
 * destroyed). */
static napi_value result(napi_env env, job_t *j) {
    napi_value r = NULL;
    switch (j->op) {
    case OP_CREATE: {
        xn_addon *addon = NULL;
        napi_value dispatch = NULL, ext = NULL;
        if (napi_get_instance_data(env, (void **)&addon) != napi_ok || addon == NULL ||
            napi_get_reference_value(env, j->dispatch, &dispatch) != napi_ok || dispatch == NULL) {
            x0x_agent_destroy(j->out_handle);
            return NULL;
        }
        ext = xn_agent_wrap(env, addon, j->out_handle, j->out_fd, dispatch);
        if (ext == NULL) {
            x0x_agent_destroy(j->out_handle);
            return NULL;
        }
        napi_value addr = NULL;
        if (napi_create_object(env, &r) != napi_ok || !set_prop(env, r, "agent", ext) ||
            !set_prop(env, r, "agentId", xn_hex_value(env, j->out_id)) ||
            !set_prop(env, r, "machineId", xn_hex_value(env, j->out_id2)) ||
            napi_create_string_utf8(env, j->out_str, NAPI_AUTO_LENGTH, &addr) != napi_ok ||
            !set_prop(env, r, "addr", addr)) {
            /* The external owns the agent now; its finalizer destroys it. */
            return NULL;
        }
        return r;
    }
    case OP_CONNECT:
    case OP_PUBLISH:
    case OP_TL_ADD:
    case OP_TOPIC_PUBLISH:
        return xn_hex_value(env, j->out_id);
    case OP_ID_EXPORT:
    case OP_KP_PUBLISH:
        if (napi_create_buffer_copy(env, j->out_len, j->out_buf, NULL, &r) != napi_ok) {
            return NULL;
        }
        return r;
    case OP_ID_IMPORT:
    case OP_TL_CREATE:
    case OP_TL_JOIN:
    case OP_G_CREATE:
    case OP_G_ACCEPT:
    case OP_G_TL_CREATE:
    case OP_G_TL_JOIN: {
        napi_value h = bigint(env, j->out_handle);
        if (h == NULL || napi_create_object(env, &r) != napi_ok || !set_prop(env, r, "handle", h) ||
            !set_prop(env, r, "id", xn_hex_value(env, j->out_id))) {
            if (j->op == OP_ID_IMPORT) {
                x0x_identity_destroy(j->out_handle);
            } else if (j->op == OP_G_CREATE || j->op == OP_G_ACCEPT) {
                x0x_group_close(j->out_handle);
            } else {
                x0x_tasklist_leave(j->out_handle);
            }
            return NULL;
        }
        return r;
    }
    case OP_TL_SNAPSHOT:
        if (napi_create_string_utf8(env, j->out_str, NAPI_AUTO_LENGTH, &r) != napi_ok) {
            return NULL;
        }
        return r;
    default:
        return xn_undefined(env);
    }
}

static void complete(napi_env env, napi_status status, void *data) {
    job_t *j = data;
    napi_value v = NULL;
    int resolve = 0;
    if (env == NULL) { /* environment torn down */
        if (j->op == OP_CREATE && j->status == X0X_OK) {
            x0x_agent_destroy(j->out_handle);
        } else if ((j->op == OP_G_CREATE || j->op == OP_G_ACCEPT) && j->status == X0X_OK) {
            x0x_group_close(j->out_handle);
        }
        job_free(NULL, j);
        return;
    }
    if (status == napi_cancelled) {
        v = xn_make_error(env, X0X_ERR_CLOSED, "the call was cancelled");
    } else if (j->status != X0X_OK) {
        v = xn_make_error(env, j->status, j->err);
    } else {
        v = result(env, j);
        resolve = v != NULL;
        if (v == NULL) {
            bool pending = false;
            if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
                (void)napi_get_and_clear_last_exception(env, &v);
            } else {
                v = xn_make_error(env, X0X_ERR_OTHER, "x0x addon: building the result failed");
            }
        }
    }
    if (v == NULL) {
        (void)napi_get_undefined(env, &v);
    }
    if (resolve) {
        (void)napi_resolve_deferred(env, j->deferred, v);
    } else {
        (void)napi_reject_deferred(env, j->deferred, v);
    }
    (void)napi_delete_async_work(env, j->work);
    job_free(env, j);
}

/* Queues j and returns its Promise; on failure frees j and returns NULL
 * with an exception pending. */
static napi_value start(napi_env env, job_t *j, const char *name) {
    napi_value promise = NULL, res = NULL;
    napi_status st = napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &res);
    if (st == napi_ok) {
        st = napi_create_promise(env, &j->deferred, &promise);
    }
    if (st == napi_ok) {
        st = napi_create_async_work(env, NULL, res, execute, complete, j, &j->work);
        if (st != napi_ok) {
            napi_value err = xn_make_error(env, X0X_ERR_OTHER, "cannot create async work");
            (void)napi_reject_deferred(env, j->deferred, err);
            job_free(env, j);
            return promise; /* rejected */
        }
        st = napi_queue_async_work(env, j->work);
        if (st != napi_ok) {
            (void)napi_delete_async_work(env, j->work);
            napi_value err = xn_make_error(env, X0X_ERR_OTHER, "cannot queue async work");
            (void)napi_reject_deferred(env, j->deferred, err);
            job_free(env, j);
            return promise;
        }
        return promise;
    }
    job_free(env, j);
    xn_throw_napi(env, st, "creating a promise");
    return NULL;
}

static job_t *new_job(napi_env env, op_t op) {
    job_t *j = calloc(1, sizeof *j);
    if (j == NULL) {
        (void)napi_throw_error(env, "X0X_ERR_ADDON", "out of memory");
        return NULL;
    }
    j->op = op;
    j->out_fd = -1;
    return j;
}

static int is_nullish(napi_env env, napi_value v) {
    napi_valuetype t;
    return napi_typeof(env, v, &t) == napi_ok && (t == napi_undefined || t == napi_null);
}

/* Optional timeout in ms (undefined/null -> 0, the library default). */
static int get_timeout(napi_env env, napi_value v, uint32_t *out) {
    *out = 0;
    if (v == NULL || is_nullish(env, v)) {
        return 1;
    }
    return xn_get_u32(env, v, "timeoutMs", out);
}

/* Rejects instead of throwing for library-level misuse, so Promise-style
 * callers see one error path. Converts a pending X0X exception into a
 * rejected promise; TypeErrors/RangeErrors stay thrown. */
static napi_value rejected(napi_env env, int status, const char *msg) {
    napi_deferred d;
    napi_value p;
    if (napi_create_promise(env, &d, &p) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "create_promise");
        return NULL;
    }
    napi_value err = xn_make_error(env, status, msg);
    if (err == NULL) {
        (void)napi_get_undefined(env, &err);
    }
    (void)napi_reject_deferred(env, d, err);
    return p;
}

static napi_value agent_closed_or_throw(napi_env env, napi_value v, uint64_t *h) {
    xn_agent *a = xn_get_agent(env, v);
    if (a == NULL) {
        return NULL; /* TypeError pending */
    }
    if (a->closed) {
        return rejected(env, X0X_ERR_CLOSED, "the agent is closed");
    }
    *h = a->handle;
    return NULL;
}

/* Common prologue: *h receives the agent handle. Returns a value to
 * return at once (a rejected promise) via *early, or 0 with an exception
 * pending, or 1 to go on. */
static int agent_prologue(napi_env env, napi_value v, uint64_t *h, napi_value *early) {
    *h = 0;
    *early = agent_closed_or_throw(env, v, h);
    if (*early != NULL) {
        return 0;
    }
    return *h != 0;
}

/* Common start of a call on an agent: parses min..max arguments into argv,
 * checks that argv[0] is a live agent and makes a job of op for it.
 * Returns the job, or NULL with *ret set to what the caller must return (a
 * rejected promise for a closed agent, or NULL with an exception
 * pending). */
static job_t *agent_job(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv, op_t op,
                        napi_value *ret) {
    uint64_t h;
    napi_value early;
    *ret = NULL;
    if (!xn_args(env, info, min, max, argv)) {
        return NULL;
    }
    if (!agent_prologue(env, argv[0], &h, &early)) {
        *ret = early;
        return NULL;
    }
    job_t *j = new_job(env, op);
    if (j == NULL) {
        return NULL;
    }
    j->handle = h;
    return j;
}

static int set_opt(napi_env env, create_args *c, napi_value obj, const char *prop, const char *key) {
    napi_value v;
    bool has = false;
    if (napi_has_named_property(env, obj, prop, &has) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "has_named_property");
        return 0;
    }
    if (!has) {
        return 1;
    }
    if (napi_get_named_property(env, obj, prop, &v) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "get_named_property");
        return 0;
    }
    if (is_nullish(env, v)) {
        return 1;
    }
    char *s = NULL;
    if (!xn_get_string(env, v, prop, X0X_MAX_STRING, 0, &s)) {
        return 0;
    }
    if (c->n >= MAX_OPTS) {
        free(s);
        (void)napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "too many options");
        return 0;
    }
    c->keys[c->n] = strdup(key);
    c->values[c->n] = s;
    if (c->keys[c->n] == NULL) {
        free(s);
        (void)napi_throw_error(env, "X0X_ERR_ADDON", "out of memory");
        return 0;
    }
    c->n++;
    return 1;
}

/* agentCreate(options, dispatch): options holds strings dataDir, bindAddr,
 * network, machineKeyPath, eventQueueCapacity (decimal string), an array
 * bootstrap of strings, passphrase (Buffer), identity (BigInt handle),
 * timeoutMs (number). The JS layer validates and normalises them first. */
napi_value xn_async_agent_create(napi_env env, napi_callback_info info) {
    napi_value argv[2];
    napi_valuetype t;
    if (!xn_args(env, info, 2, 2, argv)) {
        return NULL;
    }
    if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_object) {
        (void)napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "options must be an object");
        return NULL;
    }
    if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
        (void)napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "dispatch must be a function");
        return NULL;
    }
    job_t *j = new_job(env, OP_CREATE);
    if (j == NULL) {
        return NULL;
    }
    create_args *c = calloc(1, sizeof *c);
    if (c == NULL) {
        free(j);
        (void)napi_throw_error(env, "X0X_ERR_ADDON", "out of memory");
        return NULL;
    }
    j->create = c;
    napi_value obj = argv[0], v;
    bool has = false;
    if (!set_opt(env, c, obj, "dataDir", "data_dir") || !set_opt(env, c, obj, "bindAddr", "bind_addr") ||
        !set_opt(env, c, obj, "network", "network") || !set_opt(env, c, obj, "machineKeyPath", "machine_key_path") ||
        !set_opt(env, c, obj, "eventQueueCapacity", "event_queue_capacity")) {
        goto fail;
    }
    if (napi_has_named_property(env, obj, "bootstrap", &has) == napi_ok && has &&
        napi_get_named_property(env, obj, "bootstrap", &v) == napi_ok && !is_nullish(env, v)) {
        bool is_arr = false;
        uint32_t n = 0;
        if (napi_is_array(env, v, &is_arr) != napi_ok || !is_arr || napi_get_array_length(env, v, &n) != napi_ok) {
            (void)napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "bootstrap must be an array of strings");
            goto fail;
        }
        if (n > MAX_OPTS - 8) {
            (void)napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "bootstrap has too many entries (limit 56)");
            goto fail;
        }
        for (uint32_t i = 0; i < n; i++) {
            napi_value e;
            char *s = NULL;
            if (napi_get_element(env, v, i, &e) != napi_ok) {
                xn_throw_napi(env, napi_generic_failure, "get_element");
                goto fail;
            }
            if (!xn_get_string(env, e, "bootstrap entry", X0X_MAX_STRING, 0, &s)) {
                goto fail;
            }
            c->keys[c->n] = strdup("bootstrap");
            c->values[c->n] = s;
            if (c->keys[c->n] == NULL) {
                free(s);
                (void)napi_throw_error(env, "X0X_ERR_ADDON", "out of memory");
                goto fail;
            }
            c->n++;
        }
    }
    if (napi_has_named_property(env, obj, "passphrase", &has) == napi_ok && has &&
        napi_get_named_property(env, obj, "passphrase", &v) == napi_ok && !is_nullish(env, v)) {
        if (!xn_get_bytes(env, v, "passphrase", X0X_MAX_PASSPHRASE, &c->passphrase, &c->passphrase_len)) {
            goto fail;
        }
        c->has_passphrase = 1;
    }
    if (napi_has_named_property(env, obj, "identity", &has) == napi_ok && has &&
        napi_get_named_property(env, obj, "identity", &v) == napi_ok && !is_nullish(env, v)) {
        if (!xn_get_handle(env, v, "identity", &c->identity)) {
            goto fail;
        }
    }
    if (napi_has_named_property(env, obj, "timeoutMs", &has) == napi_ok && has &&
        napi_get_named_property(env, obj, "timeoutMs", &v) == napi_ok) {
        if (!get_timeout(env, v, &j->timeout)) {
            goto fail;
        }
    }
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) != napi_ok || pending) {
        goto fail; /* e.g. a throwing getter on the options object */
    }
    if (napi_create_reference(env, argv[1], 1, &j->dispatch) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "create_reference");
        goto fail;
    }
    return start(env, j, "x0x.agentCreate");
fail:
    job_free(env, j);
    return NULL;
}

/* agentClose(agent): stops the event thread at once, then destroys the
 * library agent on a worker thread. A second close resolves at once. */
napi_value xn_async_agent_close(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    if (!xn_args(env, info, 1, 1, argv)) {
        return NULL;
    }
    xn_agent *a = xn_get_agent(env, argv[0]);
    if (a == NULL) {
        return NULL;
    }
    uint64_t h = xn_agent_shutdown(env, a);
    job_t *j = new_job(env, OP_DESTROY);
    if (j == NULL) {
        if (h != 0) {
            x0x_agent_destroy(h);
        }
        return NULL;
    }
    if (h == 0) {
        /* Already closed: resolve without calling the library. */
        napi_deferred d;
        napi_value p, u;
        free(j);
        if (napi_create_promise(env, &d, &p) != napi_ok || napi_get_undefined(env, &u) != napi_ok) {
            xn_throw_napi(env, napi_generic_failure, "create_promise");
            return NULL;
        }
        (void)napi_resolve_deferred(env, d, u);
        return p;
    }
    j->handle = h;
    return start(env, j, "x0x.agentClose");
}

napi_value xn_async_join(napi_env env, napi_callback_info info) {
    napi_value argv[2] = {NULL, NULL}, ret;
    job_t *j = agent_job(env, info, 1, 2, argv, OP_JOIN, &ret);
    if (j == NULL) {
        return ret;
    }
    if (!get_timeout(env, argv[1], &j->timeout)) {
        job_free(env, j);
        return NULL;
    }
    return start(env, j, "x0x.joinNetwork");
}

napi_value xn_async_connect(napi_env env, napi_callback_info info) {
    napi_value argv[3] = {NULL, NULL, NULL}, ret;
    job_t *j = agent_job(env, info, 2, 3, argv, OP_CONNECT, &ret);
    if (j == NULL) {
        return ret;
    }
    if (!xn_get_string(env, argv[1], "addr", X0X_MAX_STRING, 0, &j->s1) || !get_timeout(env, argv[2], &j->timeout)) {
        job_free(env, j);
        return NULL;
    }
    return start(env, j, "x0x.connect");
}

napi_value xn_async_publish(napi_env env, napi_callback_info info) {
    napi_value argv[4] = {NULL, NULL, NULL, NULL}, ret;
    job_t *j = agent_job(env, info, 3, 4, argv, OP_PUBLISH, &ret);
    if (j == NULL) {
        return ret;
    }
    if (!xn_get_string(env, argv[1], "topic", X0X_MAX_TOPIC, 0, &j->s1) ||
        !xn_get_bytes(env, argv[2], "data", X0X_MAX_PAYLOAD, &j->buf, &j->len) ||
        !get_timeout(env, argv[3], &j->timeout)) {
        job_free(env, j);
        return NULL;
    }
    return start(env, j, "x0x.publish");
}

napi_value xn_async_send_direct(napi_env env, napi_callback_info info) {
    napi_value argv[4] = {NULL, NULL, NULL, NULL}, ret;
    job_t *j = agent_job(env, info, 3, 4, argv, OP_SEND, &ret);
    if (j == NULL) {
        return ret;
    }
    if (!xn_get_id(env, argv[1], "agentId", j->id) ||
        !xn_get_bytes(env, argv[2], "data", X0X_MAX_PAYLOAD, &j->buf, &j->len) ||
        !get_timeout(env, argv[3], &j->timeout)) {
        job_free(env, j);
        return NULL;
    }
    return start(env, j, "x0x.sendDirect");
}

napi_value xn_async_wait_for_agent(napi_env env, napi_callback_info info) {
    napi_value argv[3] = {NULL, NULL, NULL}, ret;
    job_t *j = agent_job(env, info, 2, 3, argv, OP_WAIT, &ret);
    if (j == NULL) {
        return ret;
    }
    if (!xn_get_id(env, argv[1], "agentId", j->id) || !get_timeout(env, argv[2], &j->timeout)) {
        job_free(env, j);
        return NULL;
    }
    return start(env, j, "x0x.waitForAgent");
}

/* injectEvents(agent, n, payloadLen): benchmark aid. */
napi_value xn_async_inject_events(napi_env env, napi_callback_info info) {
    napi_value argv[3], ret;
    uint32_t len = 0;
    job_t *j = agent_job(env, info, 3, 3, argv, OP_INJECT, &ret);
    if (j == NULL) {
        return ret;
    }
    if (!xn_get_u32(env, argv[1], "n", &j->count) || !xn_get_u32(env, argv[2], "payloadLen", &len)) {
        job_free(env, j);
        return NULL;
    }
    j->len = len;
    return start(env, j, "x0x.injectEvents");
}

/* identityExport(agent, passphrase) -> Promise<Buffer> */
napi_value xn_async_identity_export(napi_env env, napi_callback_info info) {
    napi_value argv[2], ret;
    job_t *j = agent_job(env, info, 2, 2, argv, OP_ID_EXPORT, &ret);
    if (j == NULL) {
        return ret;
    }
    if (!xn_get_bytes(env, argv[1], "passphrase", X0X_MAX_PASSPHRASE, &j->buf2, &j->len2)) {
        job_free(env, j);
        return NULL;
    }
    return start(env, j, "x0x.identityExport");
}

/* identityImport(bundle, passphrase) -> Promise<{handle, id}> */
napi_value xn_async_identity_import(napi_env env, napi_callback_info info) {
    napi_value argv[2];
    if (!xn_args(env, info, 2, 2, argv)) {
        return NULL;
    }
    job_t *j = new_job(env, OP_ID_IMPORT);
    if (j == NULL) {
        return NULL;
    }
    if (!xn_get_bytes(env, argv[0], "bundle", X0X_MAX_BUNDLE, &j->buf, &j->len) ||
        !xn_get_bytes(env, argv[1], "passphrase", X0X_MAX_PASSPHRASE, &j->buf2, &j->len2)) {
        job_free(env, j);
        return NULL;
    }
    return start(env, j, "x0x.identityImport");
}

/* identitySave(identity, dir, passphrase|undefined) -> Promise<void> */
napi_value xn_async_identity_save(napi_env env, napi_callback_info info) {
    napi_value argv[3] = {NULL, NULL, NULL};
    if (!xn_args(env, info, 2, 3, argv)) {
        return NULL;
    }
    job_t *j = new_job(env, OP_ID_SAVE);
    if (j == NULL) {
        return NULL;
    }
    if (!xn_get_handle(env, argv[0], "identity", &j->handle) ||
        !xn_get_string(env, argv[1], "dir", X0X_MAX_STRING, 0, &j->s1) ||
        (argv[2] != NULL && !is_nullish(env, argv[2]) &&
         !xn_get_bytes(env, argv[2], "passphrase", X0X_MAX_PASSPHRASE, &j->buf2, &j->len2))) {
        job_free(env, j);
        return NULL;
    }
    return start(env, j, "x0x.identitySave");
}

napi_value xn_identity_agent_id(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    uint64_t h;
    uint8_t id[X0X_ID_SIZE];
    if (!xn_args(env, info, 1, 1, argv) || !xn_get_handle(env, argv[0], "identity", &h)) {
        return NULL;
    }
    int st = x0x_identity_agent_id(h, id);
    if (st != X0X_OK) {
        xn_throw(env, st, x0x_last_error());
        return NULL;
    }
    napi_value v = xn_hex_value(env, id);
    if (v == NULL) {
        xn_throw_napi(env, napi_generic_failure, "create_string");
    }
    return v;
}

napi_value xn_identity_destroy(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    uint64_t h;
    if (!xn_args(env, info, 1, 1, argv) || !xn_get_handle(env, argv[0], "identity", &h)) {
        return NULL;
    }
    int st = x0x_identity_destroy(h);
    if (st != X0X_OK) {
        xn_throw(env, st, x0x_last_error());
        return NULL;
    }
    return xn_undefined(env);
}

/* An operation of the calls that dispatch on an op name (tasklist,
 * group): the name, and whether the target is the agent external (else a
 * list or group handle, a BigInt). */
typedef struct op_name {
    const char *name;
    op_t op;
    int on_agent;
} op_name;

/* The operations of one such call. */
typedef struct op_table {
    const op_name *ops;
    size_t n;
    const char *target;   /* what a target handle is called in errors */
    const char *unknown;  /* the RangeError message for an unknown op */
    const char *resource; /* the async resource name */
} op_table;

/* Reads the operands a and b (either may be NULL) of j's operation into
 * j. Returns 0 if one is missing or invalid, usually with an exception
 * pending. */
static int get_operands(napi_env env, job_t *j, napi_value a, napi_value b) {
    switch (j->op) {
    case OP_TL_CREATE:
    case OP_G_TL_CREATE:
        return a != NULL && xn_get_string(env, a, "name", X0X_MAX_STRING, 1, &j->s1);
    case OP_TL_JOIN:
    case OP_G_TL_JOIN:
        return a != NULL && xn_get_id(env, a, "listId", j->id);
    case OP_TL_ADD:
        return a != NULL && xn_get_string(env, a, "title", X0X_MAX_STRING, 1, &j->s1) &&
               (b == NULL || is_nullish(env, b) ||
                xn_get_string(env, b, "description", X0X_MAX_TASK_DESCRIPTION, 1, &j->s2));
    case OP_TL_UPDATE: {
        bool is_arr = false;
        uint32_t n = 0;
        napi_value f, val;
        if (a == NULL || !xn_get_id(env, a, "taskId", j->id)) {
            return 0;
        }
        if (b == NULL || napi_is_array(env, b, &is_arr) != napi_ok || !is_arr ||
            napi_get_array_length(env, b, &n) != napi_ok || n != 2 || napi_get_element(env, b, 0, &f) != napi_ok ||
            napi_get_element(env, b, 1, &val) != napi_ok) {
            (void)napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "update must be [field, value]");
            return 0;
        }
        /* A description may be longer than X0X_MAX_STRING; the library
         * checks each field's own limit. */
        if (!xn_get_string(env, f, "field", 64, 0, &j->s1)) {
            return 0;
        }
        return xn_get_string(env, val, "value",
                             strcmp(j->s1, "description") == 0 ? X0X_MAX_TASK_DESCRIPTION : X0X_MAX_STRING, 1,
                             &j->s2);
    }
    case OP_TL_MOVE:
        if (a == NULL || !xn_get_id(env, a, "taskId", j->id)) {
            return 0;
        }
        if (b != NULL && !is_nullish(env, b)) {
            j->has_id2 = 1;
            return xn_get_id(env, b, "afterId", j->id2);
        }
        return 1;
    case OP_TL_CLAIM:
    case OP_TL_COMPLETE:
    case OP_TL_REOPEN:
    case OP_TL_REMOVE:
        return a != NULL && xn_get_id(env, a, "taskId", j->id);
    case OP_TL_ADD_WRITER:
    case OP_TL_REMOVE_WRITER:
    case OP_G_REMOVE:
        return a != NULL && xn_get_id(env, a, "agentId", j->id);
    case OP_TL_SET_OPEN: {
        bool open = false;
        if (a == NULL || napi_get_value_bool(env, a, &open) != napi_ok) {
            (void)napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "open must be a boolean");
            return 0;
        }
        j->count = open ? 1 : 0;
        return 1;
    }
    case OP_G_ACCEPT:
    case OP_G_DECLINE:
        return a != NULL && xn_get_id(env, a, "groupId", j->id);
    case OP_G_INVITE:
        return a != NULL && xn_get_id(env, a, "agentId", j->id) && get_timeout(env, b, &j->timeout);
    case OP_G_INVITE_KP:
        return a != NULL && xn_get_bytes(env, a, "keyPackage", X0X_MAX_PAYLOAD, &j->buf, &j->len) &&
               get_timeout(env, b, &j->timeout);
    case OP_G_PUBLISH:
        return a != NULL && xn_get_bytes(env, a, "data", X0X_MAX_PAYLOAD, &j->buf, &j->len);
    default:
        return 1;
    }
}

/* op(name, target, a, b) -> Promise, for the operations of t: looks name
 * up, checks target (the agent external, or a handle), reads the operands
 * and starts the job. */
static napi_value op_call(napi_env env, napi_callback_info info, const op_table *t) {
    napi_value argv[4] = {NULL, NULL, NULL, NULL}, early;
    char name[24];
    size_t len = 0;
    napi_valuetype type;
    const op_name *e = NULL;
    if (!xn_args(env, info, 2, 4, argv)) {
        return NULL;
    }
    if (napi_typeof(env, argv[0], &type) != napi_ok || type != napi_string ||
        napi_get_value_string_latin1(env, argv[0], name, sizeof name, &len) != napi_ok) {
        (void)napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "op must be a string");
        return NULL;
    }
    for (size_t i = 0; i < t->n && e == NULL; i++) {
        if (strcmp(name, t->ops[i].name) == 0) {
            e = &t->ops[i];
        }
    }
    if (e == NULL) {
        (void)napi_throw_range_error(env, "ERR_OUT_OF_RANGE", t->unknown);
        return NULL;
    }
    uint64_t h = 0;
    if (e->on_agent) {
        if (!agent_prologue(env, argv[1], &h, &early)) {
            return early;
        }
    } else if (!xn_get_handle(env, argv[1], t->target, &h)) {
        return NULL;
    }
    job_t *j = new_job(env, e->op);
    if (j == NULL) {
        return NULL;
    }
    j->handle = h;
    if (!get_operands(env, j, argv[2], argv[3])) {
        bool pending = false;
        if (napi_is_exception_pending(env, &pending) == napi_ok && !pending) {
            (void)napi_throw_type_error(env, "ERR_MISSING_ARGS", "x0x addon: missing arguments");
        }
        job_free(env, j);
        return NULL;
    }
    return start(env, j, t->resource);
}

static const op_name tl_ops[] = {
    {"create", OP_TL_CREATE, 1},
    {"join", OP_TL_JOIN, 1},
    {"leave", OP_TL_LEAVE, 0},
    {"add", OP_TL_ADD, 0},
    {"update", OP_TL_UPDATE, 0},
    {"claim", OP_TL_CLAIM, 0},
    {"complete", OP_TL_COMPLETE, 0},
    {"reopen", OP_TL_REOPEN, 0},
    {"move", OP_TL_MOVE, 0},
    {"remove", OP_TL_REMOVE, 0},
    {"snapshot", OP_TL_SNAPSHOT, 0},
    {"addWriter", OP_TL_ADD_WRITER, 0},
    {"removeWriter", OP_TL_REMOVE_WRITER, 0},
    {"setOpen", OP_TL_SET_OPEN, 0},
};

static const op_table tl_table = {tl_ops, sizeof tl_ops / sizeof tl_ops[0], "list", "unknown task-list operation",
                                  "x0x.tasklist"};

/* tasklist(op, target, a, b) -> Promise. target is the agent external for
 * "create" (a = name) and "join" (a = list ID), else the list handle
 * (BigInt). "add": a = title, b = description|undefined; "update": a =
 * task ID, b = [field, value]; "move": a = task ID, b = after ID|null;
 * "claim"/"complete"/"reopen"/"remove": a = task ID; "addWriter"/
 * "removeWriter": a = agent ID; "setOpen": a = boolean. */
napi_value xn_async_tasklist(napi_env env, napi_callback_info info) {
    return op_call(env, info, &tl_table);
}

/* topicPublish(topic, data) -> Promise<string> (the message ID). It runs on
 * the thread pool: the topic's validators may wait for this JS thread. */
napi_value xn_async_topic_publish(napi_env env, napi_callback_info info) {
    napi_value argv[2];
    if (!xn_args(env, info, 2, 2, argv)) {
        return NULL;
    }
    job_t *j = new_job(env, OP_TOPIC_PUBLISH);
    if (j == NULL) {
        return NULL;
    }
    if (!xn_get_handle(env, argv[0], "topic", &j->handle) ||
        !xn_get_bytes(env, argv[1], "data", X0X_MAX_PAYLOAD, &j->buf, &j->len)) {
        job_free(env, j);
        return NULL;
    }
    return start(env, j, "x0x.topicPublish");
}

static const op_name group_ops[] = {
    {"publishKeyPackage", OP_KP_PUBLISH, 1},
    {"create", OP_G_CREATE, 1},
    {"accept", OP_G_ACCEPT, 1},
    {"decline", OP_G_DECLINE, 1},
    {"invite", OP_G_INVITE, 0},
    {"inviteKeyPackage", OP_G_INVITE_KP, 0},
    {"remove", OP_G_REMOVE, 0},
    {"update", OP_G_UPDATE, 0},
    {"leave", OP_G_LEAVE, 0},
    {"publish", OP_G_PUBLISH, 0},
    {"createTaskList", OP_G_TL_CREATE, 0},
    {"joinTaskList", OP_G_TL_JOIN, 0},
    {"close", OP_G_CLOSE, 0},
};

static const op_table group_table = {group_ops, sizeof group_ops / sizeof group_ops[0], "group",
                                     "unknown group operation", "x0x.group"};

/* group(op, target, a, b) -> Promise: the blocking calls of private groups
 * (ABI 0.7). target is the agent external for "publishKeyPackage" (->
 * Buffer), "create" (-> {handle, id}), "accept" (a = group ID -> {handle,
 * id}) and "decline" (a = group ID), else the group handle (BigInt):
 * "invite" (a = agent ID, b = timeout ms|undefined), "inviteKeyPackage"
 * (a = key package bytes, b = timeout), "remove" (a = agent ID), "update",
 * "leave", "publish" (a = bytes), "createTaskList" (a = name -> {handle,
 * id}), "joinTaskList" (a = list ID -> {handle, id}), "close". */
napi_value xn_async_group(napi_env env, napi_callback_info info) {
    return op_call(env, info, &group_table);
}

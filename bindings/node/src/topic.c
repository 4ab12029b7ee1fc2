/*
 * Topic handles (ABI 0.6): the calls that do not block, made on the JS
 * thread. x0x_topic_publish may wait for validators (possibly for this very
 * JS thread to answer a validation request), so it runs as async work
 * (async.c). Topic and subscription handles are passed as BigInts; the
 * library validates them (a stale or foreign one is X0X_ERR_INVALID_HANDLE).
 */
#include "x0x_node.h"

#include <stdio.h>
#include <stdlib.h>

static napi_value fail(napi_env env, int st) {
    xn_throw(env, st, x0x_last_error());
    return NULL;
}

static int unsupported(napi_env env, int present, const char *fn) {
    return xn_unsupported(env, present, fn, "0.6");
}

napi_value xn_bigint(napi_env env, uint64_t v) {
    napi_value r = NULL;
    if (napi_create_bigint_uint64(env, v, &r) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "create_bigint");
        return NULL;
    }
    return r;
}

static int get_bool(napi_env env, napi_value v, const char *what, bool *out) {
    if (napi_get_value_bool(env, v, out) != napi_ok) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be a boolean", what);
        (void)napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
        return 0;
    }
    return 1;
}

/* topicJoin(agent, name, flags, validate, timeLimitMs) -> BigInt topic
 * handle. With validate true the handle validates asynchronously
 * (X0X_EVENT_VALIDATE records answered with validationResult). */
napi_value xn_topic_join(napi_env env, napi_callback_info info) {
    napi_value argv[5];
    char *name = NULL;
    uint32_t flags = 0, limit = 0;
    bool validate = false;
    xn_agent *a = xn_agent_args(env, info, 5, argv);
    if (a == NULL) {
        return NULL;
    }
    if (!xn_get_string(env, argv[1], "name", X0X_MAX_TOPIC, 0, &name) ||
        !xn_get_u32(env, argv[2], "flags", &flags) || !get_bool(env, argv[3], "validate", &validate) ||
        !xn_get_u32(env, argv[4], "timeLimitMs", &limit)) {
        free(name);
        return NULL;
    }
    if (unsupported(env, x0x_topic_join != NULL && x0x_topic_join_validated != NULL, "x0x_topic_join")) {
        free(name);
        return NULL;
    }
    x0x_topic t = X0X_NULL_HANDLE;
    int st = validate ? x0x_topic_join_validated(a->handle, name, flags, NULL, NULL, limit, &t)
                      : x0x_topic_join(a->handle, name, flags, &t);
    free(name);
    if (st != X0X_OK) {
        return fail(env, st);
    }
    napi_value v = xn_bigint(env, t);
    if (v == NULL) {
        (void)x0x_topic_leave(t);
    }
    return v;
}

/* Common form of the calls taking one handle: fn(handle, &out) -> BigInt. */
static napi_value open_sub(napi_env env, napi_callback_info info, int (*fn)(x0x_topic, x0x_subscription *),
                           const char *name) {
    napi_value argv[1];
    uint64_t h = 0;
    if (!xn_args(env, info, 1, 1, argv) || !xn_get_handle(env, argv[0], "topic", &h) ||
        unsupported(env, fn != NULL, name)) {
        return NULL;
    }
    x0x_subscription s = X0X_NULL_HANDLE;
    int st = fn(h, &s);
    if (st != X0X_OK) {
        return fail(env, st);
    }
    napi_value v = xn_bigint(env, s);
    if (v == NULL) {
        (void)x0x_subscription_close(s);
    }
    return v;
}

/* topicSubscribe(topic) -> BigInt subscription handle. */
napi_value xn_topic_subscribe(napi_env env, napi_callback_info info) {
    return open_sub(env, info, x0x_topic_subscribe, "x0x_topic_subscribe");
}

/* topicEvents(topic) -> BigInt subscription handle. */
napi_value xn_topic_events(napi_env env, napi_callback_info info) {
    return open_sub(env, info, x0x_topic_events, "x0x_topic_events");
}

/* subscriptionClose(sub) */
napi_value xn_subscription_close(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    uint64_t h = 0;
    if (!xn_args(env, info, 1, 1, argv) || !xn_get_handle(env, argv[0], "subscription", &h) ||
        unsupported(env, x0x_subscription_close != NULL, "x0x_subscription_close")) {
        return NULL;
    }
    int st = x0x_subscription_close(h);
    if (st != X0X_OK) {
        return fail(env, st);
    }
    return xn_undefined(env);
}

/* topicLeave(topic) */
napi_value xn_topic_leave(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    uint64_t h = 0;
    if (!xn_args(env, info, 1, 1, argv) || !xn_get_handle(env, argv[0], "topic", &h) ||
        unsupported(env, x0x_topic_leave != NULL, "x0x_topic_leave")) {
        return NULL;
    }
    int st = x0x_topic_leave(h);
    if (st != X0X_OK) {
        return fail(env, st);
    }
    return xn_undefined(env);
}

/* topicNeighbours(topic) -> string[] of peer IDs (hex). */
napi_value xn_topic_neighbours(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    uint64_t h = 0;
    if (!xn_args(env, info, 1, 1, argv) || !xn_get_handle(env, argv[0], "topic", &h) ||
        unsupported(env, x0x_topic_neighbours != NULL, "x0x_topic_neighbours")) {
        return NULL;
    }
    uint8_t *ids = NULL;
    size_t count = 0;
    int st = x0x_topic_neighbours(h, &ids, &count);
    if (st != X0X_OK) {
        return fail(env, st);
    }
    napi_value arr = xn_id_list(env, ids, count);
    x0x_free(ids);
    if (arr == NULL) {
        xn_throw_napi(env, napi_generic_failure, "building the neighbour list");
    }
    return arr;
}

/* validationResult(topic, request, accept): request is the number from the
 * record (an integer below 2^53). */
napi_value xn_topic_validation_result(napi_env env, napi_callback_info info) {
    napi_value argv[3];
    uint64_t h = 0;
    double req = 0;
    bool accept = false;
    napi_valuetype t;
    if (!xn_args(env, info, 3, 3, argv) || !xn_get_handle(env, argv[0], "topic", &h)) {
        return NULL;
    }
    if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_number ||
        napi_get_value_double(env, argv[1], &req) != napi_ok) {
        (void)napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "request must be a number");
        return NULL;
    }
    if (!(req >= 1 && req <= 9007199254740991.0) || req != (double)(uint64_t)req) {
        (void)napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "request must be an integer from 1 to 2^53-1");
        return NULL;
    }
    if (!get_bool(env, argv[2], "accept", &accept) ||
        unsupported(env, x0x_topic_validation_result != NULL, "x0x_topic_validation_result")) {
        return NULL;
    }
    int st = x0x_topic_validation_result(h, (uint64_t)req, accept ? X0X_VALIDATION_ACCEPT : X0X_VALIDATION_REJECT);
    if (st != X0X_OK) {
        return fail(env, st);
    }
    return xn_undefined(env);
}

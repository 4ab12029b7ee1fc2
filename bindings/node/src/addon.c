/*
 * Module registration, per-environment state, argument conversion and
 * errors of the x0x Node-API addon. See x0x_node.h.
 */
#include "x0x_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type tag of agent externals: a foreign external passed where an agent is
 * expected is a TypeError, never a wild pointer. */
static const napi_type_tag agent_tag = {0x7830782d6e6f6465ULL, 0x6167656e74763031ULL};

napi_value xn_undefined(napi_env env) {
    napi_value v = NULL;
    if (napi_get_undefined(env, &v) != napi_ok) {
        return NULL;
    }
    return v;
}

const char *xn_status_name(int status) {
    if (status == XN_UNSUPPORTED) {
        return "X0X_ERR_UNSUPPORTED";
    }
    return x0x_status_name(status);
}

void xn_throw_napi(napi_env env, napi_status st, const char *what) {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        return;
    }
    const napi_extended_error_info *info = NULL;
    const char *detail = "unknown";
    if (napi_get_last_error_info(env, &info) == napi_ok && info != NULL && info->error_message != NULL) {
        detail = info->error_message;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "x0x addon: %s failed (napi status %d: %s)", what, (int)st, detail);
    (void)napi_throw_error(env, "X0X_ERR_ADDON", msg);
}

/* Builds an Error for a library status: through the JS factory registered
 * with init() (an X0xError), else a plain Error with .code. Returns NULL
 * only if even that failed. */
napi_value xn_make_error(napi_env env, int status, const char *msg) {
    xn_addon *addon = NULL;
    napi_value code = NULL, text = NULL, num = NULL, err = NULL;
    const char *name = xn_status_name(status);
    if (msg == NULL || msg[0] == '\0') {
        msg = name;
    }
    if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok ||
        napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) != napi_ok ||
        napi_create_int32(env, status, &num) != napi_ok) {
        return NULL;
    }
    if (napi_get_instance_data(env, (void **)&addon) == napi_ok && addon != NULL && addon->make_error != NULL) {
        napi_value fn = NULL, global = NULL;
        if (napi_get_reference_value(env, addon->make_error, &fn) == napi_ok && fn != NULL &&
            napi_get_global(env, &global) == napi_ok) {
            napi_value argv[3] = {code, num, text};
            if (napi_call_function(env, global, fn, 3, argv, &err) == napi_ok) {
                return err;
            }
            /* The factory threw: fall back to a plain error below. */
            napi_value ignored;
            (void)napi_get_and_clear_last_exception(env, &ignored);
        }
    }
    if (napi_create_error(env, code, text, &err) != napi_ok) {
        return NULL;
    }
    (void)napi_set_named_property(env, err, "status", num);
    return err;
}

void xn_throw(napi_env env, int status, const char *msg) {
    napi_value err = xn_make_error(env, status, msg);
    if (err == NULL || napi_throw(env, err) != napi_ok) {
        (void)napi_throw_error(env, xn_status_name(status), msg != NULL ? msg : "x0x error");
    }
}

int xn_args(napi_env env, napi_callback_info info, size_t want, size_t max, napi_value *argv) {
    size_t argc = max;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "get_cb_info");
        return 0;
    }
    if (argc < want) {
        (void)napi_throw_type_error(env, "ERR_MISSING_ARGS", "x0x addon: missing arguments");
        return 0;
    }
    return 1;
}

int xn_unsupported(napi_env env, int present, const char *fn, const char *abi) {
    if (present) {
        return 0;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "%s: not available in the linked libx0x (ABI %s function missing)", fn, abi);
    xn_throw(env, XN_UNSUPPORTED, msg);
    return 1;
}

static void throw_type(napi_env env, const char *what, const char *want) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s must be %s", what, want);
    (void)napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

static void throw_range(napi_env env, const char *what, const char *why) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s %s", what, why);
    (void)napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
}

/* Copies a JS string into a new NUL-terminated malloc'd buffer (*out,
 * freed by the caller with free). Strings longer than max UTF-8 bytes are a
 * RangeError, strings with a NUL character a TypeError (C would cut them).
 * Returns 1 on success, 0 with an exception pending. */
int xn_get_string(napi_env env, napi_value v, const char *what, size_t max, int allow_empty, char **out) {
    napi_valuetype t;
    size_t len = 0, got = 0;
    if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
        throw_type(env, what, "a string");
        return 0;
    }
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "reading a string");
        return 0;
    }
    if (len > max) {
        char why[96];
        snprintf(why, sizeof why, "is %zu bytes long (UTF-8); the limit is %zu", len, max);
        throw_range(env, what, why);
        return 0;
    }
    if (len == 0 && !allow_empty) {
        throw_range(env, what, "must not be empty");
        return 0;
    }
    char *s = malloc(len + 1);
    if (s == NULL) {
        (void)napi_throw_error(env, "X0X_ERR_ADDON", "out of memory");
        return 0;
    }
    if (napi_get_value_string_utf8(env, v, s, len + 1, &got) != napi_ok || got != len) {
        free(s);
        xn_throw_napi(env, napi_generic_failure, "reading a string");
        return 0;
    }
    if (memchr(s, '\0', len) != NULL) {
        free(s);
        throw_type(env, what, "a string without NUL characters");
        return 0;
    }
    *out = s;
    return 1;
}

/* Copies the bytes of a Buffer, TypedArray, DataView or ArrayBuffer into a
 * new malloc'd buffer (*out, NULL when empty; freed by the caller). Copying
 * keeps the data stable while a worker thread uses it. More than max bytes
 * is a RangeError. Returns 1 on success, 0 with an exception pending. */
int xn_get_bytes(napi_env env, napi_value v, const char *what, size_t max, uint8_t **out, size_t *len) {
    bool is = false;
    void *data = NULL;
    size_t n = 0;
    if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
        napi_typedarray_type type;
        size_t count = 0, offset = 0;
        napi_value ab;
        if (napi_get_typedarray_info(env, v, &type, &count, &data, &ab, &offset) != napi_ok) {
            xn_throw_napi(env, napi_generic_failure, "reading a typed array");
            return 0;
        }
        size_t elem = 1;
        switch (type) {
        case napi_int16_array:
        case napi_uint16_array:
            elem = 2;
            break;
        case napi_int32_array:
        case napi_uint32_array:
        case napi_float32_array:
            elem = 4;
            break;
        case napi_float64_array:
        case napi_bigint64_array:
        case napi_biguint64_array:
            elem = 8;
            break;
        default:
            elem = 1;
        }
        n = count * elem;
    } else if (napi_is_dataview(env, v, &is) == napi_ok && is) {
        napi_value ab;
        size_t offset = 0;
        if (napi_get_dataview_info(env, v, &n, &data, &ab, &offset) != napi_ok) {
            xn_throw_napi(env, napi_generic_failure, "reading a DataView");
            return 0;
        }
    } else if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
        if (napi_get_arraybuffer_info(env, v, &data, &n) != napi_ok) {
            xn_throw_napi(env, napi_generic_failure, "reading an ArrayBuffer");
            return 0;
        }
    } else {
        throw_type(env, what, "a Buffer, Uint8Array or ArrayBuffer");
        return 0;
    }
    if (n > max) {
        char why[96];
        snprintf(why, sizeof why, "is %zu bytes long; the limit is %zu", n, max);
        throw_range(env, what, why);
        return 0;
    }
    *out = NULL;
    *len = n;
    if (n == 0) {
        return 1;
    }
    if (data == NULL) { /* a detached buffer */
        throw_type(env, what, "a buffer that is not detached");
        return 0;
    }
    uint8_t *copy = malloc(n);
    if (copy == NULL) {
        (void)napi_throw_error(env, "X0X_ERR_ADDON", "out of memory");
        return 0;
    }
    memcpy(copy, data, n);
    *out = copy;
    return 1;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads an ID given as 64 hex digits or as 32 bytes. Returns 1 on
 * success, 0 with a TypeError/RangeError pending. */
int xn_get_id(napi_env env, napi_value v, const char *what, uint8_t out[X0X_ID_SIZE]) {
    napi_valuetype t;
    if (napi_typeof(env, v, &t) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "typeof");
        return 0;
    }
    if (t == napi_string) {
        char buf[X0X_ID_HEX_SIZE + 1];
        size_t len = 0;
        if (napi_get_value_string_latin1(env, v, buf, sizeof buf, &len) != napi_ok) {
            xn_throw_napi(env, napi_generic_failure, "reading a string");
            return 0;
        }
        if (len != 2 * X0X_ID_SIZE) {
            throw_range(env, what, "must be 64 hex digits");
            return 0;
        }
        for (size_t i = 0; i < X0X_ID_SIZE; i++) {
            int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                throw_range(env, what, "must be 64 hex digits");
                return 0;
            }
            out[i] = (uint8_t)(hi << 4 | lo);
        }
        return 1;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    bool is_ta = false, is_ab = false;
    (void)napi_is_typedarray(env, v, &is_ta);
    (void)napi_is_arraybuffer(env, v, &is_ab);
    if (!is_ta && !is_ab) {
        throw_type(env, what, "a 64-digit hex string or a 32-byte Buffer");
        return 0;
    }
    if (!xn_get_bytes(env, v, what, 1 << 20, &bytes, &len)) {
        return 0;
    }
    if (len != X0X_ID_SIZE) {
        free(bytes);
        throw_range(env, what, "must be 32 bytes long");
        return 0;
    }
    memcpy(out, bytes, X0X_ID_SIZE);
    free(bytes);
    return 1;
}

/* Reads a non-negative integer number up to 2^32-1 (timeouts, counts). */
int xn_get_u32(napi_env env, napi_value v, const char *what, uint32_t *out) {
    napi_valuetype t;
    double d = 0;
    if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
        throw_type(env, what, "a number");
        return 0;
    }
    if (napi_get_value_double(env, v, &d) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "reading a number");
        return 0;
    }
    if (!(d >= 0 && d <= 4294967295.0) || d != (double)(uint32_t)d) {
        throw_range(env, what, "must be an integer from 0 to 4294967295");
        return 0;
    }
    *out = (uint32_t)d;
    return 1;
}

/* Reads a library handle passed as a BigInt. */
int xn_get_handle(napi_env env, napi_value v, const char *what, uint64_t *out) {
    napi_valuetype t;
    bool lossless = false;
    if (napi_typeof(env, v, &t) != napi_ok || t != napi_bigint) {
        throw_type(env, what, "a handle (BigInt)");
        return 0;
    }
    if (napi_get_value_bigint_uint64(env, v, out, &lossless) != napi_ok || !lossless) {
        throw_range(env, what, "is not a valid 64-bit handle");
        return 0;
    }
    return 1;
}

void xn_hex(const uint8_t id[X0X_ID_SIZE], char out[X0X_ID_HEX_SIZE]) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < X0X_ID_SIZE; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * X0X_ID_SIZE] = '\0';
}

napi_value xn_hex_value(napi_env env, const uint8_t id[X0X_ID_SIZE]) {
    char hex[X0X_ID_HEX_SIZE];
    napi_value v = NULL;
    xn_hex(id, hex);
    if (napi_create_string_latin1(env, hex, 2 * X0X_ID_SIZE, &v) != napi_ok) {
        return NULL;
    }
    return v;
}

/* Returns the agent record behind a JS external made by xn_agent_wrap, or
 * NULL with a TypeError pending. */
xn_agent *xn_get_agent(napi_env env, napi_value v) {
    napi_valuetype t;
    bool tagged = false;
    void *p = NULL;
    if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
        napi_check_object_type_tag(env, v, &agent_tag, &tagged) != napi_ok || !tagged ||
        napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
        throw_type(env, "agent", "a native agent handle");
        return NULL;
    }
    return p;
}

/* Tags a new agent external (agent.c). */
int xn_tag_agent(napi_env env, napi_value ext);
int xn_tag_agent(napi_env env, napi_value ext) {
    return napi_type_tag_object(env, ext, &agent_tag) == napi_ok;
}

/* ---- synchronous functions ---------------------------------------- */

static napi_value js_abi_version(napi_env env, napi_callback_info info) {
    (void)info;
    napi_value v = NULL;
    if (napi_create_uint32(env, x0x_abi_version(), &v) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "create_uint32");
        return NULL;
    }
    return v;
}

static napi_value js_status_name(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1], v = NULL;
    int32_t code = 0;
    napi_valuetype t;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "get_cb_info");
        return NULL;
    }
    if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_number ||
        napi_get_value_int32(env, argv[0], &code) != napi_ok) {
        throw_type(env, "status", "a number");
        return NULL;
    }
    if (napi_create_string_utf8(env, xn_status_name(code), NAPI_AUTO_LENGTH, &v) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "create_string");
        return NULL;
    }
    return v;
}

/* init(makeError): registers the JS error factory. */
static napi_value js_init(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    napi_valuetype t;
    xn_addon *addon = NULL;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
        napi_get_instance_data(env, (void **)&addon) != napi_ok || addon == NULL) {
        xn_throw_napi(env, napi_generic_failure, "init");
        return NULL;
    }
    if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
        throw_type(env, "makeError", "a function");
        return NULL;
    }
    if (addon->make_error != NULL) {
        (void)napi_delete_reference(env, addon->make_error);
        addon->make_error = NULL;
    }
    if (napi_create_reference(env, argv[0], 1, &addon->make_error) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "create_reference");
        return NULL;
    }
    return xn_undefined(env);
}

static void addon_finalize(napi_env env, void *data, void *hint) {
    (void)hint;
    xn_addon *addon = data;
    if (addon->make_error != NULL) {
        (void)napi_delete_reference(env, addon->make_error);
    }
    free(addon);
}

static int set_bool(napi_env env, napi_value obj, const char *name, int value) {
    napi_value v;
    return napi_get_boolean(env, value != 0, &v) == napi_ok && napi_set_named_property(env, obj, name, v) == napi_ok;
}

NAPI_MODULE_INIT() {
    xn_addon *addon = calloc(1, sizeof *addon);
    if (addon == NULL) {
        (void)napi_throw_error(env, "X0X_ERR_ADDON", "out of memory");
        return NULL;
    }
    if (napi_set_instance_data(env, addon, addon_finalize, NULL) != napi_ok) {
        free(addon);
        xn_throw_napi(env, napi_generic_failure, "set_instance_data");
        return NULL;
    }
    if (napi_add_env_cleanup_hook(env, xn_addon_cleanup, addon) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "add_env_cleanup_hook");
        return NULL;
    }
    /* The library and this addon must agree on the ABI major version. */
    uint32_t abi = x0x_abi_version();
    if ((abi >> 16) != X0X_ABI_VERSION_MAJOR) {
        (void)napi_throw_error(env, "X0X_ERR_ABI", "x0x addon: libx0x has an incompatible ABI major version");
        return NULL;
    }
    napi_property_descriptor props[] = {
        {"init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL},
        {"abiVersion", NULL, js_abi_version, NULL, NULL, NULL, napi_default, NULL},
        {"statusName", NULL, js_status_name, NULL, NULL, NULL, napi_default, NULL},
        {"agentCreate", NULL, xn_async_agent_create, NULL, NULL, NULL, napi_default, NULL},
        {"agentClose", NULL, xn_async_agent_close, NULL, NULL, NULL, napi_default, NULL},
        {"joinNetwork", NULL, xn_async_join, NULL, NULL, NULL, napi_default, NULL},
        {"connect", NULL, xn_async_connect, NULL, NULL, NULL, napi_default, NULL},
        {"publish", NULL, xn_async_publish, NULL, NULL, NULL, napi_default, NULL},
        {"sendDirect", NULL, xn_async_send_direct, NULL, NULL, NULL, napi_default, NULL},
        {"waitForAgent", NULL, xn_async_wait_for_agent, NULL, NULL, NULL, napi_default, NULL},
        {"injectEvents", NULL, xn_async_inject_events, NULL, NULL, NULL, napi_default, NULL},
        {"eventsDropped", NULL, xn_agent_events_dropped, NULL, NULL, NULL, napi_default, NULL},
        {"subscribe", NULL, xn_agent_subscribe, NULL, NULL, NULL, napi_default, NULL},
        {"unsubscribe", NULL, xn_agent_unsubscribe, NULL, NULL, NULL, napi_default, NULL},
        {"connectedPeers", NULL, xn_agent_connected_peers, NULL, NULL, NULL, napi_default, NULL},
        {"peerAgents", NULL, xn_agent_peer_agents, NULL, NULL, NULL, napi_default, NULL},
        {"identityExport", NULL, xn_async_identity_export, NULL, NULL, NULL, napi_default, NULL},
        {"identityImport", NULL, xn_async_identity_import, NULL, NULL, NULL, napi_default, NULL},
        {"identitySave", NULL, xn_async_identity_save, NULL, NULL, NULL, napi_default, NULL},
        {"identityAgentId", NULL, xn_identity_agent_id, NULL, NULL, NULL, napi_default, NULL},
        {"identityDestroy", NULL, xn_identity_destroy, NULL, NULL, NULL, napi_default, NULL},
        {"tasklist", NULL, xn_async_tasklist, NULL, NULL, NULL, napi_default, NULL},
        {"topicJoin", NULL, xn_topic_join, NULL, NULL, NULL, napi_default, NULL},
        {"topicSubscribe", NULL, xn_topic_subscribe, NULL, NULL, NULL, napi_default, NULL},
        {"topicEvents", NULL, xn_topic_events, NULL, NULL, NULL, napi_default, NULL},
        {"subscriptionClose", NULL, xn_subscription_close, NULL, NULL, NULL, napi_default, NULL},
        {"topicNeighbours", NULL, xn_topic_neighbours, NULL, NULL, NULL, napi_default, NULL},
        {"topicValidationResult", NULL, xn_topic_validation_result, NULL, NULL, NULL, napi_default, NULL},
        {"topicLeave", NULL, xn_topic_leave, NULL, NULL, NULL, napi_default, NULL},
        {"topicPublish", NULL, xn_async_topic_publish, NULL, NULL, NULL, napi_default, NULL},
        {"group", NULL, xn_async_group, NULL, NULL, NULL, napi_default, NULL},
        {"invitations", NULL, xn_invitations, NULL, NULL, NULL, napi_default, NULL},
        {"groups", NULL, xn_groups, NULL, NULL, NULL, napi_default, NULL},
        {"groupOpen", NULL, xn_group_open, NULL, NULL, NULL, napi_default, NULL},
        {"groupInfo", NULL, xn_group_info, NULL, NULL, NULL, napi_default, NULL},
    };
    if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "define_properties");
        return NULL;
    }
    /* Which optional (ABI 0.2 and later) functions the linked library provides. */
    napi_value caps;
    if (napi_create_object(env, &caps) != napi_ok ||
        !set_bool(env, caps, "pubsub", x0x_subscribe != NULL && x0x_unsubscribe != NULL && x0x_publish != NULL) ||
        !set_bool(env, caps, "injectEvents", x0x_debug_inject_events != NULL) ||
        !set_bool(env, caps, "tasklist",
                  x0x_tasklist_create != NULL && x0x_tasklist_join != NULL && x0x_tasklist_id != NULL &&
                      x0x_tasklist_leave != NULL && x0x_tasklist_add != NULL && x0x_tasklist_update != NULL &&
                      x0x_tasklist_claim != NULL && x0x_tasklist_complete != NULL &&
                      x0x_tasklist_reopen != NULL && x0x_tasklist_move != NULL && x0x_tasklist_remove != NULL &&
                      x0x_tasklist_snapshot != NULL) ||
        !set_bool(env, caps, "topics",
                  x0x_topic_join != NULL && x0x_topic_join_validated != NULL && x0x_topic_publish != NULL &&
                      x0x_topic_subscribe != NULL && x0x_topic_events != NULL && x0x_subscription_close != NULL &&
                      x0x_topic_neighbours != NULL && x0x_topic_validation_result != NULL &&
                      x0x_topic_leave != NULL) ||
        !set_bool(env, caps, "groups", xn_have_groups()) ||
        napi_set_named_property(env, exports, "capabilities", caps) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "capabilities");
        return NULL;
    }
    napi_value stride;
    if (napi_create_uint32(env, XN_STRIDE, &stride) != napi_ok ||
        napi_set_named_property(env, exports, "eventStride", stride) != napi_ok) {
        xn_throw_napi(env, napi_generic_failure, "eventStride");
        return NULL;
    }
    return exports;
}

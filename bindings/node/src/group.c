/*
 * Private groups (ABI 0.7): the calls that do not block, made on the JS
 * thread (the lists of pending invitations and of open groups and a
 * group's info, JSON the JS layer parses, and the handle of an open
 * group). Everything that commits, encrypts or talks to the
 * network (create, accept, decline, invite, remove, update, leave,
 * publish, task lists, close, key packages) is async work in async.c.
 * Group handles are passed as BigInts; the library validates them (a
 * closed, stale or foreign one is X0X_ERR_INVALID_HANDLE).
 */
#include "x0x_node.h"

#include <stdlib.h>

int xn_have_groups(void) {
    return x0x_keypackage_publish != NULL && x0x_group_create != NULL && x0x_invitations != NULL &&
           x0x_group_accept != NULL && x0x_group_decline != NULL && x0x_group_id != NULL &&
           x0x_group_info != NULL && x0x_group_invite != NULL && x0x_group_invite_keypackage != NULL &&
           x0x_group_remove != NULL && x0x_group_update != NULL && x0x_group_leave != NULL &&
           x0x_group_publish != NULL && x0x_group_tasklist_create != NULL && x0x_group_tasklist_join != NULL &&
           x0x_group_close != NULL && x0x_groups != NULL && x0x_group_open != NULL;
}

static int unsupported(napi_env env, int present, const char *fn) {
    return xn_unsupported(env, present, fn, "0.7");
}

/* Returns the JSON string fn(h, &json) makes as a JS string (freeing the
 * library's copy), or NULL with an exception pending. */
static napi_value json_call(napi_env env, int (*fn)(uint64_t, char **), uint64_t h) {
    char *json = NULL;
    int st = fn(h, &json);
    if (st != X0X_OK) {
        xn_throw(env, st, x0x_last_error());
        return NULL;
    }
    napi_value v = NULL;
    napi_status ns = napi_create_string_utf8(env, json != NULL ? json : "null", NAPI_AUTO_LENGTH, &v);
    x0x_free(json);
    if (ns != napi_ok) {
        xn_throw_napi(env, ns, "create_string");
        return NULL;
    }
    return v;
}

/* Common form of the agent's lists: fn(agent, &json) -> JSON string. */
static napi_value agent_json(napi_env env, napi_callback_info info, int (*fn)(uint64_t, char **), const char *name) {
    napi_value argv[1];
    xn_agent *a = xn_agent_args(env, info, 1, argv);
    if (a == NULL || unsupported(env, fn != NULL, name)) {
        return NULL;
    }
    return json_call(env, fn, a->handle);
}

/* invitations(agent) -> JSON string: [{"group","from","members","epoch"}, ...]. */
napi_value xn_invitations(napi_env env, napi_callback_info info) {
    return agent_json(env, info, x0x_invitations, "x0x_invitations");
}

/* groups(agent) -> JSON string: ["<group ID hex>", ...], the open groups. */
napi_value xn_groups(napi_env env, napi_callback_info info) {
    return agent_json(env, info, x0x_groups, "x0x_groups");
}

/* groupOpen(agent, groupId) -> BigInt: the handle of the open group groupId
 * (the one the agent has, if any). It does not block: the group is open
 * already, only its handle and forwarders are made. */
napi_value xn_group_open(napi_env env, napi_callback_info info) {
    napi_value argv[2];
    uint8_t id[X0X_ID_SIZE];
    xn_agent *a = xn_agent_args(env, info, 2, argv);
    if (a == NULL || !xn_get_id(env, argv[1], "groupId", id) ||
        unsupported(env, x0x_group_open != NULL, "x0x_group_open")) {
        return NULL;
    }
    x0x_group g = X0X_NULL_HANDLE;
    int st = x0x_group_open(a->handle, id, &g);
    if (st != X0X_OK) {
        xn_throw(env, st, x0x_last_error());
        return NULL;
    }
    /* On failure the handle stays the agent's: the next groupOpen gets it. */
    return xn_bigint(env, g);
}

/* groupInfo(group) -> JSON string: {"id","epoch","members","online","closed"}. */
napi_value xn_group_info(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    uint64_t h = 0;
    if (!xn_args(env, info, 1, 1, argv) || !xn_get_handle(env, argv[0], "group", &h) ||
        unsupported(env, x0x_group_info != NULL, "x0x_group_info")) {
        return NULL;
    }
    return json_call(env, x0x_group_info, h);
}

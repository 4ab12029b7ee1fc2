/*
 * Private groups (ABI 0.7): the calls that do not block, made on the JS
 * thread (the list of pending invitations and a group's info, both JSON
 * the JS layer parses). Everything that commits, encrypts or talks to the
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
           x0x_group_close != NULL;
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

/* invitations(agent) -> JSON string: [{"group","from","members","epoch"}, ...]. */
napi_value xn_invitations(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    xn_agent *a = xn_agent_args(env, info, 1, argv);
    if (a == NULL || unsupported(env, x0x_invitations != NULL, "x0x_invitations")) {
        return NULL;
    }
    return json_call(env, x0x_invitations, a->handle);
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

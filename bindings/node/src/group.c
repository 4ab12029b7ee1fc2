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

#include <stdio.h>
#include <stdlib.h>

int xn_have_groups(void) {
    return x0x_keypackage_publish != NULL && x0x_group_create != NULL && x0x_invitations != NULL &&
           x0x_group_accept != NULL && x0x_group_decline != NULL && x0x_group_id != NULL &&
           x0x_group_info != NULL && x0x_group_invite != NULL && x0x_group_invite_keypackage != NULL &&
           x0x_group_remove != NULL && x0x_group_update != NULL && x0x_group_leave != NULL &&
           x0x_group_publish != NULL && x0x_group_tasklist_create != NULL && x0x_group_tasklist_join != NULL &&
           x0x_group_close != NULL;
}

static int args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
    size_t argc = want;
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

static int unsupported(napi_env env, int present, const char *fn) {
    if (present) {
        return 0;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "%s: not available in the linked libx0x (ABI 0.7 function missing)", fn);
    xn_throw(env, XN_UNSUPPORTED, msg);
    return 1;
}

/* Turns a library-owned JSON string into a JS string and frees it. */
static napi_value json_value(napi_env env, char *json) {
    napi_value v = NULL;
    napi_status st = napi_create_string_utf8(env, json != NULL ? json : "null", NAPI_AUTO_LENGTH, &v);
    x0x_free(json);
    if (st != napi_ok) {
        xn_throw_napi(env, st, "create_string");
        return NULL;
    }
    return v;
}

/* invitations(agent) -> JSON string: [{"group","from","members","epoch"}, ...]. */
napi_value xn_invitations(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    if (!args(env, info, 1, argv)) {
        return NULL;
    }
    xn_agent *a = xn_get_agent(env, argv[0]);
    if (a == NULL) {
        return NULL;
    }
    if (a->closed) {
        xn_throw(env, X0X_ERR_CLOSED, "the agent is closed");
        return NULL;
    }
    if (unsupported(env, x0x_invitations != NULL, "x0x_invitations")) {
        return NULL;
    }
    char *json = NULL;
    int st = x0x_invitations(a->handle, &json);
    if (st != X0X_OK) {
        xn_throw(env, st, x0x_last_error());
        return NULL;
    }
    return json_value(env, json);
}

/* groupInfo(group) -> JSON string: {"id","epoch","members","online","closed"}. */
napi_value xn_group_info(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    uint64_t h = 0;
    if (!args(env, info, 1, argv) || !xn_get_handle(env, argv[0], "group", &h) ||
        unsupported(env, x0x_group_info != NULL, "x0x_group_info")) {
        return NULL;
    }
    char *json = NULL;
    int st = x0x_group_info(h, &json);
    if (st != X0X_OK) {
        xn_throw(env, st, x0x_last_error());
        return NULL;
    }
    return json_value(env, json);
}

/* Internal C helpers of the x0x cgo layer, and the public functions that
 * need no Go: x0x_abi_version, x0x_last_error, x0x_status_name, x0x_free,
 * x0x_events_release. */
#define _GNU_SOURCE
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

/* Last error of the calling thread: a fixed buffer, so nothing is
 * allocated per thread and nothing leaks when a thread exits. */
#define CAPI_ERR_SIZE 1024
static _Thread_local char capi_err[CAPI_ERR_SIZE];

/* Agent whose callback runs on this thread (0: none). */
static _Thread_local uint64_t capi_cb_agent;

/* Topic whose validator function runs on this thread (0: none). */
static _Thread_local uint64_t capi_validator_topic;

void capi_set_error(const char *msg, size_t len) {
    if (len >= CAPI_ERR_SIZE) {
        len = CAPI_ERR_SIZE - 1;
    }
    if (msg != NULL && len > 0) {
        memcpy(capi_err, msg, len);
    }
    capi_err[len] = '\0';
}

void capi_clear_error(void) { capi_err[0] = '\0'; }

const char *capi_get_error(void) { return capi_err; }

const char *x0x_last_error(void) { return capi_err; }

uint32_t x0x_abi_version(void) { return (uint32_t)X0X_ABI_VERSION; }

void x0x_free(void *ptr) { free(ptr); }

const char *x0x_status_name(int status) {
    switch (status) {
    case X0X_OK: return "X0X_OK";
    case X0X_ERR_INVALID_ARG: return "X0X_ERR_INVALID_ARG";
    case X0X_ERR_INVALID_HANDLE: return "X0X_ERR_INVALID_HANDLE";
    case X0X_ERR_CLOSED: return "X0X_ERR_CLOSED";
    case X0X_ERR_IO: return "X0X_ERR_IO";
    case X0X_ERR_CRYPTO: return "X0X_ERR_CRYPTO";
    case X0X_ERR_WRONG_PASSPHRASE: return "X0X_ERR_WRONG_PASSPHRASE";
    case X0X_ERR_NOT_FOUND: return "X0X_ERR_NOT_FOUND";
    case X0X_ERR_TIMEOUT: return "X0X_ERR_TIMEOUT";
    case X0X_ERR_TOO_LARGE: return "X0X_ERR_TOO_LARGE";
    case X0X_ERR_PANIC: return "X0X_ERR_PANIC";
    case X0X_ERR_NO_ROUTE: return "X0X_ERR_NO_ROUTE";
    case X0X_ERR_CORRUPT: return "X0X_ERR_CORRUPT";
    case X0X_ERR_AUTH: return "X0X_ERR_AUTH";
    case X0X_ERR_NO_PEERS: return "X0X_ERR_NO_PEERS";
    case X0X_ERR_TASK_DONE: return "X0X_ERR_TASK_DONE";
    case X0X_ERR_TASK_NOT_CLAIMED: return "X0X_ERR_TASK_NOT_CLAIMED";
    case X0X_ERR_TASK_CLAIMED_BY_OTHER: return "X0X_ERR_TASK_CLAIMED_BY_OTHER";
    case X0X_ERR_NOT_WRITER: return "X0X_ERR_NOT_WRITER";
    case X0X_ERR_REJECTED: return "X0X_ERR_REJECTED";
    case X0X_ERR_NOT_MEMBER: return "X0X_ERR_NOT_MEMBER";
    case X0X_ERR_ALREADY_MEMBER: return "X0X_ERR_ALREADY_MEMBER";
    case X0X_ERR_REFUSED: return "X0X_ERR_REFUSED";
    case X0X_ERR_OTHER: return "X0X_ERR_OTHER";
    }
    return "X0X_ERR_UNKNOWN";
}

size_t capi_strnlen(const char *s, size_t max) {
    const char *end = memchr(s, '\0', max + 1);
    return end == NULL ? max + 1 : (size_t)(end - s);
}

int capi_notify_new(int *wfd) {
#ifdef __linux__
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    *wfd = fd;
    return fd;
#else
    int p[2];
    if (pipe(p) != 0) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    *wfd = p[1];
    return p[0];
#endif
}

void capi_notify_signal(int wfd) {
#ifdef __linux__
    uint64_t one = 1;
    ssize_t r = write(wfd, &one, sizeof one);
#else
    char one = 1;
    ssize_t r = write(wfd, &one, 1);
#endif
    (void)r; /* EAGAIN: already readable */
}

void capi_notify_reset(int rfd) {
    char buf[64];
    while (read(rfd, buf, sizeof buf) > 0) {
    }
}

void capi_notify_close(int rfd, int wfd) {
    if (wfd != rfd && wfd >= 0) {
        close(wfd);
    }
    if (rfd >= 0) {
        close(rfd);
    }
}

void capi_invoke_cb(x0x_event_cb cb, uint64_t agent, const x0x_event *ev, void *user_data) {
    uint64_t prev = capi_cb_agent;
    capi_cb_agent = agent;
    cb(agent, ev, user_data);
    capi_cb_agent = prev;
}

uint64_t capi_in_callback(void) { return capi_cb_agent; }

int capi_invoke_validator(x0x_validator_fn fn, uint64_t topic, const x0x_event *ev, void *user_data) {
    uint64_t prev = capi_validator_topic;
    capi_validator_topic = topic;
    int verdict = fn(topic, ev, user_data);
    capi_validator_topic = prev;
    return verdict;
}

uint64_t capi_in_validator(void) { return capi_validator_topic; }

void capi_event_free_fields(x0x_event *ev) {
    free((void *)ev->addr);
    free((void *)ev->error);
    free((void *)ev->agents);
    free((void *)ev->payload);
    free((void *)ev->topic);
    ev->addr = NULL;
    ev->error = NULL;
    ev->agents = NULL;
    ev->agents_count = 0;
    ev->payload = NULL;
    ev->payload_len = 0;
    ev->topic = NULL;
}

void x0x_events_release(x0x_event *events, size_t n) {
    if (events == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        capi_event_free_fields(&events[i]);
    }
}

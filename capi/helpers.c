/* Internal C helpers of the x0x cgo layer, and the public functions that
 * need no Go: x0x_abi_version, x0x_last_error, x0x_status_name, x0x_free,
 * x0x_events_release. */
#define _GNU_SOURCE
#include "helpers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <fcntl.h>
#include <unistd.h>
#endif
#ifdef __linux__
#include <sys/eventfd.h>
#endif

/* The public functions defined here. Windows: exported from x0x.dll like
 * the Go functions (cgo marks those __declspec(dllexport) too). */
#ifdef _WIN32
#define CAPI_PUBLIC __declspec(dllexport)
#else
#define CAPI_PUBLIC
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

CAPI_PUBLIC const char *x0x_last_error(void) { return capi_err; }

CAPI_PUBLIC uint32_t x0x_abi_version(void) { return (uint32_t)X0X_ABI_VERSION; }

CAPI_PUBLIC void x0x_free(void *ptr) { free(ptr); }

CAPI_PUBLIC const char *x0x_status_name(int status) {
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

#ifdef _WIN32
/* Windows has no pipe or eventfd that select()/WSAPoll() can wait on: the
 * readiness "fd" is the read end of a connected pair of loopback TCP
 * sockets (a SOCKET, stored in an int: socket handles fit in 32 bits), the
 * write end sends one byte per signal. Winsock is resolved at run time from
 * System32's ws2_32.dll (the Go runtime loads it the same way), so neither
 * the DLL nor programs linking libx0x.a need -lws2_32. errno is set to the
 * Winsock (or Win32) error code on failure: the Go side reports it as a
 * syscall.Errno, whose text Windows then gives. */
static struct {
    int(WSAAPI *startup)(WORD, LPWSADATA);
    SOCKET(WSAAPI *socket_)(int, int, int);
    int(WSAAPI *bind_)(SOCKET, const struct sockaddr *, int);
    int(WSAAPI *listen_)(SOCKET, int);
    int(WSAAPI *getsockname_)(SOCKET, struct sockaddr *, int *);
    int(WSAAPI *connect_)(SOCKET, const struct sockaddr *, int);
    SOCKET(WSAAPI *accept_)(SOCKET, struct sockaddr *, int *);
    int(WSAAPI *closesocket_)(SOCKET);
    int(WSAAPI *ioctlsocket_)(SOCKET, long, u_long *);
    int(WSAAPI *setsockopt_)(SOCKET, int, int, const char *, int);
    int(WSAAPI *send_)(SOCKET, const char *, int, int);
    int(WSAAPI *recv_)(SOCKET, char *, int, int);
    int(WSAAPI *last_error)(void);
    DWORD load_error; /* 0 once everything above is set */
} capi_ws;
static INIT_ONCE capi_ws_once = INIT_ONCE_STATIC_INIT;

static int capi_ws_sym(HMODULE h, const char *name, void *slot) {
    FARPROC p = GetProcAddress(h, name);
    memcpy(slot, &p, sizeof p);
    return p != NULL;
}

static BOOL CALLBACK capi_ws_load(PINIT_ONCE once, PVOID param, PVOID *ctx) {
    (void)once, (void)param, (void)ctx;
    HMODULE h = LoadLibraryExW(L"ws2_32.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
    WSADATA wd;
    if (h == NULL || !capi_ws_sym(h, "WSAStartup", &capi_ws.startup) ||
        !capi_ws_sym(h, "socket", &capi_ws.socket_) || !capi_ws_sym(h, "bind", &capi_ws.bind_) ||
        !capi_ws_sym(h, "listen", &capi_ws.listen_) ||
        !capi_ws_sym(h, "getsockname", &capi_ws.getsockname_) ||
        !capi_ws_sym(h, "connect", &capi_ws.connect_) || !capi_ws_sym(h, "accept", &capi_ws.accept_) ||
        !capi_ws_sym(h, "closesocket", &capi_ws.closesocket_) ||
        !capi_ws_sym(h, "ioctlsocket", &capi_ws.ioctlsocket_) ||
        !capi_ws_sym(h, "setsockopt", &capi_ws.setsockopt_) || !capi_ws_sym(h, "send", &capi_ws.send_) ||
        !capi_ws_sym(h, "recv", &capi_ws.recv_) || !capi_ws_sym(h, "WSAGetLastError", &capi_ws.last_error)) {
        capi_ws.load_error = GetLastError() ? GetLastError() : ERROR_PROC_NOT_FOUND;
        return TRUE;
    }
    /* Reference-counted; never cleaned up (the library lives until exit). */
    int rc = capi_ws.startup(MAKEWORD(2, 2), &wd);
    capi_ws.load_error = rc == 0 ? 0 : (DWORD)rc;
    return TRUE;
}

static void capi_ws_close(SOCKET s) {
    if (s != INVALID_SOCKET) {
        capi_ws.closesocket_(s);
    }
}

/* Sets errno to the last Winsock error, closes the given sockets, returns -1. */
static int capi_ws_fail(SOCKET a, SOCKET b, SOCKET c) {
    int err = capi_ws.last_error();
    capi_ws_close(a);
    capi_ws_close(b);
    capi_ws_close(c);
    errno = err != 0 ? err : WSAEINVAL;
    return -1;
}

static int capi_same_addr(const struct sockaddr_in *x, const struct sockaddr_in *y) {
    return x->sin_family == y->sin_family && x->sin_port == y->sin_port &&
           memcmp(&x->sin_addr, &y->sin_addr, sizeof x->sin_addr) == 0;
}

int capi_notify_new(int *wfd) {
    InitOnceExecuteOnce(&capi_ws_once, capi_ws_load, NULL, NULL);
    if (capi_ws.load_error != 0) {
        errno = (int)capi_ws.load_error;
        return -1;
    }
    SOCKET l = INVALID_SOCKET, w = INVALID_SOCKET, r = INVALID_SOCKET;
    struct sockaddr_in addr, waddr, peer;
    int len;
    const int on = 1;
    u_long nonblocking = 1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    memcpy(&addr.sin_addr, "\x7f\x00\x00\x01", 4); /* 127.0.0.1; port 0: any */
    l = capi_ws.socket_(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (l == INVALID_SOCKET) {
        return capi_ws_fail(l, w, r);
    }
    len = sizeof addr;
    if (capi_ws.setsockopt_(l, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&on, sizeof on) != 0 ||
        capi_ws.bind_(l, (const struct sockaddr *)&addr, sizeof addr) != 0 || capi_ws.listen_(l, 1) != 0 ||
        capi_ws.getsockname_(l, (struct sockaddr *)&addr, &len) != 0) {
        return capi_ws_fail(l, w, r);
    }
    w = capi_ws.socket_(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    len = sizeof waddr;
    if (w == INVALID_SOCKET || capi_ws.connect_(w, (const struct sockaddr *)&addr, sizeof addr) != 0 ||
        capi_ws.getsockname_(w, (struct sockaddr *)&waddr, &len) != 0) {
        return capi_ws_fail(l, w, r);
    }
    /* Accept our own connection only: another local process could have
     * connected to the listener in between (its connections are closed). */
    for (int tries = 0; tries < 16 && r == INVALID_SOCKET; tries++) {
        len = sizeof peer;
        r = capi_ws.accept_(l, (struct sockaddr *)&peer, &len);
        if (r == INVALID_SOCKET) {
            return capi_ws_fail(l, w, r);
        }
        if (len != (int)sizeof peer || !capi_same_addr(&peer, &waddr)) {
            capi_ws_close(r);
            r = INVALID_SOCKET;
        }
    }
    capi_ws_close(l);
    l = INVALID_SOCKET;
    if (r == INVALID_SOCKET) {
        capi_ws_close(w);
        errno = WSAECONNREFUSED;
        return -1;
    }
    /* Non-blocking both ways, one byte per signal sent at once (no Nagle),
     * not inherited by child processes, and small enough for an int. */
    if (capi_ws.ioctlsocket_(r, FIONBIO, &nonblocking) != 0 ||
        capi_ws.ioctlsocket_(w, FIONBIO, &nonblocking) != 0 ||
        capi_ws.setsockopt_(w, IPPROTO_TCP, TCP_NODELAY, (const char *)&on, sizeof on) != 0) {
        return capi_ws_fail(l, w, r);
    }
    SetHandleInformation((HANDLE)r, HANDLE_FLAG_INHERIT, 0);
    SetHandleInformation((HANDLE)w, HANDLE_FLAG_INHERIT, 0);
    if (r > (SOCKET)0x7fffffff || w > (SOCKET)0x7fffffff) {
        capi_ws_close(r);
        capi_ws_close(w);
        errno = WSAEMFILE;
        return -1;
    }
    *wfd = (int)w;
    return (int)r;
}

void capi_notify_signal(int wfd) {
    char one = 1;
    capi_ws.send_((SOCKET)(uintptr_t)wfd, &one, 1, 0); /* WSAEWOULDBLOCK: already readable */
}

void capi_notify_reset(int rfd) {
    char buf[64];
    while (capi_ws.recv_((SOCKET)(uintptr_t)rfd, buf, sizeof buf, 0) > 0) {
    }
}

void capi_notify_close(int rfd, int wfd) {
    if (wfd >= 0 && wfd != rfd) {
        capi_ws.closesocket_((SOCKET)(uintptr_t)wfd);
    }
    if (rfd >= 0) {
        capi_ws.closesocket_((SOCKET)(uintptr_t)rfd);
    }
}

#else /* !_WIN32 */

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

#endif /* _WIN32 */

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

CAPI_PUBLIC void x0x_events_release(x0x_event *events, size_t n) {
    if (events == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        capi_event_free_fields(&events[i]);
    }
}

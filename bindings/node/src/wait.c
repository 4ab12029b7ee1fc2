/*
 * The event thread's wait, per operating system: a private waker (the JS
 * thread and close use it to interrupt the wait) and one call that waits
 * until the waker or the library's events fd is readable.
 *
 * Linux: an eventfd and poll(). macOS and other POSIX systems: a
 * non-blocking pipe and poll(). Windows: the library's events "fd" is a
 * SOCKET (the read end of a loopback TCP pair, see include/x0x.h), so the
 * waker is a socket too, a UDP socket on 127.0.0.1 connected to itself,
 * and the wait is WSAPoll() (Windows has no pipe or event that WSAPoll can
 * wait on beside sockets).
 */
#ifndef _WIN32
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#endif
#include "wait.h"

#include <errno.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif
#endif

#ifdef _WIN32

int xn_waker_open(xn_waker *w) {
    WSADATA wd;
    w->rfd = w->wfd = (intptr_t)INVALID_SOCKET;
    if (WSAStartup(MAKEWORD(2, 2), &wd) != 0) {
        return -1;
    }
    SOCKET s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    struct sockaddr_in addr = {0};
    int len = sizeof addr;
    u_long nonblocking = 1;
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (s == INVALID_SOCKET || bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(s, (struct sockaddr *)&addr, &len) != 0 ||
        connect(s, (struct sockaddr *)&addr, sizeof addr) != 0 || ioctlsocket(s, FIONBIO, &nonblocking) != 0) {
        if (s != INVALID_SOCKET) {
            closesocket(s);
        }
        WSACleanup();
        return -1;
    }
    w->rfd = w->wfd = (intptr_t)s;
    return 0;
}

void xn_waker_signal(xn_waker *w) {
    /* A full buffer (WSAEWOULDBLOCK) means the socket is readable already. */
    (void)send((SOCKET)w->wfd, "w", 1, 0);
}

void xn_waker_drain(xn_waker *w) {
    char buf[64];
    while (recv((SOCKET)w->rfd, buf, sizeof buf, 0) > 0) {
    }
}

void xn_waker_close(xn_waker *w) {
    if ((SOCKET)w->rfd != INVALID_SOCKET) {
        closesocket((SOCKET)w->rfd);
        WSACleanup();
    }
    w->rfd = w->wfd = (intptr_t)INVALID_SOCKET;
}

int xn_wait(xn_waker *w, int events_fd, int watch_events, int timeout_ms) {
    WSAPOLLFD p[2];
    p[0].fd = (SOCKET)w->rfd;
    p[0].events = POLLRDNORM;
    p[0].revents = 0;
    p[1].fd = (SOCKET)(uintptr_t)(unsigned)events_fd; /* a SOCKET stored in an int */
    p[1].events = POLLRDNORM;
    p[1].revents = 0;
    int r = WSAPoll(p, watch_events ? 2 : 1, timeout_ms);
    if (r < 0) {
        return XN_WAIT_ERROR;
    }
    if (r == 0) {
        return XN_WAIT_TIMEOUT;
    }
    if (p[0].revents & (POLLRDNORM | POLLERR | POLLHUP)) {
        xn_waker_drain(w);
        return XN_WAIT_WOKEN;
    }
    if (p[1].revents & POLLNVAL) {
        return XN_WAIT_GONE;
    }
    if (p[1].revents & (POLLRDNORM | POLLERR | POLLHUP)) {
        return XN_WAIT_EVENTS;
    }
    return XN_WAIT_TIMEOUT; /* nothing we asked for: the caller waits again */
}

#else /* POSIX */

int xn_waker_open(xn_waker *w) {
#ifdef __linux__
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        return -1;
    }
    w->rfd = w->wfd = fd;
    return 0;
#else
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0 ||
            fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK) != 0) {
            close(fds[0]);
            close(fds[1]);
            return -1;
        }
    }
    w->rfd = fds[0];
    w->wfd = fds[1];
    return 0;
#endif
}

void xn_waker_signal(xn_waker *w) {
    uint64_t one = 1; /* an eventfd takes 8 bytes; a pipe any */
    ssize_t r;
    do {
        r = write((int)w->wfd, &one, sizeof one);
    } while (r < 0 && errno == EINTR);
    /* EAGAIN: the counter is non-zero or the pipe full: readable already. */
}

void xn_waker_drain(xn_waker *w) {
    uint64_t buf[8];
    ssize_t r;
    do {
        r = read((int)w->rfd, buf, sizeof buf);
    } while (r > 0 || (r < 0 && errno == EINTR));
}

void xn_waker_close(xn_waker *w) {
    if (w->rfd >= 0) {
        close((int)w->rfd);
    }
    if (w->wfd >= 0 && w->wfd != w->rfd) {
        close((int)w->wfd);
    }
    w->rfd = w->wfd = -1;
}

int xn_wait(xn_waker *w, int events_fd, int watch_events, int timeout_ms) {
    struct pollfd p[2];
    p[0].fd = (int)w->rfd;
    p[0].events = POLLIN;
    p[0].revents = 0;
    p[1].fd = events_fd;
    p[1].events = POLLIN;
    p[1].revents = 0;
    int r = poll(p, watch_events ? 2 : 1, timeout_ms);
    if (r < 0) {
        return errno == EINTR ? XN_WAIT_TIMEOUT : XN_WAIT_ERROR;
    }
    if (r == 0) {
        return XN_WAIT_TIMEOUT;
    }
    if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) {
        xn_waker_drain(w);
        return XN_WAIT_WOKEN;
    }
    if (p[1].revents & POLLNVAL) {
        return XN_WAIT_GONE;
    }
    if (p[1].revents & (POLLIN | POLLERR | POLLHUP)) {
        return XN_WAIT_EVENTS;
    }
    return XN_WAIT_TIMEOUT;
}

#endif

/* Internal C helpers of the x0x cgo layer (not part of the public ABI; the
 * linker version script keeps every capi_* symbol local to libx0x.so). */
#ifndef X0X_CAPI_HELPERS_H
#define X0X_CAPI_HELPERS_H

#define X0X_INTERNAL_OMIT_PROTOTYPES 1
#include "x0x.h"

#include <stddef.h>
#include <stdint.h>

/* Thread-local last-error storage. */
void capi_set_error(const char *msg, size_t len);
void capi_clear_error(void);
const char *capi_get_error(void);

/* Bounded strlen: returns max+1 if s has no NUL in its first max+1 bytes. */
size_t capi_strnlen(const char *s, size_t max);

/* Readiness fd for the pull API (eventfd on Linux, a loopback TCP socket
 * pair on Windows, a pipe elsewhere). capi_notify_new returns the read end
 * (or -1, errno set; on Windows to the Winsock error code); *wfd receives
 * the write end (the same fd for eventfd). */
int capi_notify_new(int *wfd);
void capi_notify_signal(int wfd);
void capi_notify_reset(int rfd);
void capi_notify_close(int rfd, int wfd);

/* Calls cb for one event on the calling thread, marking the thread as
 * running agent's callback for the duration (see capi_in_callback). */
void capi_invoke_cb(x0x_event_cb cb, uint64_t agent, const x0x_event *ev, void *user_data);

/* Returns the agent whose callback is running on this thread, or 0. */
uint64_t capi_in_callback(void);

/* Calls a topic validator on the calling thread, marking the thread as
 * running topic's validator for the duration (see capi_in_validator). */
int capi_invoke_validator(x0x_validator_fn fn, uint64_t topic, const x0x_event *ev, void *user_data);

/* Returns the topic whose validator runs on this thread, or 0. */
uint64_t capi_in_validator(void);

/* Frees and zeroes the pointer fields of one event record. */
void capi_event_free_fields(x0x_event *ev);

#endif

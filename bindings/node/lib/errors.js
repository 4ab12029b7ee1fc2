'use strict';
// Errors raised by the x0x binding.

/** Status codes of include/x0x.h, by name (plus the binding's own). */
const Status = Object.freeze({
  X0X_OK: 0,
  X0X_ERR_INVALID_ARG: 1,
  X0X_ERR_INVALID_HANDLE: 2,
  X0X_ERR_CLOSED: 3,
  X0X_ERR_IO: 4,
  X0X_ERR_CRYPTO: 5,
  X0X_ERR_WRONG_PASSPHRASE: 6,
  X0X_ERR_NOT_FOUND: 7,
  X0X_ERR_TIMEOUT: 8,
  X0X_ERR_TOO_LARGE: 9,
  X0X_ERR_PANIC: 10,
  X0X_ERR_NO_ROUTE: 11,
  X0X_ERR_CORRUPT: 12,
  X0X_ERR_AUTH: 13,
  X0X_ERR_NO_PEERS: 14,
  X0X_ERR_TASK_DONE: 15,
  X0X_ERR_TASK_NOT_CLAIMED: 16,
  X0X_ERR_TASK_CLAIMED_BY_OTHER: 17,
  X0X_ERR_NOT_WRITER: 18,
  X0X_ERR_REJECTED: 19,
  X0X_ERR_NOT_MEMBER: 20,
  X0X_ERR_ALREADY_MEMBER: 21,
  X0X_ERR_REFUSED: 22,
  X0X_ERR_OTHER: 99,
  // Not a library status: the linked libx0x lacks the function.
  X0X_ERR_UNSUPPORTED: -1,
});

/**
 * An error reported by the x0x library. `code` is the status name (e.g.
 * 'X0X_ERR_TIMEOUT'), `status` its number, `message` the library's
 * explanation (it starts with the C function's name).
 */
class X0xError extends Error {
  constructor(code, status, message) {
    super(message || code);
    this.name = 'X0xError';
    this.code = code;
    this.status = status;
  }
}

/**
 * A task-list operation refused because of the task's state or the
 * agent's rights: X0X_ERR_TASK_DONE, X0X_ERR_TASK_NOT_CLAIMED,
 * X0X_ERR_TASK_CLAIMED_BY_OTHER or X0X_ERR_NOT_WRITER.
 */
class X0xTaskError extends X0xError {
  constructor(code, status, message) {
    super(code, status, message);
    this.name = 'X0xTaskError';
  }
}

/**
 * A group operation refused because of membership: X0X_ERR_NOT_MEMBER (the
 * agent named is not a member, or the caller is the group's only member
 * and cannot leave), X0X_ERR_ALREADY_MEMBER (the invited agent is a
 * member already) or X0X_ERR_REFUSED (the invited agent does not accept
 * invitations: it never published a key package, or it is over its rate).
 */
class X0xGroupError extends X0xError {
  constructor(code, status, message) {
    super(code, status, message);
    this.name = 'X0xGroupError';
  }
}

/**
 * The lag marker of a subscription or event stream: `missed` items were
 * lost because the reader fell behind (the library's event queue or the
 * stream's own buffer was full). It is reported once, exactly where the
 * gap is, by `next()` (a rejection) or by a `for await` loop (which it
 * ends: start a new loop to go on reading). The stream goes on.
 */
class LaggedError extends Error {
  constructor(missed) {
    super(`x0x: the reader fell behind: ${missed} item${missed === 1 ? '' : 's'} lost`);
    this.name = 'LaggedError';
    this.code = 'ERR_X0X_LAGGED';
    this.missed = missed;
  }
}

const TASK_CODES = new Set(['X0X_ERR_TASK_DONE', 'X0X_ERR_TASK_NOT_CLAIMED', 'X0X_ERR_TASK_CLAIMED_BY_OTHER', 'X0X_ERR_NOT_WRITER']);

const GROUP_CODES = new Set(['X0X_ERR_NOT_MEMBER', 'X0X_ERR_ALREADY_MEMBER', 'X0X_ERR_REFUSED']);

const NAMES = new Map(Object.entries(Status).map(([k, v]) => [v, k]));

/**
 * The name of a status number. The header's table (Status) wins over the
 * library's x0x_status_name, which may lag behind for new codes.
 */
function statusName(status, libName) {
  return NAMES.get(status) || libName || 'X0X_ERR_UNKNOWN';
}

/** Builds the right error class for a status (used by the addon). */
function makeError(code, status, message) {
  if (code === 'X0X_ERR_UNKNOWN' || code === undefined) code = statusName(status, code);
  if (TASK_CODES.has(code)) return new X0xTaskError(code, status, message);
  if (GROUP_CODES.has(code)) return new X0xGroupError(code, status, message);
  return new X0xError(code, status, message);
}

module.exports = { X0xError, X0xTaskError, X0xGroupError, LaggedError, Status, makeError, statusName };

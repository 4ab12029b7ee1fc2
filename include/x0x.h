/*
 * x0x.h — the C ABI of x0x, a post-quantum peer-to-peer network for AI agents.
 *
 * This hand-written header is the one contract every binding (C, Node-API,
 * Python ctypes) uses. The library is libx0x.so.0 (soname, with a libx0x.so
 * symlink) or the static archive libx0x.a; `pkg-config --cflags --libs x0x`
 * gives the flags.
 *
 * General rules
 * -------------
 * - Every function that can fail returns an int status (x0x_status). X0X_OK
 *   is 0. On failure, x0x_last_error() returns a message explaining it.
 * - Objects are named by opaque 64-bit handles (x0x_config, x0x_agent,
 *   x0x_identity, x0x_tasklist, x0x_topic, x0x_subscription). Handles are
 *   never reused and are type-tagged: a destroyed, left, closed,
 *   never-issued, zero or wrong-kind handle is X0X_ERR_INVALID_HANDLE, never
 *   a crash.
 * - Pointer arguments are borrowed for the duration of the call only, unless
 *   the function says otherwise; the library never keeps them. Memory the
 *   library returns through a `**out` argument is owned by the caller and
 *   must be freed with x0x_free() (not free(): the library may use another
 *   allocator). Event records filled by x0x_events_drain() are released with
 *   x0x_events_release().
 * - A NULL required pointer is X0X_ERR_INVALID_ARG. Output arguments are
 *   left untouched on failure unless stated otherwise.
 * - Every Go-side entry point recovers panics and reports X0X_ERR_PANIC.
 * - Thread safety: every function may be called from any thread, and
 *   concurrently on the same handle, unless stated otherwise. Blocking
 *   functions take a timeout in milliseconds (0 means
 *   X0X_DEFAULT_TIMEOUT_MS).
 *
 * Runtime notes
 * -------------
 * - The library contains a Go runtime. Only one Go runtime can live in a
 *   process: do not load two Go c-shared libraries (or libx0x.so and
 *   libx0x.a) into one process.
 * - musl libc (e.g. Alpine) cannot dlopen() a Go c-shared library; link it
 *   at build time there, or use a glibc system.
 * - The Go runtime installs signal handlers (it uses SIGURG for preemption,
 *   and SIGSEGV/SIGBUS/SIGFPE to report faults). Programs that install their
 *   own handlers should use SA_ONSTACK and chain to the previous handler.
 * - The library sends traffic only from the bind address, to the peers the
 *   caller names (bootstrap peers, x0x_connect) and to peers learned on the
 *   network; of the latter it dials only addresses it saw on authenticated
 *   connections or that the named node's signed address record vouches for,
 *   within a dial budget.
 *
 * Hostile peers
 * -------------
 * Any peer may be hostile. Every rule is enforced on what a node receives:
 * frames are bounded before they are decoded, unauthenticated connections
 * may send only their proof, connections per source IP are capped, pub/sub
 * messages are verified before delivery or forwarding and rate-limited per
 * peer and per origin, peers sending mostly invalid messages are
 * disconnected, and task-list operations are checked against the list's
 * writers and the operation's causal past. docs/hostile-peers.md lists what
 * a peer can and cannot do, with the bounds.
 *
 * Later additions are new functions, status codes and event kinds;
 * existing functions, status codes and the x0x_event layout keep their
 * meaning within an ABI major version, except where a security rule needs
 * a change, stated here. ABI 0.2 added publish/subscribe, task lists and
 * x0x_debug_inject_events; 0.3 the NAT type event; 0.4 task-list writers
 * (x0x_tasklist_add_writer, x0x_tasklist_remove_writer,
 * x0x_tasklist_set_open, X0X_ERR_NOT_WRITER, X0X_TASK_ACCESS_CHANGED) and,
 * as a security change, lists from x0x_tasklist_create that only their
 * creator may write to until it grants others; 0.5 the hop count of topic
 * messages (reserved[2] of X0X_EVENT_TOPIC_MESSAGE); 0.6 topic handles
 * (x0x_topic_join, x0x_topic_join_validated, x0x_topic_publish,
 * x0x_topic_subscribe, x0x_topic_events, x0x_topic_neighbours,
 * x0x_topic_validation_result, x0x_topic_leave, x0x_subscription_close),
 * X0X_ERR_REJECTED, the event kinds X0X_EVENT_TOPIC_NEIGHBOUR_UP/_DOWN,
 * X0X_EVENT_LAGGED and X0X_EVENT_VALIDATE, and the subscription handle in
 * reserved[3] of X0X_EVENT_TOPIC_MESSAGE (0 for x0x_subscribe); 0.7 private
 * groups (x0x_keypackage_publish, x0x_group_*, x0x_invitations, x0x_groups), the status
 * codes X0X_ERR_NOT_MEMBER, X0X_ERR_ALREADY_MEMBER and X0X_ERR_REFUSED, and
 * the event kinds X0X_EVENT_GROUP_INVITATION, X0X_EVENT_GROUP_MESSAGE and
 * X0X_EVENT_GROUP_CHANGED; it also made the header and the library agree on
 * task-list strings (X0X_MAX_TASKLIST_NAME, X0X_MAX_TASK_TITLE and
 * X0X_MAX_TASK_DESCRIPTION; X0X_ERR_TOO_LARGE, was X0X_ERR_INVALID_ARG,
 * for a name or title over 1 KiB; descriptions up to 16 KiB, were refused
 * over X0X_MAX_STRING) and made x0x_agent_create refuse a data directory
 * another running agent holds (X0X_ERR_IO).
 *
 * Events
 * ------
 * Everything that happens reaches the caller one way: as x0x_event records
 * of its agent, pulled (x0x_events_fd + x0x_events_drain) or pushed to a
 * callback (x0x_set_event_callback). Topic messages, topic neighbour
 * changes, lag markers and validation requests of topic handles use that
 * same path; their records name the subscription or topic handle they
 * belong to (reserved[3]), so a binding routes them without string
 * compares.
 */
#ifndef X0X_H
#define X0X_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version implemented by this header. The major version is also the
 * soname suffix (libx0x.so.0); a library with another major version is not
 * compatible. Minor versions only add functions, keys and event kinds. */
#define X0X_ABI_VERSION_MAJOR 0
#define X0X_ABI_VERSION_MINOR 7
#define X0X_ABI_VERSION ((X0X_ABI_VERSION_MAJOR << 16) | X0X_ABI_VERSION_MINOR)

/* Size in bytes of an ID (agent, machine, peer): SHA-256 of a public key. */
#define X0X_ID_SIZE 32
/* Size of a buffer for the hex form of an ID, including the final NUL. */
#define X0X_ID_HEX_SIZE 65
/* Timeout used when a blocking function is given timeout_ms == 0. */
#define X0X_DEFAULT_TIMEOUT_MS 30000u

/* Longest topic name, in bytes (a topic is any non-empty UTF-8 string). */
#define X0X_MAX_TOPIC 256u
/* Limits on inputs. Larger inputs are X0X_ERR_TOO_LARGE. X0X_MAX_STRING
 * bounds every NUL-terminated string argument: the library reads at most
 * that many bytes looking for the NUL, so a string with no NUL within them
 * is X0X_ERR_TOO_LARGE, unread beyond. The one exception is a task
 * description (x0x_tasklist_add, x0x_tasklist_update), read up to
 * X0X_MAX_TASK_DESCRIPTION. Some strings have lower limits, stated with
 * their functions: topic names (X0X_MAX_TOPIC), task-list names and task
 * titles (X0X_MAX_TASKLIST_NAME, X0X_MAX_TASK_TITLE). */
#define X0X_MAX_STRING 4096u            /* bytes, excluding the final NUL */
/* Task lists: the longest list name, task title and task description, in
 * bytes of UTF-8 excluding the final NUL (every replica enforces them).
 * ABI 0.7: these constants; before, the header named only X0X_MAX_STRING
 * and the library refused longer names and titles with
 * X0X_ERR_INVALID_ARG and descriptions over X0X_MAX_STRING. */
#define X0X_MAX_TASKLIST_NAME 1024u
#define X0X_MAX_TASK_TITLE 1024u
#define X0X_MAX_TASK_DESCRIPTION (16u * 1024u)
#define X0X_MAX_PASSPHRASE 1024u        /* bytes */
#define X0X_MAX_BUNDLE (64u * 1024u)    /* bytes of an identity bundle */
/* A direct-message payload larger than this is rejected before it is even
 * copied. The effective limit is lower: the node's frame size (4 MiB by
 * default) minus 64 bytes of header; larger payloads are X0X_ERR_TOO_LARGE. */
#define X0X_MAX_PAYLOAD (16u * 1024u * 1024u)
/* Default and maximum capacity of an agent's event queue (see events). */
#define X0X_DEFAULT_EVENT_QUEUE 1024u
#define X0X_MAX_EVENT_QUEUE 65536u

/* Status codes returned by the functions of this header. */
typedef enum x0x_status {
    X0X_OK = 0,
    /* A NULL or malformed argument, an unknown key, a bad address. */
    X0X_ERR_INVALID_ARG = 1,
    /* The handle is zero, destroyed, never issued or of another kind. */
    X0X_ERR_INVALID_HANDLE = 2,
    /* The agent is closed (destroyed concurrently, or shutting down). */
    X0X_ERR_CLOSED = 3,
    /* An operating-system or network error (files, sockets, dial failures;
     * also a data directory another running agent holds, see
     * x0x_agent_create). */
    X0X_ERR_IO = 4,
    /* A cryptographic check failed (bad signature or certificate, a key
     * file sealed with another local secret, no post-quantum TLS). */
    X0X_ERR_CRYPTO = 5,
    /* A passphrase is wrong, missing, or given for an unprotected file. */
    X0X_ERR_WRONG_PASSPHRASE = 6,
    /* Something named does not exist (a file, a local agent). */
    X0X_ERR_NOT_FOUND = 7,
    /* The timeout of a blocking call expired. */
    X0X_ERR_TIMEOUT = 8,
    /* An input or message exceeds a size limit. */
    X0X_ERR_TOO_LARGE = 9,
    /* The library caught an internal panic (a bug: please report it). The
     * handle involved is still valid, but the operation may be incomplete. */
    X0X_ERR_PANIC = 10,
    /* No connected peer carries the destination agent. */
    X0X_ERR_NO_ROUTE = 11,
    /* Data (a key file, an identity bundle) is corrupt or of an
     * unsupported format version. */
    X0X_ERR_CORRUPT = 12,
    /* A peer failed authentication or presented another identity than the
     * one pinned in the address. */
    X0X_ERR_AUTH = 13,
    /* x0x_join_network had nobody to contact (no bootstrap or cached peers). */
    X0X_ERR_NO_PEERS = 14,
    /* Task lists: the task is Done, so it cannot be claimed (reopen it
     * first). */
    X0X_ERR_TASK_DONE = 15,
    /* Task lists: the task is not claimed, so it cannot be completed (claim
     * it first). */
    X0X_ERR_TASK_NOT_CLAIMED = 16,
    /* Task lists: the task is claimed by another agent, so this agent cannot
     * complete it. */
    X0X_ERR_TASK_CLAIMED_BY_OTHER = 17,
    /* Task lists: this agent may not write to the list (the creator has not
     * granted it access and the list is not open, or the list's creation has
     * not reached this replica yet), or may not change its writers (only
     * the creator can). ABI 0.4. */
    X0X_ERR_NOT_WRITER = 18,
    /* Topics: a validator of the topic refused the message (a local
     * publish), or did not give its verdict within its time limit. ABI 0.6. */
    X0X_ERR_REJECTED = 19,
    /* Groups: the agent is not a member of the group (or, for
     * x0x_group_leave, is its only member). ABI 0.7. */
    X0X_ERR_NOT_MEMBER = 20,
    /* Groups: the agent is already a member of the group. ABI 0.7. */
    X0X_ERR_ALREADY_MEMBER = 21,
    /* Groups: the invited agent does not accept invitations (it has not
     * called x0x_keypackage_publish) or is over its rate of invitations.
     * ABI 0.7. */
    X0X_ERR_REFUSED = 22,
    /* An error the library could not classify more precisely. */
    X0X_ERR_OTHER = 99
} x0x_status;

/* Opaque handles. 0 (X0X_NULL_HANDLE) is never a valid handle. */
typedef uint64_t x0x_config;
typedef uint64_t x0x_agent;
typedef uint64_t x0x_identity;
typedef uint64_t x0x_tasklist;
typedef uint64_t x0x_topic;        /* ABI 0.6: a joined topic (x0x_topic_join) */
typedef uint64_t x0x_subscription; /* ABI 0.6: a stream of a topic's messages or neighbour changes */
typedef uint64_t x0x_group;        /* ABI 0.7: a private group this agent is a member of */
#define X0X_NULL_HANDLE ((uint64_t)0)

/* The library's own Go glue declares the functions with slightly different
 * (const-less) prototypes and defines X0X_INTERNAL_OMIT_PROTOTYPES to see
 * only the types; users never define it. */
#ifndef X0X_INTERNAL_OMIT_PROTOTYPES

/* ------------------------------------------------------------------ */
/* Library                                                             */
/* ------------------------------------------------------------------ */

/* Returns the ABI version of the loaded library as (major << 16) | minor.
 * A caller built against this header should check that
 * (x0x_abi_version() >> 16) == X0X_ABI_VERSION_MAJOR and
 * (x0x_abi_version() & 0xffff) >= X0X_ABI_VERSION_MINOR. Never fails;
 * thread-safe; does not touch the last error. */
uint32_t x0x_abi_version(void);

/* Returns a message describing the last failure of a library call made on
 * the calling thread (it starts with the function's name, e.g.
 * "x0x_connect: ..."), or "" if the last call succeeded. Each call of a
 * status-returning function resets it; other threads never change it. The string is owned by the library
 * (a per-thread buffer; messages are truncated to 1023 bytes) and stays
 * valid until the next library call on this thread. Never returns NULL. */
const char *x0x_last_error(void);

/* Returns a static, library-owned name for a status code, e.g.
 * "X0X_ERR_TIMEOUT" ("X0X_ERR_UNKNOWN" for codes not listed above). Never
 * fails; does not touch the last error. */
const char *x0x_status_name(int status);

/* Frees memory returned by the library through an `out` pointer (strings,
 * ID arrays, bundles). ptr may be NULL. Freeing anything else, or freeing
 * twice, is undefined behaviour (as with free()). Thread-safe. */
void x0x_free(void *ptr);

/* Writes the 64 lowercase hex digits of id and a final NUL into out, which
 * must hold X0X_ID_HEX_SIZE bytes. Errors: X0X_ERR_INVALID_ARG if id or out
 * is NULL. */
int x0x_id_to_hex(const uint8_t id[X0X_ID_SIZE], char out[X0X_ID_HEX_SIZE]);

/* Parses 64 hex digits (NUL-terminated) into out (X0X_ID_SIZE bytes).
 * Errors: X0X_ERR_INVALID_ARG if a pointer is NULL or hex is not exactly
 * 64 hex digits; X0X_ERR_TOO_LARGE if hex has no NUL within X0X_MAX_STRING. */
int x0x_id_from_hex(const char *hex, uint8_t out[X0X_ID_SIZE]);

/* ------------------------------------------------------------------ */
/* Agent configuration                                                 */
/* ------------------------------------------------------------------ */

/* Creates an empty configuration (all defaults) and stores its handle in
 * *out. Release it with x0x_config_destroy; it may be destroyed right after
 * x0x_agent_create, which copies what it needs. A config handle must not
 * be used from two threads at once while being modified (calls are
 * serialised internally, but the resulting value then depends on order).
 * Errors: X0X_ERR_INVALID_ARG if out is NULL. */
int x0x_config_new(x0x_config *out);

/* Sets a string option (value is copied; both pointers are borrowed).
 * Keys:
 *   "data_dir"             directory holding keys, the peer cache, the
 *                          task lists and the groups' state; one running
 *                          agent per directory (see x0x_agent_create).
 *                          Default, and the meaning of "": $X0X_HOME if
 *                          set and non-empty, else ~/.x0x; so an empty
 *                          value selects the user's default directory,
 *                          not the working directory. The environment is
 *                          the process's as the library saw it when it
 *                          was loaded (a later setenv() is not seen)
 *   "bind_addr"            UDP address to listen on (default "127.0.0.1:0")
 *   "bootstrap"            adds one bootstrap peer, "host:port" or
 *                          "<64 hex peer id>@host:port"; may be repeated
 *   "network"              "local" (default, no built-in peers) or
 *                          "testnet" (the public test network)
 *   "machine_key_path"     machine key file (default <data_dir>/machine.key)
 *   "event_queue_capacity" decimal 1..X0X_MAX_EVENT_QUEUE (default
 *                          X0X_DEFAULT_EVENT_QUEUE)
 * Errors: X0X_ERR_INVALID_HANDLE; X0X_ERR_INVALID_ARG for a NULL pointer,
 * an unknown key or a malformed value (checked now, not at create time);
 * X0X_ERR_TOO_LARGE for a string longer than X0X_MAX_STRING. */
int x0x_config_set(x0x_config cfg, const char *key, const char *value);

/* Sets the passphrase that seals (and unseals) the key files in the data
 * directory, stretched with Argon2id (about a quarter of a second per key
 * file). The bytes are copied. len == 0 clears it (passphrase may then be
 * NULL). Errors: X0X_ERR_INVALID_HANDLE; X0X_ERR_INVALID_ARG if passphrase
 * is NULL with len > 0; X0X_ERR_TOO_LARGE if len > X0X_MAX_PASSPHRASE. */
int x0x_config_set_passphrase(x0x_config cfg, const uint8_t *passphrase, size_t len);

/* Makes the agent created from cfg use the agent key of id (from
 * x0x_identity_import) instead of the data directory's agent.key. The key
 * is not saved to the data directory (see x0x_identity_save). The config
 * keeps its own reference: id may be destroyed afterwards.
 * id == X0X_NULL_HANDLE clears it.
 * Errors: X0X_ERR_INVALID_HANDLE for a bad cfg or id. */
int x0x_config_set_identity(x0x_config cfg, x0x_identity id);

/* Destroys a configuration. Agents created from it are unaffected.
 * Errors: X0X_ERR_INVALID_HANDLE (including a second destroy). */
int x0x_config_destroy(x0x_config cfg);

/* ------------------------------------------------------------------ */
/* Agents                                                              */
/* ------------------------------------------------------------------ */

/* Creates an agent: loads or creates the machine and agent keys in the data
 * directory, opens the peer cache, restores the private groups saved there
 * (x0x_groups) and starts listening on the bind address.
 * It does not contact anyone (see x0x_join_network, x0x_connect).
 * cfg may be X0X_NULL_HANDLE for all defaults. Blocks up to timeout_ms.
 * Stores the new handle in *out; destroy it with x0x_agent_destroy.
 * One running agent per data directory: the agent locks the directory
 * (file agent.lock in it) until x0x_agent_destroy, and creating a second
 * agent on a directory another running agent holds, in this process or
 * another, fails at once with X0X_ERR_IO and a last error naming the
 * directory ("data directory in use").
 * Errors: X0X_ERR_INVALID_ARG (out NULL, or a data directory path that
 * is not a directory), X0X_ERR_INVALID_HANDLE (cfg),
 * X0X_ERR_WRONG_PASSPHRASE, X0X_ERR_CORRUPT (a key file; never
 * overwritten), X0X_ERR_CRYPTO, X0X_ERR_IO (directory or socket, or the
 * data directory in use), X0X_ERR_TIMEOUT. */
int x0x_agent_create(x0x_config cfg, uint32_t timeout_ms, x0x_agent *out);

/* Stops the agent: closes every connection, saves the peer cache and the
 * state of its open groups (restored by its next creation), stops event
 * delivery and closes the events fd. The handle becomes invalid at once;
 * concurrent calls on it fail with X0X_ERR_CLOSED or
 * X0X_ERR_INVALID_HANDLE. When it returns, no event callback of this agent
 * is running or will run — except when called from inside this agent's
 * own event callback, where it returns without waiting (the callback
 * then finishes normally and no further callback follows).
 * Errors: X0X_ERR_INVALID_HANDLE (including a second destroy); X0X_ERR_IO
 * if saving the peer cache failed (the agent is destroyed anyway). */
int x0x_agent_destroy(x0x_agent agent);

/* Writes the agent's ID (X0X_ID_SIZE bytes) into out.
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (out NULL). */
int x0x_agent_id(x0x_agent agent, uint8_t out[X0X_ID_SIZE]);

/* Writes the machine ID (X0X_ID_SIZE bytes; it is also the node's peer ID)
 * into out. Errors: as x0x_agent_id. */
int x0x_machine_id(x0x_agent agent, uint8_t out[X0X_ID_SIZE]);

/* Stores in *out a NUL-terminated copy of the UDP address the agent listens
 * on (e.g. "127.0.0.1:40123"). The caller frees it with x0x_free.
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (out NULL). */
int x0x_agent_addr(x0x_agent agent, char **out);

/* Connects to every bootstrap peer (kept connected afterwards: lost
 * connections are redialled with backoff) and to the best cached peers.
 * Blocks up to timeout_ms; succeeds once at least one connection is up.
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_NO_PEERS (nobody to contact),
 * X0X_ERR_TIMEOUT, X0X_ERR_CLOSED, X0X_ERR_AUTH, X0X_ERR_IO; the last error
 * lists every failed peer. */
int x0x_join_network(x0x_agent agent, uint32_t timeout_ms);

/* Dials addr ("host:port" or "<64 hex peer id>@host:port"), keeps the
 * connection up and joins the gossip overlay through it (so topics and
 * task lists work over this connection as after x0x_join_network). On success the peer ID that proved itself there is written
 * to out_peer (X0X_ID_SIZE bytes) unless out_peer is NULL. Blocks up to
 * timeout_ms. Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (addr NULL
 * or malformed), X0X_ERR_TOO_LARGE, X0X_ERR_AUTH (a pinned peer ID did not
 * match, authentication failed, or addr is this agent's own node),
 * X0X_ERR_INVALID_ARG also when addr pins this node's own peer ID,
 * X0X_ERR_TIMEOUT, X0X_ERR_CLOSED, X0X_ERR_IO. */
int x0x_connect(x0x_agent agent, const char *addr, uint32_t timeout_ms, uint8_t out_peer[X0X_ID_SIZE]);

/* Sends payload (len bytes, copied before return; payload may be NULL if
 * len is 0) to agent `to` (X0X_ID_SIZE bytes), via a connected peer that
 * carries it (or locally, if `to` lives on this node). Delivery to the
 * remote agent shows up there as an X0X_EVENT_DIRECT_MESSAGE. Blocks up to
 * timeout_ms. Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (NULL
 * pointer), X0X_ERR_TOO_LARGE (see X0X_MAX_PAYLOAD), X0X_ERR_NO_ROUTE (no
 * connected peer carries `to`), X0X_ERR_TIMEOUT, X0X_ERR_CLOSED,
 * X0X_ERR_IO. */
int x0x_send_direct(x0x_agent agent, const uint8_t to[X0X_ID_SIZE], const uint8_t *payload, size_t len,
                    uint32_t timeout_ms);

/* Blocks until some connected peer carries agent `id` (so that
 * x0x_send_direct to it can succeed), up to timeout_ms. For the agent's
 * own ID it returns X0X_OK at once.
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG, X0X_ERR_TIMEOUT,
 * X0X_ERR_CLOSED. */
int x0x_wait_for_agent(x0x_agent agent, const uint8_t id[X0X_ID_SIZE], uint32_t timeout_ms);

/* Lists the peers with an authenticated connection: *out_ids receives
 * *out_count * X0X_ID_SIZE bytes (peer i at offset i * X0X_ID_SIZE), owned
 * by the caller and freed with x0x_free. With no peers, *out_ids is NULL
 * and *out_count 0. Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG. */
int x0x_connected_peers(x0x_agent agent, uint8_t **out_ids, size_t *out_count);

/* Lists the agents connected peer `peer` has announced, in the same form
 * as x0x_connected_peers (empty if the peer is unknown).
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG. */
int x0x_peer_agents(x0x_agent agent, const uint8_t peer[X0X_ID_SIZE], uint8_t **out_ids, size_t *out_count);

/* ------------------------------------------------------------------ */
/* Identity export / import                                            */
/* ------------------------------------------------------------------ */

/* Seals the agent key into a passphrase-protected bundle (Argon2id, then
 * XChaCha20-Poly1305; about a quarter of a second) for moving the agent to
 * another machine. *out receives *out_len bytes, freed with x0x_free.
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (NULL pointer or
 * empty passphrase), X0X_ERR_TOO_LARGE (passphrase). */
int x0x_identity_export(x0x_agent agent, const uint8_t *passphrase, size_t passphrase_len, uint8_t **out,
                        size_t *out_len);

/* Opens a bundle made by x0x_identity_export and stores a handle to the
 * agent key in *out (destroy it with x0x_identity_destroy). Use it with
 * x0x_config_set_identity or x0x_identity_save.
 * Errors: X0X_ERR_INVALID_ARG (NULL pointer, empty passphrase),
 * X0X_ERR_TOO_LARGE (bundle > X0X_MAX_BUNDLE or passphrase),
 * X0X_ERR_WRONG_PASSPHRASE, X0X_ERR_CORRUPT (damaged bundle or unsupported
 * version). */
int x0x_identity_import(const uint8_t *bundle, size_t bundle_len, const uint8_t *passphrase, size_t passphrase_len,
                        x0x_identity *out);

/* Writes the agent ID of an imported identity into out (X0X_ID_SIZE bytes).
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG. */
int x0x_identity_agent_id(x0x_identity id, uint8_t out[X0X_ID_SIZE]);

/* Makes id the agent key stored in data directory dir (created if needed),
 * replacing any existing agent.key atomically, sealed with passphrase
 * (may be NULL when passphrase_len is 0: sealed with the local secret only).
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG, X0X_ERR_TOO_LARGE,
 * X0X_ERR_WRONG_PASSPHRASE, X0X_ERR_IO. */
int x0x_identity_save(x0x_identity id, const char *dir, const uint8_t *passphrase, size_t passphrase_len);

/* Destroys an identity handle (configs holding it keep their reference).
 * Errors: X0X_ERR_INVALID_HANDLE (including a second destroy). */
int x0x_identity_destroy(x0x_identity id);

/* ------------------------------------------------------------------ */
/* Publish / subscribe                                                 */
/* ------------------------------------------------------------------ */
/* The agent-level calls of ABI 0.2. They keep working, but topic handles
 * (x0x_topic_join and the section "Topics" below, ABI 0.6) are the API to
 * use: independent handles, several subscriptions per topic, lag markers,
 * neighbour events and validators. Both run on the same machinery: each
 * x0x_subscribe is an internal topic handle with one subscription whose
 * records carry 0 in reserved[3] and no lag markers (its losses are only
 * counted by x0x_events_dropped), and x0x_publish publishes through a
 * publish-only handle. */

/* Subscribes the agent to topic (NUL-terminated, 1..X0X_MAX_TOPIC bytes).
 * Its messages arrive as X0X_EVENT_TOPIC_MESSAGE events (pull API or
 * callback). Subscribing to a topic already subscribed is X0X_OK and
 * changes nothing. Messages published before the subscription, or while
 * the event queue is full, are not delivered (the latter are counted by
 * x0x_events_dropped). Errors: X0X_ERR_INVALID_HANDLE,
 * X0X_ERR_INVALID_ARG (NULL or empty topic), X0X_ERR_TOO_LARGE (topic
 * longer than X0X_MAX_TOPIC), X0X_ERR_CLOSED. */
int x0x_subscribe(x0x_agent agent, const char *topic);

/* Ends the agent's subscription to topic; queued events stay drainable.
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG, X0X_ERR_TOO_LARGE,
 * X0X_ERR_NOT_FOUND (not subscribed). */
int x0x_unsubscribe(x0x_agent agent, const char *topic);

/* Publishes payload (len bytes, copied; may be NULL if len is 0) on topic,
 * signed by the agent. The agent need not subscribe to the topic. Returns
 * once the message is handed to the overlay (it does not wait for
 * delivery); out_msg_id (X0X_ID_SIZE bytes, may be NULL) receives the
 * message ID. Blocks up to timeout_ms. Errors: X0X_ERR_INVALID_HANDLE,
 * X0X_ERR_INVALID_ARG, X0X_ERR_TOO_LARGE (topic, or a payload over the
 * overlay's message limit of 1 MiB), X0X_ERR_TIMEOUT, X0X_ERR_CLOSED, and
 * X0X_ERR_REJECTED when a validator of a topic handle of this agent
 * (x0x_topic_join_validated, ABI 0.6) refused the message. */
int x0x_publish(x0x_agent agent, const char *topic, const uint8_t *payload, size_t len, uint32_t timeout_ms,
                uint8_t out_msg_id[X0X_ID_SIZE]);

/* ------------------------------------------------------------------ */
/* Task lists                                                          */
/* ------------------------------------------------------------------ */
/* A task list is a CRDT replicated among the agents that joined it, synced
 * over the overlay and persisted in the agent's data directory. Every
 * operation is signed by the agent; claims and completions are only ever
 * made for the calling agent. A list handle belongs to its agent: it
 * becomes invalid when the agent is destroyed. Changes (local and remote)
 * arrive as X0X_EVENT_TASK_CHANGED events. Task IDs and list IDs are
 * X0X_ID_SIZE bytes. */

/* Creates a new list named name (NUL-terminated UTF-8, at most
 * X0X_MAX_TASKLIST_NAME bytes; may be empty) and stores its handle in *out.
 * Only the calling agent may write to
 * it until it grants others (x0x_tasklist_add_writer) or opens it
 * (x0x_tasklist_set_open); every member refuses other agents' operations.
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (NULL pointer, name
 * not UTF-8), X0X_ERR_TOO_LARGE (name over X0X_MAX_TASKLIST_NAME),
 * X0X_ERR_IO (persistence), X0X_ERR_CLOSED. */
int x0x_tasklist_create(x0x_agent agent, const char *name, x0x_tasklist *out);

/* Joins the list list_id (from x0x_tasklist_id on a member), loading what
 * this agent persisted before, and starts catching up from members in the
 * background. Joining a list the agent already has open returns a new
 * handle to the same list. Writes fail with X0X_ERR_NOT_WRITER until the
 * list's creation has arrived from a member, and unless the creator granted
 * this agent access or opened the list. Errors: X0X_ERR_INVALID_HANDLE,
 * X0X_ERR_INVALID_ARG, X0X_ERR_IO, X0X_ERR_CORRUPT (persisted state),
 * X0X_ERR_CLOSED. */
int x0x_tasklist_join(x0x_agent agent, const uint8_t list_id[X0X_ID_SIZE], x0x_tasklist *out);

/* Writes the list's ID (X0X_ID_SIZE bytes) into out.
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG. */
int x0x_tasklist_id(x0x_tasklist list, uint8_t out[X0X_ID_SIZE]);

/* Stops syncing the list and invalidates the handle (and every other handle
 * to the same list). The persisted state stays in the data directory, so a
 * later x0x_tasklist_join resumes from it.
 * Errors: X0X_ERR_INVALID_HANDLE (including a second leave). */
int x0x_tasklist_leave(x0x_tasklist list);

/* Adds a task at the end of the list with title (at most
 * X0X_MAX_TASK_TITLE bytes) and description (at most
 * X0X_MAX_TASK_DESCRIPTION bytes; may be NULL for ""), both NUL-terminated
 * UTF-8, and writes its ID into out_task (may be NULL). Errors:
 * X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (NULL title, not UTF-8),
 * X0X_ERR_TOO_LARGE (a string over its limit), X0X_ERR_NOT_WRITER,
 * X0X_ERR_IO, X0X_ERR_CLOSED. */
int x0x_tasklist_add(x0x_tasklist list, const char *title, const char *description, uint8_t out_task[X0X_ID_SIZE]);

/* Sets one field of a task. field and value are NUL-terminated:
 *   "title"        UTF-8, at most X0X_MAX_TASK_TITLE bytes
 *   "description"  UTF-8, at most X0X_MAX_TASK_DESCRIPTION bytes
 *   "assignee"     64 hex digits of an agent ID, or "" to unassign
 *   "priority"     decimal 0..255
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (unknown field,
 * malformed value), X0X_ERR_TOO_LARGE (a value over its limit),
 * X0X_ERR_NOT_FOUND (no such task), X0X_ERR_IO, X0X_ERR_CLOSED. */
int x0x_tasklist_update(x0x_tasklist list, const uint8_t task[X0X_ID_SIZE], const char *field, const char *value);

/* Claims the task for this agent (Empty -> Claimed). Claiming a task this
 * agent already claimed is X0X_OK; a task this replica already sees
 * claimed by another agent is X0X_ERR_TASK_CLAIMED_BY_OTHER. Claims made
 * concurrently (before their authors saw each other's) are all kept and
 * every replica picks the same winner (the snapshot's "claimant"; the
 * others are in "claims"). Errors: X0X_ERR_INVALID_HANDLE,
 * X0X_ERR_INVALID_ARG, X0X_ERR_NOT_FOUND, X0X_ERR_TASK_DONE,
 * X0X_ERR_TASK_CLAIMED_BY_OTHER, X0X_ERR_IO, X0X_ERR_CLOSED. */
int x0x_tasklist_claim(x0x_tasklist list, const uint8_t task[X0X_ID_SIZE]);

/* Marks a task this agent has claimed as Done. Errors: as
 * x0x_tasklist_claim, plus X0X_ERR_TASK_NOT_CLAIMED and
 * X0X_ERR_TASK_CLAIMED_BY_OTHER. */
int x0x_tasklist_complete(x0x_tasklist list, const uint8_t task[X0X_ID_SIZE]);

/* Reopens a task (Claimed or Done -> Empty). Errors: X0X_ERR_INVALID_HANDLE,
 * X0X_ERR_INVALID_ARG, X0X_ERR_NOT_FOUND, X0X_ERR_IO, X0X_ERR_CLOSED. */
int x0x_tasklist_reopen(x0x_tasklist list, const uint8_t task[X0X_ID_SIZE]);

/* Moves a task to just after task `after` (X0X_ID_SIZE bytes), or to the
 * front when after is NULL. Errors: as x0x_tasklist_reopen (NOT_FOUND for
 * either task). */
int x0x_tasklist_move(x0x_tasklist list, const uint8_t task[X0X_ID_SIZE], const uint8_t after[X0X_ID_SIZE]);

/* Removes a task from the list. A concurrent edit of the same task by
 * another agent keeps it (add wins). Errors: as x0x_tasklist_reopen. */
int x0x_tasklist_remove(x0x_tasklist list, const uint8_t task[X0X_ID_SIZE]);

/* Grants agent (its X0X_ID_SIZE-byte agent ID) write access to the list;
 * x0x_tasklist_remove_writer revokes it (effective for what the agent does
 * after it received the revocation). Granting a writer again, or revoking a
 * non-writer, is X0X_OK. Only the list's creator may call them. ABI 0.4.
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (NULL agent, the
 * creator itself, over 1,024 writers), X0X_ERR_NOT_WRITER (not the
 * creator), X0X_ERR_IO, X0X_ERR_CLOSED. */
int x0x_tasklist_add_writer(x0x_tasklist list, const uint8_t agent[X0X_ID_SIZE]);

/* Revokes agent's write access; see x0x_tasklist_add_writer. ABI 0.4. */
int x0x_tasklist_remove_writer(x0x_tasklist list, const uint8_t agent[X0X_ID_SIZE]);

/* Lets every agent write to the list (open non-zero) or only the creator
 * and the agents it granted (open zero). Only the creator may call it.
 * ABI 0.4. Errors: as x0x_tasklist_add_writer. */
int x0x_tasklist_set_open(x0x_tasklist list, int open);

/* Stores in *out_json a NUL-terminated UTF-8 JSON snapshot of the list, in
 * list order, freed by the caller with x0x_free:
 *   {"id":"<hex>","name":"...","creator":"<hex>"|null,"writers":["<hex>",...],
 *    "open":true|false,"tasks":[{"id":"<hex>","title":"...",
 *    "description":"...","state":"empty"|"claimed"|"done",
 *    "claimant":"<hex>"|null,"claims":["<hex>",...],"assignee":"<hex>"|null,
 *    "priority":0..255,"created_by":"<hex>","created_at_ms":<int>}, ...]}
 * "claimant" is the winning claimer (Claimed) or the completer (Done);
 * "claims" lists every concurrent claimer. Errors: X0X_ERR_INVALID_HANDLE,
 * X0X_ERR_INVALID_ARG. */
int x0x_tasklist_snapshot(x0x_tasklist list, char **out_json);

/* ------------------------------------------------------------------ */
/* Private groups (ABI 0.7)                                            */
/* ------------------------------------------------------------------ */
/* A group is an MLS (RFC 9420) group with x0x's post-quantum suite
 * (ML-KEM-768+X25519 HPKE, ChaCha20-Poly1305, ML-DSA-65): only its members
 * read its messages, task lists and presence; a removed member reads
 * nothing sent after its removal, and x0x_group_update heals the group
 * from a leak of the caller's earlier keys. Invitations travel over direct
 * connections: the inviter fetches a key package from the invited agent
 * (which must have called x0x_keypackage_publish), commits the addition and
 * sends the agent a Welcome, which arrives as X0X_EVENT_GROUP_INVITATION;
 * the agent answers with x0x_group_accept or x0x_group_decline. Concurrent
 * changes by two members resolve the same way on every member (see
 * docs/groups.md). Group IDs are X0X_ID_SIZE bytes. Messages and changes of
 * a group arrive as X0X_EVENT_GROUP_MESSAGE and X0X_EVENT_GROUP_CHANGED
 * records naming the group handle in reserved[3], from the moment the
 * handle exists until x0x_group_close. A group's state is kept, sealed
 * with a key derived from the agent key, in the agent's data directory
 * (groups.db; saved at every epoch change and when the group or the agent
 * closes): when an agent is created again from the same data directory,
 * every group it was a member of is restored and open at once, without a
 * handle; x0x_groups lists the open groups and x0x_group_open gives a
 * handle for one. A restored replica catches up on the commits it missed
 * from the group's topic neighbours, which keep them for 5 minutes; one
 * away longer while the group changed must be removed and invited again.
 * Only a removal (or leaving) forgets a group. A group handle belongs to
 * its agent and becomes invalid when the agent is destroyed or the handle
 * is closed. */

/* Makes the agent invitable: from now on members of groups may fetch
 * single-use key packages from it over a direct connection (at most 4 per
 * inviting agent per minute). Also stores in *out (freed by the caller
 * with x0x_free) and *out_len one key package, which the caller may hand
 * to an inviter by other means (x0x_group_invite_keypackage). Errors:
 * X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (NULL out or out_len),
 * X0X_ERR_CLOSED. */
int x0x_keypackage_publish(x0x_agent agent, uint8_t **out, size_t *out_len);

/* Creates a group with the agent as its only member and stores its handle
 * in *out. Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG,
 * X0X_ERR_CLOSED. */
int x0x_group_create(x0x_agent agent, x0x_group *out);

/* Stores in *out_json (freed with x0x_free) a NUL-terminated JSON array of
 * the invitations waiting for an answer:
 *   [{"group":"<hex>","from":"<hex>","members":["<hex>",...],"epoch":<int>}, ...]
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG, X0X_ERR_CLOSED. */
int x0x_invitations(x0x_agent agent, char **out_json);

/* Accepts the pending invitation to group_id: joins the group and stores
 * its handle in *out. Accepting a re-invitation into a group the agent
 * still has open stores the handle it already has (the group moves to the
 * new replica in place). Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG,
 * X0X_ERR_NOT_FOUND (no such invitation pending), X0X_ERR_CORRUPT (the
 * Welcome does not open: a forged invitation), X0X_ERR_CLOSED. */
int x0x_group_accept(x0x_agent agent, const uint8_t group_id[X0X_ID_SIZE], x0x_group *out);

/* Declines the pending invitation to group_id: its key package is wiped
 * and the inviter is asked to remove the agent again. Errors:
 * X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG, X0X_ERR_NOT_FOUND,
 * X0X_ERR_CLOSED. */
int x0x_group_decline(x0x_agent agent, const uint8_t group_id[X0X_ID_SIZE]);

/* Stores in *out_json (freed with x0x_free) a NUL-terminated JSON array of
 * the IDs (hex, sorted) of the agent's open groups, whether or not the
 * caller has a handle for them: the groups restored when the agent was
 * created and those created or joined since, unless closed, left or
 * removed since:
 *   ["<hex>", ...]
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG, X0X_ERR_CLOSED. */
int x0x_groups(x0x_agent agent, char **out_json);

/* Stores in *out a handle for the agent's open group group_id (listed by
 * x0x_groups), such as one restored when the agent was created. If the
 * agent already has a handle for the group, it stores that same handle
 * (as x0x_group_accept does); otherwise a new one, whose records (the
 * group's messages and changes from now on; earlier ones are not
 * reported) arrive as for any group handle. Like every group handle it
 * ends with x0x_group_close, which closes the group, or with the agent.
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG, X0X_ERR_NOT_FOUND
 * (the group is not open: unknown, closed or being closed, left or
 * removed), X0X_ERR_CLOSED. */
int x0x_group_open(x0x_agent agent, const uint8_t group_id[X0X_ID_SIZE], x0x_group *out);

/* Writes the group's ID (X0X_ID_SIZE bytes) into out. Errors:
 * X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG. */
int x0x_group_id(x0x_group group, uint8_t out[X0X_ID_SIZE]);

/* Stores in *out_json (freed with x0x_free) a NUL-terminated JSON object:
 *   {"id":"<hex>","epoch":<int>,"members":["<hex>",...],"online":["<hex>",...],
 *    "closed":true|false}
 * "online" lists the members that announced their presence in the last 15
 * minutes (and the caller); "closed" is true once the agent left or was
 * removed. Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG. */
int x0x_group_info(x0x_group group, char **out_json);

/* Invites agent (its X0X_ID_SIZE-byte ID), which must be carried by a
 * connected peer: fetches its key package over the direct connection,
 * commits the addition and sends it the Welcome. Blocks up to timeout_ms
 * (0: X0X_DEFAULT_TIMEOUT_MS). Errors: X0X_ERR_INVALID_HANDLE,
 * X0X_ERR_INVALID_ARG, X0X_ERR_ALREADY_MEMBER, X0X_ERR_NO_ROUTE,
 * X0X_ERR_REFUSED, X0X_ERR_CORRUPT (an invalid key package),
 * X0X_ERR_TIMEOUT, X0X_ERR_CLOSED. */
int x0x_group_invite(x0x_group group, const uint8_t agent[X0X_ID_SIZE], uint32_t timeout_ms);

/* Invites the agent whose key package (len bytes, from its
 * x0x_keypackage_publish) is at key_package, sending it the Welcome over a
 * direct connection. Errors: as x0x_group_invite (X0X_ERR_INVALID_ARG also
 * for a NULL or empty key_package), and X0X_ERR_TOO_LARGE for len over
 * 64 KiB (checked before the key package is copied). */
int x0x_group_invite_keypackage(x0x_group group, const uint8_t *key_package, size_t len, uint32_t timeout_ms);

/* Removes member agent. Errors: X0X_ERR_INVALID_HANDLE,
 * X0X_ERR_INVALID_ARG, X0X_ERR_NOT_MEMBER (also for the caller itself:
 * use x0x_group_leave), X0X_ERR_CLOSED. */
int x0x_group_remove(x0x_group group, const uint8_t agent[X0X_ID_SIZE]);

/* Replaces the caller's keys in the group (a commit). Errors:
 * X0X_ERR_INVALID_HANDLE, X0X_ERR_CLOSED. */
int x0x_group_update(x0x_group group);

/* Asks the other members to remove the caller; X0X_GROUP_REMOVED follows
 * when they have. Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_NOT_MEMBER (the
 * caller is the only member: close the group instead), X0X_ERR_CLOSED. */
int x0x_group_leave(x0x_group group);

/* Encrypts len bytes at data (NULL only if len is 0) for the members and
 * publishes them. Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG,
 * X0X_ERR_TOO_LARGE (over 960 KiB), X0X_ERR_CLOSED. */
int x0x_group_publish(x0x_group group, const uint8_t *data, size_t len);

/* Creates a task list that belongs to the group: its operations travel
 * sealed under the group's epoch keys, and only the group's members (now
 * or before) may write to it. name as for x0x_tasklist_create (at most
 * X0X_MAX_TASKLIST_NAME bytes). Errors: as x0x_tasklist_create. */
int x0x_group_tasklist_create(x0x_group group, const char *name, x0x_tasklist *out);

/* Joins a task list of the group. Errors: as x0x_tasklist_join, and
 * X0X_ERR_INVALID_ARG if the agent has the list open outside the group. */
int x0x_group_tasklist_join(x0x_group group, const uint8_t list_id[X0X_ID_SIZE], x0x_tasklist *out);

/* Stops the caller's replica of the group for now (its task lists are
 * left, its secrets in memory zeroed; the caller stays a member for the
 * others: see x0x_group_leave) and invalidates the handle, and the handles
 * of the task lists opened through it (as x0x_tasklist_leave does). The
 * group's state stays in the data directory: the agent's next creation
 * from it restores the group (x0x_groups, x0x_group_open); until then it
 * is not open. A group the agent left or was removed from is forgotten
 * instead. Records of the group already queued stay drainable (skip them
 * by their handle). Errors: X0X_ERR_INVALID_HANDLE (including a second
 * close). */
int x0x_group_close(x0x_group group);

/* ------------------------------------------------------------------ */
/* Benchmark aid                                                       */
/* ------------------------------------------------------------------ */

/* Delivers n synthetic X0X_EVENT_DIRECT_MESSAGE events (from and to this
 * agent, payload_len bytes of 0xAB each, payload_len <= 65536) through the
 * agent's normal event path (callback or pull queue). Unlike real events,
 * these wait for room in a full pull queue instead of being dropped, so
 * all n arrive as fast as the consumer takes them. It returns once all n
 * are handed to the event path (call it from a thread other than the
 * consumer's when using the pull API). For measuring how fast a binding consumes events; never
 * needed otherwise. Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG
 * (payload_len too large), X0X_ERR_CLOSED. */
int x0x_debug_inject_events(x0x_agent agent, uint32_t n, size_t payload_len);

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

#endif /* X0X_INTERNAL_OMIT_PROTOTYPES */

/* Kinds of event. Values not listed here are reserved for later minor
 * versions: bindings must skip records with a kind they do not know (the
 * kinds of ABI 0.6 only ever concern topic handles, which a caller of an
 * older header never creates). */
typedef enum x0x_event_kind {
    /* A connection to `peer` is up; `addr` is its address; `agents` the
     * agents it carries. */
    X0X_EVENT_PEER_CONNECTED = 1,
    /* The connection to `peer` went down; `status`/`error` say why
     * (X0X_OK and NULL when closed locally). */
    X0X_EVENT_PEER_DISCONNECTED = 2,
    /* A dial to `addr` (expecting `peer`, all zero if unknown) failed with
     * `status`/`error`. */
    X0X_EVENT_CONNECTION_FAILED = 3,
    /* `addr` is this node's external address: peers at two or more IPs
     * see it there (one peer's report alone never makes it one). Comes
     * with or after the X0X_EVENT_NAT_TYPE_DETECTED of the same
     * classification; again for each new address; never behind a
     * symmetric NAT. `peer` is zero. */
    X0X_EVENT_EXTERNAL_ADDRESS_DISCOVERED = 4,
    /* `peer`'s set of agents changed; `agents` is the new set. */
    X0X_EVENT_AGENTS_CHANGED = 5,
    /* Agent `from` on `peer` sent `payload` to local agent `to`. */
    X0X_EVENT_DIRECT_MESSAGE = 6,
    /* A message on subscribed `topic`: `from` is the publishing agent (its
     * signature was verified), `payload` the message (NULL if empty),
     * reserved[0] the publisher's sequence number, reserved[1] its
     * timestamp (Unix milliseconds) and reserved[2] the overlay hops the
     * message took (0 for this node's own messages; above the topic tree's
     * depth when it was repaired through announcements or anti-entropy;
     * ABI 0.5), reserved[3] the x0x_subscription it was delivered to (0
     * for a subscription of x0x_subscribe; ABI 0.6); `peer` and `to` are
     * all zero. */
    X0X_EVENT_TOPIC_MESSAGE = 7,
    /* A task list changed: `topic` is the list ID in hex, `payload` the
     * X0X_ID_SIZE-byte task ID, `from` the agent that made the change,
     * reserved[0] the operation (an x0x_task_op) and reserved[1] 1 if this
     * agent made it, else 0. */
    X0X_EVENT_TASK_CHANGED = 8,
    /* This node's NAT mapping behaviour was classified from the addresses
     * several peers (at different IPs) see it at, or the classification
     * changed: reserved[0] is an x0x_nat_type, `addr` the external address
     * peers agree on (NULL if none); `peer` is all zero. ABI 0.3. */
    X0X_EVENT_NAT_TYPE_DETECTED = 9,
    /* `peer` became a neighbour of this node on `topic` (a peer it
     * exchanges the topic's messages with directly); reserved[3] is the
     * x0x_subscription from x0x_topic_events. ABI 0.6. */
    X0X_EVENT_TOPIC_NEIGHBOUR_UP = 10,
    /* `peer` is no longer a neighbour on `topic`; reserved[3] as above.
     * ABI 0.6. */
    X0X_EVENT_TOPIC_NEIGHBOUR_DOWN = 11,
    /* The lag marker: reserved[0] records of subscription reserved[3]
     * (an x0x_subscription of x0x_topic_subscribe or x0x_topic_events, on
     * `topic`) were lost because its reader fell behind: the agent's event
     * queue was full, or (with a callback) the records waited too long.
     * It comes after the records of that subscription that preceded the
     * gap and before those that followed it; the subscription goes on.
     * The lost records are also counted by x0x_events_dropped. ABI 0.6. */
    X0X_EVENT_LAGGED = 12,
    /* A validation request of a topic joined with x0x_topic_join_validated
     * and no validator function: a message on `topic` from agent `from`
     * (its signature was verified) with `payload` (NULL if empty),
     * reserved[0] its sequence number, reserved[1] its timestamp (Unix
     * ms), reserved[2] the request ID and reserved[3] the x0x_topic.
     * Answer with x0x_topic_validation_result(reserved[3], reserved[2],
     * verdict) within the topic's time limit; the message waits for it.
     * ABI 0.6. */
    X0X_EVENT_VALIDATE = 13,
    /* Agent `from` invited this agent into a group: `topic` is the group
     * ID in hex, `agents` its members, reserved[0] the epoch the
     * invitation starts. Answer with x0x_group_accept or
     * x0x_group_decline. ABI 0.7. */
    X0X_EVENT_GROUP_INVITATION = 14,
    /* Member `from` sent `payload` (NULL if empty) to the group whose ID
     * is `topic` (hex): reserved[0] the epoch it was sent in, reserved[3]
     * the x0x_group. ABI 0.7. */
    X0X_EVENT_GROUP_MESSAGE = 15,
    /* The group whose ID is `topic` (hex) changed: reserved[0] is an
     * x0x_group_change, reserved[1] the epoch after it, reserved[3] the
     * x0x_group; `from` is the member concerned (all zero for
     * X0X_GROUP_EPOCH_CHANGED and X0X_GROUP_REMOVED). ABI 0.7. */
    X0X_EVENT_GROUP_CHANGED = 16
} x0x_event_kind;

/* Group changes, as reported in X0X_EVENT_GROUP_CHANGED. ABI 0.7. */
typedef enum x0x_group_change {
    X0X_GROUP_MEMBER_JOINED = 1,
    X0X_GROUP_MEMBER_LEFT = 2,
    /* A commit moved the group to a new epoch (new keys). */
    X0X_GROUP_EPOCH_CHANGED = 3,
    /* The agent left or was removed: the group is closed (calls other than
     * x0x_group_id, x0x_group_info and x0x_group_close return
     * X0X_ERR_CLOSED); no more records of it follow. Its task lists are
     * left too: their handles return X0X_ERR_CLOSED for changes until
     * x0x_tasklist_leave. */
    X0X_GROUP_REMOVED = 4,
    /* `from` announced its presence (only members see it). */
    X0X_GROUP_MEMBER_ONLINE = 5
} x0x_group_change;

/* NAT mapping behaviours, as reported in X0X_EVENT_NAT_TYPE_DETECTED. */
typedef enum x0x_nat_type {
    /* Fewer than two peers at different IPs have reported (never sent in
     * an event). */
    X0X_NAT_UNKNOWN = 0,
    /* Peers see the node at one of its own interface addresses. */
    X0X_NAT_NONE = 1,
    /* One external address towards every peer (a cone NAT): hole punching
     * works with any peer not behind a symmetric NAT. */
    X0X_NAT_ENDPOINT_INDEPENDENT = 2,
    /* A new external port per destination (a symmetric NAT): peers behind
     * most NATs are reached through a relay. */
    X0X_NAT_ENDPOINT_DEPENDENT = 3
} x0x_nat_type;

/* Task-list operations, as reported in X0X_EVENT_TASK_CHANGED. */
typedef enum x0x_task_op {
    X0X_TASK_ADDED = 1,
    X0X_TASK_UPDATED = 2,
    X0X_TASK_CLAIMED = 3,
    X0X_TASK_COMPLETED = 4,
    X0X_TASK_REOPENED = 5,
    X0X_TASK_MOVED = 6,
    X0X_TASK_REMOVED = 7,
    /* The creator granted or revoked write access, or opened or closed the
     * list; the payload (task ID) is all zero. ABI 0.4. */
    X0X_TASK_ACCESS_CHANGED = 8
} x0x_task_op;

/* One event. Which fields are set depends on kind; unset pointers are NULL,
 * unset lengths 0 and unset IDs all zero. Pointer fields point to library
 * memory whose lifetime depends on how the event was obtained (see
 * x0x_events_drain and x0x_event_cb); never free them with x0x_free or
 * free(). The layout is fixed within an ABI major version; `reserved`
 * words not named by a kind are zero. */
typedef struct x0x_event {
    uint32_t kind;              /* an x0x_event_kind */
    int32_t status;             /* an x0x_status for failure events, else 0 */
    uint8_t peer[X0X_ID_SIZE];  /* peer (machine) the event concerns */
    uint8_t from[X0X_ID_SIZE];  /* sending agent (direct messages) */
    uint8_t to[X0X_ID_SIZE];    /* receiving local agent (direct messages) */
    const char *addr;           /* NUL-terminated address, or NULL */
    const char *error;          /* NUL-terminated error message, or NULL */
    const uint8_t *agents;      /* agents_count * X0X_ID_SIZE bytes, or NULL */
    size_t agents_count;
    const uint8_t *payload;     /* payload_len bytes, or NULL if empty */
    size_t payload_len;
    const char *topic;          /* NUL-terminated topic / list ID, or NULL */
    uint64_t reserved[4];       /* per-kind numbers (see the kind), else 0 */
} x0x_event;

#ifndef X0X_INTERNAL_OMIT_PROTOTYPES

/* Pull API ----------------------------------------------------------- */
/* While no callback is registered, each agent queues its events in a
 * bounded queue (capacity from "event_queue_capacity"). When the queue is
 * full, new events are dropped and counted (x0x_events_dropped); records of
 * a topic subscription lost this way are also reported to it, by one
 * X0X_EVENT_LAGGED marker queued at the gap as soon as there is room
 * (ABI 0.6). */

/* Stores in *fd a file descriptor that is readable (poll/select/epoll,
 * POLLIN) while at least one event is queued and stops being readable when
 * x0x_events_drain empties the queue. The fd is owned by the library: do
 * not read, write or close it; it is closed by x0x_agent_destroy (stop
 * polling it before that). The same fd is returned on every call.
 * On Windows *fd is a SOCKET (the read end of a loopback TCP socket pair;
 * the handle value fits in an int): wait on it with select() or WSAPoll()
 * (POLLRDNORM), not with _read() or WaitForSingleObject(), and expect it to
 * stay readable briefly after a drain emptied the queue (the next drain then
 * returns 0 events).
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (fd NULL). */
int x0x_events_fd(x0x_agent agent, int *fd);

/* Moves up to max queued events, oldest first, into out[0..*n) and stores
 * the number moved in *n (0 if none: it never blocks). Pointer fields of the
 * filled records point to memory owned by the library until the caller
 * passes the records to x0x_events_release, which every drained record must
 * go through exactly once. out is caller memory. Errors:
 * X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (out NULL with max > 0, n
 * NULL). Safe to call from several threads (each event is returned once). */
int x0x_events_drain(x0x_agent agent, x0x_event *out, size_t max, size_t *n);

/* Frees the memory the pointer fields of events[0..n) point to and sets
 * those fields to NULL/0 (so releasing a record twice is harmless). Records
 * not filled by x0x_events_drain must be zeroed or never passed here.
 * events may be NULL if n is 0. Never fails; may be called after the agent
 * was destroyed. */
void x0x_events_release(x0x_event *events, size_t n);

/* Stores in *out how many events this agent's queue has dropped because it
 * was full (or could not be delivered because of an internal error), plus
 * the topic messages and neighbour changes subscriptions lost in their own
 * buffers while delivery was held up (see X0X_EVENT_LAGGED). It does not
 * count other events the node itself dropped while a slow callback held up
 * delivery. Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG. */
int x0x_events_dropped(x0x_agent agent, uint64_t *out);

/* Callback API ------------------------------------------------------- */

#endif /* X0X_INTERNAL_OMIT_PROTOTYPES */

/* An event callback. It runs on a library-owned thread, one event at a
 * time per agent, in event order. `event` and everything it points to are
 * valid only during the call (copy what you need). user_data is the
 * pointer given to x0x_set_event_callback. The callback may call any
 * function of this library, including x0x_set_event_callback and
 * x0x_agent_destroy for its own agent, without deadlocking. While it runs,
 * the agent's other events wait (and are dropped by the node if too many
 * accumulate), so it should return quickly. Destroying *another* agent
 * from a callback waits for that agent's running callback; two callbacks
 * destroying each other's agents at the same moment would deadlock. */
typedef void (*x0x_event_cb)(x0x_agent agent, const x0x_event *event, void *user_data);

#ifndef X0X_INTERNAL_OMIT_PROTOTYPES

/* Registers cb (with user_data, which the library never dereferences) for
 * the agent's events; cb == NULL unregisters it. While a callback is
 * registered, new events go to it and are not queued for the pull API
 * (already queued events stay drainable). A callback already running on
 * another thread may still complete after this returns; after
 * x0x_agent_destroy returns, none runs (see there).
 * Errors: X0X_ERR_INVALID_HANDLE. */
int x0x_set_event_callback(x0x_agent agent, x0x_event_cb cb, void *user_data);

#endif /* X0X_INTERNAL_OMIT_PROTOTYPES */

/* ------------------------------------------------------------------ */
/* Topics (ABI 0.6)                                                    */
/* ------------------------------------------------------------------ */
/* A topic is joined as a handle. Handles are independent: one topic can be
 * joined several times, each handle with its own subscriptions, neighbour
 * streams and validator, and the node carries the topic (receives, stores
 * and forwards its messages) while any handle not joined with
 * X0X_TOPIC_PUBLISH_ONLY is joined. A topic handle belongs to its agent:
 * x0x_agent_destroy invalidates it and its subscriptions.
 *
 * Subscriptions. x0x_topic_subscribe (messages) and x0x_topic_events
 * (neighbour changes) open a subscription: a bounded stream whose records
 * arrive through the agent's events (pull API or callback, the one event
 * path of this library), tagged with the subscription handle in
 * reserved[3]. The network never waits for a slow reader: when records of
 * a subscription are lost (its agent's event queue was full, or a slow
 * callback let the subscription's own buffer of 1,024 records or 16 MiB
 * overflow), the next record of that subscription is one X0X_EVENT_LAGGED
 * marker counting them, and the subscription goes on.
 *
 * Validators. A handle may validate the topic's messages: each message
 * new to this node (after its origin's signature was verified, before it
 * is stored, delivered or forwarded) and each local publish. A message any
 * handle of the topic refuses is neither delivered nor forwarded by this
 * node, and a local publish of it fails with X0X_ERR_REJECTED. While a
 * message waits for its verdict, the stream of the peer that sent it waits
 * too, so verdicts must be quick, and each handle has a time limit after
 * which a missing verdict refuses the message. Two forms:
 *  - a C function (x0x_validator_fn), called synchronously on a library
 *    thread: for C and C++ callers;
 *  - asynchronous requests: X0X_EVENT_VALIDATE records through the agent's
 *    events, answered with x0x_topic_validation_result. This is the form
 *    for callers that live on an event loop (the Node and Python
 *    bindings): a synchronous call from the network path into a
 *    JavaScript or Python event loop would stall the overlay behind that
 *    loop, so the library waits for the report instead, at most the time
 *    limit (as libp2p's asynchronous validation with
 *    ReportMessageValidationResult and a validation timeout does).
 */

/* Flag of x0x_topic_join: publish without joining. The node does not
 * subscribe to the topic for this handle (it carries no traffic for it
 * unless another handle joined it); a publication goes to a subscribed
 * neighbour or walks to a subscriber. */
#define X0X_TOPIC_PUBLISH_ONLY 0x1u

/* Validation time limits in ms: the default (time_limit_ms 0) and the
 * largest accepted. */
#define X0X_DEFAULT_VALIDATION_MS 1000u
#define X0X_MAX_VALIDATION_MS 10000u

/* Verdicts. Any value other than X0X_VALIDATION_ACCEPT refuses. */
#define X0X_VALIDATION_ACCEPT 0
#define X0X_VALIDATION_REJECT 1

/* A validator function (x0x_topic_join_validated). It runs on a library
 * thread, possibly on several at once (one per peer sending the topic's
 * messages), so it must be thread-safe. `message` describes the message as
 * an X0X_EVENT_VALIDATE record does (kind X0X_EVENT_VALIDATE, `topic`,
 * `from`, `payload`, reserved[0] sequence number, reserved[1] timestamp,
 * reserved[2] 0, reserved[3] the topic handle); it and everything it
 * points to are valid only during the call. user_data is the pointer given
 * to x0x_topic_join_validated (never dereferenced by the library). It
 * returns X0X_VALIDATION_ACCEPT or X0X_VALIDATION_REJECT. It should return
 * within a few milliseconds: the sending peer's stream waits for it, and a
 * verdict returned after the handle's time limit counts as a refusal. It
 * may call x0x_topic_leave for its own topic and functions that do not
 * block; it must not destroy its topic's agent. */
typedef int (*x0x_validator_fn)(x0x_topic topic, const x0x_event *message, void *user_data);

#ifndef X0X_INTERNAL_OMIT_PROTOTYPES

/* Joins topic name (NUL-terminated, 1..X0X_MAX_TOPIC bytes) and stores the
 * new handle in *out; leave it with x0x_topic_leave. Unless flags has
 * X0X_TOPIC_PUBLISH_ONLY, the node subscribes to the topic in the overlay
 * and carries its traffic until the handle is left. It does not wait for
 * neighbours (see x0x_topic_neighbours, x0x_topic_events). flags is 0 or
 * X0X_TOPIC_PUBLISH_ONLY. Errors: X0X_ERR_INVALID_HANDLE (agent),
 * X0X_ERR_INVALID_ARG (NULL name or out, empty name, unknown flag bits),
 * X0X_ERR_TOO_LARGE (name longer than X0X_MAX_TOPIC), X0X_ERR_CLOSED. */
int x0x_topic_join(x0x_agent agent, const char *name, uint32_t flags, x0x_topic *out);

/* As x0x_topic_join, with a validator for the handle (see "Validators").
 * With fn non-NULL, fn(topic, message, user_data) gives each verdict;
 * user_data (caller memory, never dereferenced by the library) must stay
 * valid until x0x_topic_leave or x0x_agent_destroy returned. With
 * fn NULL, each message becomes an X0X_EVENT_VALIDATE record of the
 * agent's events and waits until x0x_topic_validation_result answers it; a
 * request the agent's event queue has no room for is refused at once.
 * time_limit_ms (0: X0X_DEFAULT_VALIDATION_MS) bounds the wait for each
 * verdict; none in time refuses the message. While several handles of one
 * topic validate, a message must be accepted by all of them. The validator
 * applies from the moment this returns until the handle is left; when
 * x0x_topic_leave (or x0x_agent_destroy) returns, no call of fn for this
 * handle runs or will run (except the one that called it). Note: a publish
 * on a topic validated asynchronously waits for the verdict, so answer the
 * requests on another thread than the one that publishes (else the
 * publish waits out the time limit and fails with X0X_ERR_REJECTED).
 * Errors: as x0x_topic_join, plus X0X_ERR_INVALID_ARG for time_limit_ms
 * over X0X_MAX_VALIDATION_MS. */
int x0x_topic_join_validated(x0x_agent agent, const char *name, uint32_t flags, x0x_validator_fn fn,
                             void *user_data, uint32_t time_limit_ms, x0x_topic *out);

/* Answers validation request `request` (reserved[2] of an
 * X0X_EVENT_VALIDATE record) of topic: X0X_VALIDATION_ACCEPT lets the
 * message through, any other verdict refuses it. Never blocks; may be
 * called from any thread, the agent's event callback included. Errors:
 * X0X_ERR_INVALID_HANDLE (topic; also after x0x_topic_leave, which lets
 * the handle's pending requests through since its validator no longer
 * applies), X0X_ERR_NOT_FOUND (no such pending request: never issued for
 * this handle, already answered, or its time limit passed and the message
 * was refused). */
int x0x_topic_validation_result(x0x_topic topic, uint64_t request, int verdict);

/* Signs payload (len bytes, copied; may be NULL if len is 0) as the agent
 * and sends it on the topic; this agent's own subscriptions of the topic
 * receive it too. Returns once the message is handed to the overlay (it
 * does not wait for delivery), after the topic's validators accepted it
 * (which may take up to their time limits); out_msg_id (X0X_ID_SIZE bytes,
 * may be NULL) receives the message ID. A publish-only handle publishes the
 * same way. Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (payload
 * NULL with len > 0), X0X_ERR_TOO_LARGE (over the overlay's limit of
 * 1 MiB), X0X_ERR_REJECTED (a validator of the topic refused it, or gave
 * no verdict in time), X0X_ERR_CLOSED. */
int x0x_topic_publish(x0x_topic topic, const uint8_t *payload, size_t len, uint8_t out_msg_id[X0X_ID_SIZE]);

/* Opens a subscription to the topic's messages from now on and stores its
 * handle in *out: each message, verified and accepted by the topic's
 * validators, arrives as an X0X_EVENT_TOPIC_MESSAGE record with
 * reserved[3] == *out; losses as X0X_EVENT_LAGGED. A handle may have
 * several subscriptions; each receives every message. Close it with
 * x0x_subscription_close (x0x_topic_leave closes it too). Errors:
 * X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (out NULL, or a handle
 * joined with X0X_TOPIC_PUBLISH_ONLY), X0X_ERR_CLOSED. */
int x0x_topic_subscribe(x0x_topic topic, x0x_subscription *out);

/* Opens a subscription to changes of this node's neighbours on the topic
 * from now on: X0X_EVENT_TOPIC_NEIGHBOUR_UP and _DOWN records with
 * reserved[3] == *out; losses as X0X_EVENT_LAGGED. The neighbours are the
 * node's, shared by every handle of the topic (a publish-only handle may
 * watch them too). Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG
 * (out NULL), X0X_ERR_CLOSED. */
int x0x_topic_events(x0x_topic topic, x0x_subscription *out);

/* Closes a subscription. After it returns no record of the subscription is
 * queued (records already queued stay drainable: skip them by their
 * handle), and with a callback none is passed on except one being handed
 * over at that moment. Errors: X0X_ERR_INVALID_HANDLE (also a second
 * close, or a subscription of a left topic or a destroyed agent). */
int x0x_subscription_close(x0x_subscription sub);

/* Lists this node's current neighbours on the topic (its tree's eager and
 * lazy peers), sorted, in the form of x0x_connected_peers: *out_ids
 * receives *out_count * X0X_ID_SIZE bytes freed with x0x_free (NULL and 0
 * when there are none, or when the node does not carry the topic).
 * Errors: X0X_ERR_INVALID_HANDLE, X0X_ERR_INVALID_ARG (a NULL pointer). */
int x0x_topic_neighbours(x0x_topic topic, uint8_t **out_ids, size_t *out_count);

/* Leaves the topic: closes the handle's subscriptions (as
 * x0x_subscription_close), lets its pending validation requests through,
 * removes its validator (waiting for running calls of its validator
 * function, unless called from one of them) and stops the node carrying
 * the topic if no other handle joined it. The handle and its
 * subscriptions become invalid. Errors: X0X_ERR_INVALID_HANDLE (including
 * a second leave). */
int x0x_topic_leave(x0x_topic topic);

#endif /* X0X_INTERNAL_OMIT_PROTOTYPES */

#ifdef __cplusplus
}
#endif

#endif /* X0X_H */

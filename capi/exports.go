package main

/*
#include <stdlib.h>
#include "helpers.h"
*/
import "C"

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

// Limits of include/x0x.h.
const (
	maxString     = C.X0X_MAX_STRING
	maxListName   = C.X0X_MAX_TASKLIST_NAME
	maxTaskTitle  = C.X0X_MAX_TASK_TITLE
	maxTaskDesc   = C.X0X_MAX_TASK_DESCRIPTION
	maxPassphrase = C.X0X_MAX_PASSPHRASE
	maxBundle     = C.X0X_MAX_BUNDLE
	maxPayload    = C.X0X_MAX_PAYLOAD
	defaultQueue  = C.X0X_DEFAULT_EVENT_QUEUE
	maxQueue      = C.X0X_MAX_EVENT_QUEUE
	idSize        = C.X0X_ID_SIZE
	defaultTimout = C.X0X_DEFAULT_TIMEOUT_MS * time.Millisecond
)

// call runs f for an exported function: it recovers a panic as
// statusPanic, records the outcome as the thread's last error and returns
// the status. Exported functions run on the calling C thread, so the
// thread-local error is the caller's.
// The message is prefixed with the function's name.
func call(name string, f func() error) (st status) {
	defer func() {
		if r := recover(); r != nil {
			st = statusPanic
			setLastError(fmt.Sprintf("%s: internal panic (please report): %v", name, r))
		}
	}()
	err := f()
	if err == nil {
		C.capi_clear_error()
		return statusOK
	}
	setLastError(name + ": " + err.Error())
	return classify(err)
}

// setLastError stores msg as the calling thread's last error.
func setLastError(msg string) {
	if msg == "" {
		msg = "x0x: unknown error"
	}
	b := []byte(msg)
	C.capi_set_error((*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b)))
}

// lastError returns the calling thread's last error (for tests).
func lastError() string { return C.GoString(C.capi_get_error()) }

// goString copies the NUL-terminated C string p, which must be non-NULL
// and at most maxString bytes long.
func goString(p *C.char, what string) (string, error) { return goStringMax(p, maxString, what) }

// goStringMax copies the NUL-terminated C string p, which must be non-NULL
// and at most max bytes long (at most max+1 bytes are read looking for the
// NUL; the header names the strings with a bound other than
// X0X_MAX_STRING).
func goStringMax(p *C.char, max int, what string) (string, error) {
	if p == nil {
		return "", errInvalidArg(what + " is NULL")
	}
	n := C.capi_strnlen(p, C.size_t(max))
	if n > C.size_t(max) {
		return "", errTooLarge(fmt.Sprintf("%s is longer than %d bytes", what, max))
	}
	return C.GoStringN(p, C.int(n)), nil
}

// goBytes copies n bytes at p; n must be at most max and p non-NULL if n > 0.
func goBytes(p *C.uint8_t, n C.size_t, max uint64, what string) ([]byte, error) {
	if uint64(n) > max {
		return nil, errTooLarge(fmt.Sprintf("%s is %d bytes, limit %d", what, uint64(n), max))
	}
	if n == 0 {
		return nil, nil
	}
	if p == nil {
		return nil, errInvalidArg(what + " is NULL but its length is not 0")
	}
	return C.GoBytes(unsafe.Pointer(p), C.int(n)), nil
}

// passphrase copies a required (non-empty) passphrase.
func passphrase(p *C.uint8_t, n C.size_t) ([]byte, error) {
	if n == 0 {
		return nil, errInvalidArg("passphrase is empty")
	}
	return goBytes(p, n, maxPassphrase, "passphrase")
}

// readID copies the 32-byte ID at p.
func readID(p *C.uint8_t, what string) (x0x.ID, error) {
	var id x0x.ID
	if p == nil {
		return id, errInvalidArg(what + " is NULL")
	}
	copy(id[:], unsafe.Slice((*byte)(unsafe.Pointer(p)), idSize))
	return id, nil
}

// ids returns a malloc'd array of the IDs (NULL if none).
func ids(list []x0x.ID) *C.uint8_t {
	if len(list) == 0 {
		return nil
	}
	b := make([]byte, 0, idSize*len(list))
	for _, id := range list {
		b = append(b, id[:]...)
	}
	return (*C.uint8_t)(C.CBytes(b))
}

// timeout converts a timeout in ms (0: the default) to a context.
func timeout(ms C.uint32_t) (context.Context, context.CancelFunc) {
	d := time.Duration(ms) * time.Millisecond
	if ms == 0 {
		d = defaultTimout
	}
	return context.WithTimeout(context.Background(), d)
}

// checkAddr validates "host:port" or "<64 hex id>@host:port".
func checkAddr(addr string) error {
	rest := addr
	if id, hp, ok := strings.Cut(addr, "@"); ok {
		if _, err := x0x.ParseID(id); err != nil {
			return errInvalidArg(fmt.Sprintf("address %q: %v", addr, err))
		}
		rest = hp
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return errInvalidArg(fmt.Sprintf("address %q: %v", addr, err))
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil || host == "" {
		return errInvalidArg(fmt.Sprintf("address %q: want host:port with a numeric port", addr))
	}
	return nil
}

// config is what a config handle names.
type config struct {
	mu             sync.Mutex
	dataDir        string
	bindAddr       string
	network        string
	machineKeyPath string
	bootstrap      []string
	passphrase     []byte
	identity       *x0x.AgentKey
	queueCap       int
}

func getConfig(h uint64) (*config, error) {
	obj, err := handles.get(h, kindConfig)
	if err != nil {
		return nil, err
	}
	return obj.(*config), nil
}

func getAgent(h uint64) (*agentEntry, error) {
	obj, err := handles.get(h, kindAgent)
	if err != nil {
		return nil, err
	}
	return obj.(*agentEntry), nil
}

func getIdentity(h uint64) (*x0x.AgentKey, error) {
	obj, err := handles.get(h, kindIdentity)
	if err != nil {
		return nil, err
	}
	return obj.(*x0x.AgentKey), nil
}

//export x0x_id_to_hex
func x0x_id_to_hex(id *C.uint8_t, out *C.char) C.int {
	return C.int(call("x0x_id_to_hex", func() error {
		v, err := readID(id, "id")
		if err != nil {
			return err
		}
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		s := v.String()
		if len(s) != 2*idSize {
			return fmt.Errorf("x0x: ID formatted as %d characters", len(s))
		}
		dst := unsafe.Slice((*byte)(unsafe.Pointer(out)), 2*idSize+1)
		copy(dst, s)
		dst[2*idSize] = 0
		return nil
	}))
}

//export x0x_id_from_hex
func x0x_id_from_hex(hex *C.char, out *C.uint8_t) C.int {
	return C.int(call("x0x_id_from_hex", func() error {
		s, err := goString(hex, "hex")
		if err != nil {
			return err
		}
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		id, err := x0x.ParseID(s)
		if err != nil {
			return errInvalidArg(err.Error())
		}
		copyID(out, id)
		return nil
	}))
}

//export x0x_config_new
func x0x_config_new(out *C.uint64_t) C.int {
	return C.int(call("x0x_config_new", func() error {
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		h, err := handles.add(kindConfig, &config{queueCap: defaultQueue})
		if err != nil {
			return err
		}
		*out = C.uint64_t(h)
		return nil
	}))
}

//export x0x_config_set
func x0x_config_set(h C.uint64_t, key, value *C.char) C.int {
	return C.int(call("x0x_config_set", func() error {
		cfg, err := getConfig(uint64(h))
		if err != nil {
			return err
		}
		k, err := goString(key, "key")
		if err != nil {
			return err
		}
		v, err := goString(value, "value")
		if err != nil {
			return err
		}
		cfg.mu.Lock()
		defer cfg.mu.Unlock()
		switch k {
		case "data_dir":
			cfg.dataDir = v
		case "bind_addr":
			if _, _, err := net.SplitHostPort(v); err != nil {
				return errInvalidArg(fmt.Sprintf("bind_addr %q: %v", v, err))
			}
			cfg.bindAddr = v
		case "bootstrap":
			if err := checkAddr(v); err != nil {
				return err
			}
			cfg.bootstrap = append(cfg.bootstrap, v)
		case "network":
			if _, err := x0x.BootstrapPeers(v); err != nil {
				return errInvalidArg(err.Error())
			}
			cfg.network = v
		case "machine_key_path":
			cfg.machineKeyPath = v
		case "event_queue_capacity":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n < 1 || n > maxQueue {
				return errInvalidArg(fmt.Sprintf("event_queue_capacity %q: want 1..%d", v, maxQueue))
			}
			cfg.queueCap = int(n)
		default:
			return errInvalidArg(fmt.Sprintf("unknown config key %q", k))
		}
		return nil
	}))
}

//export x0x_config_set_passphrase
func x0x_config_set_passphrase(h C.uint64_t, p *C.uint8_t, n C.size_t) C.int {
	return C.int(call("x0x_config_set_passphrase", func() error {
		cfg, err := getConfig(uint64(h))
		if err != nil {
			return err
		}
		pass, err := goBytes(p, n, maxPassphrase, "passphrase")
		if err != nil {
			return err
		}
		cfg.mu.Lock()
		cfg.passphrase = pass
		cfg.mu.Unlock()
		return nil
	}))
}

//export x0x_config_set_identity
func x0x_config_set_identity(h, id C.uint64_t) C.int {
	return C.int(call("x0x_config_set_identity", func() error {
		cfg, err := getConfig(uint64(h))
		if err != nil {
			return err
		}
		var kp *x0x.AgentKey
		if id != 0 {
			if kp, err = getIdentity(uint64(id)); err != nil {
				return err
			}
		}
		cfg.mu.Lock()
		cfg.identity = kp
		cfg.mu.Unlock()
		return nil
	}))
}

//export x0x_config_destroy
func x0x_config_destroy(h C.uint64_t) C.int {
	return C.int(call("x0x_config_destroy", func() error {
		_, err := handles.remove(uint64(h), kindConfig)
		return err
	}))
}

//export x0x_agent_create
func x0x_agent_create(cfgH C.uint64_t, timeoutMS C.uint32_t, out *C.uint64_t) C.int {
	return C.int(call("x0x_agent_create", func() error {
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		c := &config{queueCap: defaultQueue}
		if cfgH != 0 {
			cfg, err := getConfig(uint64(cfgH))
			if err != nil {
				return err
			}
			c = cfg.snapshot()
		}
		ctx, cancel := timeout(timeoutMS)
		defer cancel()
		h, err := newAgent(ctx, c)
		if err != nil {
			return err
		}
		*out = C.uint64_t(h)
		return nil
	}))
}

// snapshot copies the configuration under its lock.
func (cfg *config) snapshot() *config {
	cfg.mu.Lock()
	defer cfg.mu.Unlock()
	return &config{
		dataDir: cfg.dataDir, bindAddr: cfg.bindAddr, network: cfg.network,
		machineKeyPath: cfg.machineKeyPath, bootstrap: append([]string(nil), cfg.bootstrap...),
		passphrase: cfg.passphrase, identity: cfg.identity, queueCap: cfg.queueCap,
	}
}

// newAgent builds an agent from c, registers it and starts its event
// dispatcher; it returns the agent handle.
func newAgent(ctx context.Context, c *config) (uint64, error) {
	b := x0x.NewBuilder().WithDataDir(c.dataDir).WithBindAddr(c.bindAddr).
		WithBootstrap(c.bootstrap...).WithPassphrase(c.passphrase)
	if c.network != "" {
		b = b.WithNetwork(c.network)
	}
	if c.machineKeyPath != "" {
		b = b.WithMachineKey(c.machineKeyPath)
	}
	if c.identity != nil {
		b = b.WithAgentKey(c.identity)
	}
	a, err := b.Build(ctx)
	if err != nil {
		return 0, err
	}
	q, err := newEventQueue(c.queueCap)
	if err != nil {
		a.Close()
		return 0, err
	}
	events, err := a.Events()
	if err != nil {
		a.Close()
		q.close()
		return 0, err
	}
	e := newAgentEntry(a, q)
	h, err := handles.add(kindAgent, e)
	if err != nil {
		a.Close()
		q.close()
		return 0, err
	}
	e.handle = h
	e.fwd.Add(1)
	go e.forwardEvents(events)
	go e.run()
	return h, nil
}

//export x0x_agent_destroy
func x0x_agent_destroy(h C.uint64_t) C.int {
	return C.int(call("x0x_agent_destroy", func() error {
		return destroyAgentFrom(uint64(h), uint64(C.capi_in_callback()), uint64(C.capi_in_validator()))
	}))
}

// destroyAgent unregisters and closes agent h and waits for its event
// dispatcher to finish, unless the caller is that dispatcher (inCallbackOf
// is the agent whose callback runs on the calling thread, or 0).
func destroyAgent(h, inCallbackOf uint64) error { return destroyAgentFrom(h, inCallbackOf, 0) }

// destroyAgentFrom is destroyAgent called on a thread that may run the
// validator function of topic handle inValidatorOf (or 0): the destroy
// does not wait for that call.
func destroyAgentFrom(h, inCallbackOf, inValidatorOf uint64) error {
	obj, err := handles.remove(h, kindAgent)
	if err != nil {
		return err
	}
	e := obj.(*agentEntry)
	e.closed.Store(true)
	close(e.stop)
	e.closeTopics(inValidatorOf) // topic and subscription handles end
	e.dropListHandles()          // and the agent's Close closes every task list
	e.dropGroupHandles()         // and every group
	err = e.a.Close()
	if inCallbackOf != e.handle {
		<-e.done
		e.fwd.Wait()
	}
	return err
}

// withAgent runs f on the agent named by h.
func withAgent(name string, h C.uint64_t, f func(e *agentEntry) error) C.int {
	return C.int(call(name, func() error {
		e, err := getAgent(uint64(h))
		if err != nil {
			return err
		}
		return f(e)
	}))
}

// openHandle ends the calls that open a group or a task list into *out:
// with out checked, it runs open under e's call context, registers what
// it opened with register and stores the new handle in *out.
func openHandle[T any](e *agentEntry, out *C.uint64_t, open func(context.Context) (T, error),
	register func(T) (uint64, error)) error {
	if out == nil {
		return errInvalidArg("out is NULL")
	}
	ctx, cancel := e.callCtx(0)
	defer cancel()
	v, err := open(ctx)
	if err != nil {
		return err
	}
	h, err := register(v)
	if err != nil {
		return err
	}
	*out = C.uint64_t(h)
	return nil
}

//export x0x_agent_id
func x0x_agent_id(h C.uint64_t, out *C.uint8_t) C.int {
	return withAgent("x0x_agent_id", h, func(e *agentEntry) error {
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		copyID(out, e.a.AgentID())
		return nil
	})
}

//export x0x_machine_id
func x0x_machine_id(h C.uint64_t, out *C.uint8_t) C.int {
	return withAgent("x0x_machine_id", h, func(e *agentEntry) error {
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		copyID(out, e.a.MachineID())
		return nil
	})
}

//export x0x_agent_addr
func x0x_agent_addr(h C.uint64_t, out **C.char) C.int {
	return withAgent("x0x_agent_addr", h, func(e *agentEntry) error {
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		*out = C.CString(e.a.Addr())
		return nil
	})
}

//export x0x_join_network
func x0x_join_network(h C.uint64_t, timeoutMS C.uint32_t) C.int {
	return withAgent("x0x_join_network", h, func(e *agentEntry) error {
		ctx, cancel := e.callCtx(timeoutMS)
		defer cancel()
		return e.a.JoinNetwork(ctx)
	})
}

//export x0x_connect
func x0x_connect(h C.uint64_t, addr *C.char, timeoutMS C.uint32_t, outPeer *C.uint8_t) C.int {
	return withAgent("x0x_connect", h, func(e *agentEntry) error {
		s, err := goString(addr, "addr")
		if err != nil {
			return err
		}
		if err := checkAddr(s); err != nil {
			return err
		}
		ctx, cancel := e.callCtx(timeoutMS)
		defer cancel()
		peer, err := e.a.Connect(ctx, s)
		if err != nil {
			return err
		}
		if outPeer != nil {
			copyID(outPeer, peer)
		}
		return nil
	})
}

//export x0x_send_direct
func x0x_send_direct(h C.uint64_t, to *C.uint8_t, payload *C.uint8_t, n C.size_t, timeoutMS C.uint32_t) C.int {
	return withAgent("x0x_send_direct", h, func(e *agentEntry) error {
		dst, err := readID(to, "to")
		if err != nil {
			return err
		}
		data, err := goBytes(payload, n, maxPayload, "payload")
		if err != nil {
			return err
		}
		ctx, cancel := e.callCtx(timeoutMS)
		defer cancel()
		return e.a.SendDirect(ctx, dst, data)
	})
}

//export x0x_wait_for_agent
func x0x_wait_for_agent(h C.uint64_t, id *C.uint8_t, timeoutMS C.uint32_t) C.int {
	return withAgent("x0x_wait_for_agent", h, func(e *agentEntry) error {
		v, err := readID(id, "id")
		if err != nil {
			return err
		}
		ctx, cancel := e.callCtx(timeoutMS)
		defer cancel()
		return e.a.WaitForAgent(ctx, v)
	})
}

//export x0x_connected_peers
func x0x_connected_peers(h C.uint64_t, out **C.uint8_t, count *C.size_t) C.int {
	return withAgent("x0x_connected_peers", h, func(e *agentEntry) error {
		if out == nil || count == nil {
			return errInvalidArg("out_ids or out_count is NULL")
		}
		peers := e.a.Peers()
		list := make([]x0x.ID, len(peers))
		for i, p := range peers {
			list[i] = p.ID
		}
		*out, *count = ids(list), C.size_t(len(list))
		return nil
	})
}

//export x0x_peer_agents
func x0x_peer_agents(h C.uint64_t, peer *C.uint8_t, out **C.uint8_t, count *C.size_t) C.int {
	return withAgent("x0x_peer_agents", h, func(e *agentEntry) error {
		p, err := readID(peer, "peer")
		if err != nil {
			return err
		}
		if out == nil || count == nil {
			return errInvalidArg("out_ids or out_count is NULL")
		}
		agents := e.a.PeerAgents(p)
		*out, *count = ids(agents), C.size_t(len(agents))
		return nil
	})
}

//export x0x_identity_export
func x0x_identity_export(h C.uint64_t, p *C.uint8_t, n C.size_t, out **C.uint8_t, outLen *C.size_t) C.int {
	return withAgent("x0x_identity_export", h, func(e *agentEntry) error {
		pass, err := passphrase(p, n)
		if err != nil {
			return err
		}
		if out == nil || outLen == nil {
			return errInvalidArg("out or out_len is NULL")
		}
		bundle, err := e.a.ExportIdentity(pass)
		if err != nil {
			return err
		}
		*out, *outLen = (*C.uint8_t)(C.CBytes(bundle)), C.size_t(len(bundle))
		return nil
	})
}

//export x0x_identity_import
func x0x_identity_import(bp *C.uint8_t, bn C.size_t, p *C.uint8_t, n C.size_t, out *C.uint64_t) C.int {
	return C.int(call("x0x_identity_import", func() error {
		if bn == 0 {
			return errInvalidArg("bundle is empty")
		}
		bundle, err := goBytes(bp, bn, maxBundle, "bundle")
		if err != nil {
			return err
		}
		pass, err := passphrase(p, n)
		if err != nil {
			return err
		}
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		kp, err := x0x.ImportIdentity(bundle, pass)
		if err != nil {
			return err
		}
		h, err := handles.add(kindIdentity, kp)
		if err != nil {
			return err
		}
		*out = C.uint64_t(h)
		return nil
	}))
}

//export x0x_identity_agent_id
func x0x_identity_agent_id(h C.uint64_t, out *C.uint8_t) C.int {
	return C.int(call("x0x_identity_agent_id", func() error {
		kp, err := getIdentity(uint64(h))
		if err != nil {
			return err
		}
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		copyID(out, kp.ID())
		return nil
	}))
}

//export x0x_identity_save
func x0x_identity_save(h C.uint64_t, dir *C.char, p *C.uint8_t, n C.size_t) C.int {
	return C.int(call("x0x_identity_save", func() error {
		kp, err := getIdentity(uint64(h))
		if err != nil {
			return err
		}
		d, err := goString(dir, "dir")
		if err != nil {
			return err
		}
		pass, err := goBytes(p, n, maxPassphrase, "passphrase")
		if err != nil {
			return err
		}
		return x0x.SaveAgentKey(d, kp, pass)
	}))
}

//export x0x_identity_destroy
func x0x_identity_destroy(h C.uint64_t) C.int {
	return C.int(call("x0x_identity_destroy", func() error {
		_, err := handles.remove(uint64(h), kindIdentity)
		return err
	}))
}

//export x0x_events_fd
func x0x_events_fd(h C.uint64_t, fd *C.int) C.int {
	return withAgent("x0x_events_fd", h, func(e *agentEntry) error {
		if fd == nil {
			return errInvalidArg("fd is NULL")
		}
		v := e.q.fd()
		if v < 0 {
			return &apiError{statusClosed, "x0x: agent closed"}
		}
		*fd = v
		return nil
	})
}

//export x0x_events_drain
func x0x_events_drain(h C.uint64_t, out *C.x0x_event, max C.size_t, n *C.size_t) C.int {
	return withAgent("x0x_events_drain", h, func(e *agentEntry) error {
		if n == nil {
			return errInvalidArg("n is NULL")
		}
		if out == nil && max > 0 {
			return errInvalidArg("out is NULL")
		}
		*n = 0
		if max == 0 {
			return nil
		}
		if max > maxQueue {
			max = maxQueue // never more than a queue holds
		}
		*n = C.size_t(e.q.drain(unsafe.Slice(out, int(max))))
		return nil
	})
}

//export x0x_events_dropped
func x0x_events_dropped(h C.uint64_t, out *C.uint64_t) C.int {
	return withAgent("x0x_events_dropped", h, func(e *agentEntry) error {
		if out == nil {
			return errInvalidArg("out is NULL")
		}
		*out = C.uint64_t(e.q.droppedCount() + e.subscriptionDrops())
		return nil
	})
}

//export x0x_set_event_callback
func x0x_set_event_callback(h C.uint64_t, cb C.x0x_event_cb, ud unsafe.Pointer) C.int {
	return withAgent("x0x_set_event_callback", h, func(e *agentEntry) error {
		e.setCallback(cb, ud)
		return nil
	})
}

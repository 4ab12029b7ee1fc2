package main

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/saorsa-labs/x0x-go/core/x0x"
)

func testAgent(t testing.TB, bootstrap ...string) (uint64, *agentEntry) {
	t.Helper()
	return testAgentQueue(t, 64, bootstrap...)
}

// testAgentQueue is an agent on 127.0.0.1 whose event queue holds
// queueCap records, destroyed when the test ends.
func testAgentQueue(t testing.TB, queueCap int, bootstrap ...string) (uint64, *agentEntry) {
	t.Helper()
	return testAgentAt(t, t.TempDir(), queueCap, bootstrap...)
}

// testAgentAt is testAgentQueue's agent with its data in dataDir.
func testAgentAt(t testing.TB, dataDir string, queueCap int, bootstrap ...string) (uint64, *agentEntry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := newAgent(ctx, &config{dataDir: dataDir, bindAddr: "127.0.0.1:0", bootstrap: bootstrap, queueCap: queueCap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = destroyAgent(h, 0) })
	e, err := getAgent(h)
	if err != nil {
		t.Fatal(err)
	}
	return h, e
}

// waitDirect pops events from e's queue until a direct message arrives.
func waitDirect(t *testing.T, e *agentEntry) event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range e.q.pop(16) {
			if ev.kind == uint32(eventKind(x0x.EventDirectMessage)) {
				return ev
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no direct message queued")
	return event{}
}

// Two agents exchange a message through the queue the pull API reads;
// agents used concurrently with their destruction fail cleanly, and the
// dispatcher goroutines end (checked by goleak in TestMain).
func TestAgentsPullQueueAndConcurrentDestroy(t *testing.T) {
	ha, a := testAgent(t)
	hb, b := testAgent(t, a.a.MachineID().String()+"@"+a.a.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.a.JoinNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.a.WaitForAgent(ctx, a.a.AgentID()); err != nil {
		t.Fatal(err)
	}
	if err := b.a.SendDirect(ctx, a.a.AgentID(), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	ev := waitDirect(t, a)
	if string(ev.payload) != "hi" || ev.from != b.a.AgentID() || ev.to != a.a.AgentID() {
		t.Fatalf("got %+v", ev)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				e, err := getAgent(hb)
				if err == nil {
					err = e.a.SendDirect(ctx, e.a.AgentID(), []byte("x"))
					e.q.pop(8)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	if err := destroyAgent(hb, 0); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if st := classify(err); st != statusClosed && st != statusInvalidHandle {
			t.Errorf("call racing with destroy: %v (status %d)", err, st)
		}
	}
	select {
	case <-b.done:
	default:
		t.Fatal("destroy returned before the dispatcher ended")
	}
	if b.q.fd() != -1 {
		t.Fatal("events fd still open after destroy")
	}
	if err := destroyAgent(hb, 0); classify(err) != statusInvalidHandle {
		t.Fatalf("second destroy: %v", err)
	}
	if err := destroyAgent(ha, ha); err != nil { // as if from its own callback: no wait
		t.Fatal(err)
	}
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("dispatcher did not end after a destroy that did not wait")
	}
}

func TestNewAgentErrorsAreClassified(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	h, err := newAgent(ctx, &config{dataDir: dir, bindAddr: "127.0.0.1:0", passphrase: []byte("right"), queueCap: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := destroyAgent(h, 0); err != nil {
		t.Fatal(err)
	}
	_, err = newAgent(ctx, &config{dataDir: dir, bindAddr: "127.0.0.1:0", passphrase: []byte("wrong"), queueCap: 1})
	if classify(err) != statusWrongPassphrase {
		t.Fatalf("wrong passphrase: %v (status %d)", err, classify(err))
	}
	expired, cancel := context.WithCancel(ctx)
	cancel()
	_, err = newAgent(expired, &config{dataDir: t.TempDir(), bindAddr: "127.0.0.1:0", queueCap: 1})
	if err == nil || !(errors.Is(err, context.Canceled) || classify(err) == statusClosed) {
		t.Fatalf("cancelled build: %v", err)
	}
}

// A blocking call ends with X0X_ERR_CLOSED when its agent is destroyed,
// instead of waiting out its timeout.
func TestBlockingCallEndsOnDestroy(t *testing.T) {
	h, e := testAgent(t)
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := e.callCtx(60000)
		defer cancel()
		errc <- e.a.WaitForAgent(ctx, x0x.AgentID{7})
	}()
	time.Sleep(50 * time.Millisecond)
	if err := destroyAgent(h, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if classify(err) != statusClosed {
			t.Fatalf("wait after destroy: %v (status %d)", err, classify(err))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait_for_agent still blocked after destroy")
	}
}

package transport

import (
	"errors"
	"fmt"
	"testing"

	"github.com/quic-go/quic-go"
)

// TestRemoteCloseOnAStreamIsTranslated: the peer's CONNECTION_CLOSE can
// reach a stream read before the connection's context is done; closedErr
// then translates the stream's error as it would the context's (a
// refusal for the connection limit was once reported as a raw QUIC error).
func TestRemoteCloseOnAStreamIsTranslated(t *testing.T) {
	streamErr := fmt.Errorf("reading the proof: %w", &quic.ApplicationError{Remote: true, ErrorCode: codeConnLimit, ErrorMessage: "connection limit reached"})
	if !isRemoteClose(streamErr) {
		t.Fatal("a wrapped remote application error is not recognised")
	}
	err := remoteReason(streamErr)
	if !errors.Is(err, ErrConnLimit) || !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("%v: want ErrConnLimit and ErrPeerClosed", err)
	}
	local := &quic.ApplicationError{Remote: false, ErrorCode: codeConnLimit}
	if isRemoteClose(local) || isRemoteClose(errors.New("timeout")) {
		t.Fatal("a local close or another error taken for the peer's close")
	}
}

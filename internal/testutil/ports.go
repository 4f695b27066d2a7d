package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
)

// Ports handed out by FreeAddr lie below the kernel's ephemeral range
// (32768–60999 on Linux), in a band of their own: a port found free with
// net.Listen("127.0.0.1:0") and closed again is an ephemeral one, and any
// outgoing connection of a test running beside it may take it as its source
// port before the service under test binds it ("address already in use").
// No outgoing connection ever gets a port from this band. freeClusterPort
// uses 20000–22767 (bus ports +10000), apart from it.
const (
	freePortLow  = 10000
	freePortHigh = 20000
)

var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreeAddr returns a loopback address ("127.0.0.1:port") that nothing
// listens on now, for a server a test configures and starts itself. A port
// is never handed out twice in one process; other processes pick at random
// from the same band, so a collision needs the same pick within the moment
// between this check and the bind.
func FreeAddr() string {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		p := freePortLow + rand.IntN(freePortHigh-freePortLow)
		if handedOut.ports[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		handedOut.ports[p] = true
		return addr
	}
	panic("testutil: no free loopback port in 10000-19999")
}

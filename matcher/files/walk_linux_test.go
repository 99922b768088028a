package files

import (
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestSysCallerTurnsBlocking checks the walk's switch from raw to blocking
// system calls: quick calls stay raw, and one that takes over 2 ms (here a
// 3 ms nanosleep, as a disk wait would) makes every later call blocking.
func TestSysCallerTurnsBlocking(t *testing.T) {
	var c sysCaller
	if _, errno := c.call(unix.SYS_GETPID, 0, 0, 0); errno != 0 || c.blocking {
		t.Fatalf("getpid: errno %v, blocking %v", errno, c.blocking)
	}
	ts := unix.NsecToTimespec((3 * time.Millisecond).Nanoseconds())
	if _, errno := c.call(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0); errno != 0 {
		t.Fatalf("nanosleep: %v", errno)
	}
	if !c.blocking {
		t.Fatal("a 3 ms call left the walk on raw calls")
	}
}

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
	// A signal (Go's preemption, under load) can cut the sleep short with
	// EINTR: sleep on for the rest; 30 ms leaves some piece over 2 ms.
	ts := unix.NsecToTimespec((30 * time.Millisecond).Nanoseconds())
	for {
		var rem unix.Timespec
		_, errno := c.call(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), uintptr(unsafe.Pointer(&rem)), 0)
		if errno == unix.EINTR && !c.blocking {
			ts = rem
			continue
		}
		if errno != 0 && errno != unix.EINTR {
			t.Fatalf("nanosleep: %v", errno)
		}
		break
	}
	if !c.blocking {
		t.Fatal("a 30 ms call left the walk on raw calls")
	}
}

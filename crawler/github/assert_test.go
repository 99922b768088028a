package github

import (
	"cmp"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Small require-style asserts for the backfill tests: each stops the test
// at the first failure, with an optional fmt message.

func msg(args []any) string {
	if len(args) == 0 {
		return ""
	}
	if f, ok := args[0].(string); ok {
		return ": " + fmt.Sprintf(f, args[1:]...)
	}
	return ": " + fmt.Sprint(args...)
}

func noErr(t testing.TB, err error, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error %v%s", err, msg(args))
	}
}

func isErr(t testing.TB, err error, args ...any) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error%s", msg(args))
	}
}

func equal(t testing.TB, want, got any, args ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("got %#v, want %#v%s", got, want, msg(args))
	}
}

func isTrue(t testing.TB, ok bool, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf("want true%s", msg(args))
	}
}

func isFalse(t testing.TB, ok bool, args ...any) {
	t.Helper()
	if ok {
		t.Fatalf("want false%s", msg(args))
	}
}

func greater[T cmp.Ordered](t testing.TB, a, b T, args ...any) {
	t.Helper()
	if !(a > b) {
		t.Fatalf("%v is not greater than %v%s", a, b, msg(args))
	}
}

func less[T cmp.Ordered](t testing.TB, a, b T, args ...any) {
	t.Helper()
	if !(a < b) {
		t.Fatalf("%v is not less than %v%s", a, b, msg(args))
	}
}

func hasLen(t testing.TB, x any, n int, args ...any) {
	t.Helper()
	if l := reflect.ValueOf(x).Len(); l != n {
		t.Fatalf("length %d, want %d%s", l, n, msg(args))
	}
}

func notEmpty(t testing.TB, x any, args ...any) {
	t.Helper()
	if reflect.ValueOf(x).Len() == 0 {
		t.Fatalf("want non-empty%s", msg(args))
	}
}

func contains(t testing.TB, s, sub string, args ...any) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%q does not contain %q%s", s, sub, msg(args))
	}
}

func notContains(t testing.TB, s, sub string, args ...any) {
	t.Helper()
	if strings.Contains(s, sub) {
		t.Fatalf("%.200q contains %q%s", s, sub, msg(args))
	}
}

func inDelta(t testing.TB, want, got, delta float64, args ...any) {
	t.Helper()
	if math.Abs(want-got) > delta {
		t.Fatalf("got %v, want %v ± %v%s", got, want, delta, msg(args))
	}
}

func isNil(t testing.TB, x any, args ...any) {
	t.Helper()
	if x != nil && !reflect.ValueOf(x).IsNil() {
		t.Fatalf("want nil, got %#v%s", x, msg(args))
	}
}

func notNil(t testing.TB, x any, args ...any) {
	t.Helper()
	if x == nil || reflect.ValueOf(x).IsNil() {
		t.Fatalf("want non-nil%s", msg(args))
	}
}

func isZero(t testing.TB, x any, args ...any) {
	t.Helper()
	if !reflect.ValueOf(x).IsZero() {
		t.Fatalf("want zero, got %#v%s", x, msg(args))
	}
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, cond func() bool, waitFor, tick time.Duration, args ...any) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s%s", waitFor, msg(args))
		}
		time.Sleep(tick)
	}
}

// metricValue reads a counter's or gauge's value.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	noErr(t, m.Write(&out))
	switch {
	case out.Counter != nil:
		return out.Counter.GetValue()
	case out.Gauge != nil:
		return out.Gauge.GetValue()
	}
	t.Fatalf("metric is neither a counter nor a gauge")
	return 0
}

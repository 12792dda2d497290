package torture

import (
	"strings"
	"testing"
)

// TestLockModel checks the lock model and the mutual-exclusion check on
// hand-written histories, so a passing torture run means something: each
// broken history must be refused.
func TestLockModel(t *testing.T) {
	acq := func(client int, call, ret, ttl int64, tok string, fencing, at int64) lockOp {
		return lockOp{Name: "l", Client: client, In: lockIn{Kind: "acquire", TTL: ttl, Call: call, Ret: ret},
			Out: lockOut{Result: resOK, Token: tok, Fencing: fencing, Exp: at + ttl}}
	}
	op := func(client int, kind, tok string, call, ret, ttl int64, out lockOut) lockOp {
		return lockOp{Name: "l", Client: client, In: lockIn{Kind: kind, Token: tok, TTL: ttl, Call: call, Ret: ret}, Out: out}
	}
	ok := lockOut{Result: resOK}
	for _, tc := range []struct {
		name      string
		ops       []lockOp
		linear    bool
		exclusive bool
	}{
		{"grant, release, grant", []lockOp{
			acq(0, 100, 110, 1000, "A", 1, 105),
			op(0, "release", "A", 200, 210, 0, ok),
			acq(1, 220, 230, 1000, "B", 2, 225),
		}, true, true},
		{"grant after expiry", []lockOp{
			acq(0, 100, 110, 100, "A", 1, 105),
			acq(1, 300, 310, 100, "B", 2, 305),
			op(0, "renew", "A", 320, 330, 100, lockOut{Result: resNotOwner}),
		}, true, true},
		{"lost acquire took effect: fencing skips one", []lockOp{
			acq(0, 100, 110, 100, "A", 1, 105),
			op(1, "acquire", "", 300, 5000, 100, lockOut{Result: resUnknown}),
			acq(2, 1000, 1010, 100, "C", 3, 1005),
		}, true, true},
		{"lost release took effect", []lockOp{
			acq(0, 100, 110, 10_000, "A", 1, 105),
			op(0, "release", "A", 200, 900, 0, lockOut{Result: resUnknown}),
			acq(1, 1000, 1010, 100, "B", 2, 1005),
		}, true, true},
		{"held answer while granted", []lockOp{
			acq(0, 100, 110, 1000, "A", 1, 105),
			op(1, "acquire", "", 200, 210, 100, lockOut{Result: resHeld}),
			op(2, "get", "", 300, 310, 0, lockOut{Result: resOK, Held: true, Fencing: 1, Exp: 1105}),
		}, true, true},
		{"two live grants", []lockOp{
			acq(0, 100, 110, 1000, "A", 1, 105),
			acq(1, 200, 210, 1000, "B", 2, 205),
		}, false, false},
		{"renewed grant overlapped", []lockOp{
			acq(0, 100, 110, 200, "A", 1, 105),
			op(0, "renew", "A", 250, 260, 1000, lockOut{Result: resOK, Exp: 255 + 1000}),
			acq(1, 400, 410, 1000, "B", 2, 405),
		}, false, false},
		{"fencing reused", []lockOp{
			acq(0, 100, 110, 100, "A", 1, 105),
			acq(1, 300, 310, 100, "B", 1, 305),
		}, false, false},
		{"fencing goes back (restart lost a grant)", []lockOp{
			acq(0, 100, 110, 100, "A", 2, 105),
			acq(1, 300, 310, 100, "B", 1, 305),
		}, false, false},
		{"release of an expired grant succeeds", []lockOp{
			acq(0, 100, 110, 100, "A", 1, 105),
			op(0, "release", "A", 400, 410, 0, ok),
		}, false, true},
		{"lock reported free while held", []lockOp{
			acq(0, 100, 110, 1000, "A", 1, 105),
			op(1, "get", "", 300, 310, 0, lockOut{Result: resOK, Fencing: 1}),
		}, false, true},
		{"held answer while free", []lockOp{
			acq(0, 100, 110, 1000, "A", 1, 105),
			op(0, "release", "A", 200, 210, 0, ok),
			op(1, "acquire", "", 300, 310, 100, lockOut{Result: resHeld}),
		}, false, true},
		{"grant outside its request", []lockOp{
			acq(0, 100, 110, 1000, "A", 1, 50),
		}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, linear := checkLockHistory("l", tc.ops, "", 0)
			if linear != tc.linear {
				t.Errorf("linearizable = %v (%s), want %v", linear, msg, tc.linear)
			}
			bad := checkMutualExclusion("l", tc.ops)
			if (len(bad) == 0) != tc.exclusive {
				t.Errorf("mutual exclusion violations %q, want exclusive = %v", strings.Join(bad, "; "), tc.exclusive)
			}
		})
	}
}

package torture

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// The sequential specification of one lock (api.md, "Locks"), for
// porcupine. Time matters to a lock (grants expire), so every operation
// carries the wall-clock interval [Call, Ret] in which the client saw it
// (the server runs on the same clock), and the state tracks the earliest
// time the next operation can take effect. Grants and renewals tell the
// exact time they took effect (expires_at_ms - ttl_ms, the server's
// millisecond); other operations take effect at some unknown time in their
// interval, and the model picks the earliest one that makes the step
// possible, which never rules out a correct history.
//
// An operation whose answer was lost (the server was killed, the request
// timed out) is "unknown": it may or may not have taken effect, at any time
// between its call and the moment the server process was known dead (its
// Ret; a dead process changes nothing, so no operation needs an infinite
// return time).

// lockIn is an operation on a lock.
type lockIn struct {
	Kind      string // acquire, renew, release, get
	Token     string // renew, release
	TTL       int64  // acquire, renew (ms)
	Wait      int64  // acquire (ms)
	Call, Ret int64  // ms since the epoch
}

// Results of a lock operation.
const (
	resOK       = "ok"        // 200
	resHeld     = "held"      // 409 lock_held
	resNotOwner = "not_owner" // 409 not_owner
	resNone     = "none"      // 503 overloaded or unavailable: no effect
	resUnknown  = "unknown"   // no answer
)

// lockOut is an operation's answer.
type lockOut struct {
	Result  string
	Token   string // acquire
	Fencing int64  // acquire, get
	Exp     int64  // acquire, renew, get (when held)
	Held    bool   // get
}

// lockState is a lock as the model knows it. Token is "" when free (or
// known expired), "?" for a grant whose answer was lost. The live grant
// expires somewhere in [ExpLo, ExpHi] (equal when known).
type lockState struct {
	Fencing      int64
	Token        string
	ExpLo, ExpHi int64
	Now          int64
}

// lockOp is one recorded operation, with the client that made it.
type lockOp struct {
	Name   string
	Client int
	In     lockIn
	Out    lockOut
}

var lockModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{lockState{}} },
	Step: func(state, input, output any) []any {
		return lockStep(state.(lockState), input.(lockIn), output.(lockOut))
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(lockIn), output.(lockOut)
		return fmt.Sprintf("%s(%s ttl=%d) → %s %s f=%d exp=%d held=%v", in.Kind, short(in.Token), in.TTL,
			out.Result, short(out.Token), out.Fencing, out.Exp, out.Held)
	},
	DescribeState: func(state any) string {
		s := state.(lockState)
		return fmt.Sprintf("f=%d holder=%s exp=[%d,%d] now=%d", s.Fencing, short(s.Token), s.ExpLo, s.ExpHi, s.Now)
	},
}

func short(tok string) string {
	if len(tok) > 6 {
		return tok[:6]
	}
	return tok
}

// lockStep returns the states the lock can be in after op, none if the
// answer is impossible from s.
func lockStep(s lockState, in lockIn, out lockOut) []any {
	if out.Result == resNone {
		return []any{s}
	}
	start := max(in.Call, s.Now) // the earliest time op can take effect
	// at checks an exact time of effect against the op's interval and the
	// state's clock.
	at := func(t int64) bool { return t >= in.Call && t <= in.Ret && t >= s.Now }
	liveFrom := func(t int64) bool { return s.Token != "" && t < s.ExpHi }
	// expired returns the state after s's grant is seen to have ended (at
	// the earliest time it can have), if that can happen by in.Ret.
	expired := func() (lockState, bool) {
		if s.Token == "" {
			n := s
			n.Now = start
			return n, true
		}
		t := max(start, s.ExpLo)
		if t > in.Ret {
			return s, false
		}
		return lockState{Fencing: s.Fencing, Now: t}, true
	}
	var next []any
	switch in.Kind {
	case "acquire":
		switch out.Result {
		case resOK:
			t := out.Exp - in.TTL
			free := s.Token == "" || t >= s.ExpLo
			if at(t) && free && out.Fencing == s.Fencing+1 {
				next = append(next, lockState{Fencing: out.Fencing, Token: out.Token, ExpLo: out.Exp, ExpHi: out.Exp, Now: t})
			}
		case resHeld:
			if liveFrom(start) {
				n := s
				n.Now = start
				next = append(next, n)
			}
		case resUnknown:
			next = append(next, s)
			if f, ok := expired(); ok {
				next = append(next, lockState{Fencing: s.Fencing + 1, Token: "?",
					ExpLo: f.Now + in.TTL, ExpHi: max(in.Ret, f.Now) + in.TTL, Now: f.Now})
			}
		}
	case "renew":
		switch out.Result {
		case resOK:
			t := out.Exp - in.TTL
			if at(t) && s.Token == in.Token && t < s.ExpHi {
				next = append(next, lockState{Fencing: s.Fencing, Token: s.Token, ExpLo: out.Exp, ExpHi: out.Exp, Now: t})
			}
		case resNotOwner:
			next = append(next, notOwner(s, in, start, expired)...)
		case resUnknown:
			next = append(next, s)
			if s.Token == in.Token && liveFrom(start) {
				next = append(next, lockState{Fencing: s.Fencing, Token: s.Token,
					ExpLo: start + in.TTL, ExpHi: in.Ret + in.TTL, Now: start})
			}
		}
	case "release":
		switch out.Result {
		case resOK:
			if s.Token == in.Token && liveFrom(start) {
				next = append(next, lockState{Fencing: s.Fencing, Now: start})
			}
		case resNotOwner:
			next = append(next, notOwner(s, in, start, expired)...)
		case resUnknown:
			next = append(next, s)
			if s.Token == in.Token && liveFrom(start) {
				next = append(next, lockState{Fencing: s.Fencing, Now: start})
			}
		}
	case "get":
		switch out.Result {
		case resOK:
			if out.Fencing != s.Fencing {
				break
			}
			if out.Held {
				if s.Token != "" && out.Exp >= s.ExpLo && out.Exp <= s.ExpHi && start < out.Exp && start <= in.Ret {
					next = append(next, lockState{Fencing: s.Fencing, Token: s.Token, ExpLo: out.Exp, ExpHi: out.Exp, Now: start})
				}
			} else if n, ok := expired(); ok {
				next = append(next, n)
			}
		case resUnknown:
			next = append(next, s)
		}
	}
	return next
}

// notOwner returns the states after a renew or release answered
// not_owner: the token was not the live grant's.
func notOwner(s lockState, in lockIn, start int64, expired func() (lockState, bool)) []any {
	if s.Token != in.Token {
		n := s
		n.Now = start
		return []any{n}
	}
	if n, ok := expired(); ok {
		return []any{n}
	}
	return nil
}

// checkLockHistory checks one lock's history for linearizability and
// returns a description of the failure ("" if it is linearizable). On
// failure it writes porcupine's visualization to viz, if not "".
func checkLockHistory(name string, ops []lockOp, viz string, timeout time.Duration) (string, bool) {
	hist := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		hist[i] = porcupine.Operation{ClientId: op.Client, Input: op.In, Output: op.Out, Call: op.In.Call, Return: op.In.Ret}
	}
	model := lockModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, hist, timeout)
	switch res {
	case porcupine.Ok:
		return "", true
	case porcupine.Unknown:
		return fmt.Sprintf("lock %s: the linearizability check of %d operations timed out after %v", name, len(ops), timeout), false
	}
	msg := fmt.Sprintf("lock %s: history of %d operations is not linearizable", name, len(ops))
	if viz != "" {
		if err := porcupine.VisualizePath(model, info, viz); err == nil {
			msg += " (visualization: " + viz + ")"
		}
	}
	return msg, false
}

// checkMutualExclusion checks that no two grants of one lock were live at
// once, from the acknowledged grants and renewals alone: each of them makes
// its token live from the time it took effect until its expiry, or until
// the earliest time a later release or renewal with the token could have
// ended or shortened it. It also checks that fencing strictly increases
// with the time of the grants. It returns the violations found.
func checkMutualExclusion(name string, ops []lockOp) []string {
	type interval struct {
		token    string
		fencing  int64
		from, to int64
	}
	var ivs []interval
	byToken := map[string][]lockOp{}
	for _, op := range ops {
		if op.In.Token != "" {
			byToken[op.In.Token] = append(byToken[op.In.Token], op)
		}
	}
	fencingOf := map[string]int64{}
	type grant struct {
		fencing, at int64
		token       string
	}
	var grants []grant
	for _, op := range ops {
		if op.In.Kind == "acquire" && op.Out.Result == resOK {
			fencingOf[op.Out.Token] = op.Out.Fencing
			grants = append(grants, grant{op.Out.Fencing, op.Out.Exp - op.In.TTL, op.Out.Token})
		}
	}
	for _, op := range ops {
		var tok string
		switch {
		case op.In.Kind == "acquire" && op.Out.Result == resOK:
			tok = op.Out.Token
		case op.In.Kind == "renew" && op.Out.Result == resOK:
			tok = op.In.Token
		default:
			continue
		}
		from := op.Out.Exp - op.In.TTL
		to := op.Out.Exp
		for _, later := range byToken[tok] {
			if later.In == op.In || later.Out.Result == resNone || later.Out.Result == resNotOwner || later.In.Ret < from {
				continue
			}
			end := max(later.In.Call, from)
			if later.In.Kind == "renew" && later.Out.Result == resOK {
				end = later.Out.Exp - later.In.TTL
				if end < from {
					continue
				}
			}
			to = min(to, end)
		}
		ivs = append(ivs, interval{tok, fencingOf[tok], from, to})
	}
	var bad []string
	slices.SortFunc(ivs, func(a, b interval) int { return cmp.Compare(a.from, b.from) })
	for i, a := range ivs {
		for _, b := range ivs[i+1:] {
			if b.from >= a.to {
				continue
			}
			if a.token != b.token && b.from < b.to {
				bad = append(bad, fmt.Sprintf("lock %s: grants fencing %d (live %d..%d) and fencing %d (live %d..%d) overlap",
					name, a.fencing, a.from, a.to, b.fencing, b.from, b.to))
			}
		}
	}
	slices.SortFunc(grants, func(a, b grant) int { return cmp.Compare(a.fencing, b.fencing) })
	for i := 1; i < len(grants); i++ {
		a, b := grants[i-1], grants[i]
		if a.fencing == b.fencing {
			bad = append(bad, fmt.Sprintf("lock %s: fencing %d granted twice", name, a.fencing))
		}
		if b.at < a.at {
			bad = append(bad, fmt.Sprintf("lock %s: fencing %d granted at %d, before fencing %d at %d", name, b.fencing, b.at, a.fencing, a.at))
		}
	}
	if len(bad) > 10 {
		bad = append(bad[:10], strings.Repeat(".", 3))
	}
	return bad
}

package durable

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
)

// methodTable holds the RPC methods of an object type: exported methods
// shaped
//
//	func (o *T) Name(ctx context.Context) error
//	func (o *T) Name(ctx context.Context) (R, error)
//	func (o *T) Name(ctx context.Context, arg A) error
//	func (o *T) Name(ctx context.Context, arg A) (R, error)
//
// Arguments and results travel JSON-encoded, so a call means the same
// in-process and across processes; plain values skip the encoding, which
// is the identity for them (plain.go).
type methodTable struct {
	byName map[string]*rpcMethod
}

type rpcMethod struct {
	fn     reflect.Value // func(receiver, ctx[, arg]) ...
	arg    reflect.Type  // nil when the method takes no argument
	result reflect.Type  // nil when the method returns only an error
}

// rpcArg is a call's argument: JSON-encoded, or a plain value as itself
// (passesAsValue). Both empty means none.
type rpcArg struct {
	json  []byte
	value any
}

// rpcResult is a call's result: JSON-encoded, or, when the caller asked
// for a plain type the method returns, the value itself.
type rpcResult struct {
	json    []byte
	value   any
	isValue bool
}

var (
	ctxType   = reflect.TypeFor[context.Context]()
	errorType = reflect.TypeFor[error]()
)

// notRPC are methods with meaning to the runtime; they are not callable by name.
var notRPC = map[string]bool{"Alarm": true, "ServeHTTP": true}

func newMethodTable(t reflect.Type) *methodTable {
	mt := &methodTable{byName: map[string]*rpcMethod{}}
	for i := range t.NumMethod() {
		m := t.Method(i)
		if notRPC[m.Name] {
			continue
		}
		ft := m.Type // includes the receiver
		if ft.NumIn() < 2 || ft.NumIn() > 3 || ft.In(1) != ctxType || ft.IsVariadic() {
			continue
		}
		if ft.NumOut() < 1 || ft.NumOut() > 2 || ft.Out(ft.NumOut()-1) != errorType {
			continue
		}
		rm := &rpcMethod{fn: m.Func}
		if ft.NumOut() == 2 {
			rm.result = ft.Out(0)
		}
		if ft.NumIn() == 3 {
			rm.arg = ft.In(2)
		}
		mt.byName[m.Name] = rm
	}
	return mt
}

// invoke calls method on inst. want is the plain type the caller decodes
// the result into, or nil for a JSON-encoded result.
func (mt *methodTable) invoke(ctx context.Context, inst any, method string, arg rpcArg, want reflect.Type) (rpcResult, error) {
	m := mt.byName[method]
	if m == nil {
		return rpcResult{}, fmt.Errorf("%w: %s on %T", ErrNoMethod, method, inst)
	}
	in := []reflect.Value{reflect.ValueOf(inst), reflect.ValueOf(ctx)}
	switch {
	case m.arg != nil && arg.value != nil && reflect.TypeOf(arg.value) == m.arg:
		in = append(in, reflect.ValueOf(arg.value))
	case m.arg != nil:
		b := arg.json
		if arg.value != nil {
			// A plain value of another type than the method's: decode it
			// as the JSON it stands for. It is a copy, so encoding it now
			// rather than when the call was made changes nothing.
			var err error
			if b, err = json.Marshal(arg.value); err != nil {
				return rpcResult{}, fmt.Errorf("%w: %s: %v", ErrBadArgument, method, err)
			}
		}
		p := reflect.New(m.arg)
		if len(b) > 0 {
			if err := json.Unmarshal(b, p.Interface()); err != nil {
				return rpcResult{}, fmt.Errorf("%w: %s: %v", ErrBadArgument, method, err)
			}
		}
		in = append(in, p.Elem())
	case arg.value != nil || len(arg.json) > 0 && string(arg.json) != "null":
		return rpcResult{}, fmt.Errorf("%w: %s takes no argument", ErrBadArgument, method)
	}
	out := m.fn.Call(in)
	errv := out[len(out)-1]
	var err error
	if !errv.IsNil() {
		err = errv.Interface().(error)
	}
	if m.result == nil || err != nil {
		return rpcResult{}, err
	}
	if want == m.result && valueEncodable(out[0]) {
		return rpcResult{value: out[0].Interface(), isValue: true}, nil
	}
	res, merr := json.Marshal(out[0].Interface())
	if merr != nil {
		return rpcResult{}, fmt.Errorf("%w: %s result: %v", ErrBadArgument, method, merr)
	}
	return rpcResult{json: res}, nil
}

// Alarmer is implemented by objects that handle alarms.
type Alarmer interface {
	Alarm(ctx context.Context, info AlarmInfo) error
}

// AlarmInfo describes an alarm delivery.
type AlarmInfo struct {
	// RetryCount is how many times this alarm failed before (0 on the first run).
	RetryCount int
	// IsRetry is RetryCount > 0.
	IsRetry bool
}

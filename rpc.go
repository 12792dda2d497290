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
// in-process and across processes.
type methodTable struct {
	byName map[string]*rpcMethod
}

type rpcMethod struct {
	fn     reflect.Value // func(receiver, ctx[, arg]) ...
	arg    reflect.Type  // nil when the method takes no argument
	result bool
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
		rm := &rpcMethod{fn: m.Func, result: ft.NumOut() == 2}
		if ft.NumIn() == 3 {
			rm.arg = ft.In(2)
		}
		mt.byName[m.Name] = rm
	}
	return mt
}

// invoke calls method on inst with the JSON-encoded arg and returns the
// JSON-encoded result.
func (mt *methodTable) invoke(ctx context.Context, inst any, method string, arg []byte) ([]byte, error) {
	m := mt.byName[method]
	if m == nil {
		return nil, fmt.Errorf("%w: %s on %T", ErrNoMethod, method, inst)
	}
	in := []reflect.Value{reflect.ValueOf(inst), reflect.ValueOf(ctx)}
	switch {
	case m.arg != nil:
		p := reflect.New(m.arg)
		if len(arg) > 0 {
			if err := json.Unmarshal(arg, p.Interface()); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrBadArgument, method, err)
			}
		}
		in = append(in, p.Elem())
	case len(arg) > 0 && string(arg) != "null":
		return nil, fmt.Errorf("%w: %s takes no argument", ErrBadArgument, method)
	}
	out := m.fn.Call(in)
	errv := out[len(out)-1]
	var err error
	if !errv.IsNil() {
		err = errv.Interface().(error)
	}
	if !m.result || err != nil {
		return nil, err
	}
	res, merr := json.Marshal(out[0].Interface())
	if merr != nil {
		return nil, fmt.Errorf("%w: %s result: %v", ErrBadArgument, method, merr)
	}
	return res, nil
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

package main

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	// Imported for its side effect: it registers grpc's protobuf codec,
	// which init below captures before replacing it.
	_ "google.golang.org/grpc/encoding/proto"
)

// rawCodec carries gRPC messages as raw bytes. It is registered under the
// name "proto" so that the wire content-type stays "application/grpc" (what
// any ordinary gRPC peer, and h2steer, expects) while no generated protobuf
// code is needed: the Echo service marshals *[]byte / []byte values.
//
// Any other value (a real protobuf message, e.g. the grpc.health.v1 service's
// messages) is handed to the protobuf codec that was registered before.
type rawCodec struct {
	fallback encoding.Codec
}

func init() {
	encoding.RegisterCodec(rawCodec{fallback: encoding.GetCodec("proto")})
}

func (c rawCodec) Marshal(v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case *[]byte:
		return *m, nil
	case []byte:
		return m, nil
	}
	if c.fallback != nil {
		return c.fallback.Marshal(v)
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (c rawCodec) Unmarshal(data []byte, v interface{}) error {
	if p, ok := v.(*[]byte); ok {
		// Copy: the transport's buffer is not ours to keep.
		*p = append([]byte(nil), data...)
		return nil
	}
	if c.fallback != nil {
		return c.fallback.Unmarshal(data, v)
	}
	return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
}

func (rawCodec) Name() string { return "proto" }

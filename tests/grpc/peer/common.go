package main

import (
	"strconv"
	"strings"

	"google.golang.org/grpc/metadata"
)

// Service and method names shared by server and client.
const (
	serviceName = "h2steer.test.Echo"

	methodUnary        = "/" + serviceName + "/Unary"
	methodServerStream = "/" + serviceName + "/ServerStream"
	methodClientStream = "/" + serviceName + "/ClientStream"
	methodBidi         = "/" + serviceName + "/Bidi"
	methodHang         = "/" + serviceName + "/Hang"
	methodStats        = "/" + serviceName + "/Stats"
)

// Metadata keys understood by the server.
const (
	mdBackendID      = "x-backend-id"      // response header: server -id
	mdBackendTrailer = "x-backend-trailer" // response trailer: server -id
	mdEchoPrefix     = "x-echo-"           // request keys copied back
	mdSleepMS        = "x-sleep-ms"
	mdStatusCode     = "x-status-code"
	mdStatusMessage  = "x-status-message"
	// mdStatusMessageBin is the binary form of x-status-message, for
	// messages that are not printable ASCII (gRPC allows only printable
	// ASCII in non-binary metadata values).
	mdStatusMessageBin = "x-status-message-bin"
	mdResponseSize     = "x-response-size"
	mdCount            = "x-count"
	mdMsgSize          = "x-msg-size"
	// mdFillPrefix keys carry bulk request metadata (client -fill); the
	// server answers how many value bytes of them arrived in mdFillBytes.
	mdFillPrefix = "x-fill-"
	mdFillBytes  = "x-fill-bytes"
)

// fillMD adds n bytes of the pattern to md as values of mdFillPrefix keys,
// at most field bytes each (a single HPACK string above 64 KiB is more than
// libnghttp2 decodes, so bulk metadata goes in several).
func fillMD(md metadata.MD, n, field int) {
	for i := 0; n > 0; i++ {
		k := field
		if k > n {
			k = n
		}
		md[mdFillPrefix+strconv.Itoa(i)] = []string{string(pattern(k))}
		n -= k
	}
}

// fillBytes is the number of value bytes of mdFillPrefix keys in md.
func fillBytes(md metadata.MD) int {
	n := 0
	for k, vs := range md {
		if strings.HasPrefix(k, mdFillPrefix) && k != mdFillBytes {
			for _, v := range vs {
				n += len(v)
			}
		}
	}
	return n
}

// echoTrailerKey is the trailer key under which the server returns the
// request metadata key k (an x-echo-* key): k + "-trailer", except that a
// binary key keeps its "-bin" suffix last ("x-echo-b-bin" ->
// "x-echo-b-trailer-bin") so that its value stays binary-encoded on the wire.
func echoTrailerKey(k string) string {
	if strings.HasSuffix(k, "-bin") {
		return strings.TrimSuffix(k, "-bin") + "-trailer-bin"
	}
	return k + "-trailer"
}

// fillPattern fills b with the deterministic pattern used by the server for
// x-response-size and ServerStream messages: the byte at absolute offset
// off+j is 'a' + (off+j)%26.
func fillPattern(b []byte, off int) {
	for j := range b {
		b[j] = byte('a' + (off+j)%26)
	}
}

// pattern returns n bytes of the pattern, starting at offset 0.
func pattern(n int) []byte {
	b := make([]byte, n)
	fillPattern(b, 0)
	return b
}

// mdFirst returns the first value of key in md, or "".
func mdFirst(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// mdInt parses the first value of key in md as a non-negative integer;
// def is returned when the key is absent.
func mdInt(md metadata.MD, key string, def int) (int, error) {
	s := mdFirst(md, key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, &badMetadataError{key, s}
	}
	return n, nil
}

type badMetadataError struct{ key, val string }

func (e *badMetadataError) Error() string {
	return "metadata " + e.key + ": not a non-negative integer: " + strconv.Quote(e.val)
}

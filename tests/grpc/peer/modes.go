package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// randomBytes returns n bytes from rng (binary content, 0x00 and 0xff
// included, so that any mangling shows).
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}

func newRand() *rand.Rand { return rand.New(rand.NewSource(time.Now().UnixNano())) }

func positive(name string, v int) error {
	if v < 1 {
		return fmt.Errorf("-%s must be >= 1", name)
	}
	return nil
}

func nonNegative(name string, v int) error {
	if v < 0 {
		return fmt.Errorf("-%s must be >= 0", name)
	}
	return nil
}

// ---- unary ----

func modeUnary(fs *flag.FlagSet) (func() error, func(*env)) {
	n := fs.Int("n", 100, "number of RPCs")
	c := fs.Int("c", 1, "workers, i.e. RPCs in flight at once")
	size := fs.Int("size", 64, "request size in bytes (random content)")
	intervalUS := fs.Int("interval-us", 0, "pause of each worker between two of its RPCs, in µs")
	tail := fs.Int("tail", 0, "also report by_backend over the last N RPCs to complete (tail_by_backend)")
	timelineMS := fs.Int("timeline-ms", 0, "also report by_backend per period of this many ms since the start (timeline)")
	var meta metaFlag
	fs.Var(&meta, "meta", "request metadata `key=value` (repeatable)")
	fill := fs.Int("fill", 0, "also this many bytes of request metadata, in x-fill-* keys; checks x-fill-bytes")
	fillField := fs.Int("fill-field", 16384, "bytes of -fill per key at most")
	expectSize := -1 // x-response-size given with -meta: expect the pattern

	validate := func() error {
		err := firstError(positive("n", *n), positive("c", *c), nonNegative("size", *size), nonNegative("interval-us", *intervalUS), nonNegative("tail", *tail), nonNegative("timeline-ms", *timelineMS), nonNegative("fill", *fill), positive("fill-field", *fillField))
		if err != nil {
			return err
		}
		if _, set := meta.md()[mdResponseSize]; set {
			v, err := mdInt(meta.md(), mdResponseSize, 0)
			if err != nil {
				return err
			}
			expectSize = v
		}
		return nil
	}

	run := func(e *env) {
		md := meta.md()
		fillMD(md, *fill, *fillField)
		interval := time.Duration(*intervalUS) * time.Microsecond
		var (
			mu           sync.Mutex
			lat          latencies
			byBackend    = map[string]int{}
			firstSeen    = map[string]int64{}
			lastSeen     = map[string]int64{}
			noHeader     int
			fillMismatch int
			mdMismatch   int
			bodyMismatch int
			firstMDBad   string
			firstErr     string
			order        []string // backend of each successful RPC, in completion order (for -tail)
			timeline     []map[string]int // by_backend per -timeline-ms period
			next         atomic.Int64
			attempted    atomic.Int64
			wg           sync.WaitGroup
		)
		var wantBody []byte
		if expectSize >= 0 {
			wantBody = pattern(expectSize)
		}
		start := time.Now()
		for w := 0; w < *c; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := newRand()
				for k := 0; ; k++ {
					if e.ctx.Err() != nil || next.Add(1) > int64(*n) {
						return
					}
					if k > 0 && interval > 0 && !sleepCtx(e.ctx, interval) {
						return
					}
					attempted.Add(1)
					req := randomBytes(rng, *size)
					var resp []byte
					var hdr, trl metadata.MD
					ctx, cancel := e.rpcCtx(md, 0)
					t0 := time.Now()
					err := e.cc.Invoke(ctx, methodUnary, &req, &resp, grpc.Header(&hdr), grpc.Trailer(&trl))
					d := time.Since(t0)
					nowMS := time.Now().UnixMilli()
					cancel()
					e.rep.result(err)

					mu.Lock()
					if err != nil {
						if firstErr == "" {
							firstErr = err.Error()
						}
						mu.Unlock()
						continue
					}
					lat = append(lat, d)
					if *fill > 0 && mdFirst(hdr, mdFillBytes) != strconv.Itoa(*fill) {
						fillMismatch++
					}
					id, tid := mdFirst(hdr, mdBackendID), mdFirst(trl, mdBackendTrailer)
					switch {
					case id == "":
						noHeader++
					case id != tid:
						mdMismatch++
						if firstMDBad == "" {
							firstMDBad = fmt.Sprintf("header %q, trailer %q", id, tid)
						}
					}
					if id != "" {
						byBackend[id]++
						if _, seen := firstSeen[id]; !seen {
							firstSeen[id] = nowMS
						}
						lastSeen[id] = nowMS
						if *tail > 0 {
							order = append(order, id)
						}
						if *timelineMS > 0 {
							k := int(time.Since(start) / (time.Duration(*timelineMS) * time.Millisecond))
							for len(timeline) <= k {
								timeline = append(timeline, map[string]int{})
							}
							timeline[k][id]++
						}
					}
					want := req
					if wantBody != nil {
						want = wantBody
					}
					if !bytes.Equal(resp, want) {
						bodyMismatch++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)

		r := e.rep
		r.set("n", *n)
		r.set("c", *c)
		r.set("attempted", attempted.Load())
		r.set("by_backend", byBackend)
		r.set("first_seen_unix_ms", firstSeen)
		r.set("last_seen_unix_ms", lastSeen)
		if *tail > 0 {
			from := len(order) - *tail
			if from < 0 {
				from = 0
			}
			tailBy := map[string]int{}
			for _, id := range order[from:] {
				tailBy[id]++
			}
			r.set("tail_by_backend", tailBy)
		}
		if *timelineMS > 0 {
			r.set("timeline", timeline)
			r.set("start_unix_ms", start.UnixMilli())
		}
		r.set("elapsed_s", elapsed.Seconds())
		r.setLatencies(lat)
		if a := attempted.Load(); a < int64(*n) {
			r.fail("only %d of %d RPCs were attempted within -max-time %v", a, *n, e.opts.maxTime)
		}
		if failed := int(attempted.Load()) - len(lat); failed > 0 {
			r.fail("%d of %d RPCs failed; first error: %s", failed, attempted.Load(), firstErr)
		}
		if noHeader > 0 {
			r.fail("%d RPCs had no %s response header", noHeader, mdBackendID)
		}
		if fillMismatch > 0 {
			r.fail("%d RPCs had no %s: %d in their response header", fillMismatch, mdFillBytes, *fill)
		}
		if mdMismatch > 0 {
			r.fail("%d RPCs had %s != %s (first: %s)", mdMismatch, mdBackendID, mdBackendTrailer, firstMDBad)
		}
		if bodyMismatch > 0 {
			what := "the request bytes"
			if wantBody != nil {
				what = fmt.Sprintf("the %d-byte x-response-size pattern", expectSize)
			}
			r.fail("%d responses differed from %s", bodyMismatch, what)
		}
	}
	return validate, run
}

// ---- sstream ----

func modeServerStream(fs *flag.FlagSet) (func() error, func(*env)) {
	count := fs.Int("count", 100, "messages the server is asked to send (x-count)")
	size := fs.Int("size", 16, "size of each message (x-msg-size, at least 8)")
	validate := func() error { return firstError(nonNegative("count", *count), nonNegative("size", *size)) }

	run := func(e *env) {
		r := e.rep
		want := *size
		if want < 8 {
			want = 8
		}
		tail := make([]byte, want-8)
		fillPattern(tail, 8)

		md := metadata.Pairs(mdCount, strconv.Itoa(*count), mdMsgSize, strconv.Itoa(*size))
		ctx, cancel := e.rpcCtx(md, 0)
		defer cancel()
		start := time.Now()
		cs, err := e.cc.NewStream(ctx, &grpc.StreamDesc{StreamName: "ServerStream", ServerStreams: true}, methodServerStream)
		if err != nil {
			r.result(err)
			r.fail("ServerStream: %v", err)
			return
		}
		req := []byte{}
		// io.EOF from SendMsg means the stream already ended: RecvMsg tells why.
		if err := cs.SendMsg(&req); err != nil && err != io.EOF {
			r.fail("ServerStream send: %v", err)
		}
		if err := cs.CloseSend(); err != nil {
			r.fail("ServerStream close-send: %v", err)
		}
		received, bad := 0, 0
		firstBad := ""
		for {
			var msg []byte
			if err = cs.RecvMsg(&msg); err != nil {
				break
			}
			idx := uint64(1<<64 - 1)
			if len(msg) >= 8 {
				idx = binary.BigEndian.Uint64(msg)
			}
			if len(msg) != want || idx != uint64(received) || !bytes.Equal(msg[8:], tail) {
				bad++
				if firstBad == "" {
					firstBad = fmt.Sprintf("message #%d: %d bytes, index field %d", received, len(msg), idx)
				}
			}
			received++
		}
		if err == io.EOF {
			err = nil
		}
		r.result(err)
		r.set("elapsed_s", time.Since(start).Seconds())
		r.set("count", *count)
		r.set("received", received)
		if err != nil {
			r.fail("stream ended with %v after %d messages", err, received)
		}
		if received != *count {
			r.fail("received %d messages, want %d", received, *count)
		}
		if bad > 0 {
			r.fail("%d messages out of order or malformed (first: %s)", bad, firstBad)
		}
		hdr, _ := cs.Header()
		r.set("backend", checkBackendMD(r, hdr, cs.Trailer()))
	}
	return validate, run
}

// ---- cstream ----

func modeClientStream(fs *flag.FlagSet) (func() error, func(*env)) {
	count := fs.Int("count", 100, "messages to send")
	size := fs.Int("size", 1024, "size of each message in bytes")
	validate := func() error { return firstError(nonNegative("count", *count), nonNegative("size", *size)) }

	run := func(e *env) {
		r := e.rep
		ctx, cancel := e.rpcCtx(nil, 0)
		defer cancel()
		start := time.Now()
		cs, err := e.cc.NewStream(ctx, &grpc.StreamDesc{StreamName: "ClientStream", ClientStreams: true}, methodClientStream)
		if err != nil {
			r.result(err)
			r.fail("ClientStream: %v", err)
			return
		}
		rng := newRand()
		for i := 0; i < *count; i++ {
			msg := randomBytes(rng, *size)
			if err := cs.SendMsg(&msg); err != nil {
				if err != io.EOF { // io.EOF: stream ended, RecvMsg tells why
					r.fail("send #%d: %v", i, err)
				}
				break
			}
		}
		if err := cs.CloseSend(); err != nil {
			r.fail("close-send: %v", err)
		}
		// For a non-server-streaming call RecvMsg also reads the status.
		var reply []byte
		err = cs.RecvMsg(&reply)
		r.result(err)
		r.set("elapsed_s", time.Since(start).Seconds())
		r.set("reply", string(reply))
		if err != nil {
			r.fail("ClientStream: %v", err)
			return
		}
		if want := fmt.Sprintf("count=%d bytes=%d", *count, *count**size); string(reply) != want {
			r.fail("reply %q, want %q", reply, want)
		}
		hdr, _ := cs.Header()
		r.set("backend", checkBackendMD(r, hdr, cs.Trailer()))
	}
	return validate, run
}

// ---- bidi ----

func modeBidi(fs *flag.FlagSet) (func() error, func(*env)) {
	count := fs.Int("count", 100, "ping-pong round trips")
	size := fs.Int("size", 64, "size of each message in bytes")
	validate := func() error { return firstError(nonNegative("count", *count), nonNegative("size", *size)) }

	run := func(e *env) {
		r := e.rep
		ctx, cancel := e.rpcCtx(nil, 0)
		defer cancel()
		start := time.Now()
		cs, err := e.cc.NewStream(ctx, &grpc.StreamDesc{StreamName: "Bidi", ClientStreams: true, ServerStreams: true}, methodBidi)
		if err != nil {
			r.result(err)
			r.fail("Bidi: %v", err)
			return
		}
		rng := newRand()
		var lat latencies
		mismatch := 0
		for i := 0; i < *count && err == nil; i++ {
			msg := randomBytes(rng, *size)
			t0 := time.Now()
			if err = cs.SendMsg(&msg); err == io.EOF {
				// The stream ended: RecvMsg returns its status.
				err = cs.RecvMsg(&msg)
				if err == nil || err == io.EOF {
					err = fmt.Errorf("stream ended early")
				}
				break
			} else if err != nil {
				break
			}
			var echo []byte
			if err = cs.RecvMsg(&echo); err != nil {
				if err == io.EOF {
					err = fmt.Errorf("stream ended early")
				}
				break
			}
			lat = append(lat, time.Since(t0))
			if !bytes.Equal(echo, msg) {
				mismatch++
			}
		}
		if err == nil {
			if err = cs.CloseSend(); err == nil {
				err = expectEOF(r, cs)
			}
		}
		r.result(err)
		r.set("elapsed_s", time.Since(start).Seconds())
		r.set("rounds", len(lat))
		r.setLatencies(lat)
		if err != nil {
			r.fail("Bidi after %d round trips: %v", len(lat), err)
		}
		if mismatch > 0 {
			r.fail("%d echoes differed from the message sent", mismatch)
		}
		if err == nil {
			hdr, _ := cs.Header()
			r.set("backend", checkBackendMD(r, hdr, cs.Trailer()))
		}
	}
	return validate, run
}

// ---- large ----

func modeLarge(fs *flag.FlagSet) (func() error, func(*env)) {
	size := fs.Int("size", 8<<20, "request (and echoed response) size in bytes")
	validate := func() error {
		if *size < 0 || *size > maxMsgSize-64 {
			return fmt.Errorf("-size must be in 0..%d", maxMsgSize-64)
		}
		return nil
	}
	run := func(e *env) {
		r := e.rep
		req := randomBytes(newRand(), *size)
		var resp []byte
		var hdr, trl metadata.MD
		ctx, cancel := e.rpcCtx(nil, 0)
		defer cancel()
		start := time.Now()
		err := e.cc.Invoke(ctx, methodUnary, &req, &resp, grpc.Header(&hdr), grpc.Trailer(&trl))
		r.set("elapsed_s", time.Since(start).Seconds())
		r.result(err)
		r.set("bytes", len(resp))
		if err != nil {
			r.fail("Unary of %d bytes: %v", *size, err)
			return
		}
		if !bytes.Equal(resp, req) {
			r.fail("response (%d bytes) differs from the %d-byte request", len(resp), len(req))
		}
		r.set("backend", checkBackendMD(r, hdr, trl))
	}
	return validate, run
}

// ---- concurrent ----

func modeConcurrent(fs *flag.FlagSet) (func() error, func(*env)) {
	streams := fs.Int("streams", 10, "unary RPCs started at once")
	sleepMS := fs.Int("sleep-ms", 500, "x-sleep-ms of each RPC")
	validate := func() error { return firstError(positive("streams", *streams), nonNegative("sleep-ms", *sleepMS)) }

	run := func(e *env) {
		r := e.rep
		sleep := time.Duration(*sleepMS) * time.Millisecond
		md := metadata.Pairs(mdSleepMS, strconv.Itoa(*sleepMS))
		var (
			inFlight, maxIn atomic.Int64
			mu              sync.Mutex
			byBackend       = map[string]int{}
			firstErr        string
			wg              sync.WaitGroup
		)
		startCh := make(chan struct{})
		for i := 0; i < *streams; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := []byte("concurrent")
				var resp []byte
				var hdr metadata.MD
				ctx, cancel := e.rpcCtx(md, sleep) // deadline: -rpc-timeout + the sleep
				defer cancel()
				<-startCh
				cur := inFlight.Add(1)
				for m := maxIn.Load(); cur > m && !maxIn.CompareAndSwap(m, cur); m = maxIn.Load() {
				}
				err := e.cc.Invoke(ctx, methodUnary, &req, &resp, grpc.Header(&hdr))
				inFlight.Add(-1)
				e.rep.result(err)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == "" {
						firstErr = err.Error()
					}
					return
				}
				byBackend[mdFirst(hdr, mdBackendID)]++
			}()
		}
		start := time.Now()
		close(startCh)
		wg.Wait()
		elapsed := time.Since(start)

		r.set("streams", *streams)
		r.set("max_in_flight", maxIn.Load())
		r.set("by_backend", byBackend)
		r.set("elapsed_s", elapsed.Seconds())
		r.mu.Lock()
		ok := r.ok
		r.mu.Unlock()
		if ok != *streams {
			r.fail("%d of %d RPCs failed; first error: %s", *streams-ok, *streams, firstErr)
		}
		if elapsed < sleep {
			r.fail("elapsed %v < x-sleep-ms %v: the sleep was not honoured", elapsed, sleep)
		}
		// With S >= 3 serial execution would take S*MS, so less than
		// half of that shows the RPCs overlapped. (S < 3: no bound can
		// tell the two apart, so no check.)
		if limit := time.Duration(*streams) * sleep / 2; *streams >= 3 && elapsed >= limit {
			r.fail("elapsed %v >= streams*sleep/2 = %v: the RPCs did not run concurrently", elapsed, limit)
		}
	}
	return validate, run
}

// ---- cancel, deadline ----

func modeCancel(fs *flag.FlagSet) (func() error, func(*env)) {
	afterMS := fs.Int("after-ms", 200, "cancel the Hang RPC after this many ms")
	validate := func() error { return nonNegative("after-ms", *afterMS) }
	run := func(e *env) {
		r := e.rep
		after := time.Duration(*afterMS) * time.Millisecond
		ctx, cancel := e.rpcCtx(nil, after) // safety deadline: -rpc-timeout + after-ms
		defer cancel()
		timer := time.AfterFunc(after, cancel)
		defer timer.Stop()
		req := []byte{}
		var resp []byte
		var hdr metadata.MD
		start := time.Now()
		err := e.cc.Invoke(ctx, methodHang, &req, &resp, grpc.Header(&hdr))
		elapsed := time.Since(start)
		r.result(err)
		r.set("elapsed_ms", elapsed.Milliseconds())
		r.set("backend", mdFirst(hdr, mdBackendID))
		if c := status.Code(err); c != codes.Canceled {
			r.fail("Hang ended with %v (%v), want Canceled", c, err)
		}
		if limit := after + 2*time.Second; elapsed > limit {
			r.fail("Hang returned after %v, more than after-ms + 2s = %v", elapsed, limit)
		}
	}
	return validate, run
}

func modeDeadline(fs *flag.FlagSet) (func() error, func(*env)) {
	timeoutMS := fs.Int("timeout-ms", 300, "deadline of the Hang RPC in ms (replaces -rpc-timeout)")
	validate := func() error { return positive("timeout-ms", *timeoutMS) }
	run := func(e *env) {
		r := e.rep
		timeout := time.Duration(*timeoutMS) * time.Millisecond
		ctx, cancel := context.WithTimeout(e.ctx, timeout)
		defer cancel()
		req := []byte{}
		var resp []byte
		var hdr metadata.MD
		start := time.Now()
		err := e.cc.Invoke(ctx, methodHang, &req, &resp, grpc.Header(&hdr))
		elapsed := time.Since(start)
		r.result(err)
		r.set("elapsed_ms", elapsed.Milliseconds())
		r.set("backend", mdFirst(hdr, mdBackendID))
		if c := status.Code(err); c != codes.DeadlineExceeded {
			r.fail("Hang ended with %v (%v), want DeadlineExceeded", c, err)
		}
		if limit := timeout + 2*time.Second; elapsed > limit {
			r.fail("Hang returned after %v, more than timeout-ms + 2s = %v", elapsed, limit)
		}
	}
	return validate, run
}

// ---- status ----

// binEcho is the value of the binary metadata x-echo-bin-bin.
var binEcho = string([]byte{0, 1, 2, 255})

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// mdForJSON renders metadata for the report; binary values in base64.
func mdForJSON(md metadata.MD) map[string][]string {
	out := map[string][]string{}
	for k, vs := range md {
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				v = base64.StdEncoding.EncodeToString([]byte(v))
			}
			out[k] = append(out[k], v)
		}
	}
	return out
}

func modeStatus(fs *flag.FlagSet) (func() error, func(*env)) {
	code := fs.Int("code", int(codes.FailedPrecondition), "gRPC status code to ask for (0..16)")
	message := fs.String("message", "bad thing – ünïcode %", "status message to ask for")
	validate := func() error {
		if *code < 0 || *code > 16 {
			return fmt.Errorf("-code must be in 0..16")
		}
		return nil
	}
	run := func(e *env) {
		r := e.rep
		md := metadata.Pairs(
			mdStatusCode, strconv.Itoa(*code),
			"x-echo-a", "1",
			"x-echo-b", "two",
			"x-echo-bin-bin", binEcho,
		)
		// gRPC allows only printable ASCII in text metadata values, so a
		// message with other bytes travels as binary metadata.
		if printableASCII(*message) {
			md.Set(mdStatusMessage, *message)
		} else {
			md.Set(mdStatusMessageBin, *message)
		}
		req := []byte("status")
		var resp []byte
		var hdr, trl metadata.MD
		ctx, cancel := e.rpcCtx(md, 0)
		defer cancel()
		err := e.cc.Invoke(ctx, methodUnary, &req, &resp, grpc.Header(&hdr), grpc.Trailer(&trl))
		r.result(err)
		st := status.Convert(err)
		r.set("code", int(st.Code()))
		r.set("code_name", st.Code().String())
		r.set("message", st.Message())
		r.set("header", mdForJSON(hdr))
		r.set("trailer", mdForJSON(trl))
		if st.Code() != codes.Code(*code) {
			r.fail("status code %d (%v), want %d (%v)", st.Code(), st.Code(), *code, codes.Code(*code))
		}
		wantMsg := *message
		if *code == 0 {
			wantMsg = "" // an OK status carries no message
			if err == nil && !bytes.Equal(resp, req) {
				r.fail("response %q, want the request %q", resp, req)
			}
		}
		if st.Message() != wantMsg {
			r.fail("status message %q, want %q", st.Message(), wantMsg)
		}
		expect := func(where string, md metadata.MD, key, want string) {
			if got := md.Get(key); len(got) != 1 || got[0] != want {
				r.fail("%s %s = %q, want [%q]", where, key, got, want)
			}
		}
		expect("header", hdr, "x-echo-a", "1")
		expect("header", hdr, "x-echo-b", "two")
		expect("header", hdr, "x-echo-bin-bin", binEcho)
		expect("trailer", trl, "x-echo-a-trailer", "1")
		expect("trailer", trl, "x-echo-b-trailer", "two")
		expect("trailer", trl, "x-echo-bin-trailer-bin", binEcho)
		r.set("backend", checkBackendMD(r, hdr, trl))
	}
	return validate, run
}

// ---- stats ----

func modeStats(fs *flag.FlagSet) (func() error, func(*env)) {
	validate := func() error { return nil }
	run := func(e *env) {
		r := e.rep
		req := []byte{}
		var resp []byte
		var hdr metadata.MD
		ctx, cancel := e.rpcCtx(nil, 0)
		defer cancel()
		err := e.cc.Invoke(ctx, methodStats, &req, &resp, grpc.Header(&hdr))
		r.result(err)
		if err != nil {
			r.fail("Stats: %v", err)
			return
		}
		var st map[string]interface{}
		if err := json.Unmarshal(resp, &st); err != nil {
			r.fail("Stats reply is not a JSON object: %v: %q", err, resp)
			return
		}
		r.set("stats", st)
		if id := mdFirst(hdr, mdBackendID); id != st["id"] {
			r.fail("%s header %q != stats id %v", mdBackendID, id, st["id"])
		}
	}
	return validate, run
}

// firstError returns the first non-nil error (errors.Join is Go 1.20+).
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ---- reset ----

// codeByName maps a grpc codes.Code name (as codes.Code.String() spells
// it, e.g. "Unavailable") to the code; the match ignores case.
func codeByName(name string) (codes.Code, bool) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if strings.EqualFold(c.String(), name) {
			return c, true
		}
	}
	return 0, false
}

func modeReset(fs *flag.FlagSet) (func() error, func(*env)) {
	code := fs.Int("code", -1, "HTTP/2 error code the backend is asked to reset the stream with (x-rst-code, required)")
	when := fs.String("when", "headers", "when the backend resets (x-rst-when): headers, response or data")
	expect := fs.String("expect", "", "gRPC code name the RPC must end with, e.g. Canceled, Internal, Unavailable, ResourceExhausted (required)")
	var want codes.Code
	validate := func() error {
		if *code < 0 || int64(*code) > 0xffffffff {
			return fmt.Errorf("-code is required, in 0..4294967295")
		}
		switch *when {
		case "headers", "response", "data":
		default:
			return fmt.Errorf("-when must be headers, response or data")
		}
		if *expect == "" {
			return fmt.Errorf("-expect is required (a gRPC code name)")
		}
		c, ok := codeByName(*expect)
		if !ok {
			return fmt.Errorf("-expect %q is not a gRPC code name", *expect)
		}
		want = c
		return nil
	}
	run := func(e *env) {
		r := e.rep
		md := metadata.Pairs("x-rst-code", strconv.Itoa(*code), "x-rst-when", *when)
		req := []byte("reset")
		var resp []byte
		var hdr metadata.MD
		ctx, cancel := e.rpcCtx(md, 0)
		defer cancel()
		start := time.Now()
		err := e.cc.Invoke(ctx, methodUnary, &req, &resp, grpc.Header(&hdr))
		elapsed := time.Since(start)
		r.result(err)
		st := status.Convert(err)
		r.set("rst_code", *code)
		r.set("when", *when)
		r.set("expect", want.String())
		r.set("code", int(st.Code()))
		r.set("code_name", st.Code().String())
		r.set("message", st.Message())
		r.set("backend", mdFirst(hdr, mdBackendID)) // "" when no response header arrived
		r.set("elapsed_ms", elapsed.Milliseconds())
		if st.Code() != want {
			r.fail("RPC ended with %v (%q), want %v", st.Code(), st.Message(), want)
		}
	}
	return validate, run
}

// ---- stall ----

func modeStall(fs *flag.FlagSet) (func() error, func(*env)) {
	size := fs.Int("size", 8<<20, "bytes the stalled ClientStream tries to upload")
	msgSize := fs.Int("msg-size", 64<<10, "size of each upload message")
	n := fs.Int("n", 200, "unary RPCs run while the upload is blocked")
	c := fs.Int("c", 4, "workers for the unary RPCs")
	waitMS := fs.Int("wait-ms", 500, "time between starting the upload and starting the unary RPCs")
	validate := func() error {
		return firstError(positive("size", *size), positive("msg-size", *msgSize), positive("n", *n),
			positive("c", *c), nonNegative("wait-ms", *waitMS))
	}
	run := func(e *env) {
		r := e.rep
		start := time.Now()

		// The stalled upload: bounded by -max-time (e.ctx) and cancelled
		// explicitly once the unary RPCs are done.
		sctx, scancel := context.WithCancel(metadata.NewOutgoingContext(e.ctx, metadata.Pairs("x-stall", "1")))
		defer scancel()
		cs, err := e.cc.NewStream(sctx, &grpc.StreamDesc{StreamName: "ClientStream", ClientStreams: true}, methodClientStream)
		if err != nil {
			r.fail("ClientStream: %v", err)
			return
		}
		var sent atomic.Int64
		var uploadErr error // written by the uploader before it closes done
		done := make(chan struct{})
		go func() {
			defer close(done)
			msg := randomBytes(newRand(), *msgSize)
			for total := 0; total < *size; {
				m := msg
				if rest := *size - total; rest < len(m) {
					m = m[:rest]
				}
				if err := cs.SendMsg(&m); err != nil {
					if err == io.EOF { // the stream ended: RecvMsg has the status
						var reply []byte
						if err = cs.RecvMsg(&reply); err == nil {
							err = fmt.Errorf("stream ended early with status OK")
						}
					}
					uploadErr = err
					return
				}
				total += len(m)
				sent.Store(int64(total))
			}
		}()

		finished := func() bool {
			select {
			case <-done:
				return true
			default:
				return false
			}
		}
		sleepCtx(e.ctx, time.Duration(*waitMS)*time.Millisecond)
		blockedBefore := !finished()
		sentBefore := sent.Load()

		// N unary RPCs, C workers, on the same ClientConn.
		var (
			mu           sync.Mutex
			lat          latencies
			firstErr     string
			bodyMismatch int
			next         atomic.Int64
			attempted    atomic.Int64
			wg           sync.WaitGroup
		)
		ustart := time.Now()
		for w := 0; w < *c; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := newRand()
				for e.ctx.Err() == nil && next.Add(1) <= int64(*n) {
					attempted.Add(1)
					req := randomBytes(rng, 64)
					var resp []byte
					ctx, cancel := e.rpcCtx(nil, 0)
					t0 := time.Now()
					err := e.cc.Invoke(ctx, methodUnary, &req, &resp)
					d := time.Since(t0)
					cancel()
					r.result(err)
					mu.Lock()
					if err != nil {
						if firstErr == "" {
							firstErr = err.Error()
						}
					} else {
						lat = append(lat, d)
						if !bytes.Equal(resp, req) {
							bodyMismatch++
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		unaryElapsed := time.Since(ustart)
		blockedAfter := !finished()
		sentAfter := sent.Load()

		// Cancel the stalled stream; the uploader returns from SendMsg.
		scancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			r.fail("the upload goroutine did not return within 5s of the cancel")
		}
		uploadCode := ""
		if finished() && uploadErr != nil {
			uploadCode = status.Code(uploadErr).String()
		}

		r.set("size", *size)
		r.set("msg_size", *msgSize)
		r.set("n", *n)
		r.set("c", *c)
		r.set("attempted", attempted.Load())
		r.setLatencies(lat)
		r.set("unary_elapsed_s", unaryElapsed.Seconds())
		r.set("upload_sent_bytes", sentAfter)
		r.set("upload_sent_bytes_at_wait", sentBefore)
		r.set("upload_blocked", blockedAfter)
		r.set("upload_end_code", uploadCode) // how the upload ended (after the cancel: Canceled)
		r.set("elapsed_s", time.Since(start).Seconds())

		if !blockedBefore || !blockedAfter {
			why := "it finished"
			if uploadErr != nil && !blockedBefore {
				why = "it failed: " + uploadErr.Error()
			}
			if blockedBefore {
				r.fail("the upload was blocked after wait-ms but not when the unary RPCs were done (%d of %d bytes sent)", sentAfter, *size)
			} else {
				r.fail("the upload was not blocked after wait-ms: %s (%d of %d bytes sent)", why, sentBefore, *size)
			}
		}
		if a := attempted.Load(); a < int64(*n) {
			r.fail("only %d of %d unary RPCs were attempted within -max-time %v", a, *n, e.opts.maxTime)
		}
		if failed := int(attempted.Load()) - len(lat); failed > 0 {
			r.fail("%d of %d unary RPCs failed; first error: %s", failed, attempted.Load(), firstErr)
		}
		if bodyMismatch > 0 {
			r.fail("%d unary responses differed from the request", bodyMismatch)
		}
	}
	return validate, run
}

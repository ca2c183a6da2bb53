package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// clientOpts are the flags every mode shares. They may be given before MODE
// (as in "client -target A:P unary -n 10") or after it.
type clientOpts struct {
	target      string
	dialTimeout time.Duration
	rpcTimeout  time.Duration
	maxTime     time.Duration
}

// addCommonFlags registers the shared flags on fs, with the current values
// of o as defaults, so that a value parsed before MODE is kept.
func addCommonFlags(fs *flag.FlagSet, o *clientOpts) {
	fs.StringVar(&o.target, "target", o.target, "server or h2steer address, ADDR:PORT (required)")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", o.dialTimeout, "bound on connecting (blocking dial)")
	fs.DurationVar(&o.rpcTimeout, "rpc-timeout", o.rpcTimeout, "deadline of each RPC (streams: of the whole stream)")
	fs.DurationVar(&o.maxTime, "max-time", o.maxTime, "bound on the whole run")
}

// env is what a mode runs with.
type env struct {
	ctx  context.Context // ends after -max-time
	cc   *grpc.ClientConn
	opts clientOpts
	rep  *report
}

// rpcCtx returns a context for one RPC, with deadline -rpc-timeout plus
// extra, carrying the outgoing metadata md (may be nil).
func (e *env) rpcCtx(md metadata.MD, extra time.Duration) (context.Context, context.CancelFunc) {
	ctx := e.ctx
	if md != nil {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	return context.WithTimeout(ctx, e.opts.rpcTimeout+extra)
}

// A mode registers its flags on fs and returns a validation of the parsed
// flags (an error is a usage error) and the run itself.
type modeFunc func(fs *flag.FlagSet) (validate func() error, run func(e *env))

var modes = map[string]modeFunc{
	"unary":      modeUnary,
	"sstream":    modeServerStream,
	"cstream":    modeClientStream,
	"bidi":       modeBidi,
	"large":      modeLarge,
	"concurrent": modeConcurrent,
	"cancel":     modeCancel,
	"deadline":   modeDeadline,
	"status":     modeStatus,
	"stats":      modeStats,
	"reset":      modeReset,
	"stall":      modeStall,
}

// report collects the outcome; it is safe for concurrent use.
type report struct {
	mu       sync.Mutex
	fields   map[string]interface{}
	ok       int
	errors   map[string]int
	failures []string
	once     sync.Once
}

func newReport(mode string) *report {
	return &report{fields: map[string]interface{}{"mode": mode}, errors: map[string]int{}, failures: []string{}}
}

func (r *report) set(k string, v interface{}) {
	r.mu.Lock()
	r.fields[k] = v
	r.mu.Unlock()
}

func (r *report) has(k string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.fields[k]
	return ok
}

func (r *report) fail(format string, args ...interface{}) {
	r.mu.Lock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// result counts one RPC by its outcome: "ok" or errors[code name].
func (r *report) result(err error) {
	r.mu.Lock()
	if err == nil {
		r.ok++
	} else {
		r.errors[status.Code(err).String()]++
	}
	r.mu.Unlock()
}

// emit prints the JSON object (once, whoever calls first) and returns the
// exit code.
func (r *report) emit(dials int64) int {
	code := exitFail
	r.once.Do(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.fields["ok"] = r.ok
		r.fields["errors"] = r.errors
		r.fields["dials"] = dials
		r.fields["failures"] = r.failures
		r.fields["pass"] = len(r.failures) == 0
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf) // writes one line, newline-terminated
		enc.SetEscapeHTML(false)     // keep "<", ">" and "&" readable
		if err := enc.Encode(r.fields); err != nil {
			buf.Reset()
			fmt.Fprintf(&buf, "{\"mode\":%q,\"pass\":false,\"failures\":[%q]}\n", r.fields["mode"], err.Error())
		} else if len(r.failures) == 0 {
			code = exitPass
		}
		os.Stdout.Write(buf.Bytes())
	})
	return code
}

func runClient(args []string) int {
	opts := clientOpts{dialTimeout: 5 * time.Second, rpcTimeout: 10 * time.Second, maxTime: 60 * time.Second}
	top := flag.NewFlagSet("client", flag.ContinueOnError)
	addCommonFlags(top, &opts)
	top.Usage = func() {
		fmt.Fprint(top.Output(), usageText)
		top.PrintDefaults()
	}
	if err := top.Parse(args); err != nil {
		return helpOrUsage(err)
	}
	if top.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "client: MODE missing")
		top.Usage()
		return exitUsage
	}
	name := top.Arg(0)
	mf, found := modes[name]
	if !found {
		fmt.Fprintf(os.Stderr, "client: unknown mode %q\n", name)
		top.Usage()
		return exitUsage
	}
	fs := flag.NewFlagSet("client "+name, flag.ContinueOnError)
	addCommonFlags(fs, &opts)
	validate, run := mf(fs)
	if err := fs.Parse(top.Args()[1:]); err != nil {
		return helpOrUsage(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "client %s: unexpected argument %q\n", name, fs.Arg(0))
		return exitUsage
	}
	err := validate()
	if err == nil && opts.target == "" {
		err = errors.New("-target is required")
	}
	if err == nil && (opts.dialTimeout <= 0 || opts.rpcTimeout <= 0 || opts.maxTime <= 0) {
		err = errors.New("-dial-timeout, -rpc-timeout and -max-time must be > 0")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "client %s: %v\n", name, err)
		fs.Usage()
		return exitUsage
	}

	rep := newReport(name)
	rep.set("target", opts.target)
	var dials atomic.Int64

	// Last resort if something blocks past every deadline.
	watchdog := time.AfterFunc(opts.dialTimeout+opts.maxTime+15*time.Second, func() {
		rep.fail("watchdog: run did not end within -dial-timeout + -max-time + 15s")
		os.Exit(rep.emit(dials.Load()))
	})
	defer watchdog.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), opts.maxTime)
	defer cancel()

	// One ClientConn, passthrough resolution of the literal address, the
	// default pick_first policy: every RPC rides one HTTP/2 connection
	// unless that connection is lost (then "dials" goes above 1).
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	dctx, dcancel := context.WithTimeout(ctx, opts.dialTimeout)
	cc, err := grpc.DialContext(dctx, "passthrough:///"+opts.target,
		grpc.WithInsecure(),
		grpc.WithBlock(),
		grpc.WithContextDialer(dialer),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMsgSize),
			grpc.MaxCallSendMsgSize(maxMsgSize),
		),
	)
	dcancel()
	if err != nil {
		rep.fail("dial %s: %v", opts.target, err)
		return rep.emit(dials.Load())
	}
	defer cc.Close()

	start := time.Now()
	run(&env{ctx: ctx, cc: cc, opts: opts, rep: rep})
	if !rep.has("elapsed_s") {
		rep.set("elapsed_s", time.Since(start).Seconds())
	}
	return rep.emit(dials.Load())
}

// helpOrUsage maps a flag parse error to an exit code: -h is not an error.
func helpOrUsage(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitPass
	}
	return exitUsage
}

// ---- helpers shared by the modes ----

// metaFlag is a repeatable -meta k=v flag.
type metaFlag []string

func (m *metaFlag) String() string { return strings.Join(*m, ",") }
func (m *metaFlag) Set(s string) error {
	k, _, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	*m = append(*m, s)
	return nil
}

// md returns the pairs as outgoing metadata (keys lower-cased).
func (m metaFlag) md() metadata.MD {
	md := metadata.MD{}
	for _, kv := range m {
		k, v, _ := strings.Cut(kv, "=")
		k = strings.ToLower(k)
		md[k] = append(md[k], v)
	}
	return md
}

// latencies summarises durations in microseconds.
type latencies []time.Duration

// percentile returns the nearest-rank q-quantile (0 < q <= 1) in µs.
func (l latencies) percentile(q float64) int64 {
	if len(l) == 0 {
		return 0
	}
	s := append(latencies(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(q*float64(len(s))+0.999999) - 1
	if idx < 0 {
		idx = 0
	}
	if idx >= len(s) {
		idx = len(s) - 1
	}
	return s[idx].Microseconds()
}

func (l latencies) mean() int64 {
	if len(l) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	return (sum / time.Duration(len(l))).Microseconds()
}

// setLatencies adds p50_us, p90_us, p99_us, mean_us and max_us.
func (r *report) setLatencies(l latencies) {
	r.set("p50_us", l.percentile(0.50))
	r.set("p90_us", l.percentile(0.90))
	r.set("p99_us", l.percentile(0.99))
	r.set("mean_us", l.mean())
	r.set("max_us", l.percentile(1))
}

// sleepCtx sleeps for d or until ctx is done; it reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// checkBackendMD checks that a response carried x-backend-id in its header
// and the same id in x-backend-trailer; it returns the id.
func checkBackendMD(r *report, hdr, trl metadata.MD) string {
	id := mdFirst(hdr, mdBackendID)
	if id == "" {
		r.fail("response header has no %s", mdBackendID)
	} else if t := mdFirst(trl, mdBackendTrailer); t != id {
		r.fail("%s header %q != %s trailer %q", mdBackendID, id, mdBackendTrailer, t)
	}
	return id
}

// expectEOF reads once more from a stream whose last message was consumed
// and checks that it ends with status OK.
func expectEOF(r *report, cs grpc.ClientStream) error {
	var extra []byte
	err := cs.RecvMsg(&extra)
	if err == io.EOF {
		return nil
	}
	if err == nil {
		r.fail("unexpected extra message of %d bytes", len(extra))
		return nil
	}
	return err
}

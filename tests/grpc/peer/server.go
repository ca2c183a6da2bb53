package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

const maxMsgSize = 64 << 20 // 64 MiB, both directions, server and client

// echoServer holds the server's identity and counters. Its methods are the
// RPC handlers of h2steer.test.Echo and a stats.Handler that tells the
// HTTP/2 connections (transports) apart.
type echoServer struct {
	id         string
	failStatus int // when not 0, every Echo RPC fails with this gRPC code (-fail-status)
	delay      time.Duration // added to the service time of every RPC but Stats (-delay)

	mu        sync.Mutex
	rpcs      int64            // RPCs other than Stats
	byMethod  map[string]int64 // same, per method name
	cancelled int64            // Hang RPCs ended by cancel or deadline
	conns     map[uint64]bool  // connections that carried an RPC other than Stats
	inFlight  int64            // RPCs other than Stats now running
	maxFlight int64            // peak of inFlight

	connSeq    atomic.Uint64 // connection ids handed out by TagConn
	connsTotal atomic.Int64  // connections accepted (ConnBegin)
	connsOpen  atomic.Int64  // connections accepted and not yet ended
}

// echoDesc declares the service by hand, in place of generated code.
func echoDesc(s *echoServer) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: serviceName,
		HandlerType: (*interface{})(nil), // any implementation will do
		Methods: []grpc.MethodDesc{
			{MethodName: "Unary", Handler: s.handleUnary},
			{MethodName: "Hang", Handler: s.handleHang},
			{MethodName: "Stats", Handler: s.handleStats},
		},
		Streams: []grpc.StreamDesc{
			{StreamName: "ServerStream", Handler: s.handleServerStream, ServerStreams: true},
			{StreamName: "ClientStream", Handler: s.handleClientStream, ClientStreams: true},
			{StreamName: "Bidi", Handler: s.handleBidi, ServerStreams: true, ClientStreams: true},
		},
	}
}

func runServer(args []string) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	listen := fs.String("listen", "", "address(es) to listen on, ADDR:PORT[,ADDR:PORT...] (required): one server behind them all")
	id := fs.String("id", "", "backend name returned in x-backend-id (required)")
	maxStreams := fs.Uint("max-streams", 0, "HTTP/2 MaxConcurrentStreams (0 = grpc default)")
	withHealth := fs.Bool("health", false, "serve grpc.health.v1 and read 'health STATUS [service]' lines on stdin")
	maxAge := fs.Duration("max-conn-age", 0, "keepalive MaxConnectionAge: send GOAWAY after this (0 = never)")
	maxAgeGrace := fs.Duration("max-conn-age-grace", 0, "keepalive MaxConnectionAgeGrace (0 = infinite)")
	failStatus := fs.Int("fail-status", 0, "answer every Echo RPC (not Stats) with this gRPC status code (0 = off)")
	delay := fs.Duration("delay", 0, "added to the service time of every RPC but Stats (a slow backend)")
	if err := fs.Parse(args); err != nil {
		return helpOrUsage(err)
	}
	if *listen == "" || *id == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "server: -listen and -id are required, and no positional arguments")
		fs.Usage()
		return exitUsage
	}

	if *failStatus < 0 || *failStatus > 16 {
		fmt.Fprintln(os.Stderr, "server: -fail-status must be a gRPC code from 0 to 16")
		return exitUsage
	}
	s := &echoServer{id: *id, failStatus: *failStatus, delay: *delay, byMethod: map[string]int64{}, conns: map[uint64]bool{}}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMsgSize),
		grpc.MaxSendMsgSize(maxMsgSize),
		grpc.StatsHandler(s),
	}
	if *maxStreams > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(uint32(*maxStreams)))
	}
	if *maxAge > 0 || *maxAgeGrace > 0 {
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionAge:      *maxAge,
			MaxConnectionAgeGrace: *maxAgeGrace,
		}))
	}
	gs := grpc.NewServer(opts...)
	gs.RegisterService(echoDesc(s), s)

	var hs *health.Server
	if *withHealth {
		hs = health.NewServer() // overall status ("") starts SERVING
		hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(gs, hs)
	}

	var listeners []net.Listener
	for _, addr := range strings.Split(*listen, ",") {
		if addr == "" {
			fmt.Fprintln(os.Stderr, "server: -listen: an empty address in the list")
			for _, l := range listeners {
				l.Close()
			}
			return exitUsage
		}
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "server: listen on %s: %v\n", addr, err)
			for _, l := range listeners {
				l.Close()
			}
			return exitFail
		}
		listeners = append(listeners, lis)
	}
	serveErr := make(chan error, len(listeners))
	for _, lis := range listeners {
		go func(l net.Listener) { serveErr <- gs.Serve(l) }(lis)
	}

	// os.Stdout is unbuffered: the line is out when Fprintf returns.
	fmt.Fprintf(os.Stdout, "READY %s\n", listeners[0].Addr())
	if hs != nil {
		go healthCommands(hs, os.Stdin, os.Stdout)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-serveErr:
		fmt.Fprintf(os.Stderr, "server: serve: %v\n", err)
		return exitFail
	case <-sig:
	}
	if hs != nil {
		hs.Shutdown()
	}
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		gs.Stop() // also ends any Hang RPCs still open
		<-done
	}
	return exitPass
}

// healthCommands reads "health SERVING|NOT_SERVING [service]" lines and
// applies them, answering "OK" (or "ERR reason") on one line each.
func healthCommands(hs *health.Server, in io.Reader, out io.Writer) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		st, known := healthpb.HealthCheckResponse_ServingStatus_value[strings.ToUpper(safeIndex(f, 1))]
		if f[0] != "health" || len(f) > 3 || !known {
			fmt.Fprintln(out, "ERR usage: health SERVING|NOT_SERVING [service]")
			continue
		}
		hs.SetServingStatus(safeIndex(f, 2), healthpb.HealthCheckResponse_ServingStatus(st))
		fmt.Fprintln(out, "OK")
	}
}

func safeIndex(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// ---- stats.Handler: one id per HTTP/2 connection ----

type connIDKey struct{}

func (s *echoServer) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	// On the server, every RPC context of this connection derives from
	// the context returned here, so the RPC handlers can read the id.
	return context.WithValue(ctx, connIDKey{}, s.connSeq.Add(1))
}

func (s *echoServer) HandleConn(_ context.Context, cs stats.ConnStats) {
	switch cs.(type) {
	case *stats.ConnBegin:
		s.connsTotal.Add(1)
		s.connsOpen.Add(1)
	case *stats.ConnEnd:
		s.connsOpen.Add(-1)
	}
}

func (s *echoServer) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (s *echoServer) HandleRPC(context.Context, stats.RPCStats)                       {}

// ---- common part of every RPC ----

// mdSetter is what begin needs to attach response metadata: a
// grpc.ServerStream, or unaryMD for unary handlers.
type mdSetter interface {
	SetHeader(metadata.MD) error
	SetTrailer(metadata.MD)
}

type unaryMD struct{ ctx context.Context }

func (u unaryMD) SetHeader(md metadata.MD) error { return grpc.SetHeader(u.ctx, md) }
func (u unaryMD) SetTrailer(md metadata.MD)      { _ = grpc.SetTrailer(u.ctx, md) }

// begin starts every RPC: it counts it (except Stats), sets x-backend-id,
// x-backend-trailer and the x-echo-* copies, then applies x-sleep-ms and
// x-status-code. It returns the request metadata and a function to call
// when the RPC ends; a non-nil error is the status to end the RPC with.
func (s *echoServer) begin(ctx context.Context, method string, ms mdSetter) (metadata.MD, func(), error) {
	in, _ := metadata.FromIncomingContext(ctx)
	end := func() {}
	if method != "Stats" {
		connID, _ := ctx.Value(connIDKey{}).(uint64)
		s.mu.Lock()
		s.rpcs++
		s.byMethod[method]++
		s.conns[connID] = true
		s.inFlight++
		if s.inFlight > s.maxFlight {
			s.maxFlight = s.inFlight
		}
		s.mu.Unlock()
		end = func() {
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		}
	}

	hdr := metadata.Pairs(mdBackendID, s.id)
	trl := metadata.Pairs(mdBackendTrailer, s.id)
	if n := fillBytes(in); n > 0 {
		hdr.Set(mdFillBytes, strconv.Itoa(n))
	}
	for k, v := range in { // incoming keys are lower case
		if strings.HasPrefix(k, mdEchoPrefix) {
			hdr[k] = append([]string(nil), v...)
			trl[echoTrailerKey(k)] = append([]string(nil), v...)
		}
	}
	if err := ms.SetHeader(hdr); err != nil {
		return in, end, err
	}
	ms.SetTrailer(trl)

	sleep, err := mdInt(in, mdSleepMS, 0)
	if err != nil {
		return in, end, status.Error(codes.InvalidArgument, err.Error())
	}
	wait := time.Duration(sleep) * time.Millisecond
	if method != "Stats" {
		wait += s.delay
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return in, end, status.FromContextError(ctx.Err()).Err()
		}
	}

	code, err := mdInt(in, mdStatusCode, 0)
	if err != nil {
		return in, end, status.Error(codes.InvalidArgument, err.Error())
	}
	if s.failStatus != 0 && method != "Stats" {
		return in, end, status.Errorf(codes.Code(s.failStatus), "backend %s fails every RPC (-fail-status)", s.id)
	}
	if code != 0 {
		msg := mdFirst(in, mdStatusMessage)
		if b := mdFirst(in, mdStatusMessageBin); b != "" {
			msg = b
		}
		return in, end, status.Error(codes.Code(code), msg)
	}
	return in, end, nil
}

// ---- handlers ----

func (s *echoServer) handleUnary(_ interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
	var req []byte
	if err := dec(&req); err != nil {
		return nil, err
	}
	in, end, err := s.begin(ctx, "Unary", unaryMD{ctx})
	defer end()
	if err != nil {
		return nil, err
	}
	if _, set := in[mdResponseSize]; set {
		n, err := mdInt(in, mdResponseSize, 0)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		return pattern(n), nil
	}
	return req, nil
}

// handleHang blocks until the RPC's context is done.
func (s *echoServer) handleHang(_ interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
	var req []byte
	if err := dec(&req); err != nil {
		return nil, err
	}
	_, end, err := s.begin(ctx, "Hang", unaryMD{ctx})
	defer end()
	if err != nil {
		return nil, err
	}
	// Send the headers now so that the client learns the backend id.
	if err := grpc.SendHeader(ctx, metadata.MD{}); err != nil {
		return nil, err
	}
	<-ctx.Done()
	if e := ctx.Err(); errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded) {
		s.mu.Lock()
		s.cancelled++
		s.mu.Unlock()
	}
	return nil, status.FromContextError(ctx.Err()).Err()
}

func (s *echoServer) handleStats(_ interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
	var req []byte
	if err := dec(&req); err != nil {
		return nil, err
	}
	_, end, err := s.begin(ctx, "Stats", unaryMD{ctx})
	defer end()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	byMethod := make(map[string]int64, len(s.byMethod))
	for k, v := range s.byMethod {
		byMethod[k] = v
	}
	out := map[string]interface{}{
		"id":            s.id,
		"rpcs":          s.rpcs,
		"by_method":     byMethod,
		"cancelled":     s.cancelled,
		"conns":         len(s.conns),
		"in_flight":     s.inFlight,
		"max_in_flight": s.maxFlight,
		"conns_total":   s.connsTotal.Load(),
		"conns_open":    s.connsOpen.Load(),
	}
	s.mu.Unlock()
	b, err := json.Marshal(out)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return b, nil
}

func (s *echoServer) handleServerStream(_ interface{}, ss grpc.ServerStream) error {
	in, end, err := s.begin(ss.Context(), "ServerStream", ss)
	defer end()
	if err != nil {
		return err
	}
	var req []byte // ignored
	if err := ss.RecvMsg(&req); err != nil {
		return err
	}
	count, err := mdInt(in, mdCount, 0)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	size, err := mdInt(in, mdMsgSize, 16)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if size < 8 {
		size = 8 // the index always fits
	}
	for i := 0; i < count; i++ {
		msg := make([]byte, size)
		binary.BigEndian.PutUint64(msg, uint64(i))
		fillPattern(msg[8:], 8)
		if err := ss.SendMsg(&msg); err != nil {
			return err
		}
	}
	return nil
}

func (s *echoServer) handleClientStream(_ interface{}, ss grpc.ServerStream) error {
	_, end, err := s.begin(ss.Context(), "ClientStream", ss)
	defer end()
	if err != nil {
		return err
	}
	var count, total int
	for {
		var msg []byte
		err := ss.RecvMsg(&msg)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		count++
		total += len(msg)
	}
	reply := []byte(fmt.Sprintf("count=%d bytes=%d", count, total))
	return ss.SendMsg(&reply)
}

func (s *echoServer) handleBidi(_ interface{}, ss grpc.ServerStream) error {
	_, end, err := s.begin(ss.Context(), "Bidi", ss)
	defer end()
	if err != nil {
		return err
	}
	for {
		var msg []byte
		err := ss.RecvMsg(&msg)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ss.SendMsg(&msg); err != nil {
			return err
		}
	}
}

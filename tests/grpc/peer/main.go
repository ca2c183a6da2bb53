// Command h2s-grpc-peer is a test peer for h2steer's gRPC tests: a grpc-go
// echo server ("server") and a grpc-go client that drives one
// grpc.ClientConn through a set of checks ("client").
//
// It uses no generated protobuf code: messages are raw bytes carried by a
// pass-through codec registered under the name "proto" (see codec.go), and the
// service h2steer.test.Echo is declared with a hand-written grpc.ServiceDesc.
//
// Build (offline, Debian 12 packages golang-go and golang-google-grpc-dev):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o /tmp/h2s-grpc-peer .
package main

import (
	"fmt"
	"os"
)

// Exit codes shared by both subcommands.
const (
	exitPass  = 0 // client: every check passed; server: clean shutdown
	exitFail  = 1 // client: a check failed; server: runtime error
	exitUsage = 2 // bad command line
)

const usageText = `usage:
  h2s-grpc-peer server -listen ADDR:PORT[,...] -id NAME [-max-streams N] [-health]
                       [-max-conn-age DUR] [-max-conn-age-grace DUR]
  h2s-grpc-peer client -target ADDR:PORT MODE [flags]
      MODE: unary sstream cstream bidi large concurrent cancel deadline status stats
            reset stall
  h2s-grpc-peer client MODE -h   lists the flags of one mode
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usageText)
		os.Exit(exitUsage)
	}
	switch os.Args[1] {
	case "server":
		os.Exit(runServer(os.Args[2:]))
	case "client":
		os.Exit(runClient(os.Args[2:]))
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stdout, usageText)
		os.Exit(exitPass)
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n%s", os.Args[1], usageText)
		os.Exit(exitUsage)
	}
}

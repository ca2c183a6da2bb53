"""RFC 9113 (HTTP/2) conformance of the client-facing side: every MUST of sections 4 to 8 that a
server-side proxy can break, sent as raw frames by tests/grpc/h2raw.py through a captured
connection (the client runs in the lab's cgroup), with a real grpc-go backend behind. Each case
names what the RFC requires and checks our answer: the GOAWAY or RST_STREAM and its code, that
a stream error leaves its connection serving, and that a gRPC client beside it on other
connections loses nothing."""
import json
import os
import signal
import time

import pytest

import h2slab
from h2slab import metric

RAW = "h2raw.py"
MAX = 2 ** 31 - 1


def raw(lab, vip, *script, timeout=60):
    return lab.pyclient(RAW, vip, json.dumps(list(script)), timeout=timeout)


def goaways(r):
    return [f for f in r["frames"] if f["type"] == "GOAWAY"]


def resets(r, sid):
    return [f["code"] for f in r["frames"] if f["type"] == "RST_STREAM" and f["sid"] == sid]


def answer(r, sid):
    """(:status, grpc-status) the server sent on sid, None for what it did not."""
    hs = [f["headers"] for f in r["frames"] if f["type"] == "HEADERS" and f["sid"] == sid]
    status = hs[0].get(":status") if hs else None
    grpc = next((h["grpc-status"] for h in hs if "grpc-status" in h), None)
    return status, grpc


GOOD = [["headers", 3, "grpc", False], ["data", 3, {"grpc": "after"}, True],
        ["until", 10000, "stream_end", 3]]


@pytest.fixture
def served(lab):
    be = lab.backends(1)[0]
    vip = lab.vip()
    d = lab.daemon(services={vip: [be.addr]})
    # A well-behaved gRPC client on its own connection, all along.
    side = lab.client_async(vip, "unary", "-n", 1500, "-c", 2, "-interval-us", 10000,
                            "-rpc-timeout", "5s")
    yield vip, d, be
    assert side.p.wait(120) == 0, side.tail()
    s = json.loads(side.text().strip().splitlines()[-1])
    assert s["ok"] == 1500 and not s.get("errors"), s


# (case, what RFC 9113 requires, the frames, the GOAWAY code)
CONNECTION_ERRORS = [
    ("lower_stream_id", "5.1.1: a new stream id must be above every one the client used; a "
     "lower one is an unexpected stream identifier: PROTOCOL_ERROR",
     [["headers", 5, "grpc", False], ["headers", 3, "grpc", False]], "PROTOCOL_ERROR"),
    ("data_on_skipped_id", "5.1.1: opening stream 5 closed stream 3, never opened: a frame "
     "on it is unexpected: PROTOCOL_ERROR",
     [["headers", 5, "grpc", False], ["data", 3, "x", True]], "PROTOCOL_ERROR"),
    ("even_stream_id", "5.1.1: streams a client opens are odd: PROTOCOL_ERROR",
     [["headers", 2, "grpc", True]], "PROTOCOL_ERROR"),
    ("stream_id_0", "6.2: HEADERS on stream 0: PROTOCOL_ERROR",
     [["headers", 0, "grpc", True]], "PROTOCOL_ERROR"),
    ("reused_stream_id", "5.1: a frame after the stream's END_STREAM, once closed: "
     "connection error STREAM_CLOSED",
     [["headers", 1, "grpc", False], ["data", 1, {"grpc": "a"}, True],
      ["until", 10000, "stream_end", 1], ["headers", 1, "grpc", True]], "STREAM_CLOSED"),
    ("data_on_idle", "5.1: idle streams take only HEADERS and PRIORITY: PROTOCOL_ERROR",
     [["data", 1, "x", True]], "PROTOCOL_ERROR"),
    ("rst_on_idle", "6.4: RST_STREAM on an idle stream: PROTOCOL_ERROR",
     [["rst", 1, 8]], "PROTOCOL_ERROR"),
    ("window_update_on_idle", "5.1: WINDOW_UPDATE on an idle stream: PROTOCOL_ERROR",
     [["window_update", 1, 100]], "PROTOCOL_ERROR"),
    ("frame_over_max_frame_size", "4.2: a frame over SETTINGS_MAX_FRAME_SIZE (16384, ours): "
     "FRAME_SIZE_ERROR",
     [["headers", 1, "grpc", False], ["data", 1, {"zeros": 16385}, True]],
     "FRAME_SIZE_ERROR"),
    ("settings_length", "6.5: a SETTINGS length not a multiple of 6: FRAME_SIZE_ERROR",
     [["raw", 4, 0, 0, "000100"]], "FRAME_SIZE_ERROR"),
    ("settings_on_stream", "6.5: SETTINGS on a stream: PROTOCOL_ERROR",
     [["raw", 4, 0, 1, ""]], "PROTOCOL_ERROR"),
    ("enable_push_2", "6.5.2: SETTINGS_ENABLE_PUSH other than 0 or 1: PROTOCOL_ERROR",
     [["settings", [[2, 2]]]], "PROTOCOL_ERROR"),
    ("initial_window_over_max", "6.5.2: SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1: "
     "FLOW_CONTROL_ERROR", [["settings", [[4, 2 ** 31]]]], "FLOW_CONTROL_ERROR"),
    ("max_frame_size_below_16384", "6.5.2: SETTINGS_MAX_FRAME_SIZE below 16384: "
     "PROTOCOL_ERROR", [["settings", [[5, 16383]]]], "PROTOCOL_ERROR"),
    ("max_frame_size_over_2^24-1", "6.5.2: SETTINGS_MAX_FRAME_SIZE over 2^24-1: "
     "PROTOCOL_ERROR", [["settings", [[5, 2 ** 24]]]], "PROTOCOL_ERROR"),
    ("window_update_0_connection", "6.9: a WINDOW_UPDATE of 0 on the connection: "
     "PROTOCOL_ERROR", [["window_update", 0, 0]], "PROTOCOL_ERROR"),
    ("window_update_0_stream", "6.9: a WINDOW_UPDATE of 0 on a stream is a stream error "
     "PROTOCOL_ERROR, which 5.4.1 lets an endpoint treat as a connection error (libnghttp2 "
     "does)", [["headers", 1, "grpc", False], ["window_update", 1, 0]], "PROTOCOL_ERROR"),
    ("connection_window_overflow", "6.9.1: a connection window over 2^31-1: "
     "FLOW_CONTROL_ERROR", [["window_update", 0, MAX]], "FLOW_CONTROL_ERROR"),
    ("window_update_length", "6.9: WINDOW_UPDATE not 4 octets: FRAME_SIZE_ERROR",
     [["raw", 8, 0, 0, "000001"]], "FRAME_SIZE_ERROR"),
    ("ping_length", "6.7: PING not 8 octets: FRAME_SIZE_ERROR",
     [["raw", 6, 0, 0, "0001"]], "FRAME_SIZE_ERROR"),
    ("ping_on_stream", "6.7: PING on a stream: PROTOCOL_ERROR",
     [["raw", 6, 0, 1, "0000000000000000"]], "PROTOCOL_ERROR"),
    ("rst_stream_length", "6.4: RST_STREAM not 4 octets: FRAME_SIZE_ERROR",
     [["headers", 1, "grpc", False], ["raw", 3, 0, 1, "000000"]], "FRAME_SIZE_ERROR"),
    ("push_promise_from_client", "8.4: a client cannot push: PROTOCOL_ERROR",
     [["headers", 1, "grpc", False], ["raw", 5, 4, 1, "0000000282"]], "PROTOCOL_ERROR"),
    ("continuation_interleaved", "6.10/4.3: a header block is contiguous: a DATA inside it: "
     "PROTOCOL_ERROR",
     [["headers", 1, "grpc", False, {"end_headers": False}], ["data", 1, "x", True]],
     "PROTOCOL_ERROR"),
    ("continuation_other_stream", "6.10: CONTINUATION of another stream inside a header "
     "block: PROTOCOL_ERROR",
     [["headers", 1, "grpc", False, {"end_headers": False}], ["continuation", 3, [], True]],
     "PROTOCOL_ERROR"),
    ("continuation_alone", "6.10: CONTINUATION with no header block open: PROTOCOL_ERROR",
     [["continuation", 1, [], True]], "PROTOCOL_ERROR"),
    ("undecodable_header_block", "4.3: a header block that does not decode: "
     "COMPRESSION_ERROR", [["raw", 1, 5, 1, "bf"]], "COMPRESSION_ERROR"),
]


def test_connection_errors_close_that_connection_alone_with_their_code(lab, served):
    vip, d, be = served
    got = {}
    for case, rule, script, code in CONNECTION_ERRORS:
        r = raw(lab, vip, *script, ["until", 5000, "goaway", 0], ["read", 300])
        g = goaways(r)
        got[case] = (g[0]["code"] if g else None, r["closed"])
        assert g and g[0]["code"] == code and r["closed"], (case, rule, r)
        # The last stream id is one the server processed: nothing above it was.
        assert g[0]["last"] <= 5, (case, g)
    print("connection errors", json.dumps(got))
    m = d.scrape()
    assert metric(m, "h2steer_client_abuse_total", kind="protocol_error") == \
        len(CONNECTION_ERRORS)
    assert "protocol error" in d.proc.text()


def fields(*extra, drop=()):
    base = [[":method", "POST"], [":scheme", "http"], [":authority", "x"],
            [":path", "/h2steer.test.Echo/Unary"], ["content-type", "application/grpc"],
            ["te", "trailers"]]
    return [h for h in base if h[0] not in drop] + [list(e) for e in extra]


# (case, what RFC 9113 requires, the frames on stream 1): each a stream error
# PROTOCOL_ERROR (8.1.1: a malformed request), unless a code is given.
STREAM_ERRORS = [
    ("missing_path", "8.3.1: :path is required", [["headers", 1, fields(drop=":path"), True]]),
    ("missing_method", "8.3.1: :method is required",
     [["headers", 1, fields(drop=":method"), True]]),
    ("missing_scheme", "8.3.1: :scheme is required",
     [["headers", 1, fields(drop=":scheme"), True]]),
    ("duplicate_method", "8.3: a pseudo-header once only",
     [["headers", 1, fields([":method", "POST"]), True]]),
    ("pseudo_after_regular", "8.3: pseudo-headers before regular fields",
     [["headers", 1, [["content-type", "application/grpc"]] + fields(drop="content-type"),
       True]]),
    ("empty_path", "8.3.1: :path must not be empty",
     [["headers", 1, fields(drop=":path") + [[":path", ""]], True]]),
    ("unknown_pseudo", "8.3: no pseudo-header but those defined", [["headers", 1,
                                                                      fields([":foo", "1"]),
                                                                      True]]),
    ("response_pseudo_in_request", "8.3: :status is a response's",
     [["headers", 1, fields([":status", "200"]), True]]),
    ("uppercase_name", "8.2.1: field names are lowercase",
     [["headers", 1, fields(["X-Upper", "1"]), True]]),
    ("space_in_name", "8.2.1: no SP in a field name", [["headers", 1, fields(["x y", "1"]),
                                                          True]]),
    ("newline_in_value", "8.2.1: no CR, LF or NUL in a field value",
     [["headers", 1, fields(["x-v", "a\nb"]), True]]),
    ("connection", "8.2.2: no connection-specific field: connection",
     [["headers", 1, fields(["connection", "keep-alive"]), True]]),
    ("te_not_trailers", "8.2.2: te other than trailers", [["headers", 1,
                                                              fields(drop="te") +
                                                              [["te", "gzip"]], True]]),
    ("transfer_encoding", "8.2.2: transfer-encoding",
     [["headers", 1, fields(["transfer-encoding", "chunked"]), True]]),
    ("upgrade", "8.2.2: upgrade", [["headers", 1, fields(["upgrade", "h2c"]), True]]),
    ("keep_alive", "8.2.2: keep-alive", [["headers", 1, fields(["keep-alive", "5"]), True]]),
    ("proxy_connection", "8.2.2: proxy-connection",
     [["headers", 1, fields(["proxy-connection", "keep-alive"]), True]]),
    ("content_length_over_data", "8.1.1: DATA shorter than content-length",
     [["headers", 1, fields(["content-length", "20"]), False],
      ["data", 1, {"grpc": "abc"}, True]]),
    ("content_length_under_data", "8.1.1: DATA longer than content-length",
     [["headers", 1, fields(["content-length", "2"]), False],
      ["data", 1, {"grpc": "abc"}, True]]),
    ("trailers_without_end_stream", "8.1: a HEADERS after the request's must end the stream",
     [["headers", 1, fields(), False], ["data", 1, {"grpc": "abc"}, False],
      ["headers", 1, [["x-trailer", "1"]], False]]),
    ("pseudo_in_trailers", "8.1: no pseudo-header in trailers",
     [["headers", 1, fields(), False], ["data", 1, {"grpc": "abc"}, False],
      ["headers", 1, [[":path", "/x"]], True]]),
    ("stream_window_overflow", "6.9.1: a stream window over 2^31-1: stream error "
     "FLOW_CONTROL_ERROR",
     [["headers", 1, fields(), False], ["window_update", 1, MAX]], "FLOW_CONTROL_ERROR"),
]


def test_stream_errors_reset_that_stream_alone_and_the_connection_serves_on(lab, served):
    vip, d, be = served
    got = {}
    for case, rule, script, *code in STREAM_ERRORS:
        code = code[0] if code else "PROTOCOL_ERROR"
        # In one write: nghttp2 judges the frames together, before any answer can come.
        r = raw(lab, vip, ["batch", script], ["until", 5000, "stream_end", 1], *GOOD,
                ["read", 100])
        got[case] = resets(r, 1)
        assert resets(r, 1) == [code], (case, rule, r)
        assert answer(r, 1) == (None, None), (case, "a malformed request got an answer", r)
        assert not goaways(r) and answer(r, 3) == ("200", "0"), (case, r)
    print("stream errors", json.dumps(got))


def test_te_trailers_and_a_request_with_trailers_are_served(lab):
    """What 8.2.2 and 8.1 allow must work: te: trailers, request trailers ending the stream,
    a content-length that matches. (The python-h2 backend: grpc-go resets a request with
    trailers, PROTOCOL_ERROR, gRPC sending none.)"""
    be = lab.backends(1, raw=True)[0]
    vip = lab.vip()
    lab.daemon(services={vip: [be.addr]})
    r = raw(lab, vip, ["headers", 1, fields(["content-length", "8"]), False],
            ["data", 1, {"grpc": "abc"}, False], ["headers", 1, [["x-trailer", "1"]], True],
            ["until", 10000, "stream_end", 1])
    assert answer(r, 1) == ("200", "0") and not resets(r, 1) and not goaways(r), r


def test_data_after_end_stream_is_stream_closed(lab, served):
    """5.1: in half-closed (remote), DATA is a stream error STREAM_CLOSED (5.4.1: an endpoint
    may treat it as a connection error). The request is slow to answer, so the stream is
    still open when the DATA comes."""
    vip, d, be = served
    r = raw(lab, vip, ["headers", 1, fields(["x-sleep-ms", "300"]), False],
            ["data", 1, {"grpc": "abc"}, True], ["data", 1, "late", True],
            ["until", 5000, "stream_end", 1], ["read", 200])
    codes = resets(r, 1) + [g["code"] for g in goaways(r)]
    assert codes == ["STREAM_CLOSED"], r


def test_streams_over_max_concurrent_streams_are_refused(lab):
    """5.1.2: a stream over SETTINGS_MAX_CONCURRENT_STREAMS is a stream error PROTOCOL_ERROR or
    REFUSED_STREAM (5.4.1: or a connection error, which nghttp2 makes of it once our SETTINGS
    are acknowledged); those within it are served."""
    be = lab.backends(1)[0]
    vip = lab.vip()
    lab.daemon(services={vip: [be.addr]}, extra=["--set", "max_streams=2"])
    slow = fields(["x-sleep-ms", "500"])
    # With the preface, before our SETTINGS can be acknowledged: the stream over them is
    # refused.
    streams = [s for sid in (1, 3, 5) for s in (["headers", sid, slow, False],
                                                 ["data", sid, {"grpc": "x"}, True])]
    r = raw(lab, vip, ["nopreface"], ["batch", [["preface"]] + streams],
            ["until", 10000, "stream_end", 1], ["until", 10000, "stream_end", 3],
            ["read", 200])
    assert resets(r, 5) == ["REFUSED_STREAM"], r
    assert answer(r, 1) == ("200", "0") and answer(r, 3) == ("200", "0"), r
    assert answer(r, 5) == (None, None), r
    # Once they are: a connection error naming the last stream it processed.
    r = raw(lab, vip, ["read", 300], *streams,
            ["until", 5000, "goaway", 0], ["read", 200])
    g = goaways(r)
    assert g and g[0]["code"] == "PROTOCOL_ERROR" and g[0]["last"] == 3, r


def test_goaway_last_stream_id_streams_below_finish_streams_above_are_not_processed(lab):
    """6.8: a graceful shutdown: streams up to GOAWAY's last stream id finish; a stream opened
    after it is not processed (no answer, the client retries it elsewhere)."""
    be = lab.backends(1)[0]
    vip = lab.vip()
    d = lab.daemon(services={vip: [be.addr]})
    slow = fields(["x-sleep-ms", "2500"])
    side = lab.spawn("raw", [h2slab.PYTHON, os.path.join(h2slab.TOP, "tests", "grpc", RAW),
                             vip, json.dumps(
                                 [["headers", 1, slow, False], ["data", 1, {"grpc": "x"}, True],
                                  ["until", 10000, "goaway", 0], ["read", 1500],
                                  ["headers", 3, fields(), False],
                                  ["data", 3, {"grpc": "y"}, True],
                                  ["until", 10000, "stream_end", 1], ["read", 300]])],
                     cgroup=lab.cgroup)
    time.sleep(0.5)
    d.proc.p.send_signal(signal.SIGTERM)
    assert side.p.wait(30) == 0
    r = json.loads(side.text().strip().splitlines()[-1])
    g = goaways(r)
    # The shutdown notice (last 2^31-1), then the final GOAWAY naming stream 1.
    assert [x["code"] for x in g] == ["NO_ERROR", "NO_ERROR"] and g[0]["last"] == MAX, g
    assert g[-1]["last"] == 1, g
    assert answer(r, 1) == ("200", "0"), r
    assert answer(r, 3) == (None, None) and not resets(r, 3), r
    d.proc.p.wait(30)

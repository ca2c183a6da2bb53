"""gRPC semantics through h2steer, interop-style: every call shape, flow control with large
messages, cancellation, deadlines, status codes and metadata arrive unchanged."""
import pytest


@pytest.fixture
def svc(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    lab.daemon(services={vip: [b.addr for b in bes]})
    return vip, bes


def test_server_streaming_1000_messages(lab, svc):
    r = lab.client(svc[0], "sstream", "-count", 1000, "-size", 64)
    assert r["pass"] and r["received"] == 1000


def test_client_streaming(lab, svc):
    r = lab.client(svc[0], "cstream", "-count", 500, "-size", 1000)
    assert r["pass"] and r["reply"] == "count=500 bytes=500000"


def test_bidirectional_ping_pong(lab, svc):
    r = lab.client(svc[0], "bidi", "-count", 500, "-size", 128)
    assert r["pass"] and r["rounds"] == 500


def test_8mb_message_each_way(lab, svc):
    # The 8 MB request and its 8 MB echo cross windows of 1 MiB: flow control in both legs.
    r = lab.client(svc[0], "large", "-size", 8 * 1024 * 1024)
    assert r["pass"] and r["bytes"] == 8 * 1024 * 1024


def test_100_concurrent_streams_on_one_connection(lab, svc):
    r = lab.client(svc[0], "concurrent", "-streams", 100, "-sleep-ms", 500)
    assert r["pass"] and r["ok"] == 100 and r["dials"] == 1
    assert r["elapsed_s"] < 5, r  # concurrently, not one after the other
    assert len(r["by_backend"]) == 3


def test_cancellation_reaches_the_backend(lab, svc):
    vip, bes = svc
    r = lab.client(vip, "cancel", "-after-ms", 300)
    assert r["pass"] and r["errors"] == {"Canceled": 1}
    served = {b.id: b.stats(lab) for b in bes}
    hung = [s for s in served.values() if s["by_method"].get("Hang")]
    assert len(hung) == 1, served
    assert hung[0]["cancelled"] == 1, hung


def test_deadline_expires_with_deadline_exceeded(lab, svc):
    vip, bes = svc
    r = lab.client(vip, "deadline", "-timeout-ms", 400)
    assert r["pass"] and r["errors"] == {"DeadlineExceeded": 1}
    assert r["elapsed_ms"] < 2400
    # grpc-timeout went through: the backend's context expired too.
    assert sum(b.stats(lab)["cancelled"] for b in bes) == 1


def test_status_message_and_metadata_unchanged(lab, svc):
    r = lab.client(svc[0], "status", "-code", 9)
    assert r["pass"], r["failures"]
    assert r["code_name"] == "FailedPrecondition" and r["message"] == "bad thing – ünïcode %"
    assert r["header"]["x-echo-a"] == ["1"] and r["trailer"]["x-echo-b-trailer"] == ["two"]
    assert r["header"]["x-echo-bin-bin"] == ["AAEC/w=="]


@pytest.mark.parametrize("code", [3, 5, 7, 8, 13, 14, 16])
def test_each_status_code_passes_through(lab, svc, code):
    r = lab.client(svc[0], "status", "-code", code, "-message", f"code {code} from backend")
    assert r["pass"] and r["code"] == code and r["message"] == f"code {code} from backend"

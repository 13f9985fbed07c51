"""The webhook outbox end to end, against real HTTP(S) servers on 127.0.0.1 (no mocks of the HTTP layer).

Receivers run in threads (ThreadingHTTPServer); name resolution is faked only where a test needs a host
name to point at 127.0.0.1 (or somewhere unsafe). Time is moved with deliver_due's `now`, never slept.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from pytest_django.fixtures import Settings

from actions_app.models import Action
from core.row_insert import add_rows, write_batch
from flows_app.models import Binding, DeliveryStatus, Flow, WebhookDelivery
from flows_app.outbound.http_pinned import post_pinned
from flows_app.outbound.outbox import deliver_due, deliveries_for_binding, delivery_values
from flows_app.outbound.signing import signature_header_value, verify_signature
from flows_app.outbound.ssrf import Resolver, resolve_and_check
from flows_app.outbound.worker import start_in_process_worker, stop_in_process_worker
from tests.factories import Personas

BODY = {"event": "login.post-login", "user": {"email": "ann@example.com", "name": "Ann Ünïcode"}}
SECRET = "whsec-test-1234"


# --- a receiving server ---------------------------------------------------------------------------


@dataclass
class Answer:
    """What the receiver does with the next request."""

    status: int = 200
    delay_s: float = 0.0
    location: str = ""
    body_size: int = 0
    # Written instead of an HTTP answer, one chunk at a time, `drip_s` apart.
    raw_chunks: list[bytes] = field(default_factory=list)
    drip_s: float = 0.0


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class Receiver:
    def __init__(self, tls_context: ssl.SSLContext | None = None) -> None:
        self.requests: list[ReceivedRequest] = []
        self.answers: deque[Answer] = deque()
        self.body_bytes_sent = 0
        self.server_names: list[str | None] = []
        self.lock = threading.Lock()
        self.server = _ReceiverServer(("127.0.0.1", 0), _RecordingHandler, self)
        if tls_context is not None:
            tls_context.sni_callback = self._remember_server_name
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def answer_with(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def next_answer(self) -> Answer:
        with self.lock:
            return self.answers.popleft() if self.answers else Answer()

    def record(self, request: ReceivedRequest) -> None:
        with self.lock:
            self.requests.append(request)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _remember_server_name(self, connection: Any, server_name: str | None, context: Any) -> None:
        self.server_names.append(server_name)


class _ReceiverServer(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(address, handler)


class _RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        receiver = cast(_ReceiverServer, self.server).receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver.record(ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        answer = receiver.next_answer()
        self.close_connection = True
        time.sleep(answer.delay_s)
        try:
            if answer.raw_chunks:
                for chunk in answer.raw_chunks:
                    self.wfile.write(chunk)
                    time.sleep(answer.drip_s)
                return
            self.send_response(answer.status)
            if answer.location:
                self.send_header("Location", answer.location)
            self.send_header("Content-Length", str(answer.body_size))
            self.end_headers()
            piece = b"x" * 65536
            remaining = answer.body_size
            while remaining > 0:
                self.wfile.write(piece[:remaining])
                receiver.body_bytes_sent += min(remaining, len(piece))
                remaining -= len(piece)
        except OSError:
            pass  # the client hung up: expected for timeouts and cut-off answers

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def allow_loopback(settings: Settings) -> None:
    """The documented escape hatch, so deliveries may reach the test servers on 127.0.0.1."""
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1/32"]


def resolving(answers: dict[str, list[str]]) -> Resolver:
    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in answers[host]]

    return resolve


def enqueue_delivery(**fields: Any) -> WebhookDelivery:
    """Queue one delivery the way a flow run does (in its write batch) and return the stored row."""
    with write_batch() as cursor:
        add_rows(cursor, WebhookDelivery, [delivery_values(**fields)])
    return WebhookDelivery.objects.latest("pk")


def enqueue(
    personas: Personas, url: str, *, secret: str = SECRET, body: dict[str, Any] | None = None
) -> WebhookDelivery:
    return enqueue_delivery(
        tenant=personas.tenant_a,
        binding=None,
        action_slug="webhook-emit",
        flow_slug="login",
        trigger="login.post-login",
        transaction_id="tx-1",
        url=url,
        signing_secret=secret,
        body=BODY if body is None else body,
    )


# --- delivering -----------------------------------------------------------------------------------


def test_it_delivers_a_signed_json_body(personas: Personas, receiver: Receiver, allow_loopback: None) -> None:
    delivery = enqueue(personas, receiver.url("/hook?source=acme"))
    assert receiver.requests == []  # enqueueing touches no network

    assert deliver_due() == 1

    [request] = receiver.requests
    assert request.path == "/hook?source=acme"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == BODY
    assert request.headers["x-actions-delivery"] == str(delivery.pk)
    assert verify_signature(SECRET, request.headers["x-actions-signature"], request.body)
    assert not verify_signature("another-secret", request.headers["x-actions-signature"], request.body)
    assert not verify_signature(SECRET, request.headers["x-actions-signature"], request.body + b" ")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 200, "")
    assert delivery.delivered_at is not None
    assert delivery.url_display == f"http://127.0.0.1:{receiver.port}"
    assert deliver_due() == 0


def test_it_sends_slack_bodies_unsigned(personas: Personas, receiver: Receiver, allow_loopback: None) -> None:
    enqueue(personas, receiver.url("/services/T000/B000/XXX"), secret="", body={"text": "Ann signed in"})
    deliver_due()
    [request] = receiver.requests
    assert json.loads(request.body) == {"text": "Ann signed in"}
    assert "x-actions-signature" not in request.headers
    assert "x-actions-delivery" in request.headers


def test_it_stores_the_url_and_secret_encrypted(personas: Personas) -> None:
    delivery = enqueue(personas, "https://hooks.slack.com/services/T000/B000/XXXSECRET")
    assert "XXXSECRET" not in delivery.encrypted_url
    assert SECRET not in delivery.encrypted_signing_secret
    assert delivery.url_display == "https://hooks.slack.com"


def test_an_address_refused_at_queue_time_is_let_through_once_its_network_is_allowed(
    personas: Personas, settings: Settings
) -> None:
    refused = enqueue(personas, "https://10.1.2.3/hook")
    assert refused.status == DeliveryStatus.FAILED and "Not sent" in refused.last_error
    # The queue-time check is cached per URL; allowing the network must still take effect.
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["10.0.0.0/8"]
    allowed = enqueue(personas, "https://10.1.2.3/hook")
    assert allowed.status == DeliveryStatus.PENDING and allowed.last_error == ""


def test_it_keeps_the_host_header_of_a_pinned_name(
    personas: Personas, receiver: Receiver, allow_loopback: None
) -> None:
    enqueue(personas, receiver.url(host="hooks.test"))
    deliver_due(resolver=resolving({"hooks.test": ["127.0.0.1"]}))
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.test:{receiver.port}"


def test_it_retries_with_back_off_until_delivered(personas: Personas, receiver: Receiver, allow_loopback: None) -> None:
    receiver.answer_with(Answer(500), Answer(200))
    delivery = enqueue(personas, receiver.url())
    start = timezone.now()

    assert deliver_due(now=start) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.PENDING, 1, 500)
    assert "500" in delivery.last_error
    first_delay = (delivery.next_attempt_at - start).total_seconds()
    assert 8 <= first_delay <= 12  # 10 s ± 20 % jitter

    assert deliver_due(now=start + dt.timedelta(seconds=5)) == 0  # not due yet
    assert deliver_due(now=start + dt.timedelta(seconds=13)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.DELIVERED, 2, 200)
    assert len(receiver.requests) == 2
    # The same delivery id on every attempt, so the receiver can de-duplicate.
    assert {r.headers["x-actions-delivery"] for r in receiver.requests} == {str(delivery.pk)}


def test_it_gives_up_after_the_maximum_attempts(
    personas: Personas, receiver: Receiver, allow_loopback: None, settings: Settings
) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.answer_with(*[Answer(500)] * 5)
    delivery = enqueue(personas, receiver.url())
    clock = timezone.now()
    delays = []
    for _ in range(5):
        deliver_due(now=clock)
        delivery.refresh_from_db()
        delays.append((delivery.next_attempt_at - clock).total_seconds())
        clock += dt.timedelta(hours=2)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 3
    assert "Gave up after 3 attempts" in delivery.last_error
    assert len(receiver.requests) == 3
    assert 24 <= delays[1] <= 36  # the second delay is 30 s ± 20 %


def test_it_does_not_follow_redirects(
    personas: Personas, receiver: Receiver, second_receiver: Receiver, allow_loopback: None
) -> None:
    receiver.answer_with(Answer(302, location=second_receiver.url("/elsewhere")))
    delivery = enqueue(personas, receiver.url())
    deliver_due()
    delivery.refresh_from_db()
    assert len(receiver.requests) == 1
    assert second_receiver.requests == []
    assert delivery.status == DeliveryStatus.PENDING  # a failed attempt, retried later
    assert delivery.last_status_code == 302
    assert "redirects are not followed" in delivery.last_error


def test_it_times_out_a_slow_server(
    personas: Personas, receiver: Receiver, allow_loopback: None, settings: Settings
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.4
    receiver.answer_with(Answer(200, delay_s=3))
    delivery = enqueue(personas, receiver.url())
    started = time.monotonic()
    deliver_due()
    assert time.monotonic() - started < 1.5
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code is None
    assert "within 0.4 s" in delivery.last_error


def test_it_keeps_one_deadline_for_a_server_that_drips_bytes(receiver: Receiver, allow_loopback: None) -> None:
    receiver.answer_with(Answer(raw_chunks=[bytes([b]) for b in b"HTTP/1.1 200 OK\r\n"], drip_s=0.1))
    checked = resolve_and_check(receiver.url())
    started = time.monotonic()
    outcome = post_pinned(checked, body=b"{}", headers={}, timeout_s=0.5)
    assert time.monotonic() - started < 1.0
    assert outcome.status_code is None
    assert "within 0.5 s" in outcome.error


def test_it_cuts_off_a_huge_answer(personas: Personas, receiver: Receiver, allow_loopback: None) -> None:
    huge = 256 * 1024 * 1024
    receiver.answer_with(Answer(200, body_size=huge))
    delivery = enqueue(personas, receiver.url())
    started = time.monotonic()
    deliver_due()
    assert time.monotonic() - started < 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.DELIVERED, 200)
    time.sleep(0.2)  # let the server notice the closed connection
    assert receiver.body_bytes_sent < huge


def test_it_reads_no_more_than_the_limit_looking_for_a_status_line(receiver: Receiver, allow_loopback: None) -> None:
    receiver.answer_with(Answer(raw_chunks=[b"X" * 200_000]))
    outcome = post_pinned(resolve_and_check(receiver.url()), body=b"{}", headers={}, max_response_bytes=1024)
    assert outcome.status_code is None
    assert "not HTTP" in outcome.error or "1024 bytes" in outcome.error


def test_it_skips_interim_answers(receiver: Receiver, allow_loopback: None) -> None:
    interim_then_final = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    receiver.answer_with(Answer(raw_chunks=[interim_then_final]))
    outcome = post_pinned(resolve_and_check(receiver.url()), body=b"{}", headers={})
    assert outcome == (204, "")


def test_it_refuses_at_send_time_a_name_that_now_resolves_to_a_blocked_address(
    personas: Personas, receiver: Receiver
) -> None:
    # No allow-list here: 127.0.0.1 is loopback, as it is in production.
    delivery = enqueue(personas, receiver.url(host="hooks.test"))
    assert delivery.status == DeliveryStatus.PENDING  # the name itself is fine
    start = timezone.now()
    assert deliver_due(now=start, resolver=resolving({"hooks.test": ["127.0.0.1"]})) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert "hooks.test resolves to 127.0.0.1" in delivery.last_error
    assert receiver.requests == []
    assert deliver_due(now=start + dt.timedelta(days=1), resolver=resolving({"hooks.test": ["127.0.0.1"]})) == 0


def test_it_retries_a_name_that_does_not_resolve(personas: Personas) -> None:
    delivery = enqueue(personas, "https://hooks.test/hook")
    deliver_due(resolver=resolving({}))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert "could not be resolved" in delivery.last_error


def test_it_records_an_unsafe_url_as_failed_without_sending(personas: Personas) -> None:
    delivery = enqueue(personas, "http://169.254.169.254/latest/meta-data?token=abc")
    assert delivery.status == DeliveryStatus.FAILED
    assert "cloud metadata" in delivery.last_error
    assert delivery.url_display == "http://169.254.169.254"
    assert deliver_due() == 0


def test_connection_refused_is_a_retried_failure(personas: Personas, allow_loopback: None) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    delivery = enqueue(personas, f"http://127.0.0.1:{port}/hook")
    deliver_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.PENDING, 1, None)
    assert "Could not connect" in delivery.last_error


# --- several workers ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_send_a_delivery_twice(
    personas: Personas, receiver: Receiver, allow_loopback: None
) -> None:
    deliveries = [enqueue(personas, receiver.url(f"/hook/{number}")) for number in range(30)]
    start_together = threading.Barrier(3)
    sent_counts: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start_together.wait()
            # Small batches, so the workers keep claiming while the others are sending.
            while (sent := deliver_due(limit=3)) > 0:
                sent_counts.append(sent)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)

    assert errors == []
    delivered_ids = [request.headers["x-actions-delivery"] for request in receiver.requests]
    assert sorted(delivered_ids) == sorted(str(delivery.pk) for delivery in deliveries)
    assert sum(sent_counts) == len(deliveries)
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == len(deliveries)


def test_an_expired_lease_can_be_claimed_again(personas: Personas, receiver: Receiver, allow_loopback: None) -> None:
    delivery = enqueue(personas, receiver.url())
    now = timezone.now()
    # A worker that died mid-send leaves its lease behind.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(locked_until=now + dt.timedelta(minutes=5))
    assert deliver_due(now=now) == 0
    assert deliver_due(now=now + dt.timedelta(minutes=6)) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.locked_until is None


# --- running it -----------------------------------------------------------------------------------


def test_the_management_command_delivers_once(personas: Personas, receiver: Receiver, allow_loopback: None) -> None:
    delivery = enqueue(personas, receiver.url())
    out = StringIO()
    call_command("run_outbox_worker", "--once", stdout=out)
    assert "Sent 1 deliveries." in out.getvalue()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_the_in_process_worker_starts_once_and_delivers(
    personas: Personas, receiver: Receiver, allow_loopback: None
) -> None:
    delivery = enqueue(personas, receiver.url())
    thread = start_in_process_worker(interval_s=0.05)
    try:
        assert start_in_process_worker(interval_s=0.05) is thread
        assert thread.daemon
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop_in_process_worker()
    assert not thread.is_alive()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


# --- the delivery log -----------------------------------------------------------------------------


def test_deliveries_for_binding_lists_one_attachment_newest_first(personas: Personas) -> None:
    flow = Flow.objects.get(tenant=personas.tenant_a, slug="login")
    action = Action.objects.get(tenant=personas.tenant_a, slug="webhook-emit")
    version = action.versions.first()
    assert flow.current_revision is not None and version is not None
    bindings = [
        Binding.objects.create(
            revision=flow.current_revision,
            trigger="login.post-login",
            position=position,
            action=action,
            pinned_version=version,
        )
        for position in range(2)
    ]
    for number in range(3):
        enqueue_delivery(
            tenant=personas.tenant_a,
            binding=bindings[0],
            action_slug="webhook-emit",
            flow_slug="login",
            trigger="login.post-login",
            transaction_id=f"tx-{number}",
            url="https://hooks.example.com/in",
            signing_secret="",
            body={"n": number},
        )
    enqueue(personas, "https://hooks.example.com/other")

    listed = list(deliveries_for_binding(bindings[0], limit=2))
    assert [delivery.transaction_id for delivery in listed] == ["tx-2", "tx-1"]
    assert list(deliveries_for_binding(bindings[1])) == []


# --- signatures and TLS ---------------------------------------------------------------------------


def test_signatures_expire_and_accept_any_of_several_values() -> None:
    body = b'{"a":1}'
    signed_at = int(time.time()) - 1000
    old_header = signature_header_value(SECRET, body, timestamp=signed_at)
    assert not verify_signature(SECRET, old_header, body)
    assert verify_signature(SECRET, old_header, body, now=signed_at + 10)
    assert verify_signature(SECRET, old_header, body, tolerance_s=2000)
    current = signature_header_value(SECRET, body)
    t_part, v1_part = current.split(",")
    assert verify_signature(SECRET, f"{t_part},v1=deadbeef,{v1_part}", body)
    assert not verify_signature(SECRET, "v1=deadbeef", body)
    assert not verify_signature(SECRET, "t=abc,v1=ü", body)


@dataclass
class IssuedCertificates:
    ca_file: Path
    server_context: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def _issue_certificates(directory: Path, server_name: str) -> IssuedCertificates:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Outbox test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain_file = directory / "server.pem"
    chain_file.write_bytes(
        server_cert.public_bytes(serialization.Encoding.PEM)
        + server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(chain_file)
    return IssuedCertificates(ca_file, server_context)


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[Receiver, IssuedCertificates]]:
    certificates = _issue_certificates(tmp_path, "hooks.test")
    server = Receiver(tls_context=certificates.server_context)
    yield server, certificates
    server.stop()


def test_it_speaks_tls_with_sni_and_verifies_the_name_not_the_pinned_ip(
    tls_receiver: tuple[Receiver, IssuedCertificates], allow_loopback: None
) -> None:
    server, certificates = tls_receiver
    resolver = resolving({"hooks.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    checked = resolve_and_check(server.url(host="hooks.test", scheme="https"), resolver=resolver)
    assert checked.pinned_address == ipaddress.ip_address("127.0.0.1")

    outcome = post_pinned(checked, body=b"{}", headers={}, ssl_context=certificates.client_context())
    assert outcome == (200, "")
    assert server.server_names == ["hooks.test"]
    assert server.requests[0].headers["host"] == f"hooks.test:{server.port}"

    # Same server and address, but the certificate is not for this name.
    wrong_name = resolve_and_check(server.url(host="other.test", scheme="https"), resolver=resolver)
    outcome = post_pinned(wrong_name, body=b"{}", headers={}, ssl_context=certificates.client_context())
    assert outcome.status_code is None
    assert "certificate" in outcome.error

    # The system trust store does not know the test CA.
    outcome = post_pinned(checked, body=b"{}", headers={})
    assert outcome.status_code is None
    assert "certificate" in outcome.error
    assert len(server.requests) == 1

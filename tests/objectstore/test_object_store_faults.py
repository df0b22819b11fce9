"""obstore's errors into the sparkhist.errors tree (source/faults.py), and the guard's treatment of throttling."""

from __future__ import annotations

import socket

import pytest

from sparkhist.errors import SourceError, SourceNotFound, SourceUnavailable
from sparkhist.resilience.breaker import CircuitBreaker
from sparkhist.resilience.retry import RetryPolicy
from sparkhist.source.deadline import DeadlineExceeded
from sparkhist.source.faults import Throttled, http_status, object_store_error
from sparkhist.source.guard import SourceGuard


class GenericError(Exception):
    """Named as obstore's: the translation looks at the class name and the text."""


class PreconditionError(Exception):
    pass


class PermissionDeniedError(Exception):
    pass


def obstore_text(status: str, body: str = "") -> str:
    return (f"Generic S3 error: Error performing GET http://h/b/k in 3ms - Server returned non-2xx status code: "
            f"{status}: {body}\n\nDebug source:\nGeneric {{ status: {status.split()[0]} }}")


@pytest.mark.parametrize(("exc", "expected"), [
    (FileNotFoundError("Object at location k not found"), SourceNotFound),
    (GenericError(obstore_text("503 Service Unavailable")), Throttled),  # a throttled HEAD: no body
    (GenericError(obstore_text("503 Service Unavailable", "<Error><Code>SlowDown</Code></Error>")), Throttled),
    (GenericError(obstore_text("429 Too Many Requests", "rateLimitExceeded")), Throttled),
    (GenericError(obstore_text("503 Service Unavailable", "<html>no upstream</html>")), SourceUnavailable),
    (GenericError(obstore_text("500 Internal Server Error", "<Code>InternalError</Code>")), SourceUnavailable),
    (GenericError(obstore_text("404 Not Found", "NoSuchBucket")), SourceNotFound),
    (GenericError(obstore_text("400 Bad Request", "InvalidArgument")), SourceError),
    (PermissionDeniedError(obstore_text("403 Forbidden", "AccessDenied")), SourceError),
    (PreconditionError(obstore_text("412 Precondition Failed")), SourceError),
    (GenericError("Generic S3 error: Error performing HEAD http://h/b/k in 3s - HTTP error: error sending request "
                  "(operation timed out)"), DeadlineExceeded),
    (GenericError("Generic S3 error: Error performing HEAD http://h/b/k in 0ms - HTTP error: error sending request"
                  "\n\nDebug source:\n retry_timeout: 180s, inner: Http(HttpError { kind: Connect })"), SourceUnavailable),
    (GenericError("Generic S3 error: Error performing HEAD http://h/b/k in 1s - HTTP error: error sending request"
                  "\n\nDebug source:\n retry_timeout: 180s, inner: Http(HttpError { kind: Timeout, source: TimedOut })"),
     DeadlineExceeded),
])
def test_translation(exc: BaseException, expected: type[SourceError]) -> None:
    error = object_store_error(exc, "s3a://b get k")
    assert type(error) is expected, (error, exc)
    assert str(error).startswith("s3a://b get k") and "Debug source" not in str(error)
    if expected is SourceError:
        assert not error.retryable


def test_a_real_refused_connection_is_unavailable() -> None:
    from obstore.store import S3Store

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = S3Store("b", endpoint=f"http://127.0.0.1:{port}", access_key_id="a", secret_access_key="b",
                    client_options={"allow_http": True}, retry_config={"max_retries": 0})
    import obstore

    with pytest.raises(Exception) as info:  # whatever obstore raises
        obstore.head(store, "k")
    error = object_store_error(info.value, "head")
    assert isinstance(error, SourceUnavailable) and error.retryable and http_status(info.value) is None


def test_the_guard_retries_throttling_without_touching_the_breaker() -> None:
    slept: list[float] = []
    breaker = CircuitBreaker("s3", failure_threshold=1, reset_timeout=60)
    guard = SourceGuard("s3", retry=RetryPolicy(attempts=4, sleep=slept.append, rand=lambda: 0.5), breaker=breaker)
    answers = [Throttled("slow down"), Throttled("slow down"), "ok"]

    def attempt() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert guard.run("list", attempt) == "ok"
    assert len(slept) == 2 and breaker.state == "closed" and breaker.consecutive_failures == 0
    health = guard.health()
    assert health["throttled"] == {"list": 2} and health["state"] == "ok" and health["failures"] == {}

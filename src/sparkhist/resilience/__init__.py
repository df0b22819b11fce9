"""Fault-handling policies shared by the sources: retries with backoff, circuit breakers."""

from sparkhist.resilience.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from sparkhist.resilience.retry import Backoff, RetryPolicy, RetryState, is_retryable

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "Backoff", "CircuitBreaker", "RetryPolicy", "RetryState", "is_retryable"]

"""Tools for tests and benchmarks (corpus scaling); the server never imports them."""

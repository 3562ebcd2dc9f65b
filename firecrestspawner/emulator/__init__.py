"""A FirecREST v2 emulator for tests, demos and benchmarks."""

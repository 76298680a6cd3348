"""Schemathesis hooks for the fuzz run (SCHEMATHESIS_HOOKS=tests.openapi.fuzz_hooks).

tus bodies are raw bytes (``application/offset+octet-stream``), a media type
schemathesis has no serializer for: generate small byte strings for it."""
from hypothesis import strategies as st

import schemathesis

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=2048))

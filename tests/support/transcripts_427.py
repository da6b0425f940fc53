"""Chat streams observed from AstrBot 4.27.4, as they were
recorded (docs/compatibility.md M5, P4; the "...same..." abbreviations of the streaming deltas written out)."""

# ruff: noqa: E501  (verbatim transcripts: one SSE event per line)

from __future__ import annotations

STREAMING = r"""
data: {"type": "session_id", "data": null, "session_id": "tr-stream"}

data: {"type": "user_message_saved", "data": {"id": 13, "created_at": "2026-12-06T04:53:16.345104+00:00", "llm_checkpoint_id": "a7552dff-788e-4132-9bbf-a2cc28670171"}}

data: {"type": "run_started", "data": {"run_id": "5da6251f-7cc9-418d-bbac-96e8afac5f84"}, "streaming": false, "message_id": "5da6251f-7cc9-418d-bbac-96e8afac5f84"}

data: {"type": "plain", "data": "Hello", "streaming": true, "chain_type": null, "message_id": "5da6251f-7cc9-418d-bbac-96e8afac5f84"}

data: {"type": "plain", "data": " from", "streaming": true, "chain_type": null, "message_id": "5da6251f-7cc9-418d-bbac-96e8afac5f84"}

data: {"type": "plain", "data": " fake", "streaming": true, "chain_type": null, "message_id": "5da6251f-7cc9-418d-bbac-96e8afac5f84"}

data: {"type": "plain", "data": " LLM!", "streaming": true, "chain_type": null, "message_id": "5da6251f-7cc9-418d-bbac-96e8afac5f84"}

data: {"type": "agent_stats", "data": {"token_usage": {"input_other": 12, "input_cached": 0, "output": 4}, "current_context_tokens": 12, "start_time": 1796532796.3688397, "end_time": 1796532796.4624238, "time_to_first_token": 0.01006937026977539}}

data: {"type": "complete", "data": "Hello from fake LLM!", "reasoning": "", "streaming": true, "message_id": "5da6251f-7cc9-418d-bbac-96e8afac5f84"}

data: {"type": "message_saved", "data": {"id": 14, "created_at": "2026-12-06T04:53:16.464486+00:00", "llm_checkpoint_id": "a7552dff-788e-4132-9bbf-a2cc28670171"}}

data: {"type": "end", "data": "", "streaming": false, "message_id": "5da6251f-7cc9-418d-bbac-96e8afac5f84"}
"""

NON_STREAMING = r"""
data: {"type": "session_id", "data": null, "session_id": "tr-nostream"}

data: {"type": "user_message_saved", "data": {"id": 15, "created_at": "2026-12-06T04:53:16.540577+00:00", "llm_checkpoint_id": "93bf0afa-aa60-45ab-bf43-2b17576b396b"}}

data: {"type": "run_started", "data": {"run_id": "0e4f9ff3-03ca-4bcb-b30e-1bd1927f90ab"}, "streaming": false, "message_id": "0e4f9ff3-03ca-4bcb-b30e-1bd1927f90ab"}

data: {"type": "agent_stats", "data": {"token_usage": {"input_other": 12, "input_cached": 0, "output": 4}, "current_context_tokens": 12, "start_time": 1796532796.5769951, "end_time": 1796532796.586385, "time_to_first_token": 0.0}}

data: {"type": "plain", "data": "Hello from fake LLM!", "streaming": false, "chain_type": null, "message_id": "0e4f9ff3-03ca-4bcb-b30e-1bd1927f90ab"}

data: {"type": "message_saved", "data": {"id": 16, "created_at": "2026-12-06T04:53:16.590633+00:00", "llm_checkpoint_id": "93bf0afa-aa60-45ab-bf43-2b17576b396b"}}

data: {"type": "end", "data": "", "streaming": false, "message_id": "0e4f9ff3-03ca-4bcb-b30e-1bd1927f90ab"}
"""

# The stalled-LLM stream's head (P4 sse_heartbeat): heartbeats every second of silence.
STALLED_HEAD = (b"session_id", b"user_message_saved", b"run_started", b": heartbeat")

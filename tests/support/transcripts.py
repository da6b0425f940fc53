"""Chat streams observed from AstrBot, copied verbatim as they were
recorded (docs/compatibility.md M5, M6)."""

# ruff: noqa: E501  (verbatim transcripts: one SSE event per line)

from __future__ import annotations

STREAMING = r"""
data: {"type": "session_id", "data": null, "session_id": "sess-stream-1"}

data: {"type": "plain", "data": "Hello", "streaming": true, "chain_type": null, "message_id": "cc320c35-9e50-44e0-b09f-8397855c4abd"}

data: {"type": "plain", "data": " from", "streaming": true, "chain_type": null, "message_id": "cc320c35-9e50-44e0-b09f-8397855c4abd"}

data: {"type": "plain", "data": " fake", "streaming": true, "chain_type": null, "message_id": "cc320c35-9e50-44e0-b09f-8397855c4abd"}

data: {"type": "plain", "data": " LLM!", "streaming": true, "chain_type": null, "message_id": "cc320c35-9e50-44e0-b09f-8397855c4abd"}

data: {"type": "agent_stats", "data": {"token_usage": {"input_other": 12, "input_cached": 0, "output": 4}, "start_time": 1795523157.6381805, "end_time": 1795523157.8692229, "time_to_first_token": 0.03892874717712402}}

data: {"type": "complete", "data": "Hello from fake LLM!", "reasoning": "", "streaming": true, "message_id": "cc320c35-9e50-44e0-b09f-8397855c4abd"}

data: {"type": "message_saved", "data": {"id": 2, "created_at": "2026-11-24T12:25:57.931114+00:00"}}

data: {"type": "end", "data": "", "streaming": false, "message_id": "cc320c35-9e50-44e0-b09f-8397855c4abd"}
"""

NON_STREAMING = r"""
data: {"type": "session_id", "data": null, "session_id": "sess-nostream-1"}

data: {"type": "plain", "data": "Hello from fake LLM!", "streaming": false, "chain_type": null, "message_id": "0b0f90c7-29bb-45f9-b11c-9851bd9e8891"}

data: {"type": "message_saved", "data": {"id": 4, "created_at": "2026-11-24T12:26:00.270603+00:00"}}

data: {"type": "agent_stats", "data": {"token_usage": {"input_other": 12, "input_cached": 0, "output": 4}, "start_time": 1795523160.2124925, "end_time": 1795523160.2172234, "time_to_first_token": 0.0}}

data: {"type": "end", "data": "", "streaming": false, "message_id": "0b0f90c7-29bb-45f9-b11c-9851bd9e8891"}
"""

TOOL_STREAMING = r"""
data: {"type": "session_id", "data": null, "session_id": "sess-tool-1"}

data: {"type": "plain", "data": "{\"id\": \"call_abc123\", \"name\": \"list_future_tasks\", \"args\": {\"query\": \"x\", \"url\": \"http://127.0.0.1:1/\"}, \"ts\": 1795523169.1597362}", "streaming": false, "chain_type": "tool_call", "message_id": "00e9b4ea-5f83-4118-9da8-456a7b9817f3"}

data: {"type": "plain", "data": "{\"id\": \"call_abc123\", \"ts\": 1795523169.1798027, \"result\": \"No cron jobs found.\"}", "streaming": false, "chain_type": "tool_call_result", "message_id": "00e9b4ea-5f83-4118-9da8-456a7b9817f3"}

data: {"type": "plain", "data": "Tool", "streaming": true, "chain_type": null, "message_id": "00e9b4ea-5f83-4118-9da8-456a7b9817f3"}

data: {"type": "plain", "data": " done.", "streaming": true, "chain_type": null, "message_id": "00e9b4ea-5f83-4118-9da8-456a7b9817f3"}

data: {"type": "agent_stats", "data": {"token_usage": {"input_other": 22, "input_cached": 0, "output": 9}, "start_time": 1795523169.1361923, "end_time": 1795523169.2950933, "time_to_first_token": 0.0585942268371582}}

data: {"type": "complete", "data": "Tool done.", "reasoning": "", "streaming": true, "message_id": "00e9b4ea-5f83-4118-9da8-456a7b9817f3"}

data: {"type": "message_saved", "data": {"id": 6, "created_at": "2026-11-24T12:26:09.416608+00:00"}}

data: {"type": "end", "data": "", "streaming": false, "message_id": "00e9b4ea-5f83-4118-9da8-456a7b9817f3"}
"""

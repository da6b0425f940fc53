"""A fake OpenAI-compatible upstream for the relay benchmark, run as its own process:
`python -m bench.fake_openai PORT TOKENS GAP_MS`. A raw asyncio server with TCP_NODELAY;
bench/fake_openai_stdlib.py sends the same bytes from http.server, without it.

Every ``POST .../chat/completions`` gets a streamed reply the way llama.cpp or OpenAI
send it: a chunked ``text/event-stream``, one ``chat.completion.chunk`` per token, each
its own chunk and socket write, ``GAP_MS`` apart (the first one ``GAP_MS`` after the
request), then the ``finish_reason`` chunk, the usage chunk and ``data: [DONE]``.
Keep-alive; any other request gets a small 200 whose body is the number of connections
accepted so far (the start-up probe, and how well a client reuses its connections).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
LAST_CHUNK = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse(payload: object) -> bytes:
    return chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")


def completion_chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    return sse(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1735689600,
            "model": "bench",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def token(index: int) -> str:
    return f"tok{index}" if index == 0 else f" tok{index}"


def reply_chunks(tokens: int) -> tuple[list[bytes], bytes]:
    """The token chunks, and the ending (finish, usage, [DONE], last chunk) in one write."""
    first = completion_chunk({"role": "assistant", "content": token(0)})
    rest = [completion_chunk({"content": token(index)}) for index in range(1, tokens)]
    usage = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": tokens + 10}
    ending = completion_chunk({}, "stop") + sse(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1735689600,
            "model": "bench",
            "choices": [],
            "usage": usage,
        }
    )
    return [first, *rest], ending + chunk(b"data: [DONE]\n\n") + LAST_CHUNK


def probe_answer(connections: int) -> bytes:
    body = str(connections).encode()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n"
    return head % len(body) + body


async def serve(port: int, tokens: int, gap: float) -> None:
    chunks, ending = reply_chunks(tokens)
    accepted = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        # asyncio sets it already; said here because the other upstream variant does not.
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if not head.startswith(b"POST") or b"/chat/completions" not in head:
                    writer.write(probe_answer(accepted))
                    continue
                writer.write(HEAD)
                for piece in chunks:
                    await asyncio.sleep(gap)
                    writer.write(piece)
                writer.write(ending)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000))

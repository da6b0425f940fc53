"""HTTP/1.1 core: sockets, h11 connections, routing, auth, requests, responses.

Imports no API area: the route table is handed in."""

"""Two real SIP stacks on loopback: transactions, retransmissions, rport, TCP framing."""

import asyncio
import socket

import pytest

from camgrid.gb28181.sip.message import parse_message
from camgrid.gb28181.sip.stack import SipStack, TransactionTimeout
from camgrid.gb28181.sip.transport import Peer


async def make_pair(kinds=("udp", "tcp"), handler=None, t1=0.05):
    calls = []

    def default_handler(req, peer):
        calls.append((req, peer))
        server.respond(req, peer, 200, headers=[("X-Seen", peer.addr)])

    server = SipStack(handler or default_handler, host="127.0.0.1", port=0, transports=kinds, t1=t1, t2=0.4)
    await server.start()
    client = SipStack(lambda r, p: None, host="127.0.0.1", port=0, transports=["udp"], t1=t1, t2=0.4)
    await client.start()
    return server, client, calls


def options(client, peer):
    return client.new_request("OPTIONS", "sip:server@127.0.0.1", from_uri="sip:client@x", to_uri="sip:server@x", peer=peer)


async def test_udp_request_gets_final_response_with_rport_filled_in():
    server, client, calls = await make_pair()
    try:
        peer = Peer("udp", "127.0.0.1", server.port)
        resp = await client.request(options(client, peer), peer)
        assert resp.status == 200
        via = calls[0][0].top_via
        assert f"rport={client.port}" in via
        assert resp.get("X-Seen") == f"127.0.0.1:{client.port}"
    finally:
        await client.stop()
        await server.stop()


async def test_retransmitted_request_is_answered_from_the_transaction_not_the_handler():
    server, client, calls = await make_pair()
    try:
        peer = Peer("udp", "127.0.0.1", server.port)
        req = options(client, peer)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(2)
        for _ in range(3):
            sock.sendto(req.to_bytes(), ("127.0.0.1", server.port))
            data, _ = await asyncio.to_thread(sock.recvfrom, 65536)
            assert parse_message(data).status == 200
        sock.close()
        assert len(calls) == 1
        assert server.counters["retransmissions_in"] == 2
    finally:
        await client.stop()
        await server.stop()


async def test_a_reused_branch_with_a_new_cseq_is_a_new_request():
    # Some devices send every keepalive with the same branch; only the CSeq moves on.
    server, client, calls = await make_pair()
    try:
        peer = Peer("udp", "127.0.0.1", server.port)
        first = options(client, peer).to_bytes()
        second = first.replace(b"CSeq: 1 OPTIONS", b"CSeq: 2 OPTIONS")
        assert second != first
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(2)
        for data in (first, second, second):
            sock.sendto(data, ("127.0.0.1", server.port))
            answer, _ = await asyncio.to_thread(sock.recvfrom, 65536)
            assert parse_message(answer).get("CSeq") == parse_message(data).get("CSeq")
        sock.close()
        assert len(calls) == 2
        assert server.counters["retransmissions_in"] == 1
    finally:
        await client.stop()
        await server.stop()


async def test_idempotent_answers_keep_no_transaction_and_repeats_reach_the_handler():
    calls = []

    def handler(req, peer):
        calls.append(req)
        server.respond(req, peer, 200, idempotent=True)

    server, client, _ = await make_pair(handler=handler)
    try:
        data = options(client, Peer("udp", "127.0.0.1", server.port)).to_bytes()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(2)
        for _ in range(2):
            sock.sendto(data, ("127.0.0.1", server.port))
            answer, _ = await asyncio.to_thread(sock.recvfrom, 65536)
            assert parse_message(answer).status == 200
        sock.close()
        assert len(calls) == 2  # the repeat was handled again, not answered from memory
        assert server._server_txs == {} and server.counters["retransmissions_in"] == 0
    finally:
        await client.stop()
        await server.stop()


async def test_client_retransmits_over_udp_until_answered():
    seen = []

    def slow_handler(req, peer):
        seen.append(req)
        if len(seen) == 1:
            asyncio.get_running_loop().call_later(0.3, lambda: server.respond(req, peer, 200))

    server, client, _ = await make_pair(handler=slow_handler)
    try:
        peer = Peer("udp", "127.0.0.1", server.port)
        resp = await client.request(options(client, peer), peer)
        assert resp.status == 200
        assert client.counters["retransmissions_out"] >= 2
        assert len(seen) == 1  # the server absorbed the retransmissions
    finally:
        await client.stop()
        await server.stop()


async def test_client_times_out_when_nobody_answers():
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    client = SipStack(lambda r, p: None, host="127.0.0.1", port=0, transports=["udp"], t1=0.01, t2=0.04)
    await client.start()
    try:
        peer = Peer("udp", "127.0.0.1", dead.getsockname()[1])
        with pytest.raises(TransactionTimeout):
            await client.request(options(client, peer), peer, timeout=0.3)
        assert client.counters["retransmissions_out"] >= 3
    finally:
        dead.close()
        await client.stop()


async def test_tcp_framing_with_pipelined_messages_and_split_writes():
    server, client, calls = await make_pair()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        peer = Peer("tcp", "127.0.0.1", server.port)
        a, b = options(client, peer).to_bytes(), options(client, peer).to_bytes()
        writer.write(a + b[:30])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b[30:])
        await writer.drain()
        responses = []
        buf = b""
        while len(responses) < 2:
            buf += await asyncio.wait_for(reader.read(65536), 2)
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                responses.append(head)
        assert all(r.startswith(b"SIP/2.0 200") for r in responses)
        assert len(calls) == 2
        writer.close()
    finally:
        await client.stop()
        await server.stop()


async def test_malformed_udp_request_gets_400_and_garbage_is_dropped():
    server, client, calls = await make_pair()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(1)
        bad = (b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKq\r\n"
               b"From: <sip:a@b>;tag=1\r\nTo: <sip:b@b>\r\nCall-ID: q\r\nCSeq: nope\r\n\r\n")
        sock.sendto(bad, ("127.0.0.1", server.port))
        data, _ = await asyncio.to_thread(sock.recvfrom, 65536)
        assert data.startswith(b"SIP/2.0 400")
        sock.sendto(b"\x00\xff garbage", ("127.0.0.1", server.port))
        with pytest.raises(TimeoutError):
            await asyncio.to_thread(sock.recvfrom, 65536)
        sock.close()
        assert not calls
        assert server.counters["parse_errors"] == 2
    finally:
        await client.stop()
        await server.stop()


async def test_tcp_oversize_message_gets_413_and_the_connection_closes():
    server, client, _ = await make_pair()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 100000\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 2)
        assert data.startswith(b"SIP/2.0 413")
        writer.close()
    finally:
        await client.stop()
        await server.stop()


async def test_handler_exception_becomes_500_not_a_crash():
    def broken(req, peer):
        raise RuntimeError("boom")

    server, client, _ = await make_pair(handler=broken)
    try:
        peer = Peer("udp", "127.0.0.1", server.port)
        resp = await client.request(options(client, peer), peer)
        assert resp.status == 500
    finally:
        await client.stop()
        await server.stop()

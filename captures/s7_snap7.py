"""S7comm over ISO-on-TCP with Snap7, for record.sh's s7comm-102 capture (Debian 12 packages no S7 stack).

    python s7_snap7.py serve HOST                  # a Snap7 server (libsnap7) on HOST:102 with DB1 (64 bytes)
    python s7_snap7.py client HOST RACK SLOT MODE  # one connection; MODE: rw | info | status

Each client run is one TCP connection: TPKT (RFC 1006) + COTP CR/CC, S7 Setup Communication, the
MODE's S7 jobs, then the disconnect (TCP FIN). Not part of portwatch: it runs only while recording,
from a throwaway venv with python-snap7 (whose manylinux wheel bundles the real libsnap7 C library).
"""

from __future__ import annotations

import sys
import time


def serve(host: str) -> None:
    from snap7.server import Server
    from snap7.type import SrvArea, WordLen

    server = Server(log=False)
    db1 = (WordLen.Byte.ctype * 64)()
    for i, b in enumerate(b"portwatch snap7 DB1"):
        db1[i] = b
    server.register_area(SrvArea.DB, 1, db1)
    server.start_to(host, 102)
    while True:
        time.sleep(1)


def client(host: str, rack: int, slot: int, mode: str) -> None:
    from snap7.client import Client

    c = Client()
    c.connect(host, rack, slot)
    print("connected, PDU", c.get_pdu_length())
    if mode == "rw":
        print("DB1[0:19] =", bytes(c.db_read(1, 0, 19)))
        c.db_write(1, 32, bytearray(b"\x12\x34\x56\x78"))
        print("DB1[32:36] =", bytes(c.db_read(1, 32, 4)).hex())
    elif mode == "info":
        info = c.get_cpu_info()
        print("cpu:", info.ModuleTypeName, info.SerialNumber, info.ASName)
        print("order code:", c.get_order_code().OrderCode)
    elif mode == "status":
        print("cpu state:", c.get_cpu_state())
        print("DB1[0:8] =", bytes(c.db_read(1, 0, 8)))
    c.disconnect()
    c.destroy()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])

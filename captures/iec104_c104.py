"""IEC 60870-5-104 with c104, for record.sh's iec104-2404 capture (Debian 12 packages no IEC 104 stack).

    python iec104_c104.py serve HOST          # a c104 server on HOST:2404, station (common address) 47
    python iec104_c104.py client HOST MODE    # one connection; MODE: gi+cmd | gi

The server's station 47 has a single point (M_SP_NA_1, IOA 11), a short float measurement
(M_ME_NC_1, IOA 12) and a single command (C_SC_NA_1, IOA 21) that accepts any command; no periodic
reports (report_ms=0), so the capture carries only what the client asks for. Each client run is one
TCP connection: STARTDT act/con (U frame), a station general interrogation (C_IC_NA_1, answered by
act-con, the points with cot inrogen, act-term), in gi+cmd mode a single command ON (C_SC_NA_1
act, act-con), then STOPDT act/con and the TCP close. Not part of portwatch: it runs only while
recording, from a throwaway venv with c104 (Python binding of the real lib60870 C library).
"""

import sys
import time

import c104

CA = 47


def serve(host: str) -> None:
    server = c104.Server(ip=host, port=2404)
    station = server.add_station(common_address=CA)
    sp = station.add_point(io_address=11, type=c104.Type.M_SP_NA_1, report_ms=0)
    sp.value = True
    me = station.add_point(io_address=12, type=c104.Type.M_ME_NC_1, report_ms=0)
    me.value = 230.5
    cmd = station.add_point(io_address=21, type=c104.Type.C_SC_NA_1, report_ms=0)

    def on_command(point: c104.Point, previous_info: c104.Information,
                   message: c104.IncomingMessage) -> c104.ResponseState:
        print("command on IOA", point.io_address, "value", point.value, flush=True)
        return c104.ResponseState.SUCCESS

    cmd.on_receive(callable=on_command)
    server.start()
    while True:
        time.sleep(1)


def wait(cond, what: str, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"timeout waiting for {what}")
        time.sleep(0.05)


def client(host: str, mode: str) -> None:
    cl = c104.Client(tick_rate_ms=100, command_timeout_ms=3000)
    # Init.MUTED: connect without STARTDT, so each step below is explicit
    conn = cl.add_connection(ip=host, port=2404, init=c104.Init.MUTED)
    station = conn.add_station(common_address=CA)
    cmd = station.add_point(io_address=21, type=c104.Type.C_SC_NA_1)
    cl.start()
    wait(lambda: conn.is_connected, "connection")
    print("STARTDT:", conn.unmute())
    time.sleep(0.2)
    print("general interrogation:", conn.interrogation(common_address=CA, cause=c104.Cot.ACTIVATION,
                                                       qualifier=c104.Qoi.STATION))
    time.sleep(0.3)   # the interrogated points and the act-term
    if mode == "gi+cmd":
        cmd.value = True
        print("single command:", cmd.transmit(cause=c104.Cot.ACTIVATION))
        time.sleep(0.2)
    print("STOPDT:", conn.mute())
    time.sleep(0.2)
    conn.disconnect()
    wait(lambda: not conn.is_connected, "disconnect")
    cl.stop()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        client(sys.argv[2], sys.argv[3])

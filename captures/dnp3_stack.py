"""DNP3 over TCP (IEEE 1815) with opendnp3, for record.sh's dnp3-20000 capture (Debian 12 ships no
DNP3 stack). opendnp3 is the reference C++ implementation; yadnp3 (PyPI) is its maintained fork
with Python bindings (package "opendnp3").

    python dnp3_stack.py outstation ADDR [ADDR]   # outstation (link address 10) on each ADDR:20000
    python dnp3_stack.py master LOCAL ADDR [poll] # master (link address 1) from LOCAL to ADDR:20000

The outstation holds 4 points of each opendnp3 type but time-and-interval and octet-string (binary
and double-bit inputs, analog inputs, counters, frozen counters, binary and analog output statuses)
and accepts every control. The master connects, runs its startup tasks (disable unsolicited, then
the integrity poll: a class 1/2/3/0 read), a link-status request, a class 0 read, a direct-operate
CROB (LATCH_ON on output 0) and a select-before-operate CROB (LATCH_OFF on output 1), then shuts
down (FIN); with "poll", only the startup tasks and the link-status request. As the link opens the
outstation sends its unsolicited null response (allowUnsolicited), which the master confirms; it
may cross the master's first request, so which side speaks first varies from run to run.

Not part of portwatch: it runs only while recording, from a throwaway venv with yadnp3.
"""

from __future__ import annotations

import sys
import threading
import time

import opendnp3 as dnp3

PORT = 20000
MASTER_ADDR, OUTSTATION_ADDR = 1, 10
N = 4


class Soe(dnp3.ISOEHandler):
    def BeginFragment(self, info): pass
    def EndFragment(self, info): pass
    def Process(self, info, values): pass


class MasterApp(dnp3.IMasterApplication):
    def OnReceiveIIN(self, iin): pass
    def OnTaskStart(self, type, id): pass
    def OnTaskComplete(self, info): pass
    def OnOpen(self): pass
    def OnClose(self): pass
    def AssignClassDuringStartup(self): return False
    def Now(self): return dnp3.UTCTimestamp(int(time.time() * 1000))


class Commands(dnp3.ICommandHandler):
    def Begin(self): pass
    def End(self): pass
    def Select(self, command, index): return dnp3.CommandStatus.SUCCESS
    def Operate(self, command, index, handler, opType): return dnp3.CommandStatus.SUCCESS


class OutstationApp(dnp3.IOutstationApplication):
    def SupportsWriteAbsoluteTime(self): return False
    def WriteAbsoluteTime(self, timestamp): return False
    def SupportsAssignClass(self): return False
    def GetApplicationIIN(self): return dnp3.ApplicationIIN()
    def ColdRestartSupport(self): return dnp3.RestartMode.UNSUPPORTED
    def WarmRestartSupport(self): return dnp3.RestartMode.UNSUPPORTED
    def ColdRestart(self): return 0
    def WarmRestart(self): return 0
    def Now(self): return dnp3.DNPTime(int(time.time() * 1000))


def outstation(addrs: list[str]) -> None:
    manager = dnp3.DNP3Manager(1)
    keep = (Commands(), OutstationApp())
    stacks = [serve(manager, addr, keep) for addr in addrs]   # noqa: F841 (kept alive)
    threading.Event().wait()   # until record.sh's ns_reset kills us


def serve(manager, addr: str, keep) -> tuple:
    channel = manager.AddTCPServer("server " + addr, dnp3.levels.NOTHING,
                                   dnp3.ServerAcceptMode.CloseExisting, dnp3.IPEndpoint(addr, PORT), None)
    db = dnp3.DatabaseConfig(N)
    # no time-and-interval (g50v4) or octet-string (g110) points: Wireshark 4.0 cannot dissect g50v4
    db.time_and_interval = {}
    db.octet_string = {}
    config = dnp3.OutstationStackConfig(db)
    config.outstation.params.allowUnsolicited = True
    config.link.LocalAddr, config.link.RemoteAddr = OUTSTATION_ADDR, MASTER_ADDR
    station = channel.AddOutstation("outstation " + addr, keep[0], keep[1], config)
    station.Enable()
    values = dnp3.UpdateBuilder()
    for i in range(N):
        values.Update(dnp3.Binary(i % 2 == 0), i)
        values.Update(dnp3.Analog(20.5 + i), i)
        values.Update(dnp3.Counter(1000 + i), i)
        values.Update(dnp3.BinaryOutputStatus(False), i)
    station.Apply(values.Build())
    return channel, station


def wait(what: str, start) -> None:
    """Start a master task and wait for its callback (a bool for the link status, a command result
    otherwise); exit non-zero unless it succeeded."""
    done, result = threading.Event(), []
    start(lambda r: (result.append(getattr(r, "summary", r)), done.set()))
    if not done.wait(5):
        sys.exit(f"dnp3 master: {what}: no answer")
    if result[0] not in (True, dnp3.TaskCompletion.SUCCESS):
        sys.exit(f"dnp3 master: {what}: {result[0]}")


def master(local: str, addr: str, full: bool) -> None:
    manager = dnp3.DNP3Manager(1)
    channel = manager.AddTCPClient("client", dnp3.levels.NOTHING, dnp3.ChannelRetry.Default(),
                                   [dnp3.IPEndpoint(addr, PORT)], local, None)
    config = dnp3.MasterStackConfig()
    config.link.LocalAddr, config.link.RemoteAddr = MASTER_ADDR, OUTSTATION_ADDR
    soe, app = Soe(), MasterApp()
    station = channel.AddMaster("master", soe, app, config)
    station.Enable()
    time.sleep(1.0)            # connect, disable unsolicited, integrity poll
    wait("link status", lambda cb: station.CheckLinkStatus(cb))
    if full:
        controls(station, soe)
    time.sleep(0.3)
    channel.Shutdown()
    manager.Shutdown()


def controls(station, soe) -> None:
    station.ScanClasses(dnp3.ClassField(True, False, False, False), soe)   # class 0: static data
    time.sleep(0.5)
    latch_on = dnp3.ControlRelayOutputBlock(dnp3.OperationType.LATCH_ON)
    latch_off = dnp3.ControlRelayOutputBlock(dnp3.OperationType.LATCH_OFF)
    wait("direct operate", lambda cb: station.DirectOperate(latch_on, 0, cb))
    wait("select and operate", lambda cb: station.SelectAndOperate(latch_off, 1, cb))


if __name__ == "__main__":
    if sys.argv[1] == "outstation":
        outstation(sys.argv[2:])
    else:
        master(sys.argv[2], sys.argv[3], sys.argv[4:] != ["poll"])

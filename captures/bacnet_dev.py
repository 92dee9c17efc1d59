"""BACnet/IP (ASHRAE 135 Annex J) with bacpypes3, for record.sh's bacnet-47808 capture (Debian 12
ships no BACnet stack). bacpypes3 is a full BACnet stack (BVLL, NPDU, APDU, device object).

    python bacnet_dev.py server ADDR/24          # device 1001 with two objects on ADDR:47808
    python bacnet_dev.py client ADDR/24 SERVER   # device 2002 on ADDR:47808 asks SERVER

The server is device 1001 "portwatch-ahu" with analog-value 1 "supply-temp" (21.5, writable) and
binary-value 1 "fan-run" (active). The client sends a global-broadcast Who-Is (BVLL
Original-Broadcast-NPDU to the veth's 10.77.0.255) and a unicast Who-Is with a device range, each
answered by I-Am; then ReadProperty of the device's object-name, of supply-temp's object-name and
present-value and of fan-run's present-value; WriteProperty of supply-temp's present-value (23.0),
which is read back; and a ReadProperty of a missing object (an Error PDU, unknown-object).

Not part of portwatch: it runs only while recording, from a throwaway venv with bacpypes3.
"""

from __future__ import annotations

import asyncio
import sys

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.app import Application
from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.local.analog import AnalogValueObject
from bacpypes3.local.binary import BinaryValueObject
from bacpypes3.pdu import Address

SERVER_ID, CLIENT_ID = 1001, 2002


def app_for(address: str, instance: int, name: str) -> Application:
    args = SimpleArgumentParser().parse_args(
        ["--address", address, "--instance", str(instance), "--name", name])
    return Application.from_args(args)


async def server(address: str) -> None:
    app = app_for(address, SERVER_ID, "portwatch-ahu")
    app.add_object(AnalogValueObject(
        objectIdentifier=("analog-value", 1), objectName="supply-temp", presentValue=21.5,
        statusFlags=[0, 0, 0, 0], covIncrement=0.5, units="degrees-celsius"))
    app.add_object(BinaryValueObject(
        objectIdentifier=("binary-value", 1), objectName="fan-run", presentValue="active",
        statusFlags=[0, 0, 0, 0]))
    await asyncio.Future()    # until record.sh's ns_reset kills us


async def client(address: str, server_ip: str) -> None:
    app = app_for(address, CLIENT_ID, "portwatch-workstation")
    dev = Address(server_ip)
    found = await app.who_is(timeout=2)                          # global broadcast
    print("who-is *:", [str(i.iAmDeviceIdentifier) for i in found])
    found = await app.who_is(SERVER_ID, SERVER_ID, dev, timeout=2)  # unicast, ranged
    print("who-is", server_ip, [str(i.iAmDeviceIdentifier) for i in found])
    for objid, prop in ((f"device,{SERVER_ID}", "object-name"), ("analog-value,1", "object-name"),
                        ("analog-value,1", "present-value"), ("binary-value,1", "present-value")):
        print(objid, prop, await app.read_property(dev, objid, prop))
    print("write", await app.write_property(dev, "analog-value,1", "present-value", 23.0))
    print("analog-value,1 present-value", await app.read_property(dev, "analog-value,1", "present-value"))
    try:
        print(await app.read_property(dev, "analog-value,9", "present-value"))
    except ErrorRejectAbortNack as err:      # a BaseException in bacpypes3: the Error PDU
        print("analog-value,9:", err)
    app.close()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(server(sys.argv[2]))
    else:
        asyncio.run(client(sys.argv[2], sys.argv[3]))

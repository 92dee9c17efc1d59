"""Signatures whose only real bytes here are nDPI's regression captures (../shared/corpus/ndpi/dev).

The captures are not copied into this repository (LGPL test data, kept in the shared corpus); the
test reads them in place and is skipped where the corpus is absent. One capture per protocol, and
every flow nDPI labelled with that protocol in it must get the same name from portwatch.
"""

from __future__ import annotations

import csv
import ipaddress
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

from portwatch.model import FlowRecord
from portwatch.pipeline import Config, Setup, analyze_path

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "ndpi" / "dev"

CASES = [
    ("zabbix.pcap", "zabbix"), ("bacnet.pcap", "bacnet"), ("coap_mqtt.pcap", "coap"), ("coap_mqtt.pcap", "mqtt"),
    ("dnp3.pcap", "dnp3"), ("kafka.pcapng", "kafka"), ("nfsv3.pcap", "nfs"), ("elasticsearch.pcap", "elasticsearch"),
    ("h323.pcap", "h323"), ("iec60780-5-104.pcap", "iec104"), ("mgcp.pcap", "mgcp"), ("teredo.pcap", "teredo"),
    ("ipsec_isakmp_esp.pcap", "ipsec"), ("kerberos-login.pcap", "kerberos"), ("mssql_tds.pcap", "mssql"),
    ("bittorrent.pcap", "bittorrent"), ("netbios.pcap", "netbios"), ("netbios.pcap", "smb"), ("snmp.pcap", "snmp"),
    ("NTPv2.pcap", "ntp"), ("tftp.pcap", "tftp"), ("rtsp.pcap", "rtsp"), ("mongodb.pcap", "mongodb"),
    ("teams.pcap", "stun"), ("stun_google_meet.pcapng", "dtls"), ("skinny.pcap", "rtp"), ("1kxun.pcap", "llmnr"),
    ("1kxun.pcap", "mdns"), ("1kxun.pcap", "ssdp"), ("1kxun.pcap", "dhcp"), ("1kxun.pcap", "dhcpv6"),
    ("shadowsocks.pcap", "socks"), ("quic-v2.pcapng", "quic"), ("quic_q43.pcap", "quic"), ("sip.pcap", "sip"),
    ("wireguard.pcap", "wireguard"), ("mullvad_wireguard.pcap", "wireguard"), ("openvpn_nohmac.pcapng", "openvpn"),
    ("openvpn_nohmac_tcp.pcapng", "openvpn"), ("openvpn-tlscrypt.pcap", "openvpn"), ("BGP_redist.pcap", "bgp"),
    ("vnc.pcap", "vnc"), ("log4j-webapp-exploit.pcap", "ldap"), ("rdp.pcap", "rdp"), ("amqp.pcap", "amqp"),
    ("dtls_certificate.pcapng", "dtls"), ("mysql.pcapng", "mysql"), ("nntp.pcap", "nntp"),
    ("smpp_in_general.pcap", "smpp"), ("lru_ipv6_caches.pcapng", "rtcp"),
]  # fmt: skip


def _ip(text: str) -> str:
    return ipaddress.ip_address(text).exploded  # nDPI writes "::" for a single zero group


@cache
def labels() -> dict[tuple[str, str], list[tuple[str, frozenset]]]:
    out: dict[tuple[str, str], list[tuple[str, frozenset]]] = defaultdict(list)
    with (CORPUS / "labels.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            pair = frozenset(((_ip(row["a_ip"]), int(row["a_port"])), (_ip(row["b_ip"]), int(row["b_port"]))))
            out[(row["pcap"], row["protocol"])].append((row["transport"], pair))
    return out


@cache
def analyse(name: str) -> dict[tuple[str, frozenset], set[str]]:
    config = Config()
    found: dict[tuple[str, frozenset], set[str]] = defaultdict(set)

    def keep(r: FlowRecord) -> None:
        found[(r.transport, frozenset(((_ip(r.src_ip), r.src_port), (_ip(r.dst_ip), r.dst_port))))].add(r.protocol)

    analyze_path(str(CORPUS / name), Setup.load(config), config, keep)
    return found


@pytest.mark.parametrize(("pcap", "protocol"), CASES)
def test_corpus_flows_named_as_ndpi_names_them(pcap: str, protocol: str) -> None:
    if not (CORPUS / pcap).exists():
        pytest.skip("shared nDPI corpus not present")
    wanted = labels().get((pcap, protocol))
    if not wanted:
        pytest.skip(f"no {protocol} label in {pcap}")
    found = analyse(pcap)
    hits = sum(protocol in found.get(key, set()) for key in wanted)
    # nDPI labels a few flows by what comes after our bounded look (e.g. DTLS after many STUN checks)
    assert hits >= max(1, int(len(wanted) * 0.8)), f"{hits}/{len(wanted)} {protocol} flows in {pcap}"


def test_corpus_xmpp_client_streams() -> None:
    """Jabber on 5222, including streams the capture joined mid-way (stanzas, a closing tag)."""
    if not (CORPUS / "jabber.pcap").exists():
        pytest.skip("shared nDPI corpus not present")
    found = analyse("jabber.pcap")
    wanted = [key for key in labels()[("jabber.pcap", "xmpp")] if any(port == 5222 for _, port in key[1])]
    assert wanted and all("xmpp" in found.get(key, set()) for key in wanted)

"""MQTT over TLS from mosquitto (captures/mqtt-8883.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "mqtt-8883.pcap"


def test_mqtt_over_tls_is_tls_on_the_secure_mqtt_port() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port) for r in records] == [("tls", 8883)] * 2
    for r in records:
        assert r.meta["tls_version_server"] == "1.3" and r.meta["sni"] == "10.77.0.1"
        # Debian's /etc/services has no 8883 (IANA's secure-mqtt): the inventory note only
        assert [(f.kind, f.severity) for f in r.findings] == [("unassigned-port", "info")]


def test_with_ianas_registry_8883_is_a_tls_port() -> None:
    # IANA assigns 8883/tcp to secure-mqtt, a service name tls.toml lists: no mismatch, no note
    records, _ = analyze_path(CAPTURE, services_path="iana")
    assert [(r.protocol, r.assigned, r.findings) for r in records] == [("tls", ["secure-mqtt"], [])] * 2
